package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// alignedMem returns n bytes of heap memory aligned to 64.
func alignedMem(n int) []byte {
	b := make([]byte, n+64)
	off := (64 - int(uintptr(unsafe.Pointer(&b[0]))%64)) % 64
	return b[off : off+n : off+n]
}

// guardedMem returns n bytes of fresh anonymous memory, 64-byte aligned,
// that end right before a PROT_NONE page when n is a multiple of 64 (else
// within 63 bytes of it), so that any access past the end faults (a
// crash, which the fuzzer reports) instead of reading or writing whatever
// follows. The mapping goes when tb's test ends.
func guardedMem(tb testing.TB, n int) []byte {
	tb.Helper()
	page := os.Getpagesize()
	total := (int(align64(uint64(n)))+page-1)/page*page + page
	region, err := unix.Mmap(-1, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mprotect(region[total-page:], unix.PROT_NONE); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Munmap(region) })
	start := total - page - int(align64(uint64(n)))
	return region[start : start+n : start+n]
}

// fuzzConfig is the ring a fuzz input describes: mode bit 0 picks MPMC,
// bit 3 (without bit 0) Slots, for values of 48 bytes.
//
// The other bits of the mode byte: bit 1 (fuzzImage only) closes the ring
// made for a seed; bit 2 recomputes the header checksum after the image
// is copied in, so that the geometry fields themselves are fuzzed past
// the checksum; bit 4 also drives the ring through a pipe's Conn methods
// (and makes a blocked call check for a dead peer, as a pipe's do); bit 5
// makes blocked calls spin a while before they sleep.
func fuzzConfig(mode byte) Config {
	if mode&1 == 0 && mode&fuzzSlots != 0 {
		return Config{Mode: Slots, MaxMessage: 48, Capacity: 4, Type: shm.TypeDesc{Size: 48, Align: 8, Fingerprint: 0x5107}}
	}
	if mode&1 == 0 {
		return Config{Mode: SPSC, MaxMessage: 40, Capacity: 2}
	}
	return Config{Mode: MPMC, MaxMessage: 40, Capacity: 4, Participants: 2}
}

const (
	fuzzClosed   = 2
	fuzzChecksum = 4
	fuzzSlots    = 8
	fuzzPipe     = 16
	fuzzSpin     = 32
)

// fuzzImage returns the bytes of a valid ring after a few operations.
func fuzzImage(tb testing.TB, mode byte, puts, gets int) []byte {
	cfg := fuzzConfig(mode)
	size, _ := SizeOf(cfg)
	mem := alignedMem(size)
	q, err := New(mem, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range puts {
		n := i * 7 % 41
		if q.typ.Size != 0 {
			n = int(q.typ.Size)
		}
		if _, err := q.TryPut(make([]byte, n)); err != nil {
			tb.Fatal(err)
		}
	}
	buf := make([]byte, 40)
	for range gets {
		q.TryGet(buf)
	}
	if mode&fuzzClosed != 0 {
		q.CloseWrite()
	}
	return append([]byte(nil), mem...)
}

// fuzzRing is a ring under fuzzing: the handle, the memory it lives in
// (ending right before a guard page) and the pokes still to apply.
//
// A fuzz input is a mode byte and an image: the image's first SizeOf
// bytes are copied over a freshly made ring; what follows is a list of
// pokes, 16 bytes each (offset, value, little-endian), one applied before
// each operation of the fuzz body: the 8-byte word at offset mod size
// (rounded down to 8) gets the value, the way a hostile peer may write
// anything at any moment. An offset with bit 63 set pokes nothing.
type fuzzRing struct {
	t     testing.TB
	q     *Queue
	mem   []byte
	pokes []byte
	sink  byte
}

// newFuzzRing builds the ring an input describes; the error is At's.
func newFuzzRing(t testing.TB, mode byte, image []byte) (*fuzzRing, error) {
	cfg := fuzzConfig(mode)
	size, _ := SizeOf(cfg)
	mem := guardedMem(t, size)
	if _, err := New(mem, cfg); err != nil {
		t.Fatal(err)
	}
	n := copy(mem, image)
	if mode&fuzzChecksum != 0 {
		binary.LittleEndian.PutUint64(mem[offChecksum:], fnv64a(mem[:offChecksum]))
	}
	q, err := At(mem)
	if err != nil {
		return nil, err
	}
	if q.geo.size < uint64(len(mem)) {
		// A smaller geometry (fuzzed past the checksum): move the ring
		// so that it, too, ends at a guard page.
		small := guardedMem(t, int(q.geo.size))
		copy(small, mem)
		mem = small
		if q, err = At(mem); err != nil {
			t.Fatalf("At of the same ring, moved: %v", err)
		}
	}
	q.SetSpin(0)
	if mode&fuzzSpin != 0 {
		q.SetSpinTime(20 * time.Microsecond)
	}
	q.sleep = 1 // every blocking call below is bounded by a short or done context
	q.spsc.peerDeath = mode&fuzzPipe != 0
	return &fuzzRing{t: t, q: q, mem: mem, pokes: image[n:]}, nil
}

// step applies the next poke, if any.
func (r *fuzzRing) step() {
	if len(r.pokes) < 16 {
		r.pokes = nil
		return
	}
	off, val := binary.LittleEndian.Uint64(r.pokes), binary.LittleEndian.Uint64(r.pokes[8:])
	r.pokes = r.pokes[16:]
	if off>>63 != 0 {
		return
	}
	off = off % uint64(len(r.mem)) &^ 7
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&r.mem[off])), val) // atomic: as a peer would, racing nobody here
}

// checkSlice fails unless b (from Next or Reserve) lies inside the ring's
// payload space: the SPSC data area after a record header, or one MPMC
// slot's payload. It then reads every byte (and, for Reserve, writes).
func (r *fuzzRing) checkSlice(what string, b []byte, write bool) {
	r.t.Helper()
	q := r.q
	p := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(q.base))
	n := uint64(cap(b))
	ok := false
	switch {
	case q.geo.mode == SPSC:
		ok = p >= q.geo.dataOff+recHeader && p+n <= q.geo.dataOff+q.geo.capacity && n <= q.geo.maxMsg
	case q.geo.mode == Slots:
		ok = p >= q.geo.dataOff && (p-q.geo.dataOff)%q.geo.slotSize == 0 && p+n <= q.geo.size && n == q.geo.slotSize
	case p >= q.geo.dataOff:
		i, o := (p-q.geo.dataOff)/q.geo.slotSize, (p-q.geo.dataOff)%q.geo.slotSize
		ok = i < q.geo.capacity && o == slotHeader && n <= q.geo.maxMsg
	}
	if !ok || uint64(len(b)) > n {
		r.t.Fatalf("%s returned %d bytes (cap %d) at ring offset %d, outside the payload space (%+v)", what, len(b), n, p, q.geo)
	}
	for i := range b {
		r.sink += b[i]
		if write {
			b[i] = byte(i)
		}
	}
}

// allowed reports whether err is one the calls below may return on a
// corrupt ring.
func allowed(err error) bool {
	return err == nil || err == io.EOF || err == io.ErrShortBuffer || errors.Is(err, ErrCorrupt) ||
		errors.Is(err, ErrBusy) || errors.Is(err, ErrPending) || errors.Is(err, ErrClosed) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrPeerDied) || errors.Is(err, ErrType) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// FuzzConsumer runs the consumer (and producer) side over arbitrary ring
// contents, changed between calls by the pokes: every call must return,
// with data or an error, never panic, access memory outside the ring (the
// guard page after it faults), return a slice outside it, allocate
// without bound or spin for ever. Short live deadlines (not only done
// contexts) let the blocking calls sleep and run their slow checks: dead
// participants, recovery, stalls reported as corruption. An input takes a
// few milliseconds, so when fuzzing pass -fuzzminimizetime=5s or so:
// minimizing a new input otherwise takes the default minute.
func FuzzConsumer(f *testing.F) {
	for _, mode := range []byte{0, 1, 2, 3, fuzzSlots, fuzzSlots | fuzzClosed} {
		f.Add(mode, fuzzImage(f, mode, 0, 0))
		f.Add(mode, fuzzImage(f, mode, 3, 1))
		f.Add(mode, fuzzImage(f, mode, 9, 7))
	}
	f.Fuzz(func(t *testing.T, mode byte, image []byte) {
		// A watchdog: an input that runs for ever (a loop no context
		// bounds) crashes the process with every goroutine's stack, which
		// the fuzzer reports with the input, instead of stalling it.
		watchdog := time.AfterFunc(20*time.Second, func() {
			debug.SetTraceback("all")
			panic("FuzzConsumer: an input ran for 20 s")
		})
		defer watchdog.Stop()
		r, err := newFuzzRing(t, mode, image)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, errVersionForFuzz) {
				t.Fatalf("At: %v", err)
			}
			return
		}
		fuzzOps(t, r, mode&fuzzPipe != 0)
	})
}

// fuzzOps is the body of FuzzConsumer.
func fuzzOps(t *testing.T, r *fuzzRing, pipe bool) {
	q := r.q
	done, cancel := context.WithCancel(context.Background())
	cancel()
	live := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Millisecond)
	}
	maxMsg := q.MaxMessage()
	buf := make([]byte, maxMsg+1) // one byte too many for a message
	small := min(7, maxMsg)
	bufs := [][]byte{make([]byte, 8), make([]byte, maxMsg+8)} // the second with room for a message too long
	check := func(what string, err error) {
		t.Helper()
		if !allowed(err) {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
	}
	var conn *Conn
	if pipe {
		conn = &Conn{in: q, out: q} // both directions over the one ring
	}
	// A hold phase (Next after Next, no Release) long enough to walk the
	// whole SPSC data area: the read position must stay within capacity
	// of the head.
	holdAll := int(q.geo.capacity/recHeader) + 2
	for i := range 20 {
		if pipe {
			ctx, cancel := live()
			r.step()
			_, err := conn.Recv(ctx, buf)
			check("Recv", err)
			r.step()
			m, err := conn.RecvAppend(ctx, buf[:0])
			check("RecvAppend", err)
			if len(m) > maxMsg {
				t.Fatalf("RecvAppend returned %d bytes", len(m))
			}
			r.step()
			check("Send", conn.Send(ctx, buf[:small]))
			cancel()
		}
		r.step()
		n, ok, err := q.TryGet(buf)
		check("TryGet", err)
		if ok && n > len(buf) {
			t.Fatalf("TryGet returned %d bytes", n)
		}
		hold := 1
		if i%5 == 2 {
			hold = holdAll
		}
		held := 0
		for range hold {
			r.step()
			m, ok, err := q.TryNext()
			check("TryNext", err)
			if !ok {
				break
			}
			r.checkSlice("TryNext", m, false)
			held++
		}
		if held > 0 {
			r.step()
			check("Release", q.Release())
		}
		r.step()
		bufs[0], bufs[1] = bufs[1][:cap(bufs[1])], bufs[0][:cap(bufs[0])] // each order in turn
		n, err = q.GetBatch(done, bufs)
		check("GetBatch", err)
		for _, m := range bufs[:n] {
			if len(m) > maxMsg {
				t.Fatalf("GetBatch returned a message of %d bytes", len(m))
			}
		}
		r.step()
		m, err := q.GetAppend(done, buf[:0])
		check("GetAppend", err)
		if len(m) > maxMsg {
			t.Fatalf("GetAppend returned %d bytes", len(m))
		}
		r.step()
		_, err = q.TryPut(buf[:small])
		check("TryPut", err)
		r.step()
		_, err = q.PutBatch(done, [][]byte{buf[:min(3, maxMsg)], buf[:maxMsg]})
		check("PutBatch", err)
		if i%4 == 1 {
			r.step()
			_, err = q.PutBatch(done, [][]byte{buf[:small], buf[:maxMsg+1]})
			check("PutBatch too large", err)
		}
		r.step()
		if b, err := q.Reserve(done, min(13, maxMsg)); err == nil {
			r.checkSlice("Reserve", b, true)
			r.step()
			check("Commit", q.Commit(len(b)/2))
		} else {
			check("Reserve", err)
		}
		if i%10 == 0 {
			// The blocking calls with a live deadline: they sleep (1 ns)
			// and then run the slow checks until the deadline.
			ctx, cancel := live()
			r.step()
			_, err := q.Get(ctx, buf)
			check("Get", err)
			r.step()
			if m, err := q.Next(ctx); err == nil {
				r.checkSlice("Next", m, false)
				check("Release", q.Release())
			} else {
				check("Next", err)
			}
			cancel()
			ctx, cancel = live()
			r.step()
			check("Put", q.Put(ctx, buf[:small]))
			r.step()
			if b, err := q.Reserve(ctx, min(5, maxMsg)); err == nil {
				r.checkSlice("Reserve", b, true)
				check("Commit", q.Commit(len(b)))
			} else {
				check("Reserve", err)
			}
			cancel()
		}
		if q.geo.mode == Slots && q.slots.size == 48 {
			// The typed fast paths, which copy values in and out of the
			// slots as Ts (NewTyped would refuse another size).
			tq := &Typed[[48]byte]{q: q, size: 48, slots: true}
			vs := make([][48]byte, 3)
			r.step()
			_, _, err := tq.TryGet()
			check("Typed.TryGet", err)
			r.step()
			_, err = tq.GetBatch(done, vs)
			check("Typed.GetBatch", err)
			r.step()
			_, err = tq.TryPut(vs[0])
			check("Typed.TryPut", err)
			r.step()
			_, err = tq.PutBatch(done, vs)
			check("Typed.PutBatch", err)
		}
		_ = q.Stats()
		_ = q.Len()
	}
	// Close, and drain towards io.EOF (bounded: a ring full of valid
	// records with no terminator reads as an endless stream).
	r.step()
	check("CloseWrite", q.CloseWrite())
	if pipe {
		_, err := conn.Write(buf[:maxMsg]) // closed: it must not block
		check("Write after CloseWrite", err)
	}
	for range holdAll {
		r.step()
		if _, ok, err := q.TryGet(buf); !ok || err != nil {
			check("TryGet after CloseWrite", err)
			break
		}
	}
	ctx, cancel := live()
	_, err := q.Get(ctx, buf)
	check("Get after CloseWrite", err)
	cancel()
	_ = q.Stats()
	check("Close", q.Close())
}
