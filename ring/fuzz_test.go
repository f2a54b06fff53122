package ring

import (
	"context"
	"errors"
	"io"
	"testing"
	"unsafe"
)

// alignedMem returns n bytes of heap memory aligned to 64.
func alignedMem(n int) []byte {
	b := make([]byte, n+64)
	off := (64 - int(uintptr(unsafe.Pointer(&b[0]))%64)) % 64
	return b[off : off+n : off+n]
}

func fuzzConfig(mode byte) Config {
	if mode&1 == 0 {
		return Config{Mode: SPSC, MaxMessage: 40, Capacity: 2}
	}
	return Config{Mode: MPMC, MaxMessage: 40, Capacity: 4, Participants: 2}
}

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
		if _, err := q.TryPut(make([]byte, i*7%41)); err != nil {
			tb.Fatal(err)
		}
	}
	buf := make([]byte, 40)
	for range gets {
		q.TryGet(buf)
	}
	if mode&2 != 0 {
		q.CloseWrite()
	}
	return append([]byte(nil), mem...)
}

// FuzzConsumer runs the consumer (and producer) side over arbitrary ring
// contents: every call must return, with data or an error, never panic,
// read out of bounds, allocate without bound or spin for ever.
func FuzzConsumer(f *testing.F) {
	for mode := range byte(4) {
		f.Add(mode, fuzzImage(f, mode, 0, 0))
		f.Add(mode, fuzzImage(f, mode, 3, 1))
		f.Add(mode, fuzzImage(f, mode, 9, 7))
	}
	f.Fuzz(func(t *testing.T, mode byte, image []byte) {
		cfg := fuzzConfig(mode)
		size, _ := SizeOf(cfg)
		mem := alignedMem(size)
		if _, err := New(mem, cfg); err != nil {
			t.Fatal(err)
		}
		copy(mem, image)
		q, err := At(mem)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, errVersionForFuzz) {
				t.Fatalf("At: %v", err)
			}
			return
		}
		q.SetSpin(0)
		q.sleep = 1 // every blocking call below is bounded by a done context anyway
		done, cancel := context.WithCancel(context.Background())
		cancel()
		buf := make([]byte, q.MaxMessage())
		bufs := [][]byte{make([]byte, 8), make([]byte, q.MaxMessage())}
		check := func(err error) {
			if err == nil || err == io.EOF || err == io.ErrShortBuffer || errors.Is(err, ErrCorrupt) ||
				errors.Is(err, ErrBusy) || errors.Is(err, ErrPending) || errors.Is(err, ErrClosed) ||
				errors.Is(err, context.Canceled) {
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
		for range 20 {
			n, ok, err := q.TryGet(buf)
			check(err)
			if ok && n > len(buf) {
				t.Fatalf("TryGet returned %d bytes", n)
			}
			m, ok, err := q.TryNext()
			check(err)
			if ok {
				if len(m) > q.MaxMessage() {
					t.Fatalf("TryNext returned %d bytes", len(m))
				}
				for range m {
				}
				check(q.Release())
			}
			_, err = q.GetBatch(done, bufs)
			check(err)
			_, err = q.GetAppend(done, buf[:0])
			check(err)
			_, err = q.TryPut(buf[:7])
			check(err)
			_, err = q.PutBatch(done, [][]byte{buf[:3], buf[:40]})
			check(err)
			_ = q.Stats()
			_ = q.Len()
		}
	})
}
