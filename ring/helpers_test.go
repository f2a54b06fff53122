package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// Messages in the cross-process tests: producer id and sequence number in
// the first 8 bytes (when the message is long enough), then bytes that are
// a function of (id, seq, index), so that any corruption, mix-up or tear
// shows. msgLen picks a length in [lo, hi] from (id, seq).

func msgLen(id, seq, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + (seq*7919+id*104729)%(hi-lo+1)
}

func fillMsg(b []byte, id, seq int) {
	if len(b) >= 8 {
		binary.LittleEndian.PutUint32(b, uint32(id))
		binary.LittleEndian.PutUint32(b[4:], uint32(seq))
	}
	for j := min(8, len(b)); j < len(b); j++ {
		b[j] = byte(id*31 + seq*7 + j)
	}
}

// checkMsg returns the id and sequence number carried by b (or, for a
// message shorter than 8 bytes, the ones given), verifying every byte.
func checkMsg(b []byte, id, seq, lo, hi int) (int, int, error) {
	if len(b) >= 8 {
		id = int(binary.LittleEndian.Uint32(b))
		seq = int(binary.LittleEndian.Uint32(b[4:]))
	}
	if want := msgLen(id, seq, lo, hi); len(b) != want {
		return id, seq, fmt.Errorf("message %d/%d has %d bytes, want %d", id, seq, len(b), want)
	}
	for j := min(8, len(b)); j < len(b); j++ {
		if b[j] != byte(id*31+seq*7+j) {
			return id, seq, fmt.Errorf("message %d/%d: byte %d corrupt", id, seq, j)
		}
	}
	return id, seq, nil
}

// board is a scoreboard in shared memory: one uint32 per (producer, seq)
// counting deliveries, one uint64 per producer holding how many of its
// Puts returned nil (acknowledged), and a flag word the parent raises to
// tell helpers something: 1 asks the "hold" consumer to hold the next
// message, and the other consumers to take none meanwhile (otherwise they
// may take every message left, the hold consumer losing each race for
// them, and it would wait for ever); the hold consumer sets 2 once it
// holds one.
type board struct {
	seg     *shm.Segment
	np, per int
	counts  []uint32
	acked   []uint64
	flag    *uint32
}

func newBoard(tb testing.TB, np, per int) *board {
	tb.Helper()
	seg, err := shm.CreateAnonymous(np*8 + np*per*4 + 8)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { seg.Close() })
	return boardOf(seg, np, per)
}

func boardOf(seg *shm.Segment, np, per int) *board {
	b := seg.Bytes()
	return &board{
		seg:    seg,
		np:     np,
		per:    per,
		acked:  unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), np),
		counts: unsafe.Slice((*uint32)(unsafe.Pointer(&b[np*8])), np*per),
		flag:   (*uint32)(unsafe.Pointer(&b[np*8+np*per*4])),
	}
}

// deliver counts one delivery; atomic because consumers in several
// processes count concurrently.
func (b *board) deliver(id, seq int) error {
	if id < 0 || id >= b.np || seq < 0 || seq >= b.per {
		return fmt.Errorf("message %d/%d out of range", id, seq)
	}
	atomic.AddUint32(&b.counts[id*b.per+seq], 1)
	return nil
}

func (b *board) ack(id, n int) { atomic.StoreUint64(&b.acked[id], uint64(n)) }

// allAcked reports whether every producer acknowledged all its messages.
func (b *board) allAcked() bool {
	for i := range b.acked {
		if atomic.LoadUint64(&b.acked[i]) != uint64(b.per) { // atomic: producers store it
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func fail(format string, args ...any) int {
	testproc.Printf("error: "+format, args...)
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return 1
}

// openChild attaches a helper to the queue on fd 3 and the board on fd 4.
// childQueueFile returns a helper's descriptor 3, the queue, as one
// *os.File kept for the process's life: OpenFile leaves the file the
// caller's, and a second os.NewFile(3) for a reopen after the first was
// garbage-collected (its finalizer closing descriptor 3) would find
// nothing there.
var childQueueFile = sync.OnceValue(func() *os.File { return os.NewFile(3, "queue") })

func openChild(np, per int) (*Queue, *board, error) {
	ctx := context.Background()
	q, err := OpenFile(ctx, childQueueFile())
	if err != nil {
		return nil, nil, err
	}
	seg, err := shm.OpenFile(ctx, os.NewFile(4, "board"))
	if err != nil {
		return nil, nil, err
	}
	return q, boardOf(seg, np, per), nil
}

func init() {
	// producer NP PER id lo hi how spin [killat [stop]]: put PER
	// messages; print "kill-me" before message killat, or with stop, stop
	// for ever inside its Put once the slot is claimed (MPMC), printing
	// "at put-claimed". A how ending in "+x" (for both producer and
	// consumer) makes the handle SetExclusive; one ending in "+nap" (then
	// "+x", if both) makes it nap (SetNap(helperNap, helperNapBudget)).
	testproc.Register("producer", func(args []string) int {
		np, per, id, lo, hi, how, spin := atoi(args[0]), atoi(args[1]), atoi(args[2]), atoi(args[3]), atoi(args[4]), args[5], atoi(args[6])
		killAt := -1
		if len(args) > 7 {
			killAt = atoi(args[7])
		}
		stop := len(args) > 8 && args[8] == "stop"
		how, exclusive := strings.CutSuffix(how, "+x")
		how, nap := strings.CutSuffix(how, "+nap")
		q, b, err := openChild(np, per)
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(spin)
		if exclusive {
			q.SetExclusive()
		}
		if nap {
			q.SetNap(helperNap, helperNapBudget)
		}
		ctx := context.Background()
		testproc.Printf("ready")
		buf := make([]byte, q.MaxMessage())
		const batch = 8
		bufs := make([][]byte, batch)
		for seq := 0; seq < per; {
			if seq == killAt && stop {
				testHook = func(point string) {
					if point == "put-claimed" {
						testproc.Printf("at put-claimed")
						stopForever()
					}
				}
			} else if killAt >= 0 && seq >= killAt {
				// (A batch may step over killAt: the first seq past it.)
				testproc.Printf("kill-me")
				killAt = -1
			}
			switch how {
			case "put":
				m := buf[:msgLen(id, seq, lo, hi)]
				fillMsg(m, id, seq)
				if err := q.Put(ctx, m); err != nil {
					return fail("put %d: %v", seq, err)
				}
				seq++
			case "reserve":
				n := msgLen(id, seq, lo, hi)
				m, err := q.Reserve(ctx, q.MaxMessage())
				if err != nil {
					return fail("reserve %d: %v", seq, err)
				}
				fillMsg(m[:n], id, seq)
				if err := q.Commit(n); err != nil {
					return fail("commit %d: %v", seq, err)
				}
				seq++
			case "batch":
				k := min(batch, per-seq)
				for j := range k {
					bufs[j] = make([]byte, msgLen(id, seq+j, lo, hi))
					fillMsg(bufs[j], id, seq+j)
				}
				n, err := q.PutBatch(ctx, bufs[:k])
				if err != nil || n != k {
					return fail("putbatch %d: %d, %v", seq, n, err)
				}
				seq += k
			}
			b.ack(id, seq)
		}
		testproc.Printf("done")
		return 0
	})

	// consumer NP NC PER lo hi how spin [killat]: take messages until
	// EOF, count them on the board, check every byte and per-producer
	// order (and, with one producer and one consumer, that none is missing).
	// With how "hold" it takes them with Next like "next" until the board's
	// flag is raised, and then holds the next message for ever without
	// counting it, printing "holding ID SEQ".
	testproc.Register("consumer", func(args []string) int {
		np, nc, per, lo, hi, how, spin := atoi(args[0]), atoi(args[1]), atoi(args[2]), atoi(args[3]), atoi(args[4]), args[5], atoi(args[6])
		killAt := -1
		if len(args) > 7 {
			killAt = atoi(args[7])
		}
		how, exclusive := strings.CutSuffix(how, "+x")
		how, nap := strings.CutSuffix(how, "+nap")
		q, b, err := openChild(np, per)
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(spin)
		if exclusive {
			q.SetExclusive()
		}
		if nap {
			q.SetNap(helperNap, helperNapBudget)
		}
		ctx := context.Background()
		testproc.Printf("ready")
		last := make([]int, np)
		for i := range last {
			last[i] = -1
		}
		got := 0
		take := func(m []byte) error {
			if got == killAt {
				testproc.Printf("kill-me")
			}
			id, seq, err := checkMsg(m, 0, got, lo, hi)
			if err != nil {
				return err
			}
			if id < 0 || id >= np || seq <= last[id] {
				return fmt.Errorf("message %d/%d after %d: order", id, seq, last[max(0, min(id, np-1))])
			}
			if np == 1 && nc == 1 && seq != last[id]+1 {
				return fmt.Errorf("message %d/%d after %d: gap", id, seq, last[id])
			}
			last[id] = seq
			got++
			return b.deliver(id, seq)
		}
		if how == "retry" {
			// A replacement: the participant table may be full until a
			// dead participant's entry is recovered.
			for {
				var m []byte
				var ok bool
				m, ok, err = q.TryNext()
				if !errors.Is(err, ErrBusy) {
					if ok {
						err = take(m)
						q.Release()
					}
					break
				}
				q.Close()
				if q, err = OpenFile(context.Background(), childQueueFile()); err != nil {
					return fail("reopen: %v", err)
				}
				q.SetSpin(spin)
			}
			if err != nil && err != io.EOF {
				return fail("replacement: %v", err)
			}
			how = "next"
		}
		buf := make([]byte, q.MaxMessage())
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, q.MaxMessage())
		}
		// poll runs get; for a victim that may never get killAt messages
		// (others may take them all) it polls, and once every producer is
		// done asks to be killed anyway. It reports false when get timed
		// out and the loop should go round again.
		poll := func(get func(ctx context.Context) error) bool {
			if killAt < got {
				_ = get(ctx)
				return true
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			err := get(pctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				return true
			}
			if b.allAcked() {
				testproc.Printf("kill-me")
				killAt = -1
			}
			return false
		}
		for {
			for how != "hold" && atomic.LoadUint32(b.flag) == 1 { // atomic: see board
				time.Sleep(50 * time.Microsecond)
			}
			var err error
			switch how {
			case "get":
				var n int
				if n, err = q.Get(ctx, buf); err == nil {
					err = take(buf[:n])
				}
			case "append":
				var m []byte
				if m, err = q.GetAppend(ctx, buf[:0]); err == nil {
					err = take(m)
				}
			case "hold":
				if atomic.LoadUint32(b.flag) != 0 { // atomic: raised by the parent
					m, err := q.Next(ctx)
					if err != nil {
						return fail("hold: %v", err)
					}
					atomic.StoreUint32(b.flag, 2) // atomic: the others take messages again
					id, seq, err := checkMsg(m, 0, got, lo, hi)
					if err != nil {
						return fail("hold: %v", err)
					}
					testproc.Printf("holding %d %d", id, seq)
					stopForever()
				}
				var m []byte
				if m, err = q.Next(ctx); err == nil {
					err = take(m)
					if rerr := q.Release(); err == nil {
						err = rerr
					}
				}
			case "next":
				var m []byte
				if !poll(func(ctx context.Context) error { m, err = q.Next(ctx); return err }) {
					continue
				}
				if err == nil {
					err = take(m)
					if rerr := q.Release(); err == nil {
						err = rerr
					}
				}
			case "batch":
				var n int
				if !poll(func(ctx context.Context) error { n, err = q.GetBatch(ctx, bufs); return err }) {
					continue
				}
				if err == nil {
					for i := 0; i < n && err == nil; i++ {
						err = take(bufs[i])
					}
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("consumer after %d: %v", got, err)
			}
		}
		testproc.Printf("got %d", got)
		return 0
	})
}

// startWith starts helper name with the queue on fd 3 and the board on fd 4.
func startWith(tb testing.TB, q *Queue, b *board, name string, args ...string) *testproc.Proc {
	tb.Helper()
	cmd := testproc.Command(tb, name, args...)
	cmd.ExtraFiles = []*os.File{q.File(), b.seg.File()}
	p := testproc.StartCmd(tb, name, cmd)
	p.Expect(tb, "ready")
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }

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
