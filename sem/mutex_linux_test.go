//go:build linux

package sem

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/testproc"
)

func init() {
	// incr: wait for the start event, then either add args[0] to the plain
	// counter under the Mutex, or (args[0] == "hammer") lock and unlock
	// until the stop word is set.
	testproc.Register("incr", func(args []string) int {
		s := childSeg()
		m := orPanic(MutexAt(s.at(segMutex)))
		s.awaitStart()
		ctx := context.Background()
		if args[0] == "hammer" {
			for !s.stopped() {
				if err := m.Lock(ctx); err != nil {
					panic(err)
				}
				*s.u64(segCounter)++
				if err := m.Unlock(); err != nil {
					panic(err)
				}
			}
			return 0
		}
		n, _ := strconv.Atoi(args[0])
		for i := 0; i < n; i++ {
			if err := m.Lock(ctx); err != nil {
				panic(err)
			}
			*s.u64(segCounter)++ // plain read-modify-write: only the lock protects it
			if err := m.Unlock(); err != nil {
				panic(err)
			}
		}
		return 0
	})
	// holder: lock, say "locked" and block until killed. With args[0] ==
	// "dead", expect ErrOwnerDead first.
	testproc.Register("holder", func(args []string) int {
		s := childSeg()
		m := orPanic(MutexAt(s.at(segMutex)))
		err := m.Lock(context.Background())
		if len(args) > 0 && args[0] == "dead" {
			if !errors.Is(err, ErrOwnerDead) {
				testproc.Printf("Lock = %v, want ErrOwnerDead", err)
				return 1
			}
		} else if err != nil {
			panic(err)
		}
		testproc.Printf("locked")
		select {}
	})
	// locker: Lock with a deadline, print the result, unlock if held.
	testproc.Register("locker", func(args []string) int {
		s := childSeg()
		m := orPanic(MutexAt(s.at(segMutex)))
		testproc.Printf("ready %#x", addrOf(m.state))
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		defer cancel()
		err := m.Lock(ctx)
		switch {
		case err == nil:
			testproc.Printf("nil")
		case errors.Is(err, ErrOwnerDead):
			testproc.Printf("ownerdead")
		default:
			testproc.Printf("error %v", err)
			return 1
		}
		if err := m.Unlock(); err != nil {
			panic(err)
		}
		return 0
	})
}

func TestMutexBasic(t *testing.T) {
	mem := anonMem(t, 4096)
	m := must[*Mutex](t)(InitMutex(mem))
	ctx := context.Background()
	if err := m.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := must[*Mutex](t)(MutexAt(mem))
	if ok, err := m2.TryLock(); ok || err != nil {
		t.Fatalf("TryLock on held mutex = %v, %v", ok, err)
	}
	if err := m2.Unlock(); err != nil { // same process: allowed, like sync.Mutex
		t.Fatal(err)
	}
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock of unlocked mutex = %v, want ErrNotOwner", err)
	}
	if err := m.MarkConsistent(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("MarkConsistent without lock = %v, want ErrNotOwner", err)
	}
	if ok, err := m2.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock on free mutex = %v, %v", ok, err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// An uncontended Lock/Unlock makes no futex call and allocates nothing.
func TestMutexUncontendedNoSyscall(t *testing.T) {
	mem := anonMem(t, 4096)
	m := must[*Mutex](t)(InitMutex(mem))
	s := must[*Semaphore](t)(InitSemaphore(mem[64:], 1, 1))
	e := must[*Event](t)(InitEvent(mem[128:]))
	ctx := context.Background()
	before := futex.Calls()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
		if err := s.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
		_ = e.IsSet()
		if ok, err := m.TryLock(); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.TryAcquire(); !ok || err != nil {
			t.Fatal(ok, err)
		}
		_ = s.Release()
		_ = e.Set()
		_ = e.Clear()
	})
	if n := futex.Calls() - before; n != 0 {
		t.Errorf("%d futex calls on the uncontended path", n)
	}
	if allocs != 0 { // also under -race, which CI runs: the annotations allocate nothing
		t.Errorf("%v allocations on the uncontended paths", allocs)
	}
}

func TestMutexBadMemory(t *testing.T) {
	mem := anonMem(t, 4096)
	if _, err := InitMutex(mem[:63]); !errors.Is(err, ErrBadMemory) {
		t.Errorf("InitMutex(63 bytes) = %v", err)
	}
	if _, err := InitMutex(mem[4:]); !errors.Is(err, ErrBadMemory) {
		t.Errorf("InitMutex(misaligned) = %v", err)
	}
	if _, err := MutexAt(nil); !errors.Is(err, ErrBadMemory) {
		t.Errorf("MutexAt(nil) = %v", err)
	}
	if _, err := MutexAt(mem); !errors.Is(err, ErrCorrupt) {
		t.Errorf("MutexAt(zeroes) = %v", err)
	}
	must[*Mutex](t)(InitMutex(mem))
	for _, c := range []struct {
		off int
		val byte
	}{{8, 1}, {12, 2}, {16, 2}, {2, 0x40}} { // magic, version, flags, reserved state bits
		b := make([]byte, 64)
		copy(b, mem[:64])
		mem2 := anonMem(t, 64)
		copy(mem2, b)
		mem2[c.off] ^= c.val
		want := ErrCorrupt
		if c.off == 12 {
			want = ErrVersion // an unknown version, as in every layer
		}
		if _, err := MutexAt(mem2); !errors.Is(err, want) {
			t.Errorf("MutexAt with byte %d changed = %v, want %v", c.off, err, want)
		}
	}
	if _, err := SemaphoreAt(mem); !errors.Is(err, ErrCorrupt) {
		t.Errorf("SemaphoreAt(mutex) = %v", err)
	}
	if _, err := EventAt(mem); !errors.Is(err, ErrCorrupt) {
		t.Errorf("EventAt(mutex) = %v", err)
	}
}

// ownerWord forges a lock word naming pid with start time start.
func ownerWord(pid int, start uint64) uint64 {
	return uint64(startTag(start))<<32 | uint64(pid)
}

func TestMutexNotOwner(t *testing.T) {
	mem := anonMem(t, 64)
	m := must[*Mutex](t)(InitMutex(mem))
	st, err := proc.StartTime(1)
	if err != nil {
		t.Skip("pid 1 not visible:", err)
	}
	atomic.StoreUint64(m.word, ownerWord(1, st)) // held by a live process
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock of a mutex held by pid 1 = %v", err)
	}
	if err := m.MarkConsistent(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("MarkConsistent = %v", err)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock = %v, want DeadlineExceeded", err)
	}
	if w := atomic.LoadUint64(m.word) &^ anyWaiter; w != ownerWord(1, st) {
		t.Fatalf("lock word changed to %#x", w)
	}
}

func TestMutexContext(t *testing.T) {
	mem := anonMem(t, 64)
	m := must[*Mutex](t)(InitMutex(mem))
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Lock(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock(cancelled) = %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := m.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock(expired) = %v", err)
	}
	// Cancel while asleep.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- m.Lock(ctx) }()
	waitFor(t, func() bool { return atomic.LoadUint32(m.state)&waitersBit != 0 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock cancelled while asleep = %v", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.TryLock(); !ok {
		t.Fatal("a cancelled Lock left the mutex held")
	}
}

// waitFor polls cond (yielding) until it holds; it synchronises on shared
// memory, not on time, and gives up after a generous bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never became true")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestMutexClose(t *testing.T) {
	mem := anonMem(t, 64)
	m := must[*Mutex](t)(InitMutex(mem))
	m2 := must[*Mutex](t)(MutexAt(mem))
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { errc <- m2.Lock(context.Background()) }()
	waitFor(t, func() bool { return atomic.LoadUint32(m.state)&waitersBit != 0 })
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Lock asleep during Close = %v", err)
	}
	if err := m2.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	if err := m2.Lock(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lock after Close = %v", err)
	}
	if _, err := m2.TryLock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryLock after Close = %v", err)
	}
	if err := m2.Unlock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Unlock after Close = %v", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// Goroutines of one process, each with its own handle.
func TestMutexGoroutines(t *testing.T) {
	mem := anonMem(t, 4096)
	must[*Mutex](t)(InitMutex(mem))
	const G, N = 8, 2000
	counter := 0 // Go heap data guarded by the shared-memory mutex
	var wg sync.WaitGroup
	for g := 0; g < G; g++ {
		m := must[*Mutex](t)(MutexAt(mem))
		wg.Go(func() {
			for i := 0; i < N; i++ {
				if err := m.Lock(context.Background()); err != nil {
					t.Error(err)
					return
				}
				counter++
				if err := m.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if counter != G*N {
		t.Fatalf("counter = %d, want %d", counter, G*N)
	}
}

// Under -race, this fails with "DATA RACE" unless the Mutex annotates its
// happens-before edges on a heap proxy (internal/race): the lock word is
// outside the Go heap, where the race detector ignores synchronisation.
func TestMutexRaceAnnotations(t *testing.T) {
	mem := anonMem(t, 64)
	m1 := must[*Mutex](t)(InitMutex(mem))
	m2 := must[*Mutex](t)(MutexAt(mem))
	countWithTwoHandles(t, m1, m2)
}

func TestMutexProcesses(t *testing.T) {
	const N = 4
	M := 3000
	if os.Getenv("SHMKIT_STRESS") != "" {
		M = 200000
	}
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	start := must[*Event](t)(InitEvent(s.at(segEvent)))
	var ps []*testproc.Proc
	for i := 0; i < N; i++ {
		p := s.start(t, "incr", strconv.Itoa(M))
		p.Expect(t, "ready")
		ps = append(ps, p)
	}
	if err := start.Set(); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := *s.u64(segCounter); got != uint64(N*M) {
		t.Fatalf("counter = %d, want %d", got, N*M)
	}
}

// Unlock hands the Mutex to a locker asleep in another process: the locker
// would sleep for an hour before looking by itself, so it gets the lock in
// time only through Unlock's FUTEX_WAKE (shared, across processes).
func TestMutexHandoffProcesses(t *testing.T) {
	longSleeps(t)
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := s.start(t, "locker")
	addr := readyAddr(t, w, "ready")
	// The locker has spun out, set the waiters bit and gone to sleep.
	waitFor(t, func() bool { return atomic.LoadUint32(m.state)&waitersBit != 0 })
	waitAsleep(t, w.Pid(), addr, 1)
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got := w.Line(t); got != "nil" {
		t.Fatalf("locker after Unlock: %q", got)
	}
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if w := atomic.LoadUint64(m.word); w != 0 {
		t.Fatalf("lock word %#x after the locker unlocked", w)
	}
}

func TestMutexOwnerKilled(t *testing.T) {
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	h := s.start(t, "holder")
	h.Expect(t, "locked")
	// A waiter in another process, asleep when the holder dies.
	w := s.start(t, "locker")
	readyAddr(t, w, "ready")
	waitFor(t, func() bool { return atomic.LoadUint32(m.state)&waitersBit != 0 })
	t0 := time.Now()
	h.Kill()
	if err := h.Wait(); !testproc.Killed(err) {
		t.Fatalf("holder did not die of SIGKILL: %v", err)
	}
	if got := w.Line(t); got != "ownerdead" {
		t.Fatalf("waiter after holder's death: %q", got)
	}
	if err := w.Wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("takeover took %v", d)
	}
	// The flag persists across processes and Locks until MarkConsistent.
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := m.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
			t.Fatalf("Lock %d after takeover = %v, want ErrOwnerDead", i, err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	h2 := s.start(t, "holder", "dead")
	h2.Expect(t, "locked")
	h2.Kill()
	if err := m.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after second death = %v", err)
	}
	if err := m.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := m.Lock(ctx); err != nil {
		t.Fatalf("Lock after MarkConsistent = %v", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if n := atomic.LoadUint32(m.obj.u32(offMutexTakeovers)); n != 2 {
		t.Errorf("takeovers = %d, want 2", n)
	}
}

// A lock word naming a live pid with another start time (the pid was
// reused) is taken over; so are garbage words.
func TestMutexReusedPid(t *testing.T) {
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	// A live helper process (holding a mutex elsewhere), but the start
	// time of someone else.
	other := newSeg(t)
	must[*Mutex](t)(InitMutex(other.at(segMutex)))
	p := other.start(t, "holder")
	p.Expect(t, "locked")
	for _, w := range []uint64{
		ownerWord(os.Getpid(), proc.Self().Start+1), // our own pid, a dead predecessor
		ownerWord(p.Pid(), 12345),                   // a live helper, wrong start
		uint64(p.Pid()),                             // start tag 0: never written by Lock
		ownerWord(pidMask, 1),                       // a pid above any pid_max in use
	} {
		atomic.StoreUint64(m.word, w)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
			t.Fatalf("Lock with owner word %#x = %v, want ErrOwnerDead", w, err)
		}
		cancel()
		if err := m.MarkConsistent(); err != nil {
			t.Fatal(err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
		atomic.StoreUint64(m.word, w)
		if ok, err := m.TryLock(); !ok || !errors.Is(err, ErrOwnerDead) {
			t.Fatalf("TryLock with owner word %#x = %v, %v", w, ok, err)
		}
		if err := m.MarkConsistent(); err != nil {
			t.Fatal(err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	// The helper was alive throughout (it dies of our SIGKILL, not before).
	p.Kill()
	if err := p.Wait(); !testproc.Killed(err) {
		t.Fatalf("holder helper: %v", err)
	}
}
