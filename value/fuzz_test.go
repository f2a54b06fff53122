//go:build linux

package value_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/value"
)

// aligned copies data into 64-byte-aligned memory, as a mapping would be.
func aligned(data []byte) []byte {
	words := make([]uint64, (len(data)+7)/8+8)
	p := uintptr(unsafe.Pointer(&words[0]))
	off := int((64 - p%64) % 64)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)[off:]
	if len(buf) < len(data) {
		panic("aligned: short")
	}
	n := copy(buf, data)
	return buf[:n:n]
}

// seeds returns valid objects of the types FuzzAt attaches as.
func seeds() map[string][]byte {
	out := map[string][]byte{}
	mk := func(name string, size int, init func([]byte) error) {
		b := aligned(make([]byte, size))
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

// fixChecksum recomputes the object header's checksum (FNV-1a 64 of bytes
// [8, 40) stored at 40), so that fuzzing reaches the checks behind it.
func fixChecksum(b []byte) {
	if len(b) < 48 {
		return
	}
	h := fnv.New64a()
	h.Write(b[8:40])
	binary.LittleEndian.PutUint64(b[40:], h.Sum64())
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
		mem := aligned(data)
		if fix {
			fixChecksum(mem) // as a hostile peer would
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
