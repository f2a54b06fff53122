package ring

import (
	"context"
	"testing"
)

func TestQuick(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		q, err := CreateAnonymous(Config{Mode: mode, MaxMessage: 100, Capacity: 4})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		buf := make([]byte, 100)
		for i := range 1000 {
			msg := make([]byte, i%101)
			for j := range msg {
				msg[j] = byte(i + j)
			}
			if err := q.Put(ctx, msg); err != nil {
				t.Fatal(mode, i, err)
			}
			n, err := q.Get(ctx, buf)
			if err != nil || n != len(msg) || string(buf[:n]) != string(msg) {
				t.Fatal(mode, i, n, err)
			}
		}
		t.Log(q.Stats())
		q.Close()
	}
}
