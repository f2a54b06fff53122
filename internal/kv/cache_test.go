package kv

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
)

// TestSeenSpaceAfterWrap: a reader's cached space must not outlive a
// re-format of that space under a descriptor word it has seen before (the
// 24-bit generation wraps: a shard's Clears alternate between its two
// spaces, so the same word comes back after 2^23 of them). The wrap is
// simulated by storing the old word back.
func TestSeenSpaceAfterWrap(t *testing.T) {
	mem, free := guardedMem(t, 1<<20)
	defer free()
	s, err := Init(mem, Config{Magic: MagicDict, Shards: 1, KeySize: 8, ValSize: 8, MaxKey: 8, MaxVal: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := func(k, v uint64) {
		tx, err := s.Begin(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.End()
		var kb, vb [8]byte
		binary.LittleEndian.PutUint64(kb[:], k)
		binary.LittleEndian.PutUint64(vb[:], v)
		if err := tx.Put(kb[:], Hash(1, kb[:]), vb[:]); err != nil {
			t.Fatal(err)
		}
	}
	clear := func() {
		tx, err := s.Begin(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.End()
		if err := tx.Clear(); err != nil {
			t.Fatal(err)
		}
	}
	get := func(k uint64) (uint64, bool) {
		var kb, vb [8]byte
		binary.LittleEndian.PutUint64(kb[:], k)
		_, ok, err := s.Get(kb[:], Hash(1, kb[:]), vb[:])
		if err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint64(vb[:]), ok
	}
	for k := range uint64(40) { // grow the table past its first slot count
		put(k, k+1000)
	}
	if v, ok := get(7); !ok || v != 1007 {
		t.Fatalf("get(7) = %d, %v", v, ok)
	}
	d := s.desc(0)
	old := atomic.LoadUint64(d) // the reader has cached this word's space
	clear()                     // into the spare
	clear()                     // back into the first space, formatted smaller
	if atomic.LoadUint64(d)&descOffMask != old&descOffMask {
		t.Fatalf("the second Clear did not reuse the first space (%#x, %#x)", atomic.LoadUint64(d), old)
	}
	atomic.StoreUint64(d, old) // as 2^23 Clears would leave it
	if v, ok := get(7); ok {
		t.Fatalf("after Clear, get(7) = %d from a stale cached space", v)
	}
}
