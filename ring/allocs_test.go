package ring

import (
	"context"
	"testing"
)

func TestAllocs(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		q := newQueue(t, Config{Mode: mode, MaxMessage: 64, Capacity: 16})
		ctx := context.Background()
		msg := make([]byte, 64)
		buf := make([]byte, 64)
		allocs := testing.AllocsPerRun(1000, func() {
			if err := q.Put(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Get(ctx, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("%v: Put+Get allocate %v times", mode, allocs)
		}
		msgs := [][]byte{msg, msg, msg, msg}
		bufs := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64), make([]byte, 64)}
		allocs = testing.AllocsPerRun(1000, func() {
			if n, err := q.PutBatch(ctx, msgs); n != len(msgs) || err != nil {
				t.Fatal(n, err)
			}
			for got := 0; got < len(msgs); {
				n, err := q.GetBatch(ctx, bufs[:len(msgs)-got])
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		})
		if allocs != 0 {
			t.Fatalf("%v: PutBatch+GetBatch allocate %v times", mode, allocs)
		}
	}
}
