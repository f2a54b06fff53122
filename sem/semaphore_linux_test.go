//go:build linux

package sem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func init() {
	// holders: wait for the start event, then args[0] times: acquire the
	// Semaphore (bound args[1]), count itself in, record the maximum, and
	// leave. On its first turn every holder waits until the maximum
	// reached the bound, so the bound is provably reached.
	testproc.Register("holders", func(args []string) int {
		s := childSeg()
		sm := orPanic(SemaphoreAt(s.at(segSem)))
		n, _ := strconv.Atoi(args[0])
		k, _ := strconv.Atoi(args[1])
		s.awaitStart()
		ctx := context.Background()
		inside, maxSeen := s.u32(segInside), s.u32(segMaxSeen)
		for i := 0; i < n; i++ {
			if err := sm.Acquire(ctx); err != nil {
				panic(err)
			}
			v := atomic.AddUint32(inside, 1) // atomic: other holders, other processes
			for {
				m := atomic.LoadUint32(maxSeen)
				if v <= m || atomic.CompareAndSwapUint32(maxSeen, m, v) {
					break
				}
			}
			if i == 0 {
				for atomic.LoadUint32(maxSeen) < uint32(k) {
					time.Sleep(50 * time.Microsecond) // polling shared memory, not timing
				}
			}
			atomic.AddUint32(inside, ^uint32(0))
			if err := sm.Release(); err != nil {
				panic(err)
			}
		}
		return 0
	})
	// waiter: say "waiting", Wait for the event, exit 0.
	testproc.Register("waiter", func(args []string) int {
		s := childSeg()
		e := orPanic(EventAt(s.at(segEvent2)))
		testproc.Printf("waiting %#x", addrOf(e.state))
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		defer cancel()
		if err := e.Wait(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "Wait: %v\n", err)
			return 1
		}
		if expired(ctx) {
			// Wait saw the Set only when its context ended: no wake-up came.
			fmt.Fprintln(os.Stderr, "Wait returned only at its deadline: Set's wake-up was lost")
			return 1
		}
		if !e.IsSet() && args[0] == "set" {
			return 2
		}
		return 0
	})
}

func TestSemaphoreBasic(t *testing.T) {
	mem := anonMem(t, 64)
	if _, err := InitSemaphore(mem, 3, 2); err == nil {
		t.Fatal("initial > max accepted")
	}
	s := must[*Semaphore](t)(InitSemaphore(mem, 2, 2))
	if s.Value() != 2 || s.Max() != 2 {
		t.Fatalf("Value, Max = %d, %d", s.Value(), s.Max())
	}
	if err := s.Release(); !errors.Is(err, ErrOverRelease) {
		t.Fatalf("Release at max = %v", err)
	}
	for i, want := range []bool{true, true, false} {
		if ok, err := s.TryAcquire(); ok != want || err != nil {
			t.Fatalf("TryAcquire %d = %v, %v, want %v, nil", i, ok, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire(cancelled) = %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire(expired) = %v", err)
	}
	if s.Value() != 0 {
		t.Fatalf("Value = %d after failed Acquires", s.Value())
	}
	// A sleeper is woken by Release (and only by it: it would sleep for an
	// hour before looking again by itself).
	longSleeps(t)
	s2 := must[*Semaphore](t)(SemaphoreAt(mem))
	errc := make(chan error)
	wctx := wakeCtx(t)
	go func() { errc <- s2.Acquire(wctx) }()
	waitFor(t, func() bool { return atomic.LoadUint32(s.waiters) > 0 })
	waitAsleep(t, os.Getpid(), addrOf(s.count), 1)
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if expired(wctx) { // Acquire takes the permit even after ctx ends
		t.Fatal("Acquire returned only at its deadline: Release's wake-up was lost")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Release after Close = %v", err)
	}
	if err := s.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close = %v", err)
	}

	// Unbounded, and corrupt counts.
	u := must[*Semaphore](t)(InitSemaphore(mem, 0, 0))
	for i := 0; i < 10; i++ {
		if err := u.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if u.Value() != 10 {
		t.Fatalf("unbounded Value = %d", u.Value())
	}
	must[*Semaphore](t)(InitSemaphore(mem, 1, 1))
	atomic.StoreUint32((*uint32)(u.count), 7) // count above max
	if _, err := SemaphoreAt(mem); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("SemaphoreAt with count > max = %v", err)
	}
	if _, err := SemaphoreAt(mem[:32]); !errors.Is(err, ErrBadMemory) {
		t.Fatalf("SemaphoreAt(short) = %v", err)
	}
}

func TestSemaphoreProcesses(t *testing.T) {
	const K, N, M = 3, 5, 300
	s := newSeg(t)
	sm := must[*Semaphore](t)(InitSemaphore(s.at(segSem), K, K))
	start := must[*Event](t)(InitEvent(s.at(segEvent)))
	var ps []*testproc.Proc
	for i := 0; i < N; i++ {
		p := s.start(t, "holders", strconv.Itoa(M), strconv.Itoa(K))
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
	if got := atomic.LoadUint32(s.u32(segMaxSeen)); got != K {
		t.Fatalf("most holders at once = %d, want %d", got, K)
	}
	if sm.Value() != K {
		t.Fatalf("permits after the run = %d, want %d", sm.Value(), K)
	}
}

func TestEventBasic(t *testing.T) {
	mem := anonMem(t, 64)
	e := must[*Event](t)(InitEvent(mem))
	if e.IsSet() {
		t.Fatal("new Event is set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(expired) = %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) = %v", err)
	}
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	if err := e.Set(); err != nil || !e.IsSet() {
		t.Fatal("Set twice")
	}
	if err := e.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Clear(); err != nil || e.IsSet() {
		t.Fatal("Clear")
	}
	// A Set immediately followed by Clear still wakes all sleepers (by its
	// wake-up: they would sleep for an hour before looking by themselves).
	longSleeps(t)
	wctx := wakeCtx(t)
	const G = 4
	var wg sync.WaitGroup
	errs := make(chan error, G)
	for i := 0; i < G; i++ {
		e2 := must[*Event](t)(EventAt(mem))
		wg.Go(func() { errs <- e2.Wait(wctx) })
	}
	waitFor(t, func() bool { return atomic.LoadUint32(e.waiters) == G })
	waitAsleep(t, os.Getpid(), addrOf(e.state), G)
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	if err := e.Clear(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if expired(wctx) { // Wait reports the Set even after ctx ends
		t.Fatal("Wait returned only at its deadline: Set's wake-up was lost")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Set(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close = %v", err)
	}
	if err := e.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v", err)
	}
}

// Set wakes every waiting process: the helpers would sleep for an hour
// before looking by themselves, so only Set's FUTEX_WAKE (shared, across
// processes) ends their Wait in time.
func TestEventProcesses(t *testing.T) {
	const N = 4
	longSleeps(t)
	s := newSeg(t)
	e := must[*Event](t)(InitEvent(s.at(segEvent2)))
	var ps []*testproc.Proc
	var addrs []uintptr
	for i := 0; i < N; i++ {
		p := s.start(t, "waiter", "set")
		addrs = append(addrs, readyAddr(t, p, "waiting"))
		ps = append(ps, p)
	}
	// Every helper is asleep in Wait (counted in the segment, and in the
	// kernel) before Set.
	waitFor(t, func() bool { return atomic.LoadUint32(e.waiters) == N })
	for i, p := range ps {
		waitAsleep(t, p.Pid(), addrs[i], 1)
	}
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// Under -race, this fails with "DATA RACE" unless Acquire reports the
// happens-before edge from the Release whose permit it takes (on the race
// proxy, internal/race): the count is outside the Go heap, where the race
// detector ignores synchronisation.
func TestSemaphoreRaceAnnotations(t *testing.T) {
	mem := anonMem(t, 64)
	s1 := must[*Semaphore](t)(InitSemaphore(mem, 1, 1))
	s2 := must[*Semaphore](t)(SemaphoreAt(mem))
	const N = 100
	x := 0 // Go heap data guarded by the shared-memory semaphore
	add := func(s *Semaphore) error {
		for range N {
			if err := s.Acquire(context.Background()); err != nil {
				return err
			}
			x++
			if err := s.Release(); err != nil {
				return err
			}
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- add(s2) }()
	if err := add(s1); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if x != 2*N {
		t.Fatalf("x = %d, want %d", x, 2*N)
	}
}

// Under -race, each case fails with "DATA RACE" unless the way it learns
// of the Set (a Wait that slept, a Wait that finds the flag set, IsSet)
// reports the happens-before edge from Set: the value is written after the
// reader started, and nothing but the Event orders the two.
func TestEventRaceAnnotations(t *testing.T) {
	for _, c := range []struct {
		name  string
		await func(e *Event) error
		ready func(e *Event) bool // before the value is written and Set
	}{
		{"Wait asleep", func(e *Event) error { return e.Wait(context.Background()) },
			func(e *Event) bool {
				n, ok := testproc.FutexSleepers(os.Getpid(), addrOf(e.state))
				return atomic.LoadUint32(e.waiters) != 0 && (!ok || n > 0)
			}},
		{"Wait after Set", func(e *Event) error {
			for atomic.LoadUint32(e.state)&1 == 0 { // outside the heap: no edge for the race detector
				runtime.Gosched()
			}
			return e.Wait(context.Background())
		}, nil},
		{"IsSet", func(e *Event) error {
			for !e.IsSet() {
				runtime.Gosched()
			}
			return nil
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := anonMem(t, 64)
			setter := must[*Event](t)(InitEvent(mem))
			waiter := must[*Event](t)(EventAt(mem))
			x := new(int)
			got := make(chan int, 1)
			errc := make(chan error, 1)
			go func() {
				err := c.await(waiter)
				if err == nil {
					got <- *x
				}
				errc <- err
			}()
			if c.ready != nil {
				waitFor(t, func() bool { return c.ready(waiter) })
			}
			*x = 42
			if err := setter.Set(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if v := <-got; v != 42 {
				t.Fatalf("read %d after the Event, want 42", v)
			}
		})
	}
}
