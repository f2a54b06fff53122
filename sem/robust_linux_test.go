//go:build linux

package sem

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// Per-helper completed-increment counts for the robust test, one uint64
// each, from segPerHelper; and the first impossible repair a helper met.
const (
	segPerHelper = 512
	maxHelpers   = 64
	segBadRepair = 280 // uint32, atomic: 1 once a repair found total-sum not 0 or 1
	segBadTotal  = 288 // uint64: the total that repair found
	segBadSum    = 296 // uint64: the per-helper sum that repair found
)

// perHelperSum adds up the per-helper counts.
func perHelperSum(s *seg) uint64 {
	var sum uint64
	for i := 0; i < maxHelpers; i++ {
		sum += *s.u64(segPerHelper + 8*i)
	}
	return sum
}

// repair is what a holder does on ErrOwnerDead. The dead owner may have
// incremented the total but not its own count (killed between the two),
// or neither, so the total is the per-helper sum or one more; it is reset
// to the sum, which is the truth. Any other difference is a lost or
// duplicated update, which repair reports instead of hiding.
func repair(s *seg) error {
	sum, total := perHelperSum(s), *s.u64(segCounter)
	if total != sum && total != sum+1 {
		return fmt.Errorf("repair: total %d, sum of per-helper counts %d", total, sum)
	}
	*s.u64(segCounter) = sum
	return nil
}

func init() {
	// robust: helper number args[0] increments the total and its own
	// count under the Mutex until the stop word is set, repairing after a
	// dead owner. It is killed at random moments. An impossible repair is
	// recorded in the segment (the helper may be killed before anyone
	// reads its exit status) and ends the helper.
	testproc.Register("robust", func(args []string) int {
		s := childSeg()
		m := orPanic(MutexAt(s.at(segMutex)))
		i, _ := strconv.Atoi(args[0])
		mine := s.u64(segPerHelper + 8*i)
		testproc.Printf("ready")
		ctx := context.Background()
		for !s.stopped() {
			err := m.Lock(ctx)
			if errors.Is(err, ErrOwnerDead) {
				if err := repair(s); err != nil {
					if atomic.CompareAndSwapUint32(s.u32(segBadRepair), 0, 1) {
						*s.u64(segBadTotal), *s.u64(segBadSum) = *s.u64(segCounter), perHelperSum(s)
					}
					panic(err)
				}
				if err := m.MarkConsistent(); err != nil {
					panic(err)
				}
			} else if err != nil {
				panic(err)
			}
			*s.u64(segCounter)++
			*mine++
			if err := m.Unlock(); err != nil {
				panic(err)
			}
		}
		return 0
	})
}

// allStopped reports whether every thread of pid is stopped (SIGSTOP).
func allStopped(pid int) bool {
	stats, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err == nil && testproc.ThreadState(b) != 'T' {
			return false
		}
	}
	return len(stats) > 0
}

// stopHolder stops (SIGSTOP) the helper holding m and returns its index in
// ps, once all its threads are stopped with m still held by it. A helper
// found to have released m by then is continued, and another try made.
func stopHolder(t *testing.T, m *Mutex, ps []*testproc.Proc) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		owner := int(atomic.LoadUint32(m.state) & pidMask) // atomic: the helpers write it
		k := -1
		for j, p := range ps {
			if p.Pid() == owner {
				k = j
			}
		}
		if k < 0 {
			runtime.Gosched() // free at this instant
			continue
		}
		if err := syscall.Kill(owner, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return allStopped(owner) })
		if int(atomic.LoadUint32(m.state)&pidMask) == owner {
			return k
		}
		if err := syscall.Kill(owner, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("never caught a helper holding the mutex")
	return -1
}

// Helpers are SIGKILLed at random points while they hammer the Mutex, and
// on odd rounds while they hold it; nobody hangs, every death while
// holding is taken over, and the repair protocol keeps the total exact.
func TestMutexRandomKills(t *testing.T) {
	rounds := 6
	if os.Getenv("SHMKIT_STRESS") != "" {
		rounds = 60
	}
	const live = 3
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	var ps []*testproc.Proc
	next := 0
	spawn := func() {
		p := s.start(t, "robust", strconv.Itoa(next))
		next++
		p.Expect(t, "ready")
		ps = append(ps, p)
	}
	for i := 0; i < live; i++ {
		spawn()
	}
	total := s.u64(segCounter)
	takeovers := m.obj.u32(offMutexTakeovers)
	heldDeaths := uint32(0)
	// badRepair ends a wait early once a helper met an impossible repair;
	// checkRepairs then fails the test with what it found.
	badRepair := func() bool { return atomic.LoadUint32(s.u32(segBadRepair)) != 0 }
	checkRepairs := func() {
		t.Helper()
		if badRepair() {
			t.Fatalf("a helper's repair found total %d, sum of per-helper counts %d", *s.u64(segBadTotal), *s.u64(segBadSum))
		}
	}
	for r := 0; r < rounds && next < maxHelpers; r++ {
		// Let them make some progress (read racily: only a hint), then
		// kill one and replace it: on even rounds one at a random point
		// of its loop, on odd rounds the one holding the lock (stopped
		// first, so that it provably dies holding it).
		before := atomic.LoadUint64(total)
		want := before + uint64(100+rand.IntN(2000))
		waitFor(t, func() bool { return badRepair() || atomic.LoadUint64(total) >= want })
		checkRepairs()
		k := rand.IntN(len(ps))
		if r%2 == 1 {
			k = stopHolder(t, m, ps)
			heldDeaths++
		}
		ps[k].Kill()
		ps = append(ps[:k], ps[k+1:]...)
		spawn()
		if r%2 == 1 {
			// A survivor takes the dead holder's lock over.
			waitFor(t, func() bool { return badRepair() || atomic.LoadUint32(takeovers) >= heldDeaths })
			checkRepairs()
		}
	}
	atomic.StoreUint32(s.u32(segStop), 1)
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			checkRepairs()
			t.Fatal(err)
		}
	}
	checkRepairs()
	err := m.Lock(context.Background())
	sum, got := perHelperSum(s), *s.u64(segCounter)
	switch {
	case errors.Is(err, ErrOwnerDead):
		// The last victim may have died between its two increments.
		if got != sum && got != sum+1 {
			t.Fatalf("after an owner died: total %d, sum of per-helper counts %d", got, sum)
		}
		if err := repair(s); err != nil {
			t.Fatal(err)
		}
		if err := m.MarkConsistent(); err != nil {
			t.Fatal(err)
		}
	case err != nil:
		t.Fatal(err)
	case got != sum:
		t.Fatalf("total %d, sum of per-helper counts %d", got, sum)
	}
	if sum == 0 {
		t.Fatal("no increments")
	}
	if n := atomic.LoadUint32(takeovers); n < heldDeaths {
		t.Fatalf("%d takeovers, but %d helpers died holding the lock", n, heldDeaths)
	}
	t.Logf("%d increments, %d takeovers (%d deaths while holding) in %d rounds",
		sum, atomic.LoadUint32(takeovers), heldDeaths, rounds)
}
