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

	"github.com/shmkit/shmkit/internal/testproc"
)

// Cond test layout in the test segment (the Mutex is at segMutex).
const (
	segCond     = 1024
	segAvail    = 1088 // uint64, under the Mutex: items produced, not yet consumed
	segProduced = 1096 // uint64, under the Mutex
	segConsumed = 1104 // uint64, under the Mutex
	segPerCons  = 1152 // uint64 per consumer, under the Mutex
)

const (
	condItems     = 300 // per producer
	condProducers = 2
	condConsumers = 3
)

// condHandles attaches a helper to the Cond: the anonymous one passed as
// fd 4 (its own Mutex), with the counters in the test segment at fd 3.
func condHandles() (*seg, *Cond) {
	s := childSeg()
	c := orPanic(OpenCondFile(context.Background(), os.NewFile(4, "cond")))
	return s, c
}

func produce(s *seg, c *Cond, n int) error {
	ctx := wakeCtxFree()
	m := c.Mutex()
	for range n {
		if err := m.Lock(ctx); err != nil {
			return err
		}
		*s.u64(segAvail)++
		*s.u64(segProduced)++
		err := c.Signal()
		if uerr := m.Unlock(); err == nil {
			err = uerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func consume(s *seg, c *Cond, id, total int) error {
	ctx := wakeCtxFree()
	m := c.Mutex()
	if err := m.Lock(ctx); err != nil {
		return err
	}
	defer m.Unlock()
	for {
		for *s.u64(segAvail) == 0 && *s.u64(segConsumed) < uint64(total) {
			if err := c.Wait(ctx); err != nil {
				return err
			}
		}
		if *s.u64(segConsumed) == uint64(total) {
			return c.Broadcast() // wake the other consumers to see it too
		}
		*s.u64(segAvail)--
		*s.u64(segConsumed)++
		*s.u64(segPerCons + 8*id)++
	}
}

// helperCtx is a context bounded by wakeTimeout, for the roles that
// helpers and goroutines play: they return long before it ends.
var helperCtx = func() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*wakeTimeout)
	_ = cancel // lives as long as the process
	return ctx
}()

func wakeCtxFree() context.Context { return helperCtx }

func init() {
	// cond-produce / cond-consume ID: the producer/consumer test's roles.
	testproc.Register("cond-produce", func(args []string) int {
		s, c := condHandles()
		if err := produce(s, c, condItems); err != nil {
			panic(err)
		}
		return 0
	})
	testproc.Register("cond-consume", func(args []string) int {
		s, c := condHandles()
		id, _ := strconv.Atoi(args[0])
		if err := consume(s, c, id, condProducers*condItems); err != nil {
			panic(err)
		}
		return 0
	})
}

// Producers and consumers in five processes on an anonymous Cond passed
// through ExtraFiles, every sleep an hour long so that only real wake-ups
// end them: every item is consumed exactly once.
func TestCondProcesses(t *testing.T) {
	longSleeps(t)
	s := newSeg(t)
	c := must[*Cond](t)(CreateAnonymousCond())
	defer c.Close()
	var ps []*testproc.Proc
	start := func(name string, args ...string) {
		cmd := s.cmd(t, name, args...)
		cmd.ExtraFiles = append(cmd.ExtraFiles, c.File())
		ps = append(ps, testproc.StartCmd(t, name, cmd))
	}
	for i := range condConsumers {
		start("cond-consume", strconv.Itoa(i))
	}
	for range condProducers {
		start("cond-produce")
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	total := uint64(condProducers * condItems)
	var sum uint64
	for i := range condConsumers {
		sum += *s.u64(segPerCons + 8*i)
	}
	if *s.u64(segProduced) != total || *s.u64(segConsumed) != total || sum != total || *s.u64(segAvail) != 0 {
		t.Fatalf("produced %d, consumed %d (per consumer %d), left %d; want %d, %d, %d, 0",
			*s.u64(segProduced), *s.u64(segConsumed), sum, *s.u64(segAvail), total, total, total)
	}
}

func TestCondGoroutines(t *testing.T) {
	longSleeps(t)
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	c := must[*Cond](t)(InitCond(s.at(segCond), m))
	if c.File() != nil || c.Segment() != nil || m.File() != nil {
		t.Fatal("an object placed with Init has a file")
	}
	var wg sync.WaitGroup
	errs := make([]error, condConsumers+condProducers)
	for i := range condConsumers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = consume(s, c, i, condProducers*condItems) }()
	}
	for i := range condProducers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[condConsumers+i] = produce(s, c, condItems) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := *s.u64(segConsumed); got != condProducers*condItems {
		t.Fatalf("consumed %d", got)
	}
}

func TestCondWaitResults(t *testing.T) {
	mem := anonMem(t, 4096)
	m := must[*Mutex](t)(InitMutex(mem[:64]))
	c := must[*Cond](t)(InitCond(mem[64:128], m))
	if _, err := InitCond(mem[64:128], nil); err == nil {
		t.Fatal("InitCond with a nil Mutex")
	}
	// Not holding the Mutex.
	if err := c.Wait(context.Background()); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Wait without the lock = %v", err)
	}
	must[struct{}](t)(struct{}{}, m.Lock(nil))
	// A done ctx: at once, nothing unlocked.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Wait(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(done) = %v", err)
	}
	// A ctx ending while asleep: relocked.
	ctx, cancel2 := context.WithCancel(context.Background())
	go func() {
		waitFor(t, func() bool { return atomic.LoadUint32(c.waiters) == 1 })
		cancel2()
	}()
	if err := c.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v", err)
	}
	if ok, _ := m.TryLock(); ok {
		t.Fatal("Wait returned without the lock")
	}
	// A holder that dies while we sleep: ErrOwnerDead through the relock.
	s := newSeg(t)
	m2 := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	c2 := must[*Cond](t)(InitCond(s.at(segCond), m2))
	must[struct{}](t)(struct{}{}, m2.Lock(nil))
	errc := make(chan error, 1)
	go func() { errc <- c2.Wait(wakeCtx(t)) }()
	waitFor(t, func() bool { return atomic.LoadUint32(c2.waiters) == 1 })
	h := s.start(t, "holder") // takes the Mutex we released
	h.Expect(t, "locked")
	if err := c2.Signal(); err != nil {
		t.Fatal(err)
	}
	pid := h.Pid()
	h.Kill()
	err := <-errc
	var od *OwnerDeadError
	if !errors.As(err, &od) || od.Pid != pid || !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Wait after the holder died = %v, want ErrOwnerDead naming pid %d", err, pid)
	}
	// Close wakes a sleeper, which relocks and returns ErrClosed.
	go func() { errc <- c.Wait(context.Background()) }()
	waitFor(t, func() bool { return atomic.LoadUint32(c.waiters) == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatalf("the Mutex after the closed Wait: %v", err)
	}
}

// Under -race, this fails with "DATA RACE" unless Wait reports the edge
// from the Signal that ends it: the signaller writes without ever holding
// the Mutex, so only the Cond orders the write before the read.
func TestCondRaceAnnotations(t *testing.T) {
	longSleeps(t)
	mem := anonMem(t, 4096)
	m := must[*Mutex](t)(InitMutex(mem[:64]))
	c := must[*Cond](t)(InitCond(mem[64:128], m))
	c2 := must[*Cond](t)(CondAt(mem[64:128], m))
	for _, bcast := range []bool{false, true} {
		x := new(int)
		got := make(chan int, 1)
		go func() {
			if err := m.Lock(nil); err != nil {
				t.Error(err)
			}
			if err := c.Wait(wakeCtx(t)); err != nil {
				t.Error(err)
			}
			v := *x
			_ = m.Unlock() // before the send: the test unmaps the memory when it ends
			got <- v
		}()
		waitFor(t, func() bool {
			n, ok := testproc.FutexSleepers(os.Getpid(), addrOf(c.seq))
			return atomic.LoadUint32(c.waiters) == 1 && (!ok || n > 0)
		})
		*x = 42
		var err error
		if bcast {
			err = c2.Broadcast()
		} else {
			err = c2.Signal()
		}
		if err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != 42 {
			t.Fatalf("read %d", v)
		}
	}
}
