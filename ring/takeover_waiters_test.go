package ring

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func init() {
	// sleep-in get|put: attach (fd 3) and block in Get on an empty queue
	// or Put on a full one, asleep on the futex, until killed.
	testproc.Register("sleep-in", func(args []string) int {
		q, _, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(0)
		testproc.Printf("ready")
		buf := make([]byte, q.MaxMessage())
		if args[0] == "get" {
			_, err = q.Get(context.Background(), buf)
		} else {
			for ok := true; ok && err == nil; {
				ok, err = q.TryPut(buf) // fill it
			}
			if err == nil {
				err = q.Put(context.Background(), buf)
			}
		}
		return fail("%s returned %v", args[0], err)
	})
}

// TestTakeoverClearsWaiters: a consumer (or producer) SIGKILLed while it
// sleeps leaves its side's waiter count raised; the handle that takes
// the role over clears it, or every Put (Get) of the other side would
// make a futex wake-up system call for good.
func TestTakeoverClearsWaiters(t *testing.T) {
	for _, mode := range []Mode{SPSC, Slots} {
		for _, side := range []string{"get", "put"} {
			t.Run(mode.String()+"/"+side, func(t *testing.T) {
				cfg := Config{Mode: mode, MaxMessage: 8, Capacity: 4}
				if mode == Slots {
					var err error
					if cfg, err = TypedConfig[uint64](Config{Mode: Slots, Capacity: 4}); err != nil {
						t.Fatal(err)
					}
				}
				q := newQueue(t, cfg)
				msg := make([]byte, q.MaxMessage())
				waiters, waits := q.getWaiters, func() uint64 { return q.Stats().GetWaits }
				if side == "put" {
					waiters, waits = q.putWaiters, func() uint64 { return q.Stats().PutWaits }
				}
				p := startWith(t, q, newBoard(t, 1, 1), "sleep-in", side)
				for end := time.Now().Add(10 * time.Second); waits() == 0 || atomic.LoadUint32(waiters) == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(end) {
						t.Fatal("the helper never slept")
					}
				}
				p.Kill()
				if got := atomic.LoadUint32(waiters); got != 1 {
					t.Fatalf("waiter count after the kill: %d, want the dead sleeper's 1", got)
				}
				// Take the role over (the queue is empty, or full).
				var ok bool
				var err error
				if side == "get" {
					_, ok, err = q.TryGet(msg)
				} else {
					ok, err = q.TryPut(msg)
				}
				if err != nil || ok {
					t.Fatalf("Try%s after the takeover: %v, %v", side, ok, err)
				}
				if got := atomic.LoadUint32(waiters); got != 0 {
					t.Errorf("waiter count after the takeover: %d, want 0", got)
				}
			})
		}
	}
}
