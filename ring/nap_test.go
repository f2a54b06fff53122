package ring

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// The helpers' naps (the "+nap" suffix of producer and consumer): short
// enough that the cross-process tests nap thousands of times, with a
// budget after which a long wait sleeps on the futex as usual.
const (
	helperNap       = 20 * time.Microsecond
	helperNapBudget = 2 * time.Millisecond
)

// Producers and consumers in other processes that nap (spinning 0 or 100
// polls first) move every message exactly once, through queues of 4
// messages, small enough that both sides keep waiting for each other.
func TestNapCrossProcess(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    Config
		np, nc int
		spin   int
	}{
		{"SPSC", Config{Mode: SPSC, MaxMessage: 64, Capacity: 4}, 1, 1, 0},
		{"SPSC/spin100", Config{Mode: SPSC, MaxMessage: 64, Capacity: 4}, 1, 1, 100},
		{"MPMC", Config{Mode: MPMC, MaxMessage: 64, Capacity: 4}, 2, 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			runMatrix(t, c.cfg, c.np, c.nc, 20000, 8, 64, "put+nap", "get+nap", c.spin)
		})
	}
}

// A napping call sleeps on the futex once its budget is spent, and not
// before; either way it ends at its context's deadline, not sooner. (The
// deadline is far past the 2 ms budget, so that a loaded machine's late
// naps still spend the budget before it.)
func TestNapThenSleep(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		for _, c := range []struct {
			name    string
			budget  time.Duration
			timeout time.Duration
			sleep   bool
		}{
			{"budget2ms", 2 * time.Millisecond, 300 * time.Millisecond, true},
			{"budget1h", time.Hour, 30 * time.Millisecond, false},
		} {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 2})
				q.SetSpin(0)
				q.SetNap(100*time.Microsecond, c.budget)
				ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
				defer cancel()
				dl, _ := ctx.Deadline()
				if _, err := q.Get(ctx, make([]byte, 8)); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Get on an empty queue = %v", err)
				}
				if now := time.Now(); now.Before(dl) {
					t.Fatalf("Get returned %v before its deadline", dl.Sub(now))
				}
				if slept := q.Stats().GetWaits > 0; slept != c.sleep {
					t.Fatalf("slept = %v, want %v", slept, c.sleep)
				}
			})
		}
	}
}

// A consumer that naps through every wait is never woken: messages that
// come every 100 µs, within its budget, all arrive, and no Get ever went
// to sleep (so the producer made no wake-up system call).
func TestNapNoWakeUps(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 64})
			q.SetSpin(0)
			q.SetNap(50*time.Microsecond, time.Hour)
			const n = 500
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					if err := q.Put(context.Background(), []byte{byte(i), byte(i >> 8)}); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(100 * time.Microsecond)
				}
			})
			buf := make([]byte, 8)
			for i := range n {
				k, err := q.Get(context.Background(), buf)
				if err != nil || k != 2 || int(buf[0])|int(buf[1])<<8 != i {
					t.Fatalf("Get %d = %d %v %x", i, k, err, buf[:k])
				}
			}
			wg.Wait()
			if s := q.Stats(); s.GetWaits != 0 || s.Gets != n {
				t.Fatalf("stats %+v: want %d gets and no sleep", s, n)
			}
		})
	}
}

// A done context ends a napping call within about a nap, and Close
// closes the timer descriptors the naps made.
func TestNapCancelClose(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			before := openFDs(t)
			for range 20 {
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 2})
				q.SetSpin(0)
				q.SetNap(time.Millisecond, time.Hour)
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() {
					_, err := q.Get(ctx, make([]byte, 8))
					errc <- err
				}()
				time.Sleep(3 * time.Millisecond)
				cancel()
				select {
				case err := <-errc:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("Get after cancel = %v", err)
					}
				case <-time.After(time.Second):
					t.Fatal("Get still napping a second after its context was cancelled")
				}
				// The put side naps on a napper of its own.
				fill(t, q, make([]byte, 8))
				pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Millisecond)
				if err := q.Put(pctx, []byte{3}); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Put on a full queue = %v", err)
				}
				pcancel()
				for {
					_, ok, err := q.TryGet(make([]byte, 8))
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
				}
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if after := openFDs(t); after > before {
				t.Fatalf("%d descriptors open before, %d after: the nappers leak", before, after)
			}
		})
	}
}

// Both ends of a pipe nap: a ping-pong of 2,000 counted messages through
// a pipe of 2 messages a direction, where each side waits for every reply.
func TestNapPipe(t *testing.T) {
	a, b, err := Pipe(Config{MaxMessage: 8, Capacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	for _, c := range []*Conn{a, b} {
		c.SetSpin(0)
		c.SetNap(20*time.Microsecond, time.Hour)
	}
	const n = 2000
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 8)
		for range n {
			k, err := b.Recv(ctx, buf)
			if err == nil {
				buf[0]++
				err = b.Send(ctx, buf[:k])
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	buf := make([]byte, 8)
	for i := range n {
		if err := a.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		k, err := a.Recv(ctx, buf)
		if err != nil || k != 1 || buf[0] != byte(i+1) {
			t.Fatalf("reply %d = %d %v %x", i, k, err, buf[:k])
		}
	}
	wg.Wait()
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}
