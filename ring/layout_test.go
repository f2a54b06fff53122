package ring

import (
	"context"
	"encoding/binary"
	"os"
	"testing"
)

// TestLayoutGolden checks the bytes a queue writes against the offsets
// and values docs/format/ring.md gives, written here as literals (not the
// package's constants), so that the code and the document cannot drift
// apart unnoticed.
func TestLayoutGolden(t *testing.T) {
	le := binary.LittleEndian
	u64 := func(mem []byte, off int) uint64 { return le.Uint64(mem[off:]) }
	u32 := func(mem []byte, off int) uint32 { return le.Uint32(mem[off:]) }
	want := func(what string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#x, want %#x", what, got, want)
		}
	}
	fnv := func(b []byte) uint64 {
		h := uint64(0xcbf29ce484222325)
		for _, c := range b {
			h ^= uint64(c)
			h *= 0x100000001b3
		}
		return h
	}
	me := uint64(os.Getpid()) << 32
	ctx := context.Background()

	t.Run("SPSC", func(t *testing.T) {
		q, mem := newInMem(t, Config{Mode: SPSC, MaxMessage: 20, Capacity: 4})
		size := len(mem)
		// Line 0.
		if string(mem[0:8]) != "shmkRNG1" {
			t.Errorf("magic bytes %q", mem[0:8])
		}
		want("version", uint64(u32(mem, 8)), 3)
		want("mode", uint64(u32(mem, 12)), 1)
		want("maxMessage", uint64(u32(mem, 16)), 20)
		want("slotSize", uint64(u32(mem, 20)), 0)
		// capacity: a power of two >= 4+1 records of 8 + align8(20) = 32
		// bytes (one spare record's bytes for a wrap pad and the
		// terminator).
		want("capacity", u64(mem, 24), 256)
		want("parts", uint64(u32(mem, 48)), 0)
		want("flags", uint64(u32(mem, 52)), 0)
		want("checksum", u64(mem, 56), fnv(mem[:56]))
		want("size", uint64(size), 384+256)

		if err := q.Put(ctx, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		// The record at data offset 0 (ring offset 384): length 5, span
		// 8 + 8; then the terminator.
		want("record length", uint64(u32(mem, 384)), 5)
		want("record span", uint64(u32(mem, 388)), 16)
		if string(mem[392:397]) != "hello" {
			t.Errorf("payload %q", mem[392:397])
		}
		want("terminator", u64(mem, 400), 0)
		want("tail", u64(mem, 64), 16)
		want("puts", u64(mem, 80), 1)
		want("prodOwner pid", u64(mem, 96)&^0xffff_ffff, me)

		// Records of 20 bytes (span 32) at 16, 48, ..., 208, each taken
		// at once; the next does not fit before the end at 256: a pad at
		// 240, the record at offset 0, the tail past both.
		buf := make([]byte, 20)
		for range 8 {
			if _, err := q.Get(ctx, buf); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, make([]byte, 20)); err != nil {
				t.Fatal(err)
			}
		}
		want("head", u64(mem, 128), 240)
		want("gets", u64(mem, 144), 8)
		want("consOwner pid", u64(mem, 160)&^0xffff_ffff, me)
		want("pad", u64(mem, 384+240), 0xffff_ffff)
		want("wrapped record", u64(mem, 384+0), 20|32<<32)
		want("tail after wrap", u64(mem, 64), 240+16+32)
		want("terminator after wrap", u64(mem, 384+32), 0)

		q.CloseWrite()
		want("closed", uint64(u32(mem, 232)), 1)
		want("tail closed bit (none in SPSC)", u64(mem, 64)>>63, 0)
	})

	t.Run("MPMC", func(t *testing.T) {
		q, mem := newInMem(t, Config{Mode: MPMC, MaxMessage: 40, Capacity: 4, Participants: 2})
		size := len(mem)
		want("version", uint64(u32(mem, 8)), 3)
		want("mode", uint64(u32(mem, 12)), 2)
		want("slotSize", uint64(u32(mem, 20)), 64) // align64(16 + 40)
		want("capacity", u64(mem, 24), 4)
		want("parts", uint64(u32(mem, 48)), 2)
		want("checksum", u64(mem, 56), fnv(mem[:56]))
		slots := 384 + 64*2
		want("size", uint64(size), uint64(slots+4*64))
		for i := range 4 {
			want("initial seq", u64(mem, slots+64*i), uint64(i))
		}

		if err := q.Put(ctx, []byte("abc")); err != nil {
			t.Fatal(err)
		}
		want("entry owner pid", u64(mem, 384)&^0xffff_ffff, me)
		want("entry prodIntent", u64(mem, 384+16), 1)
		want("entry prodCount", u64(mem, 384+48), 1)
		want("entry puts", u64(mem, 384+32), 1)
		want("tail", u64(mem, 64), 1)
		want("slot 0 seq (published)", u64(mem, slots), 1)
		want("slot 0 length", uint64(u32(mem, slots+8)), 3)
		if string(mem[slots+16:slots+19]) != "abc" {
			t.Errorf("slot payload %q", mem[slots+16:slots+19])
		}
		buf := make([]byte, 40)
		if _, err := q.Get(ctx, buf); err != nil {
			t.Fatal(err)
		}
		want("head", u64(mem, 128), 1)
		want("slot 0 seq (released for position 4)", u64(mem, slots), 4)
		want("entry consIntent", u64(mem, 384+24), 1)
		want("entry consCount", u64(mem, 384+56), 1)
		want("entry gets", u64(mem, 384+40), 1)

		// The sleepers' words: nobody slept, nobody was woken.
		for _, off := range []int{256, 260, 320, 324} {
			want("sleeper word", uint64(u32(mem, off)), 0)
		}
		q.CloseWrite()
		want("tail closed bit", u64(mem, 64)>>63, 1)
		want("dataSeq bumped by CloseWrite's wake-up of all", uint64(u32(mem, 256)), 1)
		want("spaceSeq bumped too", uint64(u32(mem, 320)), 1)
		want("closed", uint64(u32(mem, 232)), 1)
	})
}

// newInMem initialises a queue with cfg in aligned heap memory of exactly
// SizeOf(cfg) bytes.
func newInMem(t *testing.T, cfg Config) (*Queue, []byte) {
	t.Helper()
	size, err := SizeOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mem := alignedMem(size)
	q, err := New(mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q, mem
}
