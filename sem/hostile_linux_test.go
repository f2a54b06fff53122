//go:build linux

package sem

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	// impatient N: wait for the start event, then N times Lock with a
	// deadline of 0 to 300µs; on success add 1 to the plain counter under
	// the Mutex. Print "wins K": how many Locks succeeded.
	testproc.Register("impatient", func(args []string) int {
		s := childSeg()
		m := orPanic(MutexAt(s.at(segMutex)))
		n, _ := strconv.Atoi(args[0])
		s.awaitStart()
		wins := 0
		for i := range n {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*50*time.Microsecond)
			err := m.Lock(ctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if err != nil {
				panic(err)
			}
			*s.u64(segCounter)++ // plain read-modify-write: only the lock protects it
			wins++
			runtime.Gosched()
			if err := m.Unlock(); err != nil {
				panic(err)
			}
		}
		testproc.Printf("wins %d", wins)
		return 0
	})
}

// hostileTimeout bounds every call in these tests: a call that reaches it
// hung on garbage instead of detecting it.
const hostileTimeout = 30 * time.Second

// A peer that writes garbage into the lock word while others sleep on it:
// every sleeper notices at its next owner check (no wake-up is needed) and
// returns ErrCorrupt, or takes over a word that names no live owner.
func TestMutexGarbageWhileWaiting(t *testing.T) {
	for _, c := range []struct {
		name    string
		garbage uint64
		want    error
	}{
		{"reserved bits", 0xdeadbeef_00400000 | uint64(os.Getpid()), ErrCorrupt},
		{"all ones", math.MaxUint64, ErrCorrupt},
		{"dead pid", ownerWord(pidMask, 7), ErrOwnerDead},
		{"zero tag", uint64(os.Getpid()) | anyWaiter, ErrOwnerDead},
		{"free with a tag", 0xabcdef12_00000000, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := anonMem(t, 64)
			holder := must[*Mutex](t)(InitMutex(mem))
			if err := holder.Lock(context.Background()); err != nil {
				t.Fatal(err)
			}
			const W = 3
			errc := make(chan error, W)
			for range W {
				m := must[*Mutex](t)(MutexAt(mem))
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
					defer cancel()
					err := m.Lock(ctx)
					if err == nil || errors.Is(err, ErrOwnerDead) {
						err2 := m.Unlock()
						if err2 != nil {
							err = err2
						}
					}
					errc <- err
				}()
			}
			waitFor(t, func() bool { return atomic.LoadUint32(holder.state)&waitersBit != 0 })
			atomic.StoreUint64(holder.word, c.garbage) // no wake-up: a peer need not send one
			for range W {
				err := <-errc
				switch {
				case c.want == nil && err == nil:
				case c.want == ErrOwnerDead && (err == nil || errors.Is(err, ErrOwnerDead)):
					// One waiter takes over; the others then see the
					// inconsistent flag or, after MarkConsistent, nil.
				case c.want == ErrCorrupt && errors.Is(err, ErrCorrupt):
				default:
					t.Errorf("Lock after garbage %#x = %v, want %v", c.garbage, err, c.want)
				}
			}
			if c.want == ErrOwnerDead {
				if n := atomic.LoadUint32(holder.obj.u32(offMutexTakeovers)); n != 1 {
					t.Errorf("takeovers = %d, want exactly 1", n)
				}
			}
		})
	}
}

// Giving up (a cancelled context, Close) after Unlock's single wake-up was
// delivered to us must not strand the other sleepers: the wake-up is
// passed on, or, when a spinner took the lock without the waiters bit,
// the bit is set so that the spinner's Unlock wakes one.
func TestMutexPassWake(t *testing.T) {
	mem := anonMem(t, 64)
	m := must[*Mutex](t)(InitMutex(mem))
	// The lock was taken by a spinner after Unlock cleared the bit.
	atomic.StoreUint64(m.word, m.self)
	m.passWake()
	if w := atomic.LoadUint64(m.word); w != m.self|anyWaiter {
		t.Fatalf("after passWake on a held lock: word %#x, want %#x", w, m.self|anyWaiter)
	}
	before := futex.Calls()
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if futex.Calls() == before {
		t.Fatal("Unlock after passWake made no wake-up")
	}
	// The lock is free: passWake wakes one sleeper itself.
	before = futex.Calls()
	m.passWake()
	if futex.Calls() != before+1 {
		t.Fatal("passWake on a free lock made no wake-up")
	}
	if w := atomic.LoadUint64(m.word); w != 0 {
		t.Fatalf("passWake changed a free word to %#x", w)
	}
}

// A Lock whose context ends while it sleeps, with another goroutine also
// asleep, leaves the other one to be woken by the next Unlock. The sleepers
// would sleep for an hour before looking by themselves, so the remaining
// Lock returns in time only if a real wake-up reaches it.
func TestMutexCancelledWaiterKeepsOthersWoken(t *testing.T) {
	longSleeps(t)
	mem := anonMem(t, 64)
	holder := must[*Mutex](t)(InitMutex(mem))
	if err := holder.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	m1, m2 := must[*Mutex](t)(MutexAt(mem)), must[*Mutex](t)(MutexAt(mem))
	ctx1, cancel1 := context.WithCancel(context.Background())
	err1 := make(chan error, 1)
	go func() { err1 <- m1.Lock(ctx1) }()
	ctx2 := wakeCtx(t)
	err2 := make(chan error, 1)
	go func() { err2 <- m2.Lock(ctx2) }()
	waitFor(t, func() bool { return atomic.LoadUint32(holder.state)&waitersBit != 0 })
	waitAsleep(t, os.Getpid(), addrOf(holder.state), 2)
	cancel1()
	if err := <-err1; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock = %v", err)
	}
	// The cancellation woke every sleeper; the other one is asleep again.
	waitAsleep(t, os.Getpid(), addrOf(holder.state), 1)
	if w := atomic.LoadUint64(holder.word); w&anyWaiter == 0 {
		t.Fatalf("waiters bit lost while another Lock sleeps: %#x", w)
	}
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-err2; err != nil {
		t.Fatalf("remaining Lock = %v", err)
	}
	if err := m2.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// Flags garbage after attach: only the inconsistent bit is read.
func TestMutexFlagsGarbage(t *testing.T) {
	mem := anonMem(t, 64)
	m := must[*Mutex](t)(InitMutex(mem))
	atomic.StoreUint32(m.flags, 0xfffffffe)
	if err := m.Lock(context.Background()); err != nil {
		t.Fatalf("Lock with unknown flag bits = %v", err)
	}
	atomic.StoreUint32(m.flags, 0xffffffff)
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := m.Lock(context.Background()); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock with the inconsistent bit = %v", err)
	}
	if err := m.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// A count beyond max, written after attach (even while a waiter sleeps), is
// ErrCorrupt for Acquire, Release and TryAcquire.
func TestSemaphoreCountBeyondMax(t *testing.T) {
	mem := anonMem(t, 64)
	s := must[*Semaphore](t)(InitSemaphore(mem, 0, 2))
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
		defer cancel()
		errc <- s.Acquire(ctx)
	}()
	waitFor(t, func() bool { return atomic.LoadUint32(s.waiters) != 0 })
	atomic.StoreUint32(s.count, 5) // no wake-up
	if err := <-errc; !errors.Is(err, ErrCorrupt) {
		t.Fatalf("sleeping Acquire after count 5 > max 2 = %v", err)
	}
	if ok, err := s.TryAcquire(); ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TryAcquire on a corrupt count = %v, %v, want false, ErrCorrupt", ok, err)
	}
	if err := s.Acquire(context.Background()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Acquire = %v", err)
	}
	if err := s.Release(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Release = %v", err)
	}
	if c := atomic.LoadUint32(s.count); c != 5 {
		t.Fatalf("count changed to %d", c)
	}
	// The maximum is read once at attach; a peer changing it later has no
	// effect on this handle.
	atomic.StoreUint32(s.count, 2)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[offSemMax])), math.MaxUint32)
	if err := s.Release(); !errors.Is(err, ErrOverRelease) {
		t.Fatalf("Release at max after a peer raised max = %v", err)
	}
	// A garbage waiters count costs wake-up calls, nothing else.
	atomic.StoreUint32(s.waiters, math.MaxUint32)
	if ok, err := s.TryAcquire(); !ok || err != nil {
		t.Fatalf("TryAcquire = %v, %v", ok, err)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
}

// A semaphore count at the 32-bit limit of an unbounded semaphore.
func TestSemaphoreUnboundedLimit(t *testing.T) {
	mem := anonMem(t, 64)
	s := must[*Semaphore](t)(InitSemaphore(mem, math.MaxUint32-1, 0))
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); !errors.Is(err, ErrOverRelease) {
		t.Fatalf("Release past 2^32-1 = %v", err)
	}
	if v := s.Value(); v != math.MaxUint32 {
		t.Fatalf("Value = %d", v)
	}
}

// A peer that rewrites an Event's state wakes waiters (any change of the
// word is a Set as far as a waiter can tell) but breaks nothing.
func TestEventGarbage(t *testing.T) {
	mem := anonMem(t, 64)
	e := must[*Event](t)(InitEvent(mem))
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
		defer cancel()
		errc <- e.Wait(ctx)
	}()
	waitFor(t, func() bool { return atomic.LoadUint32(e.waiters) != 0 })
	atomic.StoreUint32(e.state, 0xfffffffe) // clear, another generation, no wake-up
	if err := <-errc; err != nil {
		t.Fatalf("Wait after a peer changed the state = %v", err)
	}
	atomic.StoreUint32(e.waiters, math.MaxUint32)
	if err := e.Set(); err != nil { // generation wraps
		t.Fatal(err)
	}
	if !e.IsSet() {
		t.Fatal("IsSet after Set with a wrapping generation")
	}
}

func TestHiddenProcess(t *testing.T) {
	if hiddenProcess(os.Getpid()) {
		t.Error("our own process counts as hidden")
	}
	if hiddenProcess(pidMask) {
		t.Error("a pid above any pid_max counts as hidden")
	}
}

// Lockers that give up at random moments (short deadlines) next to lockers
// that never give up: the counter guarded by the Mutex equals the number of
// successful Locks, and every patient locker finishes (no wake-up is
// stranded by a locker that gave up).
func TestMutexCancellationChurn(t *testing.T) {
	mem := anonMem(t, 64)
	must[*Mutex](t)(InitMutex(mem))
	const G, N = 6, 300
	before := futex.Calls()
	counter := 0 // Go heap data guarded by the shared-memory Mutex
	var wins atomic.Int64
	errc := make(chan error, G)
	for g := range G {
		m := must[*Mutex](t)(MutexAt(mem))
		go func() {
			for i := range N {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if g%2 == 0 { // impatient
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%7)*50*time.Microsecond)
				}
				err := m.Lock(ctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && g%2 == 0 {
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				counter++
				wins.Add(1)
				runtime.Gosched() // hold it a while: others spin out and sleep
				if err := m.Unlock(); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range G {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if int64(counter) != wins.Load() || wins.Load() < G/2*N {
		t.Fatalf("counter %d, successful Locks %d (patient lockers alone made %d)", counter, wins.Load(), G/2*N)
	}
	t.Logf("%d successful Locks, %d futex calls", wins.Load(), futex.Calls()-before)
}

// A segment of a lock kind that does not hold a valid object (wrong
// payload size, garbage) is ErrCorrupt from OpenX, never ErrBadMemory or
// a handle over garbage.
func TestNamedHostileSegments(t *testing.T) {
	name := testName(t)
	ctx := context.Background()
	for i, c := range []struct {
		kind shm.Kind
		size int
		open func(string) error
	}{
		{shm.KindMutex, 8, func(n string) error { _, err := OpenMutex(ctx, n); return err }},
		{shm.KindMutex, 64, func(n string) error { _, err := OpenMutex(ctx, n); return err }},
		{shm.KindSemaphore, 4096, func(n string) error { _, err := OpenSemaphore(ctx, n); return err }},
		{shm.KindEvent, 64, func(n string) error { _, err := OpenEvent(ctx, n); return err }},
	} {
		n := name + "-" + strconv.Itoa(i)
		seg, err := shm.Create(n, c.size, shm.WithKind(c.kind), shm.WithInit(func(p []byte) error {
			for j := range p {
				p[j] = 0x5a
			}
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.open(n); !errors.Is(err, ErrCorrupt) {
			t.Errorf("open %v segment of %d garbage bytes = %v, want ErrCorrupt", c.kind, c.size, err)
		}
		_ = seg.Unlink()
		_ = seg.Close()
	}
}

// An owner that is stopped (SIGSTOP: descheduled, not dead) keeps its lock
// through many owner checks; once it is killed, the next Lock takes over.
func TestMutexStoppedOwnerKeepsLock(t *testing.T) {
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	h := s.start(t, "holder")
	h.Expect(t, "locked")
	if err := syscall.Kill(h.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Long enough for several owner checks (1, 2, 4, ... ms); the result
	// must not depend on how many happen.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while the owner is stopped = %v, want DeadlineExceeded", err)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while the owner is stopped = %v, %v", ok, err)
	}
	if err := syscall.Kill(h.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	h.Kill()
	if err := h.Wait(); !testproc.Killed(err) {
		t.Fatalf("holder did not die of SIGKILL: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	if err := m.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the owner died = %v, want ErrOwnerDead", err)
	}
	if n := atomic.LoadUint32(m.obj.u32(offMutexTakeovers)); n != 1 {
		t.Fatalf("takeovers = %d, want 1", n)
	}
}

// Across processes: lockers that give up at random moments beside patient
// ones. The plain counter equals the successful Locks exactly, and the
// patient helpers finish (no wake-up stranded by one that gave up).
func TestMutexCancellationChurnProcesses(t *testing.T) {
	const P, M = 2, 1000
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	start := must[*Event](t)(InitEvent(s.at(segEvent)))
	var patient, impatient []*testproc.Proc
	for range P {
		p := s.start(t, "incr", strconv.Itoa(M))
		p.Expect(t, "ready")
		patient = append(patient, p)
		q := s.start(t, "impatient", strconv.Itoa(M))
		q.Expect(t, "ready")
		impatient = append(impatient, q)
	}
	if err := start.Set(); err != nil {
		t.Fatal(err)
	}
	want := uint64(P * M)
	for _, q := range impatient {
		var wins uint64
		if _, err := fmt.Sscanf(q.Line(t), "wins %d", &wins); err != nil {
			t.Fatal(err)
		}
		want += wins
		if err := q.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range patient {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := *s.u64(segCounter); got != want {
		t.Fatalf("counter = %d, want %d (successful Locks)", got, want)
	}
}
