package ring

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/testproc"
)

// The wake-up tests. Every futex sleep in block has a timeout (q.sleep:
// 200 ms SPSC, 20 ms MPMC), so a missing wake-up only makes a call slow,
// and a test that waits for the call to return passes anyway. Here the
// sleeping side sleeps for an hour (sleepForever) and sleeps at once
// (SetSpin(0)), under a context deadline of wakeDeadline: a wake-up that
// never comes fails the test instead of passing late, and never hangs it.
// The waking side acts only once the sleeper is asleep: its waits counter
// in the header has risen and, where /proc shows system calls, one of its
// threads sleeps in the kernel on the futex word.

const (
	sleepForever = time.Hour
	wakeDeadline = 10 * time.Second
)

// asleep makes q's blocked calls sleep at once, for an hour at a time.
func asleep(q *Queue) {
	q.SetSpin(0)
	q.sleep = sleepForever
}

// addrOf is the address of a futex word, as /proc shows it.
func addrOf(w *uint32) uintptr { return uintptr(unsafe.Pointer(w)) }

// waitSleeping waits (bounded by wakeDeadline) until the process pid, whose
// waits counter is read by waits, has gone to sleep: the counter exceeds
// base and, where the kernel shows it, a thread of pid sleeps on the futex
// word at addr (in pid's address space).
func waitSleeping(pid int, addr uintptr, waits func() uint64, base uint64) error {
	end := time.Now().Add(wakeDeadline)
	for {
		if waits() > base {
			if n, ok := testproc.FutexSleepers(pid, addr); !ok || n > 0 {
				return nil
			}
		}
		if time.Now().After(end) {
			return errors.New("the sleeper never went to sleep")
		}
	}
}

func init() {
	// wake-by OP PPID ADDR: attach (fd 3); claim the role OP needs for a
	// fast path (or put a first message the parent takes); print "ready";
	// wait until the parent sleeps on the futex word at ADDR (in its
	// address space) with its waits counter raised; then do OP, the one
	// call that must wake it, and print "ok".
	testproc.Register("wake-by", func(args []string) int {
		op, ppid := args[0], atoi(args[1])
		addr, err := strconv.ParseUint(args[2], 0, 64)
		if err != nil {
			return fail("addr: %v", err)
		}
		q, b, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		ctx := context.Background()
		buf := make([]byte, q.MaxMessage())
		// Set-up: a fast path needs the role claimed (SPSC).
		switch op {
		case "get-fast", "next-fast", "getbatch-fast":
			if _, _, err := q.TryGet(buf); err != nil { // empty: claims the consumer role only
				return fail("tryget: %v", err)
			}
		case "put-fast", "putbatch-fast":
			if err := q.Put(ctx, []byte("prime")); err != nil { // the parent takes it before it sleeps
				return fail("prime: %v", err)
			}
		}
		testproc.Printf("ready")
		var waits func() uint64
		switch op {
		case "get-fast", "get-first", "next-fast", "getbatch-fast", "mpmc-get", "mpmc-next", "close-full":
			waits = func() uint64 { return q.Stats().PutWaits }
		default:
			waits = func() uint64 { return q.Stats().GetWaits }
		}
		if err := waitSleeping(ppid, uintptr(addr), waits, 0); err != nil {
			return fail("%s: %v", op, err)
		}
		switch op {
		case "get-fast", "get-first", "mpmc-get":
			_, err = q.Get(ctx, buf)
		case "next-fast", "mpmc-next":
			if _, err = q.Next(ctx); err == nil {
				err = q.Release()
			}
		case "getbatch-fast":
			_, err = q.GetBatch(ctx, [][]byte{buf})
		case "put-fast", "put-first", "mpmc-put":
			err = q.Put(ctx, []byte("wake"))
		case "putbatch-fast":
			_, err = q.PutBatch(ctx, [][]byte{[]byte("wake")})
		case "commit", "mpmc-commit":
			var b []byte
			if b, err = q.Reserve(ctx, 4); err == nil {
				copy(b, "wake")
				err = q.Commit(4)
			}
		case "close-full", "close-empty":
			err = q.CloseWrite()
		default:
			return fail("unknown op %q", op)
		}
		if err != nil {
			return fail("%s: %v", op, err)
		}
		testproc.Printf("ok")
		// Stay until the parent's call returned: our exit would send it a
		// SIGCHLD, and a signal interrupting its futex sleep is a wake-up
		// of its own.
		for atomic.LoadUint64(&b.acked[0]) == 0 { // atomic: stored by the parent
			runtime.Gosched()
		}
		return 0
	})
}

// TestWakeUps puts the test process to sleep in Put on a full queue or in
// Get on an empty one and has a helper process make the one call that
// must wake it, through each path that can: the SPSC fast paths (Put, Get,
// Next, PutBatch, GetBatch with the role already claimed), the general
// ones (a first call, Reserve/Commit), MPMC publication and release, and
// CloseWrite.
func TestWakeUps(t *testing.T) {
	cases := []struct {
		mode Mode
		op   string
	}{
		{SPSC, "get-fast"},      // spscGetFast
		{SPSC, "get-first"},     // spscGet, spscRelease
		{SPSC, "next-fast"},     // spscNextFast, spscReleaseHeld
		{SPSC, "getbatch-fast"}, // spscGetBatchFast
		{SPSC, "put-fast"},      // spscPutFast
		{SPSC, "put-first"},     // spscPut, spscPublish
		{SPSC, "putbatch-fast"}, // spscPutBatchFast
		{SPSC, "commit"},        // spscCommit, spscPublish
		{SPSC, "close-full"},    // CloseWrite: a producer asleep on full
		{SPSC, "close-empty"},   // CloseWrite: a consumer asleep on empty
		{MPMC, "mpmc-get"},      // mpmcDone, releaseSlot
		{MPMC, "mpmc-next"},     // mpmcRelease, releaseSlot
		{MPMC, "mpmc-put"},      // mpmcPublish
		{MPMC, "mpmc-commit"},   // mpmcCommit, mpmcPublish
		{MPMC, "close-full"},
		{MPMC, "close-empty"},
	}
	for _, c := range cases {
		t.Run(c.mode.String()+"/"+c.op, func(t *testing.T) {
			q := newQueue(t, Config{Mode: c.mode, MaxMessage: 16, Capacity: 2})
			full := c.op == "close-full" || c.op == "get-fast" || c.op == "get-first" || c.op == "next-fast" ||
				c.op == "getbatch-fast" || c.op == "mpmc-get" || c.op == "mpmc-next"
			word := q.dataSeq
			if full {
				word = q.spaceSeq
			}
			b := newBoard(t, 1, 1)
			p := startWith(t, q, b, "wake-by", c.op, itoa(os.Getpid()), strconv.FormatUint(uint64(addrOf(word)), 10))
			ctx, cancel := context.WithTimeout(context.Background(), wakeDeadline)
			defer cancel()
			buf := make([]byte, 16)
			if c.op == "put-fast" || c.op == "putbatch-fast" {
				if n, err := q.Get(ctx, buf); err != nil || string(buf[:n]) != "prime" {
					t.Fatalf("first Get = %q, %v", buf[:n], err)
				}
			}
			if full {
				fill(t, q, []byte("x"))
			}
			if s := q.Stats(); s.PutWaits != 0 || s.GetWaits != 0 {
				t.Fatalf("slept before the test: %+v", s)
			}
			asleep(q)
			start := time.Now()
			var err error
			var n int
			if full {
				err = q.Put(ctx, []byte("y"))
			} else {
				n, err = q.Get(ctx, buf)
			}
			switch {
			case c.op == "close-full":
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("Put on a full queue closed meanwhile = %v after %v", err, time.Since(start))
				}
			case c.op == "close-empty":
				if err != io.EOF {
					t.Fatalf("Get on an empty queue closed meanwhile = %v after %v", err, time.Since(start))
				}
			case err != nil:
				t.Fatalf("never woken: %v after %v; helper stderr:\n%s", err, time.Since(start), p.Stderr())
			case !full && string(buf[:n]) != "wake":
				t.Fatalf("Get = %q", buf[:n])
			}
			b.ack(0, 1) // the helper may exit now
			s := q.Stats()
			if (full && s.PutWaits == 0) || (!full && s.GetWaits == 0) {
				t.Fatalf("never slept: %+v", s)
			}
			p.Expect(t, "ok")
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func init() {
	// stream N SIDE: attach (fd 3) and, as SIDE (put or get), move N
	// messages as fast as it can (busy-waiting, never sleeping), so that
	// the parent, sleeping at once on every empty or full queue, races
	// with it around every sleep.
	testproc.Register("stream", func(args []string) int {
		n, side := atoi(args[0]), args[1]
		q, _, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(-1)
		ctx := context.Background()
		testproc.Printf("ready")
		buf := make([]byte, 8)
		for i := range n {
			if side == "put" {
				fillMsg(buf, 0, i)
				err = q.Put(ctx, buf)
			} else {
				var k int
				if k, err = q.Get(ctx, buf); err == nil {
					if _, seq, cerr := checkMsg(buf[:k], 0, i, 8, 8); cerr != nil || seq != i {
						err = errors.Join(cerr, errors.New("out of order"))
					}
				}
			}
			if err != nil {
				return fail("%s %d: %v", side, i, err)
			}
		}
		testproc.Printf("ok")
		return 0
	})
}

// TestWakeRace streams messages between a helper that never sleeps and
// the test process, which sleeps (for an hour) whenever it finds the queue
// empty (or full), so that the two race around every sleep: any lost
// wake-up ends the test at its deadline. (TestWakeRecheck makes the one
// race that block's re-check exists for happen every time.)
func TestWakeRace(t *testing.T) {
	const n = 20000
	for _, mode := range []Mode{SPSC, MPMC} {
		for _, side := range []string{"get", "put"} {
			t.Run(mode.String()+"/"+side, func(t *testing.T) {
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 4})
				other := "put"
				if side == "put" {
					other = "get"
				}
				p := startWith(t, q, newBoard(t, 1, 1), "stream", itoa(n), other)
				asleep(q)
				ctx, cancel := context.WithTimeout(context.Background(), wakeDeadline)
				defer cancel()
				buf := make([]byte, 8)
				for i := range n {
					var err error
					if side == "put" {
						fillMsg(buf, 0, i)
						err = q.Put(ctx, buf)
					} else {
						var k int
						if k, err = q.Get(ctx, buf); err == nil {
							if _, seq, cerr := checkMsg(buf[:k], 0, i, 8, 8); cerr != nil || seq != i {
								t.Fatalf("message %d: seq %d, %v", i, seq, cerr)
							}
						}
					}
					if err != nil {
						t.Fatalf("%s %d: %v (stats %+v); helper stderr:\n%s", side, i, err, q.Stats(), p.Stderr())
					}
				}
				p.Expect(t, "ok")
				if err := p.Wait(); err != nil {
					t.Fatal(err)
				}
				s := q.Stats()
				t.Logf("slept %d times", s.GetWaits+s.PutWaits)
			})
		}
	}
}

// hookCtx is a context whose first Err call runs hook. block calls
// ctx.Err() between its last look at the queue and its announcement in
// the waiter count, so hook runs in the one window where a change by the
// other side is seen by neither side's check but block's re-check after
// the announcement: the other side finds no waiter and wakes nobody.
type hookCtx struct {
	context.Context
	once sync.Once
	hook func()
}

func (c *hookCtx) Err() error {
	c.once.Do(c.hook)
	return c.Context.Err()
}

// TestWakeRecheck blocks in Get on an empty queue (Put on a full one)
// with a context that makes room (puts a message) through another handle,
// on its own mapping, inside that window: without the re-check the call
// would sleep (for an hour) with nobody to wake it.
func TestWakeRecheck(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		for _, side := range []string{"get", "put"} {
			t.Run(mode.String()+"/"+side, func(t *testing.T) {
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 2})
				other, err := OpenFile(context.Background(), q.File())
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				buf := make([]byte, 8)
				if side == "put" {
					fill(t, q, []byte("full"))
				}
				asleep(q)
				parent, cancel := context.WithTimeout(context.Background(), wakeDeadline)
				defer cancel()
				var herr error
				hooked := false
				ctx := &hookCtx{Context: parent, hook: func() {
					hooked = true
					if side == "put" {
						_, herr = other.Get(parent, buf)
					} else {
						herr = other.Put(parent, []byte("hook"))
					}
				}}
				start := time.Now()
				if side == "put" {
					err = q.Put(ctx, []byte("late"))
				} else {
					var n int
					n, err = q.Get(ctx, buf)
					if err == nil && string(buf[:n]) != "hook" {
						t.Fatalf("Get = %q", buf[:n])
					}
				}
				if herr != nil || !hooked {
					t.Fatalf("the hook did not run (%v): block no longer calls ctx.Err before it sleeps?", herr)
				}
				if err != nil {
					t.Fatalf("%s: %v after %v (stats %+v)", side, err, time.Since(start), q.Stats())
				}
			})
		}
	}
}

// TestBlocking makes both sides sleep (spin 0) on a ring of two messages.
func TestBlocking(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			runMatrix(t, Config{Mode: mode, MaxMessage: 64, Capacity: 2}, 1, 1, 2000, 8, 64, "put", "get", 0)
		})
	}
}

func init() {
	// waiter full|empty|closed: attach (fd 3), wait until the parent is
	// asleep in the shared counters, then unblock it or check EOF.
	testproc.Register("waiter", func(args []string) int {
		q, _, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		ctx := context.Background()
		testproc.Printf("ready")
		buf := make([]byte, q.MaxMessage())
		switch args[0] {
		case "full":
			// The parent sleeps in Put on a full queue: wait until the
			// shared counter says so, then make room.
			for q.Stats().PutWaits == 0 {
			}
			if _, err := q.Get(ctx, buf); err != nil {
				return fail("get: %v", err)
			}
		case "empty":
			for q.Stats().GetWaits == 0 {
			}
			if err := q.Put(ctx, []byte("wake")); err != nil {
				return fail("put: %v", err)
			}
		case "closed":
			// Sleep in Get until the parent closes the queue.
			q.SetSpin(0)
			if _, err := q.Get(ctx, buf); err != io.EOF {
				return fail("get = %v, want EOF", err)
			}
		}
		testproc.Printf("ok")
		return 0
	})
}

func TestBlockingWakes(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String()+"/full", func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 2})
			fill(t, q, []byte("x"))
			q.SetSpin(0)
			p := startWith(t, q, newBoard(t, 1, 1), "waiter", "full")
			if err := q.Put(context.Background(), []byte("y")); err != nil {
				t.Fatal(err)
			}
			p.Expect(t, "ok")
		})
		t.Run(mode.String()+"/empty", func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 2})
			q.SetSpin(0)
			p := startWith(t, q, newBoard(t, 1, 1), "waiter", "empty")
			buf := make([]byte, 16)
			n, err := q.Get(context.Background(), buf)
			if err != nil || string(buf[:n]) != "wake" {
				t.Fatal(n, err)
			}
			p.Expect(t, "ok")
		})
		t.Run(mode.String()+"/closed", func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 2})
			p := startWith(t, q, newBoard(t, 1, 1), "waiter", "closed")
			for q.Stats().GetWaits == 0 {
			}
			if err := q.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			p.Expect(t, "ok")
		})
	}
}

// TestSpinThenSleep checks the spin settings: by default (and with a
// short SetSpinTime) a blocked Get sleeps on the futex once its spin is
// over; with SetSpin(-1) or a spin longer than the wait it never does.
// The wait is a Get on an empty queue ended by its context.
func TestSpinThenSleep(t *testing.T) {
	cases := []struct {
		name  string
		set   func(q *Queue)
		sleep bool
	}{
		{"default", func(q *Queue) {}, true},
		{"SetSpinTime(1us)", func(q *Queue) { q.SetSpinTime(time.Microsecond) }, true},
		{"SetSpinTime(0)", func(q *Queue) { q.SetSpinTime(0) }, true},
		{"SetSpin(0)", func(q *Queue) { q.SetSpin(0) }, true},
		{"SetSpin(100)", func(q *Queue) { q.SetSpin(100) }, true},
		{"SetSpin(-1)", func(q *Queue) { q.SetSpin(-1) }, false},
		{"SetSpinTime(1h)", func(q *Queue) { q.SetSpinTime(time.Hour) }, false},
	}
	for _, c := range cases {
		for _, mode := range []Mode{SPSC, MPMC} {
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 2})
				c.set(q)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				defer cancel()
				if _, err := q.Get(ctx, make([]byte, 8)); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Get on an empty queue = %v", err)
				}
				if slept := q.Stats().GetWaits > 0; slept != c.sleep {
					t.Fatalf("slept = %v, want %v", slept, c.sleep)
				}
			})
		}
	}
}
