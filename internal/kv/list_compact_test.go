package kv

import (
	"encoding/binary"
	"testing"
)

// A list whose length is a power of two, compacted (Set ran the heap out)
// when the arena only has room for the smallest space that fits: the copy
// must take every slot (it refused the last element, "live records exceed
// their count", although the new space holds them all), and every element
// keeps its last value.
func TestListCompactFull(t *testing.T) {
	c := Config{Magic: MagicList, Shards: 1, ValSize: 8, MaxVal: 8, Seed: 1}
	// Header+shard (384), the first space (512), and 384 bytes of arena:
	// exactly the least space for 8 elements and one more record.
	mem, done := guardedMem(t, 384+512+384)
	defer done()
	s, err := Init(mem, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	tx, err := s.Begin(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.End()
	for i := range 8 {
		if _, err := tx.Append(val(uint64(i))); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	for i := range 20 {
		if err := tx.Set(uint64(i%8), val(uint64(100+i))); err != nil {
			t.Fatalf("set #%d (heap top %d): %v", i, *s.u64(tx.sp.off + spTop), err)
		}
	}
	for i := range uint64(8) {
		b, err := tx.At(i)
		last := 16 + i // the last of the 20 Sets at index i
		if last >= 20 {
			last -= 8
		}
		if want := 100 + last; err != nil || binary.LittleEndian.Uint64(b) != want {
			t.Fatalf("element %d: %v %v, want %d", i, b, err, want)
		}
	}
}
