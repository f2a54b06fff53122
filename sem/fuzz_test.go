package sem

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
)

// aligned copies b into 8-byte-aligned memory of at least 64 bytes.
func aligned(b []byte) []byte {
	words := make([]uint64, 8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), 64)
	copy(mem, b)
	return mem[:len(b)]
}

// FuzzObjectsAt attaches to arbitrary 64-byte contents as each kind of
// object and exercises the non-blocking operations (and a Lock bounded by
// a short deadline): nothing may panic, loop or block.
func FuzzObjectsAt(f *testing.F) {
	if !futex.Supported {
		f.Skip(ErrNotSupported)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64 {
			b = b[:64]
		}
		short := len(b) < 64
		if m, err := MutexAt(aligned(b)); err == nil {
			if short {
				t.Fatal("MutexAt accepted short memory")
			}
			ok, err := m.TryLock()
			if ok {
				if err != nil && !errors.Is(err, ErrOwnerDead) {
					t.Fatalf("TryLock = true, %v", err)
				}
				if err := m.Unlock(); err != nil {
					t.Fatalf("Unlock after TryLock: %v", err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			err = m.Lock(ctx)
			cancel()
			if err == nil || errors.Is(err, ErrOwnerDead) {
				if err := m.Unlock(); err != nil {
					t.Fatalf("Unlock after Lock: %v", err)
				}
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMemory) && !errors.Is(err, ErrVersion) {
			t.Fatalf("MutexAt: %v", err)
		}
		if s, err := SemaphoreAt(aligned(b)); err == nil {
			ok, err := s.TryAcquire()
			if ok {
				if err := s.Release(); err != nil {
					t.Fatalf("Release after TryAcquire: %v", err)
				}
			} else if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("TryAcquire: %v", err)
			}
			_ = s.Value()
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMemory) && !errors.Is(err, ErrVersion) {
			t.Fatalf("SemaphoreAt: %v", err)
		}
		if e, err := EventAt(aligned(b)); err == nil {
			_ = e.IsSet()
			if err := e.Set(); err != nil || !e.IsSet() {
				t.Fatalf("Set: %v", err)
			}
			if err := e.Clear(); err != nil || e.IsSet() {
				t.Fatalf("Clear: %v", err)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMemory) && !errors.Is(err, ErrVersion) {
			t.Fatalf("EventAt: %v", err)
		}
	})
}

// alignedN copies b into 8-byte-aligned memory of len(b) bytes.
func alignedN(b []byte) []byte {
	words := make([]uint64, (len(b)+7)/8+1)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), 8*len(words))
	copy(mem, b)
	return mem[:len(b)]
}

// FuzzBarrierCondAt attaches to arbitrary contents as a Barrier and as a
// Cond and drives every operation, the blocking ones with a 1 ms
// deadline: nothing may panic, loop or block, and every error is one the
// API documents.
func FuzzBarrierCondAt(f *testing.F) {
	if !futex.Supported {
		f.Skip(ErrNotSupported)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1024 {
			b = b[:1024]
		}
		expected := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBrokenBarrier) &&
				!errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: %v", what, err)
			}
		}
		if br, err := BarrierAt(alignedN(b)); err == nil {
			_, _ = br.Waiting(), br.Broken()
			for range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				i, err := br.Wait(ctx)
				cancel()
				expected("Wait", err)
				if err == nil && (i < 0 || i >= br.Parties()) {
					t.Fatalf("Wait = index %d of %d parties", i, br.Parties())
				}
				expected("Abort", br.Abort())
				expected("Reset", br.Reset())
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMemory) && !errors.Is(err, ErrVersion) {
			t.Fatalf("BarrierAt: %v", err)
		}
		m, err := InitMutex(aligned(make([]byte, 64)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 64 {
			b = b[:64]
		}
		if c, err := CondAt(aligned(b), m); err == nil {
			expected("Signal", c.Signal())
			expected("Broadcast", c.Broadcast())
			if err := m.Lock(context.Background()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			err := c.Wait(ctx)
			cancel()
			expected("Wait", err)
			if err := m.Unlock(); err != nil {
				t.Fatalf("Unlock after Wait: %v", err)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadMemory) && !errors.Is(err, ErrVersion) {
			t.Fatalf("CondAt: %v", err)
		}
	})
}
