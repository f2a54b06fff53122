package sem

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/race"
)

// Mutex layout (docs/format/sem.md has it byte by byte).
const (
	offMutexWord      = 0  // uint64: state (low 32 bits) | owner start tag (high 32)
	offMutexFlags     = 16 // uint32: flagInconsistent
	offMutexTakeovers = 20 // uint32: owner-dead recoveries so far (wraps)
	offMutexOwnerTime = 24 // uint64: full start time of the last owner (informational)
	offMutexDeadOwner = 32 // uint64: lock word (tag<<32 | pid) of the owner whose death was last taken over
	offMutexDeadStart = 40 // uint64: that owner's full start time, 0 if unknown
)

// State word (the futex word, low 32 bits of the lock word).
const (
	pidBits      = 22 // PID_MAX_LIMIT is 1<<22 on 64-bit Linux
	pidMask      = 1<<pidBits - 1
	waitersBit   = 1 << 31
	reservedBits = ^uint32(pidMask | waitersBit)
)

// Flags word.
const flagInconsistent = 1

// Mutex is a mutual exclusion lock in shared memory, usable by any number
// of goroutines in any number of processes. The zero value is not usable:
// get one from InitMutex, MutexAt, CreateMutex or OpenMutex.
//
// A Mutex is owned by a process, not a goroutine: any goroutine of the
// owning process may Unlock it, as with sync.Mutex. It is not reentrant.
//
// Unlock happens before a later Lock returns, across processes: writes to
// the shared segment (and, in the same process, to Go memory) made before
// Unlock are visible after the next Lock.
type Mutex struct {
	_     noCopy
	word  *uint64 // lock word in shared memory
	state *uint32 // its futex half
	flags *uint32
	obj   object
	self  uint64 // our lock-word value: start tag << 32 | pid
	start uint64 // our full start time
	proxy unsafe.Pointer
	life  *life
}

// InitMutex initialises a Mutex in the first MutexSize bytes of mem, which
// must be 8-byte aligned and not in use by anyone yet (typically inside a
// segment's WithInit function), and returns a handle to it.
func InitMutex(mem []byte) (*Mutex, error) {
	o, err := freshObject(mem, MutexSize)
	if err != nil {
		return nil, err
	}
	o.publish(magicMutex)
	return newMutex(o)
}

// MutexAt returns a handle to the Mutex initialised by InitMutex in the
// first MutexSize bytes of mem (another process may have initialised it).
// Memory that does not hold a valid Mutex gives ErrCorrupt.
func MutexAt(mem []byte) (*Mutex, error) {
	o, err := objectAt(mem, MutexSize, magicMutex, "mutex")
	if err != nil {
		return nil, err
	}
	// Atomic loads: holders in other processes may be writing these words.
	if f := atomic.LoadUint32(o.u32(offMutexFlags)); f&^flagInconsistent != 0 {
		return nil, fmt.Errorf("%w: mutex: unknown flags %#x", ErrCorrupt, f)
	}
	if s := uint32(atomic.LoadUint64(o.u64(offMutexWord))); s&reservedBits != 0 {
		return nil, fmt.Errorf("%w: mutex: bad state word %#x", ErrCorrupt, s)
	}
	return newMutex(o)
}

func stateOf(o object) *uint32 {
	if littleEndian {
		return o.u32(offMutexWord)
	}
	return o.u32(offMutexWord + 4)
}

func newMutex(o object) (*Mutex, error) {
	id := proc.Self()
	if id.Pid <= 0 || id.Pid > pidMask {
		return nil, fmt.Errorf("%w: pid %d does not fit in %d bits", ErrNotSupported, id.Pid, pidBits)
	}
	m := &Mutex{
		word:  o.u64(offMutexWord),
		state: stateOf(o),
		flags: o.u32(offMutexFlags),
		obj:   o,
		self:  uint64(startTag(id.Start))<<32 | uint64(id.Pid),
		start: id.Start,
		proxy: race.Proxy(o.base),
		life:  newLife(),
	}
	return m, nil
}

// startTag folds a start time into the 32 bits stored next to the pid. It
// is never 0, so a non-zero pid with a zero tag is recognisably bogus.
func startTag(start uint64) uint32 {
	t := uint32(start) ^ uint32(start>>32)
	if t == 0 {
		t = 1
	}
	return t
}

// Spinning and sleeping (the sleep bounds are in misc.go).
const (
	spinTries = 50                 // CAS attempts (with Gosched) before sleeping
	anyWaiter = uint64(waitersBit) // the waiters bit in the 64-bit lock word
)

// Lock acquires m, sleeping while another process or goroutine holds it.
//
// It returns nil with the lock held; an *OwnerDeadError (matching
// ErrOwnerDead, naming the dead owner) with the lock held when
// the previous owner died holding it (or an earlier one did and nobody has
// called MarkConsistent since); ctx.Err() without the lock when ctx ends
// first; ErrClosed after Close; ErrCorrupt when the lock word is garbage.
// A Lock that can succeed without blocking succeeds even if ctx is done.
//
// Uncontended, Lock makes no system call and does not allocate.
func (m *Mutex) Lock(ctx context.Context) error {
	if !m.life.enter() {
		return ErrClosed
	}
	defer m.life.exit()
	// CAS 0 -> self: acquire (sequentially consistent, hence acquire
	// ordering) of a free lock with no waiters.
	if atomic.CompareAndSwapUint64(m.word, 0, m.self) {
		return m.locked(0)
	}
	return m.lockSlow(ctx)
}

// locked finishes an acquisition. dead is the lock word of the dead owner
// taken over, 0 for an ordinary acquisition.
func (m *Mutex) locked(dead uint64) error {
	// Informational only (shmctl shows it). Atomic so that a concurrent
	// reader sees no torn value; stored only when it changes, so that a
	// process re-taking its own lock pays no extra locked instruction (a
	// sequentially consistent store is an XCHG on amd64).
	ot := m.obj.u64(offMutexOwnerTime)
	prev := atomic.LoadUint64(ot)
	if prev != m.start {
		atomic.StoreUint64(ot, m.start)
	}
	race.Acquire(m.proxy)
	if dead != 0 {
		// The dead owner's full start time is known if it got as far as
		// recording it (its tag must match: else it is an older owner's).
		owner := dead &^ anyWaiter
		if startTag(prev) != uint32(owner>>32) {
			prev = 0
		}
		// We hold the lock, so nobody else writes these words; the
		// operations are atomic only because readers may look without
		// the lock. The dead owner is recorded before the flag is set, so
		// a later holder that sees the flag also sees who died.
		atomic.StoreUint64(m.obj.u64(offMutexDeadOwner), owner)
		atomic.StoreUint64(m.obj.u64(offMutexDeadStart), prev)
		atomic.OrUint32(m.flags, flagInconsistent)
		atomic.AddUint32(m.obj.u32(offMutexTakeovers), 1)
		return m.ownerDeadError()
	}
	// Load under the lock: whoever set or cleared the flag held the lock,
	// and the acquiring CAS orders us after their release.
	if atomic.LoadUint32(m.flags)&flagInconsistent != 0 {
		return m.ownerDeadError()
	}
	return nil
}

// ownerDeadError reports the dead owner recorded in the Mutex (called with
// the lock held; the allocation is off the uncontended path).
func (m *Mutex) ownerDeadError() error {
	// Atomic loads: readers without the lock may look, and a hostile peer
	// may write; the values are only reported, never trusted.
	w := atomic.LoadUint64(m.obj.u64(offMutexDeadOwner))
	return &OwnerDeadError{
		Pid:   int(uint32(w) & pidMask),
		Start: atomic.LoadUint64(m.obj.u64(offMutexDeadStart)),
	}
}

// notOwner reports that lock word w is not ours.
func notOwner(w uint64) error {
	return &NotOwnerError{Owner: int(uint32(w) & pidMask)}
}

func (m *Mutex) lockSlow(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for i := 0; i < spinTries; i++ {
		w := atomic.LoadUint64(m.word) // atomic: other processes write it
		st := uint32(w)
		if st&reservedBits != 0 {
			return m.corrupt(st)
		}
		if st&pidMask == 0 {
			// Free: take it, keeping a waiters bit someone else set.
			if atomic.CompareAndSwapUint64(m.word, w, m.self|uint64(st&waitersBit)) {
				return m.locked(0)
			}
			continue
		}
		runtime.Gosched()
	}
	sleep := firstSleep()
	// giveUp returns err, first handing on a wake-up we may have consumed
	// (only possible once we have slept).
	slept := false
	giveUp := func(err error) error {
		if slept {
			m.passWake()
		}
		return err
	}
	for {
		if m.life.closed() {
			return giveUp(ErrClosed)
		}
		w := atomic.LoadUint64(m.word) // atomic: other processes write it
		st := uint32(w)
		if st&reservedBits != 0 {
			return m.corrupt(st)
		}
		if st&pidMask == 0 {
			// Free. Having slept, we cannot know whether others sleep
			// too, so we take it with the waiters bit set (as in
			// Drepper's "Futexes Are Tricky", mutex 2): our Unlock will
			// then wake one.
			if atomic.CompareAndSwapUint64(m.word, w, m.self|anyWaiter) {
				return m.locked(0)
			}
			if err := ctx.Err(); err != nil {
				// Bounded even if a peer rewrites the word for ever.
				return giveUp(err)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return giveUp(err)
		}
		if st&waitersBit == 0 {
			// Tell the owner to wake someone on Unlock. CAS, not Or, so
			// that we sleep on exactly the value we saw.
			if !atomic.CompareAndSwapUint64(m.word, w, w|anyWaiter) {
				continue
			}
			w |= anyWaiter
		}
		err := futex.WaitContext(ctx, m.state, uint32(w), sleep)
		slept = true
		switch {
		case err == nil:
			// Woken (or the word changed): try again.
		case errors.Is(err, futex.ErrTimeout):
			if m.ownerDead(w) && atomic.CompareAndSwapUint64(m.word, w, m.self|anyWaiter) {
				// Only one waiter's CAS from w succeeds.
				return m.locked(w)
			}
			sleep = nextSleep(sleep)
		case ctx.Err() != nil:
			return giveUp(ctx.Err())
		default:
			return giveUp(err)
		}
	}
}

// passWake hands on a wake-up we may have consumed before giving up (ctx
// done, Close, a futex error). Unlock woke us alone and cleared the
// waiters bit, so other sleepers now depend on us: if the lock is free,
// wake one of them; if someone took it meanwhile (a spinner takes it
// without the waiters bit), set the bit so that its Unlock wakes one.
// Either may be a wake nobody needs, which is harmless.
func (m *Mutex) passWake() {
	for range 100 { // bounded: only a peer rewriting the word makes the CAS fail repeatedly
		w := atomic.LoadUint64(m.word) // atomic: read for the CAS below
		st := uint32(w)
		switch {
		case st&reservedBits != 0 || st&waitersBit != 0:
			return // corrupt (every locker reports it), or a wake is owed already
		case st&pidMask == 0:
			_, _ = futex.Wake(m.state, 1)
			return
		case atomic.CompareAndSwapUint64(m.word, w, w|anyWaiter):
			return
		}
	}
}

func (m *Mutex) corrupt(st uint32) error {
	return fmt.Errorf("%w: mutex: bad state word %#x", ErrCorrupt, st)
}

// ownerDead reports whether the owner named by lock word w has died (or
// names no possible process). Errors reading /proc other than "no such
// process" count as alive: taking a lock from a live owner breaks mutual
// exclusion, waiting longer does not.
func (m *Mutex) ownerDead(w uint64) bool {
	owner := w &^ anyWaiter
	// Without /proc (our own start time unknown) every pid would look
	// missing: then nobody is ever judged dead.
	if owner == m.self || m.start == 0 {
		return false
	}
	pid := int(uint32(owner) & pidMask)
	tag := uint32(owner >> 32)
	if pid == 0 || tag == 0 {
		return true // not a value Lock ever writes
	}
	st, err := proc.StartTime(pid)
	if errors.Is(err, proc.ErrNoProcess) {
		// Gone or a zombie, unless /proc hides it (mounted hidepid=1
		// or 2, another user's process): then kill(pid, 0) still finds
		// it while /proc/PID is missing. Its start time is unknowable,
		// so it counts as alive.
		return !hiddenProcess(pid)
	}
	if err != nil {
		return false
	}
	// The pid and the tag were written by one CAS, so a mismatch is never
	// a half-finished acquisition: the pid now names another process.
	return startTag(st) != tag
}

// TryLock acquires m if that needs no waiting and reports whether it did.
// As with Lock, an acquisition returns ErrOwnerDead alongside true when the
// owner died holding m (TryLock then takes it over) or the Mutex is still
// inconsistent. It returns (false, nil) when a live process holds m, this
// one included; (false, ErrClosed) after Close; (false, ErrCorrupt) for a
// garbage lock word. A TryLock that finds m held reads the owner's /proc
// entry to check that it is alive.
func (m *Mutex) TryLock() (bool, error) {
	if !m.life.enter() {
		return false, ErrClosed
	}
	defer m.life.exit()
	w := atomic.LoadUint64(m.word) // atomic: other processes write it
	st := uint32(w)
	if st&reservedBits != 0 {
		return false, m.corrupt(st)
	}
	if st&pidMask == 0 {
		if atomic.CompareAndSwapUint64(m.word, w, m.self|uint64(st&waitersBit)) {
			return true, m.locked(0)
		}
		return false, nil
	}
	if m.ownerDead(w) && atomic.CompareAndSwapUint64(m.word, w, m.self|uint64(st&waitersBit)) {
		return true, m.locked(w)
	}
	return false, nil
}

// Unlock releases m. It returns ErrNotOwner, and changes nothing, when the
// calling process does not hold it. Unlocking with the inconsistent flag
// still set leaves it set: the next Lock gets ErrOwnerDead.
//
// Unlock makes a system call only when another locker is asleep. An error
// from that wake-up call is returned with the lock already released.
func (m *Mutex) Unlock() error {
	if !m.life.enter() {
		return ErrClosed
	}
	defer m.life.exit()
	for {
		// Atomic: waiters may be setting the waiters bit concurrently.
		w := atomic.LoadUint64(m.word)
		if w&^anyWaiter != m.self {
			return notOwner(w)
		}
		race.ReleaseMerge(m.proxy)
		// CAS, not Swap: never clear a word that is not ours. Release
		// ordering comes with the (sequentially consistent) CAS.
		if atomic.CompareAndSwapUint64(m.word, w, 0) {
			if w&anyWaiter != 0 {
				if _, err := futex.Wake(m.state, 1); err != nil {
					return err
				}
			}
			return nil
		}
		// A waiter set the waiters bit meanwhile: retry with it.
	}
}

// MarkConsistent clears the inconsistent state left by a dead owner, so
// that later Locks return nil again. The caller must hold m (ErrNotOwner
// otherwise); call it after repairing what m guards.
func (m *Mutex) MarkConsistent() error {
	if !m.life.enter() {
		return ErrClosed
	}
	defer m.life.exit()
	// Atomic: waiters may be setting the waiters bit concurrently.
	if w := atomic.LoadUint64(m.word); w&^anyWaiter != m.self {
		return notOwner(w)
	}
	// We hold the lock; And is atomic because readers may look without it.
	atomic.AndUint32(m.flags, ^uint32(flagInconsistent))
	return nil
}

// Close releases the handle (and, for a named Mutex, unmaps it). It does
// not unlock: a lock held by this process stays held, and since the
// process is alive nobody takes it over. Close waits for calls in flight
// on this handle (a sleeping Lock returns ErrClosed). Methods called after
// Close return ErrClosed.
func (m *Mutex) Close() error {
	return m.life.close(func() { _, _ = futex.WakeAll(m.state) })
}
