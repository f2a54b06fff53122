//go:build linux

package sem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// Barrier test layout in a test segment.
const (
	segBarrier   = 1024 // BarrierSize(8) = 128 bytes
	segBarCount  = 1152 // uint32, atomic: arrivals so far, all rounds
	segBarMasks  = 1280 // uint32 per round, atomic: OR of 1<<index
	barRounds    = 300
	barMaxTested = 8
)

// barrierRounds is one party of the cross-process barrier test: every
// round it counts itself in, waits, checks that the round's arrivals are
// all in (and no party is two rounds ahead) and records its index.
func barrierRounds(s *seg, b *Barrier) error {
	n := uint32(b.Parties())
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	for r := uint32(0); r < barRounds; r++ {
		atomic.AddUint32(s.u32(segBarCount), 1)
		i, err := b.Wait(ctx)
		if err != nil {
			return fmt.Errorf("round %d: %w", r, err)
		}
		if i < 0 || i >= int(n) {
			return fmt.Errorf("round %d: index %d", r, i)
		}
		// Every party of round r has counted in; none can count in for
		// round r+2 before we wait in round r+1.
		if c := atomic.LoadUint32(s.u32(segBarCount)); c < n*(r+1) || c >= n*(r+2) {
			return fmt.Errorf("round %d: %d arrivals counted, want [%d, %d)", r, c, n*(r+1), n*(r+2))
		}
		if old := atomic.OrUint32(s.u32(segBarMasks+4*int(r)), 1<<i); old&(1<<i) != 0 {
			return fmt.Errorf("round %d: index %d given twice", r, i)
		}
	}
	return nil
}

func init() {
	// barrier: run barrierRounds on the Barrier at segBarrier.
	testproc.Register("barrier", func(args []string) int {
		s := childSeg()
		b := orPanic(BarrierAt(s.mem[segBarrier:]))
		if err := barrierRounds(s, b); err != nil {
			panic(err)
		}
		return 0
	})
	// barrier-wait: wait once on the Barrier at segBarrier and print the
	// outcome ("index N" or "broken REASON PID").
	testproc.Register("barrier-wait", func(args []string) int {
		s := childSeg()
		b := orPanic(BarrierAt(s.mem[segBarrier:]))
		ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
		defer cancel()
		testproc.Printf("ready")
		i, err := b.Wait(ctx)
		var be *BrokenBarrierError
		switch {
		case err == nil:
			testproc.Printf("index %d", i)
		case errors.As(err, &be) && be.Err == nil:
			testproc.Printf("broken %d %d", be.Reason, be.Pid)
		default:
			testproc.Printf("error %v", err)
		}
		return 0
	})
}

// TestBarrierGoroutines runs 5 goroutines through many rounds, on two
// handles, checking indices and the arrival counts.
func TestBarrierGoroutines(t *testing.T) {
	s := newSeg(t)
	const n = 5
	b1 := must[*Barrier](t)(InitBarrier(s.mem[segBarrier:], n))
	b2 := must[*Barrier](t)(BarrierAt(s.mem[segBarrier:]))
	if b1.Parties() != n || b2.Parties() != n || b1.Broken() || b1.Waiting() != 0 {
		t.Fatalf("fresh barrier: parties %d, broken %v, waiting %d", b1.Parties(), b1.Broken(), b1.Waiting())
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := b1
			if g%2 == 1 {
				b = b2
			}
			errs[g] = barrierRounds(s, b)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	checkMasks(t, s, n)
}

func checkMasks(t *testing.T, s *seg, n int) {
	t.Helper()
	for r := range barRounds {
		if m := atomic.LoadUint32(s.u32(segBarMasks + 4*r)); m != 1<<n-1 {
			t.Fatalf("round %d: indices %b, want %b", r, m, 1<<n-1)
		}
	}
}

// TestBarrierProcesses runs 4 helper processes and the test through many
// rounds of one Barrier.
func TestBarrierProcesses(t *testing.T) {
	s := newSeg(t)
	const n = 5
	b := must[*Barrier](t)(InitBarrier(s.mem[segBarrier:], n))
	var ps []*testproc.Proc
	for range n - 1 {
		ps = append(ps, s.start(t, "barrier"))
	}
	if err := barrierRounds(s, b); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	checkMasks(t, s, n)
}

func TestBarrierOneParty(t *testing.T) {
	b := must[*Barrier](t)(InitBarrier(anonMem(t, 4096), 1))
	for range 3 {
		if i, err := b.Wait(context.Background()); i != 0 || err != nil {
			t.Fatalf("Wait = %d, %v", i, err)
		}
	}
}

// A party SIGKILLed while it waits breaks the barrier, at once, for every
// other waiter, in other processes and in this one, naming the dead pid.
func TestBarrierPartyKilled(t *testing.T) {
	s := newSeg(t)
	const n = 5
	b := must[*Barrier](t)(InitBarrier(s.mem[segBarrier:], n))
	var ps []*testproc.Proc
	for range 3 {
		p := s.start(t, "barrier-wait")
		p.Expect(t, "ready")
		ps = append(ps, p)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Wait(wakeCtx(t))
		errc <- err
	}()
	waitFor(t, func() bool { return b.Waiting() == 4 })
	victim := ps[1]
	pid := victim.Pid()
	t0 := time.Now()
	victim.Kill()
	err := <-errc
	var be *BrokenBarrierError
	if !errors.As(err, &be) || !errors.Is(err, ErrBrokenBarrier) || be.Reason != BrokenDied || be.Pid != pid {
		t.Fatalf("Wait after a party died = %v, want broken (died, pid %d)", err, pid)
	}
	want := fmt.Sprintf("broken %d %d", BrokenDied, pid)
	for _, p := range []*testproc.Proc{ps[0], ps[2]} {
		if got := p.Line(t); got != want {
			t.Fatalf("%s: %q, want %q", p.Name, got, want)
		}
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("breaking took %v", d)
	}
	// Broken until Reset; then usable again.
	if _, err := b.Wait(context.Background()); !errors.Is(err, ErrBrokenBarrier) || !b.Broken() {
		t.Fatalf("Wait on a broken barrier = %v", err)
	}
	if err := b.Reset(); err != nil || b.Broken() || b.Waiting() != 0 {
		t.Fatalf("Reset: %v, broken %v, waiting %d", err, b.Broken(), b.Waiting())
	}
	b1 := must[*Barrier](t)(InitBarrier(anonMem(t, 4096), 1))
	if _, err := b1.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A party that claimed its slot and died before counting itself in is on
// record: the next arrival finds it dead and breaks the barrier.
func TestBarrierClaimantDied(t *testing.T) {
	mem := anonMem(t, 4096)
	b := must[*Barrier](t)(InitBarrier(mem, 3))
	// Our own pid with another start tag: a reused pid, so dead.
	dead := b.me ^ 1<<pidBits
	atomic.StoreUint64(b.slot(0), dead) // generation 0's tag is 0
	_, err := b.Wait(wakeCtx(t))
	var be *BrokenBarrierError
	if !errors.As(err, &be) || be.Reason != BrokenDied || be.Pid != os.Getpid() {
		t.Fatalf("Wait behind a dead claimant = %v", err)
	}
}

func TestBarrierContextAbortReset(t *testing.T) {
	mem := anonMem(t, 4096)
	b := must[*Barrier](t)(InitBarrier(mem, 3))
	other := must[*Barrier](t)(BarrierAt(mem))
	// A party whose ctx ends breaks it for the other waiter.
	errc := make(chan error, 1)
	go func() { _, err := other.Wait(wakeCtx(t)); errc <- err }()
	waitFor(t, func() bool { return b.Waiting() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := b.Wait(ctx)
	var be *BrokenBarrierError
	if !errors.As(err, &be) || be.Reason != BrokenTimeout || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("Wait with a deadline = %v", err)
	}
	if err := <-errc; !errors.As(err, &be) || be.Reason != BrokenTimeout || be.Pid != os.Getpid() || be.Err != nil {
		t.Fatalf("other waiter = %v", err)
	}
	// Abort.
	must[struct{}](t)(struct{}{}, b.Reset())
	go func() { _, err := other.Wait(wakeCtx(t)); errc <- err }()
	waitFor(t, func() bool { return b.Waiting() == 1 })
	if err := b.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.As(err, &be) || be.Reason != BrokenAborted {
		t.Fatalf("waiter after Abort = %v", err)
	}
	// Reset while a party waits.
	must[struct{}](t)(struct{}{}, b.Reset())
	go func() { _, err := other.Wait(wakeCtx(t)); errc <- err }()
	waitFor(t, func() bool { return b.Waiting() == 1 })
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.As(err, &be) || be.Reason != BrokenReset {
		t.Fatalf("waiter after Reset = %v", err)
	}
	// Then a full round works, and the broken reason of a new break is
	// not the Reset's.
	var wg sync.WaitGroup
	idx := make(chan int, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i, err := b.Wait(wakeCtx(t))
			if err != nil {
				t.Error(err)
			}
			idx <- i
		}()
	}
	wg.Wait()
	close(idx)
	sum := 0
	for i := range idx {
		sum += i
	}
	if sum != 0+1+2 {
		t.Fatalf("indices add up to %d", sum)
	}
	// Close wakes a waiter with ErrClosed and does not break the barrier.
	go func() { _, err := other.Wait(wakeCtx(t)); errc <- err }()
	waitFor(t, func() bool { return b.Waiting() == 1 })
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) || b.Broken() {
		t.Fatalf("waiter after Close = %v (broken %v)", err, b.Broken())
	}
}

// Under -race, this fails with "DATA RACE" unless Wait reports the
// happens-before edges of a round: every party writes its own element of
// a Go slice before Wait and reads every element after it.
func TestBarrierRaceAnnotations(t *testing.T) {
	mem := anonMem(t, 4096)
	const n = 4
	must[*Barrier](t)(InitBarrier(mem, n))
	data := make([]int, n)
	var wg sync.WaitGroup
	for g := range n {
		b := must[*Barrier](t)(BarrierAt(mem))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 1; r <= 20; r++ {
				data[g] = r
				if _, err := b.Wait(wakeCtx(t)); err != nil {
					t.Error(err)
					return
				}
				for i, v := range data {
					if v != r {
						t.Errorf("round %d: data[%d] = %d", r, i, v)
					}
				}
				if _, err := b.Wait(wakeCtx(t)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestBarrierBadInit(t *testing.T) {
	mem := anonMem(t, 4096)
	for _, n := range []int{0, -1, MaxParties + 1} {
		if _, err := InitBarrier(mem, n); err == nil {
			t.Errorf("InitBarrier(%d parties) succeeded", n)
		}
	}
	if _, err := InitBarrier(mem[:BarrierSize(9)-1], 9); !errors.Is(err, ErrBadMemory) {
		t.Errorf("InitBarrier in short memory = %v", err)
	}
	must[*Barrier](t)(InitBarrier(mem, 9))
	if _, err := BarrierAt(mem[:BarrierSize(9)-8]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("BarrierAt of short memory = %v", err)
	}
}
