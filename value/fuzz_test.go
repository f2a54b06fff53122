//go:build linux

package value_test

import (
	"context"
	"testing"

	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/value"
)

// seeds returns valid objects of the types FuzzAt attaches as.
func seeds() map[string][]byte {
	out := map[string][]byte{}
	mk := func(name string, size int, init func([]byte) error) {
		b := objecttest.Aligned(make([]byte, size))
		if err := init(b); err != nil {
			panic(err)
		}
		out[name] = append([]byte(nil), b...)
	}
	mk("int64", 136, func(b []byte) error { _, err := value.Init[int64](b, 42); return err })
	mk("pair", 144, func(b []byte) error { _, err := value.Init(b, pair{A: 1, B: 2}); return err })
	mk("raw-int64", 136, func(b []byte) error { _, err := value.InitRaw[int64](b, -1); return err })
	mk("raw-u16x3", 134, func(b []byte) error { _, err := value.InitRaw(b, [3]uint16{1, 2, 3}); return err })
	return out
}

// FuzzAt attaches to arbitrary bytes as several Value types: it must
// return an error or a usable Value, never panic or read out of bounds.
func FuzzAt(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, false)
		short := append([]byte(nil), s[:len(s)-1]...)
		f.Add(short, true)
	}
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		mem := objecttest.Aligned(data)
		if fix {
			objecttest.FixChecksum(mem) // as a hostile peer would
		}
		ctx := context.Background()
		if v, err := value.At[int64](mem); err == nil {
			_, _ = v.Load(ctx) // atomic path: no lock
			_ = value.AtomicOf(v).Load()
			_ = v.Close()
		}
		if v, err := value.At[pair](mem); err == nil {
			_ = *v.Pointer()
			// The lock word came from the fuzzer too: TryLock never waits.
			if ok, _ := v.Lock().TryLock(); ok {
				_ = v.Lock().Unlock()
			}
			_ = v.Close()
		}
		if r, err := value.RawAt[int64](mem); err == nil {
			_ = r.Load()
		}
		if r, err := value.RawAt[[3]uint16](mem); err == nil {
			r.Store(r.Load())
		}
	})
}

// TestWriteCorpus regenerates testdata/fuzz/FuzzAt from seeds when
// SHMKIT_WRITE_CORPUS=1.
func TestWriteCorpus(t *testing.T) { objecttest.WriteCorpus(t, "FuzzAt", seeds()) }
