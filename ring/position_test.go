package ring

import (
	"context"
	"testing"
)

// Position names each message by its record's position; WritePosition is
// where the next Put publishes it (or the pad before it).
func TestPositions(t *testing.T) {
	ctx := context.Background()
	mem := alignedMem(1 << 14)
	q, err := New(mem, Config{Mode: SPSC, Capacity: 8, MaxMessage: 100})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 40 {
		w, err := q.WritePosition()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, w)
		if err := q.Put(ctx, make([]byte, 1+i*7%100)); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Next(ctx); err != nil {
			t.Fatal(err)
		}
		got := q.Position()
		// A record that would wrap is published after a pad at w, at the
		// start of the next lap.
		if got != w && got != (w|q.mask)+1 {
			t.Fatalf("message %d: Position %d, WritePosition before the Put %d", i, got, w)
		}
		if i%3 == 2 { // hold three at a time
			if err := q.Release(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if w, _ := q.WritePosition(); w <= want[len(want)-1] {
		t.Fatalf("WritePosition %d after the last Put at %d", w, want[len(want)-1])
	}
	mq, err := New(alignedMem(1<<14), Config{Mode: MPMC, Capacity: 8, MaxMessage: 16})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mq.WritePosition(); err != ErrMode {
		t.Fatalf("MPMC WritePosition: %v", err)
	}
	for i := range 20 {
		if err := mq.Put(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := mq.Next(ctx); err != nil {
			t.Fatal(err)
		}
		if mq.Position() != uint64(i) {
			t.Fatalf("MPMC message %d at position %d", i, mq.Position())
		}
		if err := mq.Release(); err != nil {
			t.Fatal(err)
		}
	}
}
