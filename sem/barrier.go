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

// Barrier layout (docs/format/sem.md has it byte by byte).
const (
	offBarState   = 0  // uint64: low half gen<<1 | broken (the futex word); high half count | completed<<16
	offBarParties = 16 // uint32: number of parties, fixed at Init
	offBarWaiters = 20 // uint32: sleepers in Wait
	offBarWhy     = 24 // uint64: reason<<32 | pid of the first breaker; 0 = none
	offBarSlots   = 64 // uint64 per party: gen16<<48 | tag26<<22 | pid
)

// MaxParties is the largest number of parties a Barrier accepts.
const MaxParties = 4096

// Slot words.
const (
	slotTagBits = 26
	slotTagMask = 1<<slotTagBits - 1
	slotGenBits = 16
	slotIDMask  = 1<<(pidBits+slotTagBits) - 1 // pid and tag
	countMask   = 1<<16 - 1                    // count in the high half
	brokenBit   = 1                            // in the futex word
	genMask     = 1<<31 - 1
)

// BarrierSize returns the bytes a Barrier for parties occupies: a 64-byte
// header and 8 bytes per party, rounded up to a multiple of 64.
func BarrierSize(parties int) int {
	parties = max(parties, 0)
	return (offBarSlots + 8*parties + 63) &^ 63
}

// Barrier makes a fixed number of parties (processes or goroutines) wait
// until all of them have called Wait, like Python's
// multiprocessing.Barrier; then all are released together and the barrier
// is ready for the next round. Get one from InitBarrier, BarrierAt,
// CreateBarrier, CreateAnonymousBarrier, OpenBarrier, OpenBarrierFile or
// ReceiveBarrier.
//
// Everything a party did before its Wait happens before every Wait of the
// same round returns, across processes.
//
// A barrier breaks, and every Wait of the round returns an error matching
// ErrBrokenBarrier at once, when Abort is called, when a waiting party's
// context ends, when a waiting party dies (the waiters check one another
// by pid and start time, as a Mutex checks its owner) and when Reset is
// called while parties wait. It stays broken, failing every Wait at once,
// until Reset.
type Barrier struct {
	_       noCopy
	obj     object
	state   *uint64
	word    *uint32 // the futex half of state
	waiters *uint32
	why     *uint64
	parties int // fixed at Init; read once and validated at attach
	me      uint64
	start   uint64
	proxy   unsafe.Pointer
	life    *life
}

// InitBarrier initialises a Barrier for parties (1 to MaxParties) in the
// first BarrierSize(parties) bytes of mem, which must be 8-byte aligned
// and not yet in use, and returns a handle to it.
func InitBarrier(mem []byte, parties int) (*Barrier, error) {
	if parties < 1 || parties > MaxParties {
		return nil, fmt.Errorf("sem: barrier: %d parties, want 1 to %d", parties, MaxParties)
	}
	o, err := freshObject(mem, BarrierSize(parties))
	if err != nil {
		return nil, err
	}
	*o.u32(offBarParties) = uint32(parties)
	o.publish(magicBarrier)
	return newBarrier(o, parties)
}

// BarrierAt returns a handle to the Barrier initialised in mem (by
// InitBarrier, perhaps in another process). mem must hold at least
// BarrierSize of its parties; memory that does not hold a valid Barrier
// gives ErrCorrupt.
func BarrierAt(mem []byte) (*Barrier, error) {
	o, err := objectAt(mem, offBarSlots, magicBarrier, "barrier")
	if err != nil {
		return nil, err
	}
	// After check: the magic's release store orders parties before it.
	n := atomic.LoadUint32(o.u32(offBarParties))
	if n < 1 || n > MaxParties {
		return nil, fmt.Errorf("%w: barrier: %d parties", ErrCorrupt, n)
	}
	if need := BarrierSize(int(n)); len(mem) < need {
		return nil, fmt.Errorf("%w: barrier: %d parties need %d bytes, memory has %d", ErrCorrupt, n, need, len(mem))
	}
	b, err := newBarrier(o, int(n))
	if err != nil {
		return nil, err
	}
	if _, _, err := b.decode(atomic.LoadUint64(b.state)); err != nil { // atomic: peers change it
		return nil, err
	}
	return b, nil
}

func newBarrier(o object, parties int) (*Barrier, error) {
	id := proc.Self()
	if id.Pid <= 0 || id.Pid > pidMask {
		return nil, fmt.Errorf("%w: pid %d does not fit in %d bits", ErrNotSupported, id.Pid, pidBits)
	}
	b := &Barrier{
		obj:     o,
		state:   o.u64(offBarState),
		word:    o.u32(offBarState),
		waiters: o.u32(offBarWaiters),
		why:     o.u64(offBarWhy),
		parties: parties,
		me:      uint64(startTag(id.Start)&slotTagMask)<<pidBits | uint64(id.Pid),
		start:   id.Start,
		proxy:   race.Proxy(o.base),
		life:    newLife(),
	}
	if !littleEndian {
		b.word = o.u32(offBarState + 4)
	}
	return b, nil
}

// decode splits a state word into generation, count and broken bit, and
// validates the count (a peer may have written garbage).
func (b *Barrier) decode(s uint64) (gen uint32, count int, err error) {
	count = int(s >> 32 & countMask)
	if count >= b.parties {
		return 0, 0, fmt.Errorf("%w: barrier: %d parties arrived of %d", ErrCorrupt, count, b.parties)
	}
	return uint32(s) >> 1, count, nil
}

func (b *Barrier) slot(i int) *uint64 { return b.obj.u64(offBarSlots + 8*uintptr(i)) }

// Parties returns the number of parties the barrier waits for.
func (b *Barrier) Parties() int { return b.parties }

// Waiting returns the number of parties waiting in the current round (a
// snapshot; 0 after Close).
func (b *Barrier) Waiting() int {
	if !b.life.enter() {
		return 0
	}
	defer b.life.exit()
	_, n, _ := b.decode(atomic.LoadUint64(b.state)) // atomic: peers change it
	return n
}

// Broken reports whether the barrier is broken (false after Close).
func (b *Barrier) Broken() bool {
	if !b.life.enter() {
		return false
	}
	defer b.life.exit()
	return atomic.LoadUint64(b.state)&brokenBit != 0 // atomic: peers change it
}

// Wait waits until all parties have called Wait and returns this party's
// arrival index in the round, 0 to Parties()-1 (as Python's Barrier.wait
// does: one party, say index 0, can then do a round's single task).
//
// It returns a *BrokenBarrierError, matching ErrBrokenBarrier, when the
// barrier is or becomes broken (see Barrier). When ctx ends first, or is
// already done and this party is not the last to arrive, Wait breaks the
// barrier for every party of the round and returns an error matching both
// ErrBrokenBarrier and ctx.Err(). The last party to arrive completes the
// round without waiting, even if ctx is done. ErrClosed after Close (a
// party that arrived and is then closed still counts as arrived);
// ErrCorrupt for impossible shared words.
func (b *Barrier) Wait(ctx context.Context) (int, error) {
	if !b.life.enter() {
		return 0, ErrClosed
	}
	defer b.life.exit()
	ctx = orBackground(ctx)
	race.ReleaseMerge(b.proxy) // what we did before Wait happens before the others return
	gen, index, err := b.arrive(ctx)
	if err != nil || index == b.parties-1 {
		return index, err
	}
	return index, b.await(ctx, gen, index)
}

// arrive counts this party in; it returns its generation and index. The
// last party completes the round itself.
func (b *Barrier) arrive(ctx context.Context) (uint32, int, error) {
	spins := 0
	sleep := firstSleep()
	for {
		s := atomic.LoadUint64(b.state) // atomic: read for the CASes below
		gen, c, err := b.decode(s)
		if err != nil {
			return 0, 0, err
		}
		if s&brokenBit != 0 {
			return 0, 0, b.brokenError(nil)
		}
		if c == b.parties-1 {
			// Last: next generation, nobody arrived, this one completed.
			// The CAS is the only step, so there is nothing to record
			// for a death before it.
			next := uint64((gen+1)&genMask)<<1 | uint64(uint16(gen))<<48
			if atomic.CompareAndSwapUint64(b.state, s, next) {
				race.Acquire(b.proxy)
				if atomic.LoadUint32(b.waiters) > 0 { // after the CAS: see sleepOn
					if _, err := futex.WakeAll(b.word); err != nil {
						return gen, c, err
					}
				}
				return gen, c, nil
			}
			continue
		}
		// Claim slot c for this generation first, then count ourselves
		// in: a party that dies between the two is then on record (and
		// found dead), never counted without a name.
		p := b.slot(c)
		v := atomic.LoadUint64(p) // atomic: peers claim slots by CAS
		if v&pidMask != 0 && uint16(v>>48) == uint16(gen) {
			// Another party is between its claim and its count.
			if b.partyDead(v) {
				b.breakIt(s, BrokenDied, int(v&pidMask))
				continue
			}
			if spins < spinTries {
				spins++
				runtime.Gosched()
				continue
			}
			// A stopped claimant: sleep a while (the futex word does not
			// change when it counts in; the timeout ends the sleep).
			err := futex.WaitContext(ctx, b.word, uint32(s), sleep)
			cerr := ctx.Err()
			if cerr == nil && errors.Is(err, context.DeadlineExceeded) {
				cerr = err
			}
			if cerr != nil {
				if b.breakIt(s, BrokenTimeout, int(b.me&pidMask)) {
					return 0, 0, b.brokenError(cerr)
				}
				continue
			}
			if err != nil && !errors.Is(err, futex.ErrTimeout) {
				return 0, 0, err
			}
			sleep = nextSleep(sleep)
			continue
		}
		mine := uint64(uint16(gen))<<48 | b.me
		if !atomic.CompareAndSwapUint64(p, v, mine) {
			continue
		}
		if atomic.CompareAndSwapUint64(b.state, s, s+1<<32) {
			return gen, c, nil
		}
		// Broken or reset meanwhile: give the slot back and look again.
		atomic.CompareAndSwapUint64(p, mine, 0)
	}
}

// await sleeps until the round of generation gen completes or breaks.
func (b *Barrier) await(ctx context.Context, gen uint32, index int) error {
	for i := 0; i < spinTries/5; i++ {
		runtime.Gosched()
		if uint32(atomic.LoadUint64(b.state)) != gen<<1 { // atomic: peers change it
			break
		}
	}
	sleep := firstSleep()
	var cerr error // set once ctx has ended
	for {
		s := atomic.LoadUint64(b.state) // atomic: acquire, pairs with the completing CAS
		if lo := uint32(s); lo != gen<<1 {
			if lo>>1 != gen && uint16(s>>48) == uint16(gen) {
				// Our generation completed (not a Reset: that leaves
				// the completed generation as it was).
				race.Acquire(b.proxy)
				return nil
			}
			return b.brokenError(nil)
		}
		if b.life.closed() {
			return ErrClosed
		}
		if cerr != nil || ctx.Err() != nil {
			if cerr == nil {
				cerr = ctx.Err()
			}
			if b.breakIt(s, BrokenTimeout, int(b.me&pidMask)) {
				return b.brokenError(cerr)
			}
			continue // it moved: completed or broken meanwhile
		}
		atomic.AddUint32(b.waiters, 1)
		err := futex.WaitContext(ctx, b.word, gen<<1, sleep)
		decSat(b.waiters)
		switch {
		case err == nil:
			// Re-check the state above.
		case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
			// The futex timeout can end the sleep at the deadline just
			// before ctx's own timer marks ctx done.
			cerr = context.DeadlineExceeded
			if ctx.Err() != nil {
				cerr = ctx.Err()
			}
		case errors.Is(err, futex.ErrTimeout):
			b.checkParties(s, gen, index)
			sleep = nextSleep(sleep)
		default:
			return err
		}
	}
}

// checkParties looks for a dead party of generation gen, whose state was
// s. Each waiter checks the party that arrived just before it (the first
// checks the last and the one arriving now), so a death is found by a live
// neighbour with one /proc read per waiter and sleep.
func (b *Barrier) checkParties(s uint64, gen uint32, index int) {
	_, c, err := b.decode(s)
	if err != nil || c == 0 {
		return
	}
	check := func(i int, arriving bool) {
		v := atomic.LoadUint64(b.slot(i)) // atomic: peers claim slots by CAS
		if uint16(v>>48) != uint16(gen) || v&pidMask == 0 {
			if arriving {
				return // nobody is arriving
			}
			// Counted in this generation but not on record: not a state
			// any party leaves; only a peer writing garbage does.
			b.breakIt(s, BrokenDied, 0)
			return
		}
		if b.partyDead(v) {
			b.breakIt(s, BrokenDied, int(v&pidMask))
		}
	}
	if index > 0 {
		check(index-1, false)
		return
	}
	if c > 1 {
		check(c-1, false)
	}
	if c < b.parties-1 {
		check(c, true)
	}
}

// partyDead reports whether the party recorded in slot value v has died,
// by pid and start tag as Mutex.ownerDead does. Unknowable counts as alive.
func (b *Barrier) partyDead(v uint64) bool {
	id := v & slotIDMask
	if id == b.me || b.start == 0 {
		return false
	}
	pid := int(id & pidMask)
	st, err := proc.StartTime(pid)
	if errors.Is(err, proc.ErrNoProcess) {
		return !hiddenProcess(pid)
	}
	if err != nil {
		return false
	}
	return uint64(startTag(st)&slotTagMask) != id>>pidBits
}

// breakIt breaks the round whose state is s, recording why, and wakes
// every waiter. It reports whether this call broke it (false: the state
// moved on, or it was broken already).
func (b *Barrier) breakIt(s uint64, reason BrokenReason, pid int) bool {
	if s&brokenBit != 0 {
		return false
	}
	rec := uint64(reason)<<32 | uint64(uint32(pid))
	// The reason goes first, so a waiter that sees the broken bit sees it.
	// What it replaces is stale (a Reset's reason for the old round's
	// waiters) or a concurrent breaker's (only one of us breaks; the
	// record is informational).
	old := atomic.LoadUint64(b.why) // atomic: read for the CAS below
	wrote := atomic.CompareAndSwapUint64(b.why, old, rec)
	if !atomic.CompareAndSwapUint64(b.state, s, s|brokenBit) {
		if wrote {
			atomic.CompareAndSwapUint64(b.why, rec, old)
		}
		return false
	}
	_, _ = futex.WakeAll(b.word) // the waiters count may be stale after a death: always wake
	return true
}

// brokenError reads the recorded reason.
func (b *Barrier) brokenError(ctxErr error) error {
	w := atomic.LoadUint64(b.why) // atomic: written by the breaker, before the broken bit
	return &BrokenBarrierError{Reason: BrokenReason(w >> 32), Pid: int(uint32(w)), Err: ctxErr}
}

// Abort breaks the barrier: every Wait now waiting, and every later one
// until Reset, returns a *BrokenBarrierError with Reason BrokenAborted
// (or the reason it broke for first).
func (b *Barrier) Abort() error {
	if !b.life.enter() {
		return ErrClosed
	}
	defer b.life.exit()
	for range 1000 { // bounded: only a peer rewriting the word makes the CAS fail repeatedly
		s := atomic.LoadUint64(b.state) // atomic: read for the CAS in breakIt
		if _, _, err := b.decode(s); err != nil {
			return err
		}
		if s&brokenBit != 0 || b.breakIt(s, BrokenAborted, int(b.me&pidMask)) {
			return nil
		}
	}
	return fmt.Errorf("%w: barrier: state keeps changing", ErrCorrupt)
}

// Reset returns the barrier to its initial state: not broken, nobody
// waiting. Parties waiting now return a *BrokenBarrierError with Reason
// BrokenReset. As in Python, Reset while parties may still arrive for the
// old round is a race the caller must avoid (they then join the new one).
func (b *Barrier) Reset() error {
	if !b.life.enter() {
		return ErrClosed
	}
	defer b.life.exit()
	for range 1000 { // bounded as in Abort
		s := atomic.LoadUint64(b.state) // atomic: read for the CAS below
		// A garbage count is reset too: Reset repairs the state.
		gen, c := uint32(s)>>1, int(s>>32&countMask)
		if s&brokenBit == 0 && c > 0 {
			// Waiters of the old round will read this reason.
			atomic.StoreUint64(b.why, uint64(BrokenReset)<<32|b.me&pidMask)
		} else {
			atomic.StoreUint64(b.why, 0)
		}
		ng := (gen + 1) & genMask
		next := uint64(ng)<<1 | s&^(1<<32-1)&^(countMask<<32) // completed kept, count 0
		if !atomic.CompareAndSwapUint64(b.state, s, next) {
			continue
		}
		// Clear slots left by earlier generations, so that none can pass
		// for a claim of a later one; CAS keeps claims made meanwhile.
		for i := range b.parties {
			p := b.slot(i)
			if v := atomic.LoadUint64(p); v != 0 && uint16(v>>48) != uint16(ng) {
				atomic.CompareAndSwapUint64(p, v, 0)
			}
		}
		_, err := futex.WakeAll(b.word)
		return err
	}
	return fmt.Errorf("%w: barrier: state keeps changing", ErrCorrupt)
}

// Close releases the handle (and unmaps a named Barrier) after calls in
// flight on it have returned; a sleeping Wait returns ErrClosed. Closing
// does not break the barrier.
func (b *Barrier) Close() error {
	return b.life.close(func() { _, _ = futex.WakeAll(b.word) })
}
