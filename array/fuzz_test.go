//go:build linux

package array_test

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/array"
)

// aligned copies data into 64-byte-aligned memory, as a mapping would be.
func aligned(data []byte) []byte {
	words := make([]uint64, (len(data)+7)/8+8)
	p := uintptr(unsafe.Pointer(&words[0]))
	off := int((64 - p%64) % 64)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)[off:]
	n := copy(buf, data)
	return buf[:n:n]
}

// fixChecksum recomputes the object header's checksum (FNV-1a 64 of bytes
// [8, 40) stored at 40), as a hostile peer would, so that fuzzing reaches
// the checks behind it.
func fixChecksum(b []byte) {
	if len(b) < 48 {
		return
	}
	h := fnv.New64a()
	h.Write(b[8:40])
	binary.LittleEndian.PutUint64(b[40:], h.Sum64())
}

func seeds() map[string][]byte {
	out := map[string][]byte{}
	mk := func(name string, size int, init func([]byte) error) {
		b := aligned(make([]byte, size))
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
		mem := aligned(data)
		if fix {
			fixChecksum(mem)
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
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("SHMKIT_WRITE_CORPUS") != "1" {
		t.Skip("set SHMKIT_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAt")
	must(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(false)\n", b)
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}
