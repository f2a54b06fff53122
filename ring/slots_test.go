package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// slotMsg is the value the Slots tests move: a sequence number and a
// check word derived from it, so that a torn or misplaced slot shows.
type slotMsg struct {
	Seq   uint64
	Check uint64
	Pad   [6]uint64 // 64 bytes in all: one slot a cache line
}

func mkSlot(seq uint64) slotMsg {
	m := slotMsg{Seq: seq, Check: seq*0x9E3779B97F4A7C15 ^ 0xD1B54A32D192ED03}
	for i := range m.Pad {
		m.Pad[i] = seq + uint64(i)
	}
	return m
}

func (m slotMsg) ok(seq uint64) bool { return m == mkSlot(seq) }

func newSlots(tb testing.TB, capacity int) (*Typed[slotMsg], *Queue) {
	tb.Helper()
	cfg, err := TypedConfig[slotMsg](Config{Mode: Slots, Capacity: capacity})
	if err != nil {
		tb.Fatal(err)
	}
	q := newQueue(tb, cfg)
	tq, err := NewTyped[slotMsg](q)
	if err != nil {
		tb.Fatal(err)
	}
	return tq, q
}

// TestSlotsModel runs random sequences of every Put-side and Get-side
// call, typed and untyped, on a small Slots queue (so that every call
// meets the wrap, a full ring and an empty one) against a model: every
// value comes out once, in order, intact, and Len and Stats agree.
func TestSlotsModel(t *testing.T) {
	ctx := context.Background()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	for _, capacity := range []int{2, 4, 16} {
		tq, q := newSlots(t, capacity)
		var put, got uint64 // the model: values put and taken
		raw := make([]byte, 64)
		for step := 0; step < 20000; step++ {
			free := uint64(q.Cap()) - (put - got)
			switch op := rng.IntN(10); op {
			case 0: // typed TryPut
				ok, err := tq.TryPut(mkSlot(put))
				if err != nil || ok != (free > 0) {
					t.Fatalf("TryPut with %d free = %v, %v", free, ok, err)
				}
				if ok {
					put++
				}
			case 1: // typed PutBatch of what fits
				n := rng.Uint64N(free + 1)
				vs := make([]slotMsg, n)
				for i := range vs {
					vs[i] = mkSlot(put + uint64(i))
				}
				if k, err := tq.PutBatch(ctx, vs); k != int(n) || err != nil {
					t.Fatalf("PutBatch(%d) = %d, %v", n, k, err)
				}
				put += n
			case 2: // untyped Put, Reserve/Commit, PutBatch
				if free == 0 {
					continue
				}
				m := mkSlot(put)
				b := bytesOf(&m, 64)
				switch rng.IntN(3) {
				case 0:
					if err := q.Put(ctx, b); err != nil {
						t.Fatal(err)
					}
				case 1:
					r, err := q.Reserve(ctx, 64)
					if err != nil || len(r) != 64 {
						t.Fatal(len(r), err)
					}
					copy(r, b)
					if err := q.Commit(64); err != nil {
						t.Fatal(err)
					}
				case 2:
					if k, err := q.PutBatch(ctx, [][]byte{b}); k != 1 || err != nil {
						t.Fatal(k, err)
					}
				}
				put++
			case 3: // typed TryGet
				v, ok, err := tq.TryGet()
				if err != nil || ok != (put > got) || ok && !v.ok(got) {
					t.Fatalf("TryGet with %d queued = %+v, %v, %v", put-got, v, ok, err)
				}
				if ok {
					got++
				}
			case 4: // typed GetBatch
				if put == got {
					continue
				}
				dst := make([]slotMsg, 1+rng.IntN(2*capacity))
				k, err := tq.GetBatch(ctx, dst)
				if err != nil || uint64(k) != min(put-got, uint64(len(dst))) {
					t.Fatalf("GetBatch(%d) with %d queued = %d, %v", len(dst), put-got, k, err)
				}
				for i := range k {
					if !dst[i].ok(got + uint64(i)) {
						t.Fatalf("GetBatch value %d = %+v", got+uint64(i), dst[i])
					}
				}
				got += uint64(k)
			case 5: // untyped Get, GetAppend, GetBatch
				if put == got {
					continue
				}
				var b []byte
				switch rng.IntN(3) {
				case 0:
					n, err := q.Get(ctx, raw)
					if err != nil || n != 64 {
						t.Fatal(n, err)
					}
					b = raw
				case 1:
					var err error
					if b, err = q.GetAppend(ctx, raw[:0]); err != nil || len(b) != 64 {
						t.Fatal(len(b), err)
					}
				case 2:
					dst := [][]byte{make([]byte, 64), make([]byte, 64)}
					k, err := q.GetBatch(ctx, dst)
					if err != nil || uint64(k) != min(put-got, 2) {
						t.Fatal(k, err)
					}
					if k == 2 {
						if m := slotOf(dst[1]); !m.ok(got + 1) {
							t.Fatalf("GetBatch message %d = %+v", got+1, m)
						}
					}
					got += uint64(k) - 1
					b = dst[k-1]
				}
				if m := slotOf(b); !m.ok(got) {
					t.Fatalf("Get message %d = %+v", got, m)
				}
				got++
			case 6: // Next several times, then Release
				n := rng.Uint64N(put - got + 1)
				for i := range n {
					b, ok, err := q.TryNext()
					if !ok || err != nil || len(b) != 64 {
						t.Fatal(ok, err)
					}
					if m := slotOf(b); !m.ok(got+i) || q.Position() != got+i {
						t.Fatalf("Next %d = %+v at position %d", got+i, m, q.Position())
					}
				}
				if n > 0 {
					if _, err := q.Get(ctx, raw); err != ErrPending {
						t.Fatalf("Get while holding = %v", err)
					}
					if err := q.Close(); err != ErrPending {
						t.Fatalf("Close while holding = %v", err)
					}
					if err := q.Release(); err != nil {
						t.Fatal(err)
					}
					got += n
				} else if err := q.Release(); err != ErrPending {
					t.Fatalf("Release holding nothing = %v", err)
				}
			default: // typed Put and Get while there is room / a value
				if free > 0 {
					if err := tq.Put(ctx, mkSlot(put)); err != nil {
						t.Fatal(err)
					}
					put++
				} else {
					v, err := tq.Get(ctx)
					if err != nil || !v.ok(got) {
						t.Fatal(v, err)
					}
					got++
				}
			}
			if q.Len() != int(put-got) {
				t.Fatalf("Len = %d, want %d", q.Len(), put-got)
			}
			if s := q.Stats(); s.Puts != put || s.Gets != got || s.Cap != q.Cap() {
				t.Fatalf("Stats %+v, want %d puts, %d gets", s, put, got)
			}
		}
		if wp, err := q.WritePosition(); err != nil || wp != put {
			t.Fatalf("WritePosition = %d, %v, want %d", wp, err, put)
		}
		// Drain, close, EOF.
		if err := q.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if err := tq.Put(ctx, mkSlot(put)); err != ErrClosed {
			t.Fatalf("Put after CloseWrite = %v", err)
		}
		for got < put {
			if v, err := tq.Get(ctx); err != nil || !v.ok(got) {
				t.Fatal(v, err)
			}
			got++
		}
		if _, err := tq.Get(ctx); err != io.EOF {
			t.Fatalf("Get at the end = %v", err)
		}
		if k, err := tq.GetBatch(ctx, make([]slotMsg, 4)); k != 0 || err != io.EOF {
			t.Fatalf("GetBatch at the end = %d, %v", k, err)
		}
	}
}

func slotOf(b []byte) (m slotMsg) {
	copy(bytesOf(&m, 64), b)
	return m
}

// TestSlotsErrors: what a Slots queue refuses, each with its error, and
// nothing lost by a refused call.
func TestSlotsErrors(t *testing.T) {
	ctx := context.Background()
	var ce *ConfigError
	if _, err := SizeOf(Config{Mode: Slots, MaxMessage: 64}); !errors.As(err, &ce) || ce.Field != "Type" {
		t.Fatalf("an untyped Slots queue = %v", err)
	}
	tq, q := newSlots(t, 4)
	if q.Mode() != Slots || q.Mode().String() != "slots" || q.Cap() != 4 {
		t.Fatalf("mode %v, cap %d", q.Mode(), q.Cap())
	}
	var se *SizeError
	if err := q.Put(ctx, make([]byte, 8)); !errors.As(err, &se) || se.Want != 64 {
		t.Fatalf("Put of 8 bytes = %v", err)
	}
	if _, err := q.Reserve(ctx, 63); !errors.As(err, &se) {
		t.Fatalf("Reserve(63) = %v", err)
	}
	good := mkSlot(0)
	if k, err := q.PutBatch(ctx, [][]byte{bytesOf(&good, 64), make([]byte, 3)}); k != 1 || !errors.As(err, &se) {
		t.Fatalf("PutBatch with a short message = %d, %v", k, err)
	}
	if _, err := q.Reserve(ctx, 64); err != nil {
		t.Fatal(err)
	}
	if err := tq.Put(ctx, mkSlot(1)); err != ErrPending {
		t.Fatalf("Put while reserved = %v", err)
	}
	if err := q.Commit(65); err == nil {
		t.Fatal("Commit(65) succeeded")
	}
	if err := q.Close(); err != ErrPending {
		t.Fatalf("Close while reserved = %v", err)
	}
	copy(q.slotBytes(1), bytesOf(&[]slotMsg{mkSlot(1)}[0], 64))
	if err := q.Commit(64); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Get(ctx, make([]byte, 63)); err != io.ErrShortBuffer || n != 0 {
		t.Fatalf("Get into 63 bytes = %d, %v", n, err)
	}
	if k, err := q.GetBatch(ctx, [][]byte{make([]byte, 0, 8)}); k != 0 || err != io.ErrShortBuffer {
		t.Fatalf("GetBatch into 8 bytes = %d, %v", k, err)
	}
	for i := range uint64(2) {
		if v, err := tq.Get(ctx); err != nil || !v.ok(i) {
			t.Fatalf("value %d = %+v, %v (nothing lost by the refused calls)", i, v, err)
		}
	}
	// A second producer and a second consumer are busy while this one lives.
	q2, err := OpenFile(ctx, q.File())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	var be *BusyError
	if err := q2.Put(ctx, bytesOf(&good, 64)); !errors.As(err, &be) || be.Role != "producer" {
		t.Fatalf("second producer = %v", err)
	}
	if _, _, err := q2.TryGet(make([]byte, 64)); !errors.As(err, &be) || be.Role != "consumer" {
		t.Fatalf("second consumer = %v", err)
	}
	// Deadline while empty, nil and done contexts.
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := tq.Get(dctx); err != context.DeadlineExceeded {
		t.Fatalf("Get on an empty queue past its deadline = %v", err)
	}
	done, cancel2 := context.WithCancel(ctx)
	cancel2()
	if _, err := tq.GetBatch(done, make([]slotMsg, 2)); err != context.Canceled {
		t.Fatalf("GetBatch with a done ctx = %v", err)
	}
	if _, err := tq.PutBatch(done, make([]slotMsg, 5)); err != context.Canceled {
		t.Fatalf("PutBatch past the capacity with a done ctx = %v", err)
	}
	if q.Len() != 4 {
		t.Fatalf("Len = %d after filling", q.Len())
	}
	// Close gives the roles back: the other handle takes them.
	for range 4 {
		if _, err := tq.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := tq.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q2.Put(ctx, bytesOf(&good, 64)); err != nil {
		t.Fatalf("Put after the first handle closed = %v", err)
	}
	if err := tq.Put(ctx, good); err != ErrClosed {
		t.Fatalf("Put on a closed handle = %v", err)
	}
	// The Python peer and other versions: the format records the mode.
	if _, err := NewTyped[[32]byte](q2); !errors.Is(err, ErrType) {
		t.Fatalf("NewTyped with another type = %v", err)
	}
}

// TestSlotsCorrupt: a head or tail that no peer could have stored is
// ErrCorrupt for every call that reads it, never a panic or a wrong value.
func TestSlotsCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name       string
		head, tail uint64
	}{
		{"tail past the capacity", 0, 9},
		{"head past the tail", 5, 3},
		{"huge tail", 0, 1 << 63},
	} {
		t.Run(c.name, func(t *testing.T) {
			tq, q := newSlots(t, 8)
			atomic.StoreUint64(q.head, c.head)
			atomic.StoreUint64(q.tail, c.tail)
			if err := tq.Put(ctx, mkSlot(0)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Put = %v", err)
			}
			if _, err := tq.Get(ctx); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get = %v", err)
			}
		})
	}
	// A tail moved backwards under a running consumer.
	tq, q := newSlots(t, 8)
	for i := range uint64(3) {
		if err := tq.Put(ctx, mkSlot(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(3) {
		if v, err := tq.Get(ctx); err != nil || !v.ok(i) {
			t.Fatal(v, err)
		}
	}
	atomic.StoreUint64(q.tail, 1)
	if _, ok, err := tq.TryGet(); ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TryGet after the tail went back = %v, %v", ok, err)
	}
}

func init() {
	// slots-produce: put the values from WritePosition on into the Slots
	// queue on fd 3 until n are put in all (positions 0..n-1), with Put
	// and PutBatch mixed, spinning or not (spin), printing "ready" first.
	testproc.Register("slots-produce", func(args []string) int {
		n, spin, pace := uint64(atoi(args[0])), atoi(args[1]), len(args) > 2
		q, err := OpenFile(context.Background(), os.NewFile(3, "queue"))
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(spin)
		tq, err := NewTyped[slotMsg](q)
		if err != nil {
			return fail("typed: %v", err)
		}
		pos, err := q.WritePosition()
		if err != nil {
			return fail("write position: %v", err)
		}
		testproc.Printf("ready")
		rng := rand.New(rand.NewPCG(pos, 3))
		batch := make([]slotMsg, 0, 64)
		for next := pos + 1024; pos < n; {
			if pace && pos >= next {
				// Paced (the kill test): a run that lasts long enough
				// for every kill to land in it.
				time.Sleep(50 * time.Microsecond)
				next = pos + 1024
			}
			if rng.IntN(2) == 0 {
				if err := tq.Put(context.Background(), mkSlot(pos)); err != nil {
					return fail("put %d: %v", pos, err)
				}
				pos++
				continue
			}
			batch = batch[:0]
			for k := min(1+rng.Uint64N(64), n-pos); k > 0; k-- {
				batch = append(batch, mkSlot(pos+uint64(len(batch))))
			}
			k, err := tq.PutBatch(context.Background(), batch)
			if err != nil {
				return fail("put batch at %d: %d, %v", pos, k, err)
			}
			pos += uint64(k)
		}
		testproc.Printf("done")
		return 0
	})
	// slots-consume: take values from the Slots queue on fd 3 until EOF,
	// checking each against its position, and mark each on the board on
	// fd 4 (producer 0, sequence = position) before releasing it
	// (Next/Release), so that a consumer killed after marking and before
	// releasing delivers that value again to its successor: at least once.
	//
	// With a third argument "get" it takes them with Typed's Get and
	// GetBatch instead and marks them after: a consumer killed between
	// taking and marking leaves them unmarked, and none is delivered
	// again.
	testproc.Register("slots-consume", func(args []string) int {
		n, spin := atoi(args[0]), atoi(args[1])
		q, b, err := openChild(1, n)
		if err != nil {
			return fail("open: %v", err)
		}
		q.SetSpin(spin)
		testproc.Printf("ready")
		if len(args) > 2 && args[2] == "get" {
			return slotsConsumeGet(q, b, n)
		}
		for {
			msg, err := q.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("next: %v", err)
			}
			pos := q.Position()
			var m slotMsg
			copy(bytesOf(&m, 64), msg)
			if !m.ok(pos) || pos >= uint64(n) {
				return fail("value at %d = %+v", pos, m)
			}
			if err := b.deliver(0, int(pos)); err != nil {
				return fail("%v", err)
			}
			if err := q.Release(); err != nil {
				return fail("release: %v", err)
			}
		}
		testproc.Printf("eof")
		return 0
	})
}

// slotsConsumeGet is slots-consume with Get and GetBatch.
func slotsConsumeGet(q *Queue, b *board, n int) int {
	tq, err := NewTyped[slotMsg](q)
	if err != nil {
		return fail("typed: %v", err)
	}
	dst := make([]slotMsg, 40)
	for i := 0; ; i++ {
		k := 1
		if i%2 == 0 {
			dst[0], err = tq.Get(context.Background())
		} else {
			k, err = tq.GetBatch(context.Background(), dst)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail("get: %v", err)
		}
		for _, m := range dst[:k] {
			if m != mkSlot(m.Seq) || m.Seq >= uint64(n) {
				return fail("value %+v", m)
			}
			if err := b.deliver(0, int(m.Seq)); err != nil {
				return fail("%v", err)
			}
		}
	}
	testproc.Printf("eof")
	return 0
}

// TestSlotsCrossProcess: a producer process and a consumer process (this
// one), spinning and sleeping, with a ring much smaller than the run, so
// both sides wait on each other many times: every value arrives once, in
// order, intact.
func TestSlotsCrossProcess(t *testing.T) {
	for _, spin := range []int{-1, 0, 100} {
		t.Run("spin"+itoa(spin), func(t *testing.T) {
			const n = 200000
			tq, q := newSlots(t, 64)
			q.SetSpin(spin)
			cmd := testproc.Command(t, "slots-produce", itoa(n), itoa(spin))
			cmd.ExtraFiles = []*os.File{q.File()}
			p := testproc.StartCmd(t, "slots-produce", cmd)
			p.Expect(t, "ready")
			ctx := context.Background()
			dst := make([]slotMsg, 50)
			for got := uint64(0); got < n; {
				var k int
				if got%3 == 0 {
					v, err := tq.Get(ctx)
					if err != nil {
						t.Fatal(err)
					}
					dst[0], k = v, 1
				} else {
					var err error
					if k, err = tq.GetBatch(ctx, dst); err != nil {
						t.Fatal(err)
					}
				}
				for i := range k {
					if !dst[i].ok(got) {
						t.Fatalf("value %d = %+v", got, dst[i])
					}
					got++
				}
			}
			p.Expect(t, "done")
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			s := q.Stats()
			t.Logf("puts %d gets %d, producer slept %d times, consumer %d", s.Puts, s.Gets, s.PutWaits, s.GetWaits)
			if s.Puts != n || s.Gets != n || s.Len != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// TestSlotsKill SIGKILLs the producer and the consumer processes of a
// Slots queue at random instants and starts new ones, which take the
// roles over from the dead: the producer resumes at WritePosition, so no
// value is skipped or put twice. Consumers alternate between the two
// ways of slots-consume: with Next/Release every value reaches a
// consumer, one being delivered again only when its consumer was killed
// between marking it and releasing it (at most one per consumer killed);
// with Get and GetBatch none is delivered twice (a Get-side call releases
// what it took before it returns, and the successor starts at the head
// released), and a value goes
// unmarked only when its consumer was killed after taking it (at most a
// batch per consumer killed).
func TestSlotsKill(t *testing.T) {
	killIterations(t, 4, 20, 5, func(rng *rand.Rand, it int) {
		get := it%2 == 1
		const n = 1 << 20
		_, q := newSlots(t, 256)
		b := newBoard(t, 1, n)
		spin := []int{-1, 0, 200}[it%3]
		prod := func() *testproc.Proc { return startWith(t, q, b, "slots-produce", itoa(n), itoa(spin), "pace") }
		cons := func() *testproc.Proc {
			if get {
				return startWith(t, q, b, "slots-consume", itoa(n), itoa(spin), "get")
			}
			return startWith(t, q, b, "slots-consume", itoa(n), itoa(spin))
		}
		p, c := prod(), cons()
		kills, midway := 0, 0
		for range 6 {
			time.Sleep(time.Duration(rng.IntN(15000)) * time.Microsecond)
			if atomic.LoadUint64(q.tail) < n {
				midway++
			}
			if rng.IntN(2) == 0 {
				p.Kill()
				p.Wait()
				p = prod()
			} else {
				c.Kill()
				c.Wait()
				kills++
				c = cons()
			}
		}
		p.Expect(t, "done")
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		q.CloseWrite()
		c.Expect(t, "eof")
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		dups, missing := 0, 0
		for i := range n {
			switch s := atomic.LoadUint32(&b.counts[i]); {
			case s == 0 && !get:
				t.Fatalf("value %d never delivered", i)
			case s == 0:
				missing++
			case s > 1 && get:
				t.Fatalf("value %d delivered %d times", i, s)
			case s > 1:
				dups += int(s) - 1
			}
		}
		if midway == 0 {
			t.Fatal("every kill came after the producer had finished")
		}
		if dups > kills || missing > 40*kills {
			t.Fatalf("%d values delivered twice, %d unmarked, with %d consumers killed", dups, missing, kills)
		}
		s := q.Stats()
		t.Logf("iteration %d (spin %d, get %v): %d kills mid-stream, %d consumers killed, %d delivered again, %d unmarked; stats %+v", it, spin, get, midway, kills, dups, missing, s)
		if s.Puts != n || s.Gets != n {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestSlotsHeader: a Slots header is validated on attach as the other
// modes' are: a slot size or type that does not match is ErrCorrupt.
func TestSlotsHeader(t *testing.T) {
	cfg, _ := TypedConfig[slotMsg](Config{Mode: Slots, Capacity: 8})
	size, err := SizeOf(cfg)
	if err != nil || size != headerSize+8*64 {
		t.Fatalf("SizeOf = %d, %v", size, err)
	}
	mem := alignedMem(size)
	if _, err := New(mem, cfg); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		name string
		off  int
		v    uint32
	}{{"slot size", offSlotSize, 72}, {"type size", offTypeSize, 32}, {"max message", offMaxMsg, 32}, {"participants", offParts, 4}} {
		bad := alignedMem(size)
		copy(bad, mem)
		le.PutUint32(bad[c.off:], c.v)
		le.PutUint64(bad[offChecksum:], fnv64a(bad[:offChecksum]))
		if _, err := At(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s changed: At = %v", c.name, err)
		}
	}
	if _, err := At(mem[:size-1]); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("short memory: At = %v", err)
	}
}

// TestSlotsAllocs: Put, Get and the batches of a Slots queue, typed and
// untyped, make no allocation; so do Typed's batches on the other modes.
func TestSlotsAllocs(t *testing.T) {
	ctx := context.Background()
	tq, q := newSlots(t, 64)
	vs := make([]slotMsg, 16)
	buf := make([]byte, 64)
	views := [][]byte{make([]byte, 64), make([]byte, 64)}
	if n := testing.AllocsPerRun(200, func() {
		tq.Put(ctx, vs[0])
		tq.Get(ctx)
		tq.PutBatch(ctx, vs)
		tq.GetBatch(ctx, vs)
		q.Put(ctx, buf)
		q.Get(ctx, buf)
		q.PutBatch(ctx, views)
		q.GetBatch(ctx, views)
	}); n != 0 {
		t.Fatalf("%v allocations a round", n)
	}
	for _, mode := range []Mode{SPSC, MPMC} {
		cfg, _ := TypedConfig[slotMsg](Config{Mode: mode, Capacity: 64})
		o, err := NewTyped[slotMsg](newQueue(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() {
			if k, err := o.PutBatch(ctx, vs); k != len(vs) || err != nil {
				t.Fatal(k, err)
			}
			if k, err := o.GetBatch(ctx, vs); k != len(vs) || err != nil {
				t.Fatal(k, err)
			}
		}); n != 0 {
			t.Errorf("%v: %v allocations a round", mode, n)
		}
	}
}

// TestSlotsCloseRace races CloseWrite against a typed producer on a
// ring of two slots, both sides sleeping at once (SetSpin(0)): every
// value whose Put returned nil arrives before io.EOF, and at most one
// more (a Put that published and then saw the close, which returns
// ErrClosed: not promised, possibly delivered).
func TestSlotsCloseRace(t *testing.T) {
	ctx := context.Background()
	for iter := range 150 {
		tq, q := newSlots(t, 2)
		q2, err := OpenFile(ctx, q.File())
		if err != nil {
			t.Fatal(err)
		}
		q.SetSpin(0)
		q2.SetSpin(0)
		tc, err := NewTyped[slotMsg](q2)
		if err != nil {
			t.Fatal(err)
		}
		var okPuts atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := uint64(0); ; i++ {
				if err := tq.Put(ctx, mkSlot(i)); err != nil {
					return
				}
				okPuts.Store(i + 1)
			}
		}()
		go func() {
			time.Sleep(time.Duration(iter%7) * 20 * time.Microsecond)
			q.CloseWrite()
		}()
		var got uint64
		dst := make([]slotMsg, 3)
		for {
			k := 1
			var err error
			if got%2 == 0 {
				dst[0], err = tc.Get(ctx)
			} else {
				k, err = tc.GetBatch(ctx, dst)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range dst[:k] {
				if !v.ok(got) {
					t.Fatalf("iteration %d: value %d = %+v", iter, got, v)
				}
				got++
			}
		}
		<-done
		if n := okPuts.Load(); got < n || got > n+1 {
			t.Fatalf("iteration %d: %d values before EOF, %d Puts returned nil", iter, got, n)
		}
		q2.Close()
	}
}

// TestSlotsSleepWake: a producer and a consumer on two handles of a ring
// of two slots, both sleeping at once, Put and PutBatch against Get: a
// lost wake-up would stall the run for a sleep period (200 ms) at least.
func TestSlotsSleepWake(t *testing.T) {
	ctx := context.Background()
	tq, q := newSlots(t, 2)
	q2, err := OpenFile(ctx, q.File())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	q.SetSpin(0)
	q2.SetSpin(0)
	tc, _ := NewTyped[slotMsg](q2)
	const n = 20000
	errc := make(chan error, 1)
	go func() {
		vs := make([]slotMsg, 3)
		for i := uint64(0); i < n; {
			if i%3 == 0 {
				k := min(3, n-i)
				for j := range k {
					vs[j] = mkSlot(i + j)
				}
				if _, err := tq.PutBatch(ctx, vs[:k]); err != nil {
					errc <- err
					return
				}
				i += k
				continue
			}
			if err := tq.Put(ctx, mkSlot(i)); err != nil {
				errc <- err
				return
			}
			i++
		}
		errc <- q.CloseWrite()
	}()
	start := time.Now()
	var got uint64
	for {
		v, err := tc.Get(ctx)
		if err == io.EOF {
			break
		}
		if err != nil || !v.ok(got) {
			t.Fatalf("value %d = %+v, %v", got, v, err)
		}
		got++
	}
	if err := <-errc; err != nil || got != n {
		t.Fatalf("%d values, producer %v", got, err)
	}
	s := q.Stats()
	t.Logf("%d values in %v; producer slept %d times, consumer %d", n, time.Since(start), s.PutWaits, s.GetWaits)
	if s.PutWaits+s.GetWaits == 0 {
		t.Fatal("neither side slept: the test tested nothing")
	}
}

// TestSlotsCallsAgree: the calls that can fail at once do so as in the
// other modes: a wrong size in PutBatch before any wait for room, an empty
// Typed.GetBatch at the end of a closed queue (0, nil, as Queue.GetBatch),
// and Typed's batches on a closed handle, in every mode.
func TestSlotsCallsAgree(t *testing.T) {
	ctx := context.Background()
	tq, q := newSlots(t, 2)
	fillValue := mkSlot(0)
	fill(t, q, bytesOf(&fillValue, 64))
	bounded, cancel := context.WithTimeout(ctx, 2*time.Second) // a wait first would end here
	defer cancel()
	if k, err := q.PutBatch(bounded, [][]byte{make([]byte, 3)}); k != 0 || !errors.Is(err, ErrType) {
		t.Fatalf("PutBatch of a wrong size on a full ring = %d, %v", k, err)
	}
	q.CloseWrite()
	for range 2 {
		if _, err := tq.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if k, err := tq.GetBatch(ctx, nil); k != 0 || err != nil {
		t.Fatalf("Typed.GetBatch(nil) at the end = %d, %v", k, err)
	}
	if _, err := tq.Get(ctx); err != io.EOF {
		t.Fatalf("Get at the end = %v", err)
	}
	for _, mode := range []Mode{SPSC, MPMC, Slots} {
		cfg, _ := TypedConfig[slotMsg](Config{Mode: mode, Capacity: 4})
		o, err := NewTyped[slotMsg](newQueue(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		if k, err := o.PutBatch(ctx, nil); k != 0 || err != ErrClosed {
			t.Errorf("%v: PutBatch on a closed handle = %d, %v", mode, k, err)
		}
		if k, err := o.GetBatch(ctx, nil); k != 0 || err != ErrClosed {
			t.Errorf("%v: GetBatch on a closed handle = %d, %v", mode, k, err)
		}
	}
}
