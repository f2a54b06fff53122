package ring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func init() { testproc.DefaultTimeout = 30 * time.Second }

// fill puts msg with TryPut until the queue is full.
func fill(t *testing.T, q *Queue, msg []byte) {
	t.Helper()
	for {
		ok, err := q.TryPut(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
	}
}

func newQueue(tb testing.TB, cfg Config) *Queue {
	tb.Helper()
	q, err := CreateAnonymous(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close() })
	return q
}

// runMatrix runs np producers and nc consumers, each in its own process,
// over one queue, then closes the queue and checks that every message was
// delivered exactly once, intact and in per-producer order.
func runMatrix(t *testing.T, cfg Config, np, nc, per, lo, hi int, put, get string, spin int) {
	t.Helper()
	q := newQueue(t, cfg)
	b := newBoard(t, np, per)
	var cons, prods []*testproc.Proc
	for range nc {
		cons = append(cons, startWith(t, q, b, "consumer", itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), get, itoa(spin)))
	}
	for id := range np {
		prods = append(prods, startWith(t, q, b, "producer", itoa(np), itoa(per), itoa(id), itoa(lo), itoa(hi), put, itoa(spin)))
	}
	// Watch the consumers while waiting for the producers: a consumer
	// that fails (a corrupt message, say) prints its error and exits, and
	// the producers then block on a full queue; report the consumer's
	// error, not the producers' silence.
	consLines, prodLines := make(chan procLine, nc), make(chan procLine, np)
	for _, c := range cons {
		watchLine(c, consLines)
	}
	for _, p := range prods {
		watchLine(p, prodLines)
	}
	for range prods {
		select {
		case l := <-prodLines:
			if l.fail != "" || l.line != "done" {
				t.Fatalf("producer: %q %s\n%s", l.line, l.fail, l.p.Stderr())
			}
		case l := <-consLines:
			t.Fatalf("consumer before the producers finished: %q %s\n%s", l.line, l.fail, l.p.Stderr())
		}
	}
	for _, p := range prods {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for range cons {
		l := <-consLines
		var n int
		if _, err := fmtSscanf(l.line, "got %d", &n); err != nil || l.fail != "" {
			t.Fatalf("consumer: %q %s\n%s", l.line, l.fail, l.p.Stderr())
		}
		total += n
	}
	for _, c := range cons {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if total != np*per {
		t.Fatalf("consumers got %d messages, want %d", total, np*per)
	}
	for i, c := range b.counts {
		if c != 1 {
			t.Fatalf("message %d/%d delivered %d times", i/per, i%per, c)
		}
	}
	s := q.Stats()
	if s.Puts != uint64(np*per) || s.Gets != uint64(np*per) || s.Lost != 0 || s.Skipped != 0 || s.Len != 0 || !s.Closed {
		t.Fatalf("stats %+v", s)
	}
	if _, err := q.Get(context.Background(), make([]byte, q.MaxMessage())); err != io.EOF {
		t.Fatalf("Get after drain = %v, want EOF", err)
	}
}

// procLine is the next line a helper printed, or why it printed none.
type procLine struct {
	p          *testproc.Proc
	line, fail string
}

// lineTB lets Proc.Line run on a goroutine other than the test's: its
// Fatalf records the failure (Line then returns "") instead of ending the
// goroutine, which only the test's own goroutine may do.
type lineTB struct {
	testing.TB // nil: Line calls only Helper and Fatalf
	fail       string
}

func (l *lineTB) Helper() {}

func (l *lineTB) Fatalf(format string, args ...any) { l.fail = fmt.Sprintf(format, args...) }

// watchLine reads p's next line on a goroutine of its own and sends it on ch.
func watchLine(p *testproc.Proc, ch chan<- procLine) {
	go func() {
		tb := &lineTB{}
		line := p.Line(tb)
		ch <- procLine{p: p, line: line, fail: tb.fail}
	}()
}

func TestCrossProcess(t *testing.T) {
	const per = 3000
	cases := []struct {
		name     string
		mode     Mode
		np, nc   int
		put, get string
		lo, hi   int
	}{
		{"1P1C/spsc", SPSC, 1, 1, "put", "get", 8, 200},
		{"1P1C/spsc/batch", SPSC, 1, 1, "batch", "batch", 8, 200},
		{"1P1C/spsc/zerocopy", SPSC, 1, 1, "reserve", "next", 8, 200},
		{"1P1C/spsc/append", SPSC, 1, 1, "put", "append", 8, 200},
		{"1P1C/mpmc", MPMC, 1, 1, "put", "get", 8, 200},
		{"4P1C", MPMC, 4, 1, "put", "get", 8, 200},
		{"1P4C", MPMC, 1, 4, "put", "next", 8, 200},
		{"4P4C", MPMC, 4, 4, "put", "get", 8, 200},
		{"4P4C/batch", MPMC, 4, 4, "batch", "batch", 8, 200},
		{"4P4C/zerocopy", MPMC, 4, 4, "reserve", "next", 8, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runMatrix(t, Config{Mode: c.mode, MaxMessage: 200, Capacity: 16}, c.np, c.nc, per, c.lo, c.hi, c.put, c.get, 100)
		})
	}
}

// TestSizes sends every size from 0 to the maximum, in both modes, through
// a ring small enough to wrap many times.
func TestSizes(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			const max = 1000
			runMatrix(t, Config{Mode: mode, MaxMessage: max, Capacity: 4}, 1, 1, 3*(max+1), 0, max, "put", "get", 100)
		})
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

func TestCloseDrainEOF(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 8})
			ctx := context.Background()
			for i := range 5 {
				if err := q.Put(ctx, []byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, []byte{9}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after CloseWrite = %v", err)
			}
			if _, err := q.Reserve(ctx, 1); !errors.Is(err, ErrClosed) {
				t.Fatalf("Reserve after CloseWrite = %v", err)
			}
			buf := make([]byte, 16)
			for i := range 5 {
				n, err := q.Get(ctx, buf)
				if err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatal(i, n, err)
				}
			}
			for range 2 {
				if _, err := q.Get(ctx, buf); err != io.EOF {
					t.Fatalf("Get after drain = %v", err)
				}
			}
			if _, _, err := q.TryGet(buf); err != io.EOF {
				t.Fatalf("TryGet after drain = %v", err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put on closed handle = %v", err)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 2})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := q.Get(ctx, make([]byte, 16)); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Get on empty = %v", err)
			}
			for {
				if ok, _ := q.TryPut([]byte("x")); !ok {
					break
				}
			}
			ctx2, cancel2 := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			var perr error
			go func() {
				defer wg.Done()
				perr = q.Put(ctx2, []byte("y"))
			}()
			for q.Stats().PutWaits == 0 {
			}
			cancel2()
			wg.Wait()
			if !errors.Is(perr, context.Canceled) {
				t.Fatalf("Put on full after cancel = %v", perr)
			}
			// The queue still works.
			buf := make([]byte, 16)
			if n, err := q.Get(context.Background(), buf); err != nil || string(buf[:n]) != "x" {
				t.Fatal(n, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 4})
			ctx := context.Background()
			if err := q.Put(ctx, make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Put too large = %v", err)
			}
			if err := q.Commit(0); !errors.Is(err, ErrPending) {
				t.Fatalf("Commit without Reserve = %v", err)
			}
			if err := q.Release(); !errors.Is(err, ErrPending) {
				t.Fatalf("Release without Next = %v", err)
			}
			if err := q.Put(ctx, []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Get(ctx, make([]byte, 3)); err != io.ErrShortBuffer {
				t.Fatalf("Get short = %v", err)
			}
			m, err := q.GetAppend(ctx, nil)
			if err != nil || string(m) != "0123456789" {
				t.Fatal(string(m), err)
			}
			if _, err := q.Reserve(ctx, 4); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, nil); !errors.Is(err, ErrPending) {
				t.Fatalf("Put during Reserve = %v", err)
			}
			if err := q.Close(); !errors.Is(err, ErrPending) {
				t.Fatalf("Close during Reserve = %v", err)
			}
			if err := q.Commit(5); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Commit past reservation = %v", err)
			}
			if err := q.Commit(2); err != nil {
				t.Fatal(err)
			}
			v, err := q.Next(ctx)
			if err != nil || len(v) != 2 {
				t.Fatal(v, err)
			}
			if _, err := q.Get(ctx, make([]byte, 16)); !errors.Is(err, ErrPending) {
				t.Fatalf("Get while holding = %v", err)
			}
			if err := q.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := SizeOf(Config{MaxMessage: -1}); !errors.Is(err, ErrConfig) {
				t.Fatalf("SizeOf bad config = %v", err)
			}
		})
	}
}

// TestSPSCRoles checks that a second live handle cannot take a role.
func TestSPSCRoles(t *testing.T) {
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 16})
	q2, err := OpenFile(context.Background(), q.File())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q.Put(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := q2.Put(context.Background(), []byte("b")); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer = %v", err)
	}
	n, err := q2.Get(context.Background(), make([]byte, 16))
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	// Released roles can be taken again.
	q.Close()
	if err := q2.Put(context.Background(), []byte("c")); err != nil {
		t.Fatal(err)
	}
}

func TestStatsAndLen(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 8})
		ctx := context.Background()
		msgs := [][]byte{[]byte("a"), []byte("bb"), []byte("ccc")}
		if n, err := q.PutBatch(ctx, msgs); n != 3 || err != nil {
			t.Fatal(n, err)
		}
		if q.Len() != 3 || q.Cap() < 8 || (mode == MPMC && q.Cap() != 8) {
			t.Fatalf("%v: Len %d Cap %d", mode, q.Len(), q.Cap())
		}
		dst := [][]byte{make([]byte, 8), make([]byte, 8)}
		if n, err := q.GetBatch(ctx, dst); n != 2 || err != nil || string(dst[1]) != "bb" {
			t.Fatal(n, err)
		}
		s := q.Stats()
		if s.Puts != 3 || s.Gets != 2 || s.Len != 1 {
			t.Fatalf("%v: %+v", mode, s)
		}
	}
}

func TestZeroCopyBatch(t *testing.T) {
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 8, Capacity: 8})
	ctx := context.Background()
	for i := range 4 {
		b, err := q.Reserve(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[0] = byte(i)
		if err := q.Commit(1); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		m, err := q.Next(ctx)
		if err != nil || len(m) != 1 || m[0] != byte(i) {
			t.Fatal(i, m, err)
		}
	}
	if _, ok, _ := q.TryNext(); ok {
		t.Fatal("TryNext on empty")
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Gets != 4 || s.Len != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestAllocs(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		q := newQueue(t, Config{Mode: mode, MaxMessage: 64, Capacity: 16})
		ctx := context.Background()
		msg := make([]byte, 64)
		buf := make([]byte, 64)
		allocs := testing.AllocsPerRun(1000, func() {
			if err := q.Put(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Get(ctx, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%v: Put+Get allocate %v times", mode, allocs)
		}
		msgs := [][]byte{msg, msg, msg, msg}
		bufs := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64), make([]byte, 64)}
		allocs = testing.AllocsPerRun(1000, func() {
			if n, err := q.PutBatch(ctx, msgs); n != len(msgs) || err != nil {
				t.Fatal(n, err)
			}
			for got := 0; got < len(msgs); {
				n, err := q.GetBatch(ctx, bufs[:len(msgs)-got])
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		})
		if allocs != 0 {
			t.Fatalf("%v: PutBatch+GetBatch allocate %v times", mode, allocs)
		}
	}
}

func TestPipeInProcess(t *testing.T) {
	a, b, err := Pipe(Config{MaxMessage: 32, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := a.Send(ctx, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	if n, err := b.Recv(ctx, buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatal(n, err)
	}
	if _, err := b.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 5)
	var got []byte
	for len(got) < 12 {
		n, err := a.Read(small)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, small[:n]...)
	}
	if string(got) != "hello, world" {
		t.Fatalf("%q", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(small); err != io.EOF {
		t.Fatalf("Read after peer Close = %v", err)
	}
	if err := b.Send(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after peer Close = %v", err)
	}
}

func init() {
	// pipe-echo: end 1 of the pipe on fd 3; echo every message until EOF.
	testproc.Register("pipe-echo", func(args []string) int {
		c, err := OpenPipeFile(context.Background(), osNewFile(3))
		if err != nil {
			return fail("open: %v", err)
		}
		testproc.Printf("ready")
		ctx := context.Background()
		buf := make([]byte, 0, 64)
		for {
			m, err := c.RecvAppend(ctx, buf[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("recv: %v", err)
			}
			if err := c.Send(ctx, m); err != nil {
				return fail("send: %v", err)
			}
			buf = m
		}
		if err := c.Close(); err != nil {
			return fail("close: %v", err)
		}
		return 0
	})
}

func TestPipeCrossProcess(t *testing.T) {
	c, err := NewPipe(Config{MaxMessage: 100, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := testproc.Command(t, "pipe-echo")
	cmd.ExtraFiles = []*osFile{c.File()}
	p := testproc.StartCmd(t, "pipe-echo", cmd)
	p.Expect(t, "ready")
	ctx := context.Background()
	// Message API: every size, in lockstep.
	buf := make([]byte, 100)
	for i := 0; i <= 100; i++ {
		m := bytes.Repeat([]byte{byte(i)}, i)
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		n, err := c.Recv(ctx, buf)
		if err != nil || !bytes.Equal(buf[:n], m) {
			t.Fatal(i, n, err)
		}
	}
	// Stream API: 200 KiB written in one go (split into messages) while
	// reading the echo with odd-sized reads.
	src := make([]byte, 200<<10)
	for i := range src {
		src[i] = byte(i * 7)
	}
	var werr atomic.Value
	go func() {
		if _, err := c.Write(src); err != nil {
			werr.Store(err)
		}
		c.CloseWrite()
	}()
	var got bytes.Buffer
	small := make([]byte, 37)
	for {
		n, err := c.Read(small)
		got.Write(small[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if werr.Load() != nil {
		t.Fatal(werr.Load())
	}
	if !bytes.Equal(got.Bytes(), src) {
		t.Fatalf("stream: got %d bytes, want %d (equal prefix %v)", got.Len(), len(src), strings.HasPrefix(got.String(), string(src[:min(got.Len(), len(src))])))
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var _ io.ReadWriteCloser = c
}

func init() {
	// pipe-die: end 1 on fd 3; send last words and wait to be killed.
	testproc.Register("pipe-die", func(args []string) int {
		c, err := OpenPipeFile(context.Background(), osNewFile(3))
		if err != nil {
			return fail("open: %v", err)
		}
		if err := c.Send(context.Background(), []byte("last words")); err != nil {
			return fail("send: %v", err)
		}
		testproc.Printf("ready")
		select {}
	})
}

func TestPipePeerDied(t *testing.T) {
	c, err := NewPipe(Config{MaxMessage: 16, Capacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := testproc.Command(t, "pipe-die")
	cmd.ExtraFiles = []*osFile{c.File()}
	p := testproc.StartCmd(t, "pipe-die", cmd)
	p.Expect(t, "ready")
	p.Kill()
	ctx := context.Background()
	buf := make([]byte, 16)
	if n, err := c.Recv(ctx, buf); err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("Recv = %q, %v", buf[:n], err)
	}
	if _, err := c.Recv(ctx, buf); !errors.Is(err, ErrPeerDied) {
		t.Fatalf("Recv from a dead peer = %v", err)
	}
	var serr error
	for serr == nil {
		serr = c.Send(ctx, buf)
	}
	if !errors.Is(serr, ErrPeerDied) {
		t.Fatalf("Send to a dead peer = %v", serr)
	}
}

func TestNamed(t *testing.T) {
	name := "ring-test-named-" + itoa(os.Getpid())
	ctx := context.Background()
	if _, err := Open(ctx, name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing queue = %v", err)
	}
	q, created, err := OpenOrCreate(ctx, name, Config{Mode: MPMC, MaxMessage: 32})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	defer Unlink(name)
	defer q.Close()
	q2, created, err := OpenOrCreate(ctx, name, Config{})
	if err != nil || created {
		t.Fatal(created, err)
	}
	defer q2.Close()
	if q2.Mode() != MPMC || q2.MaxMessage() != 32 || q2.Segment() == nil {
		t.Fatalf("reopened as %v/%d", q2.Mode(), q2.MaxMessage())
	}
	if _, err := Create(name, Config{}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create of an existing queue = %v", err)
	}
	if err := q.Put(ctx, []byte("named")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	if n, err := q2.Get(ctx, buf); err != nil || string(buf[:n]) != "named" {
		t.Fatal(n, err)
	}
}

// TestCorruptHeader checks that At refuses damaged headers.
func TestCorruptHeader(t *testing.T) {
	cfg := Config{MaxMessage: 16}
	size, _ := SizeOf(cfg)
	mem := alignedMem(size)
	if _, err := New(mem, cfg); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{offMagic, offMode, offMaxMsg, offCapacity, offChecksum} {
		bad := alignedMem(size)
		copy(bad, mem)
		bad[off] ^= 1
		if _, err := At(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("header byte %d flipped: At = %v", off, err)
		}
	}
	if _, err := At(mem[:100]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("At of short memory = %v", err)
	}
}

func TestReceive(t *testing.T) {
	q := newQueue(t, Config{MaxMessage: 16})
	fds, err := unixSocketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer a.Close()
	defer b.Close()
	if err := q.Segment().Send(a); err != nil {
		t.Fatal(err)
	}
	q2, err := Receive(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q.Put(context.Background(), []byte("fd")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := q2.Get(context.Background(), buf); err != nil || string(buf[:n]) != "fd" {
		t.Fatal(n, err)
	}
}

// TestSPSCModel drives one SPSC queue from one goroutine with a random
// mix of Put, TryPut, PutBatch, Reserve/Commit, Get, TryGet, GetBatch and
// Next/Release, of random sizes from 0 to the maximum and with some
// destination buffers too small, against a FIFO model: every message
// comes out once, intact and in order, and Len matches. The small ring
// wraps every few operations, so the batch fast paths meet pads, partial
// room and short buffers, and hand over to the general code.
func TestSPSCModel(t *testing.T) {
	const maxMsg = 100
	for seed := range int64(8) {
		q := newQueue(t, Config{Mode: SPSC, MaxMessage: maxMsg, Capacity: 4})
		q.SetSpin(0) // a full queue makes a call with a done ctx return at once
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		ctx := context.Background()
		done, cancel := context.WithCancel(ctx)
		cancel()
		var fifo [][]byte
		next := 0
		msg := func() []byte {
			m := make([]byte, rng.IntN(maxMsg+1))
			for i := range m {
				m[i] = byte(next*7 + i)
			}
			next++
			return m
		}
		take := func(got []byte, op string) {
			t.Helper()
			if len(fifo) == 0 {
				t.Fatalf("seed %d: %s returned a message from an empty model", seed, op)
			}
			if !bytes.Equal(got, fifo[0]) {
				t.Fatalf("seed %d: %s got %d bytes %x, want %d bytes %x", seed, op, len(got), got, len(fifo[0]), fifo[0])
			}
			fifo = fifo[1:]
		}
		for range 4000 {
			switch op := rng.IntN(8); op {
			case 0, 1: // TryPut (never blocks in one goroutine)
				m := msg()
				ok, err := q.TryPut(m)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					fifo = append(fifo, m)
				} else {
					next--
				}
			case 2: // PutBatch with a done ctx: it puts what fits
				batch := make([][]byte, rng.IntN(6)+1)
				for i := range batch {
					batch[i] = msg()
				}
				n, err := q.PutBatch(done, batch)
				if n < 0 || n > len(batch) || (n == len(batch)) != (err == nil) || (err != nil && err != context.Canceled) {
					t.Fatalf("seed %d: PutBatch(%d) = %d, %v", seed, len(batch), n, err)
				}
				fifo = append(fifo, batch[:n]...)
				next -= len(batch) - n
			case 3: // Reserve/Commit with a done ctx
				m := msg()
				b, err := q.Reserve(done, maxMsg)
				if err == context.Canceled {
					next--
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				copy(b, m)
				if err := q.Commit(len(m)); err != nil {
					t.Fatal(err)
				}
				fifo = append(fifo, m)
			case 4: // TryGet
				buf := make([]byte, rng.IntN(maxMsg+1))
				n, ok, err := q.TryGet(buf)
				switch {
				case err == io.ErrShortBuffer:
					if len(fifo) == 0 || len(fifo[0]) <= len(buf) {
						t.Fatalf("seed %d: ErrShortBuffer with %d bytes for %v", seed, len(buf), fifo[:min(1, len(fifo))])
					}
				case err != nil:
					t.Fatal(err)
				case ok:
					take(buf[:n], "TryGet")
				case len(fifo) != 0:
					t.Fatalf("seed %d: TryGet found nothing, model has %d", seed, len(fifo))
				}
			case 5: // GetBatch, with a done ctx: the model is not empty
				if len(fifo) == 0 {
					continue
				}
				dst := make([][]byte, rng.IntN(8)+1)
				for i := range dst {
					dst[i] = make([]byte, 0, maxMsg-rng.IntN(maxMsg/4))
				}
				n, err := q.GetBatch(done, dst)
				if err == io.ErrShortBuffer {
					if n != 0 || len(fifo[0]) <= cap(dst[0]) {
						t.Fatalf("seed %d: GetBatch = %d, ErrShortBuffer for %d bytes in %d", seed, n, len(fifo[0]), cap(dst[0]))
					}
					continue
				}
				if err != nil || n == 0 {
					t.Fatalf("seed %d: GetBatch = %d, %v", seed, n, err)
				}
				for _, m := range dst[:n] {
					take(m, "GetBatch")
				}
				// It stops early only at an empty ring or a message
				// that does not fit.
				if n < len(dst) && len(fifo) > 0 && len(fifo[0]) <= cap(dst[n]) {
					t.Fatalf("seed %d: GetBatch took %d of %d with %d more queued", seed, n, len(dst), len(fifo))
				}
			case 6: // Next..., Release
				for range rng.IntN(4) + 1 {
					m, ok, err := q.TryNext()
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					take(m, "TryNext")
				}
				if err := q.Release(); err != nil && err != ErrPending {
					t.Fatal(err)
				}
			case 7:
				if q.Len() != len(fifo) {
					t.Fatalf("seed %d: Len %d, model %d", seed, q.Len(), len(fifo))
				}
			}
		}
		if s := q.Stats(); s.Puts != s.Gets+uint64(len(fifo)) {
			t.Fatalf("seed %d: stats %+v with %d queued", seed, s, len(fifo))
		}
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
