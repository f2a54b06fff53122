package ring

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// TestSPSCModel drives one SPSC queue from one goroutine with a random
// mix of Put, TryPut, PutBatch, Reserve/Commit, Get, TryGet, GetBatch and
// Next/Release, of random sizes from 0 to the maximum and with some
// destination buffers too small, against a FIFO model: every message
// comes out once, intact and in order, and Len matches. The small ring
// wraps every few operations, so the batch fast paths meet pads, partial
// room and short buffers, and hand over to the general code.
func TestSPSCModel(t *testing.T) {
	const maxMsg = 100
	for seed := range int64(8) {
		q := newQueue(t, Config{Mode: SPSC, MaxMessage: maxMsg, Capacity: 4})
		q.SetSpin(0) // a full queue makes a call with a done ctx return at once
		rng := rand.New(rand.NewPCG(uint64(seed), 1))
		ctx := context.Background()
		done, cancel := context.WithCancel(ctx)
		cancel()
		var fifo [][]byte
		next := 0
		msg := func() []byte {
			m := make([]byte, rng.IntN(maxMsg+1))
			for i := range m {
				m[i] = byte(next*7 + i)
			}
			next++
			return m
		}
		take := func(got []byte, op string) {
			t.Helper()
			if len(fifo) == 0 {
				t.Fatalf("seed %d: %s returned a message from an empty model", seed, op)
			}
			if !bytes.Equal(got, fifo[0]) {
				t.Fatalf("seed %d: %s got %d bytes %x, want %d bytes %x", seed, op, len(got), got, len(fifo[0]), fifo[0])
			}
			fifo = fifo[1:]
		}
		for range 4000 {
			switch op := rng.IntN(8); op {
			case 0, 1: // TryPut (never blocks in one goroutine)
				m := msg()
				ok, err := q.TryPut(m)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					fifo = append(fifo, m)
				} else {
					next--
				}
			case 2: // PutBatch with a done ctx: it puts what fits
				batch := make([][]byte, rng.IntN(6)+1)
				for i := range batch {
					batch[i] = msg()
				}
				n, err := q.PutBatch(done, batch)
				if n < 0 || n > len(batch) || (n == len(batch)) != (err == nil) || (err != nil && err != context.Canceled) {
					t.Fatalf("seed %d: PutBatch(%d) = %d, %v", seed, len(batch), n, err)
				}
				fifo = append(fifo, batch[:n]...)
				next -= len(batch) - n
			case 3: // Reserve/Commit with a done ctx
				m := msg()
				b, err := q.Reserve(done, maxMsg)
				if err == context.Canceled {
					next--
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				copy(b, m)
				if err := q.Commit(len(m)); err != nil {
					t.Fatal(err)
				}
				fifo = append(fifo, m)
			case 4: // TryGet
				buf := make([]byte, rng.IntN(maxMsg+1))
				n, ok, err := q.TryGet(buf)
				switch {
				case err == io.ErrShortBuffer:
					if len(fifo) == 0 || len(fifo[0]) <= len(buf) {
						t.Fatalf("seed %d: ErrShortBuffer with %d bytes for %v", seed, len(buf), fifo[:min(1, len(fifo))])
					}
				case err != nil:
					t.Fatal(err)
				case ok:
					take(buf[:n], "TryGet")
				case len(fifo) != 0:
					t.Fatalf("seed %d: TryGet found nothing, model has %d", seed, len(fifo))
				}
			case 5: // GetBatch, with a done ctx: the model is not empty
				if len(fifo) == 0 {
					continue
				}
				dst := make([][]byte, rng.IntN(8)+1)
				for i := range dst {
					dst[i] = make([]byte, 0, maxMsg-rng.IntN(maxMsg/4))
				}
				n, err := q.GetBatch(done, dst)
				if err == io.ErrShortBuffer {
					if n != 0 || len(fifo[0]) <= cap(dst[0]) {
						t.Fatalf("seed %d: GetBatch = %d, ErrShortBuffer for %d bytes in %d", seed, n, len(fifo[0]), cap(dst[0]))
					}
					continue
				}
				if err != nil || n == 0 {
					t.Fatalf("seed %d: GetBatch = %d, %v", seed, n, err)
				}
				for _, m := range dst[:n] {
					take(m, "GetBatch")
				}
				// It stops early only at an empty ring or a message
				// that does not fit.
				if n < len(dst) && len(fifo) > 0 && len(fifo[0]) <= cap(dst[n]) {
					t.Fatalf("seed %d: GetBatch took %d of %d with %d more queued", seed, n, len(dst), len(fifo))
				}
			case 6: // Next..., Release
				for range rng.IntN(4) + 1 {
					m, ok, err := q.TryNext()
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					take(m, "TryNext")
				}
				if err := q.Release(); err != nil && err != ErrPending {
					t.Fatal(err)
				}
			case 7:
				if q.Len() != len(fifo) {
					t.Fatalf("seed %d: Len %d, model %d", seed, q.Len(), len(fifo))
				}
			}
		}
		if s := q.Stats(); s.Puts != s.Gets+uint64(len(fifo)) {
			t.Fatalf("seed %d: stats %+v with %d queued", seed, s, len(fifo))
		}
	}
}
