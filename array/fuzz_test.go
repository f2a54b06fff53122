//go:build linux

package array_test

import (
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/object/objecttest"
)

func seeds() map[string][]byte {
	out := map[string][]byte{}
	mk := func(name string, size int, init func([]byte) error) {
		b := objecttest.Aligned(make([]byte, size))
		if err := init(b); err != nil {
			panic(err)
		}
		out[name] = append([]byte(nil), b...)
	}
	mk("int32x5", 128+20, func(b []byte) error {
		a, err := array.Init[int32](b, 5)
		if err == nil {
			copy(a.Slice(), []int32{1, 2, 3, 4, 5})
		}
		return err
	})
	mk("pairx2", 128+32, func(b []byte) error { _, err := array.Init[pair](b, 2); return err })
	mk("empty", 128, func(b []byte) error { _, err := array.Init[int32](b, 0); return err })
	mk("raw-bytex7", 128+7, func(b []byte) error { _, err := array.InitRaw[byte](b, 7); return err })
	return out
}

// FuzzAt attaches to arbitrary bytes as several Array types: it must
// return an error or an Array whose every element can be read, never
// panic or read out of bounds.
func FuzzAt(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, false)
		grown := append(append([]byte(nil), s...), 1, 2, 3, 4)
		grown[32]++ // claims one element more than the seed stores
		f.Add(grown, true)
	}
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		mem := objecttest.Aligned(data)
		if fix {
			objecttest.FixChecksum(mem)
		}
		if a, err := array.At[int32](mem); err == nil {
			at := array.AtomicOf(a)
			for i := range a.Len() {
				_ = a.At(i) + at.LoadAt(i)
			}
			_ = a.Slice()
			_ = a.Close()
		}
		if a, err := array.At[pair](mem); err == nil {
			for i := range a.Len() {
				a.Set(i, a.At(i))
			}
			// The lock word came from the fuzzer too: TryLock never waits.
			if ok, _ := a.Lock().TryLock(); ok {
				_ = a.Lock().Unlock()
			}
			_ = a.Close()
		}
		if r, err := array.RawAt[byte](mem); err == nil {
			for i := range r.Len() {
				r.Set(i, r.At(i)+1)
			}
		}
	})
}

// TestWriteCorpus regenerates testdata/fuzz/FuzzAt from seeds when
// SHMKIT_WRITE_CORPUS=1.
func TestWriteCorpus(t *testing.T) { objecttest.WriteCorpus(t, "FuzzAt", seeds()) }
