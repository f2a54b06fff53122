//go:build linux

package sem

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// Per-helper completed-increment counts for the robust test, one uint64
// each, from this offset.
const (
	segPerHelper = 512
	maxHelpers   = 64
)

// repair is what a holder does on ErrOwnerDead: the dead owner may have
// incremented the total but not its own count (or neither), so the total
// is recomputed from the per-helper counts, which are the truth.
func repair(s *seg) {
	var sum uint64
	for i := 0; i < maxHelpers; i++ {
		sum += *s.u64(segPerHelper + 8*i)
	}
	*s.u64(segCounter) = sum
}

func init() {
	// robust: helper number args[0] increments the total and its own
	// count under the Mutex until the stop word is set, repairing after a
	// dead owner. It is killed at random moments.
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
				repair(s)
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

// Helpers are SIGKILLed at random points while they hammer the Mutex;
// nobody hangs, and the repair protocol keeps the total exact.
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
	for r := 0; r < rounds && next < maxHelpers; r++ {
		// Let them make some progress (read racily: only a hint), then
		// kill one at a random point of its loop and replace it. On odd
		// rounds the victim is whoever holds the lock at that moment
		// (it may just have released it).
		before := atomic.LoadUint64(total)
		want := before + uint64(100+rand.IntN(2000))
		waitFor(t, func() bool { return atomic.LoadUint64(total) >= want })
		k := rand.IntN(len(ps))
		if r%2 == 1 {
			owner := int(atomic.LoadUint32(m.state) & pidMask)
			for j, p := range ps {
				if p.Pid() == owner {
					k = j
				}
			}
		}
		ps[k].Kill()
		ps = append(ps[:k], ps[k+1:]...)
		spawn()
	}
	atomic.StoreUint32(s.u32(segStop), 1)
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	err := m.Lock(context.Background())
	if errors.Is(err, ErrOwnerDead) {
		repair(s)
		err = m.MarkConsistent()
	}
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for i := 0; i < maxHelpers; i++ {
		sum += *s.u64(segPerHelper + 8*i)
	}
	if got := *s.u64(segCounter); got != sum || sum == 0 {
		t.Fatalf("total %d, sum of per-helper counts %d", got, sum)
	}
	t.Logf("%d increments, %d takeovers in %d rounds", sum, atomic.LoadUint32(m.obj.u32(offMutexTakeovers)), rounds)
}
