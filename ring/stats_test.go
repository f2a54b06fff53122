package ring

import (
	"context"
	"testing"
)

func TestStatsAndLen(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 8})
		ctx := context.Background()
		msgs := [][]byte{[]byte("a"), []byte("bb"), []byte("ccc")}
		if n, err := q.PutBatch(ctx, msgs); n != 3 || err != nil {
			t.Fatal(n, err)
		}
		if q.Len() != 3 || q.Cap() < 8 || (mode == MPMC && q.Cap() != 8) {
			t.Fatalf("%v: Len %d Cap %d", mode, q.Len(), q.Cap())
		}
		dst := [][]byte{make([]byte, 8), make([]byte, 8)}
		if n, err := q.GetBatch(ctx, dst); n != 2 || err != nil || string(dst[1]) != "bb" {
			t.Fatal(n, err)
		}
		s := q.Stats()
		if s.Puts != 3 || s.Gets != 2 || s.Len != 1 {
			t.Fatalf("%v: %+v", mode, s)
		}
	}
}
