package ring

import (
	"context"
	"testing"
)

// BenchmarkPutGetInProcess is the instruction cost of the SPSC fast path:
// one Put and one Get on one queue in one goroutine (ns/op per pair), no
// second process and so no cache-line transfers. A ping-pong round trip
// has two such pairs on its critical path.
func BenchmarkPutGetInProcess(b *testing.B) {
	for _, size := range []int{8, 64} {
		b.Run(sizeName(size), func(b *testing.B) { benchPutGet(b, newBenchQueue(b), size) })
	}
}

// benchPutGet puts and gets size-byte messages on q, one at a time.
func benchPutGet(b *testing.B, q *Queue, size int) {
	ctx := context.Background()
	msg := make([]byte, size)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Put(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := q.Get(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTryPutGetInProcess is BenchmarkPutGetInProcess with TryPut and
// TryGet.
func BenchmarkTryPutGetInProcess(b *testing.B) {
	q := newBenchQueue(b)
	msg := make([]byte, 8)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := q.TryPut(msg); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if _, ok, err := q.TryGet(buf); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkPipeInProcess is Send and Recv of 8 bytes on both directions
// of a Pipe in one goroutine: the instructions of one ping-pong round
// trip (ns/op per round trip).
func BenchmarkPipeInProcess(b *testing.B) {
	a, c, err := Pipe(Config{MaxMessage: 64, Capacity: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	defer c.Close()
	ctx := context.Background()
	msg := make([]byte, 8)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		k, err := c.Recv(ctx, buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Send(ctx, buf[:k]); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Recv(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextReleaseInProcess is Put then Next and Release.
func BenchmarkNextReleaseInProcess(b *testing.B) {
	q := newBenchQueue(b)
	ctx := context.Background()
	msg := make([]byte, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Put(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := q.Next(ctx); err != nil {
			b.Fatal(err)
		}
		if err := q.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMPMCPutGetInProcess is BenchmarkPutGetInProcess on an MPMC
// queue: the instruction cost of a claim, publish, claim and release with
// no other participant (ns/op per pair); Exclusive on a handle that
// SetExclusive spared its locks.
func BenchmarkMPMCPutGetInProcess(b *testing.B) {
	for _, c := range []struct {
		name      string
		exclusive bool
	}{{"Shared", false}, {"Exclusive", true}} {
		for _, size := range []int{8, 64} {
			b.Run(c.name+"/"+sizeName(size), func(b *testing.B) {
				q := newBenchQueueMode(b, MPMC)
				if c.exclusive {
					q.SetExclusive()
				}
				benchPutGet(b, q, size)
			})
		}
	}
}

func newBenchQueue(b *testing.B) *Queue { return newBenchQueueMode(b, SPSC) }

func newBenchQueueMode(b *testing.B, mode Mode) *Queue {
	cfg := Config{Mode: mode, MaxMessage: 64, Capacity: 16} // as the ping-pong's pipe
	size, err := SizeOf(cfg)
	if err != nil {
		b.Fatal(err)
	}
	q, err := New(alignedMem(size), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// BenchmarkReserveCommitInProcess is Reserve and Commit of 64 bytes, then
// Next and Release: the zero-copy path's instructions.
func BenchmarkReserveCommitInProcess(b *testing.B) {
	q := newBenchQueue(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m, err := q.Reserve(ctx, 64)
		if err != nil {
			b.Fatal(err)
		}
		m[0] = 1
		if err := q.Commit(64); err != nil {
			b.Fatal(err)
		}
		if _, err := q.Next(ctx); err != nil {
			b.Fatal(err)
		}
		if err := q.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBatchInProcess is PutBatch and GetBatch of 256 messages on an
// SPSC queue in one goroutine: the per-message instruction cost of the
// batched paths (ns/op per message, both sides together).
func BenchmarkBatchInProcess(b *testing.B) {
	const batch = 256
	for _, size := range []int{8, 64} {
		b.Run(sizeName(size), func(b *testing.B) {
			cfg := Config{Mode: SPSC, MaxMessage: 64, Capacity: 1 << 20}
			n, err := SizeOf(cfg)
			if err != nil {
				b.Fatal(err)
			}
			q, err := New(alignedMem(n), cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			msgs, dst := make([][]byte, batch), make([][]byte, batch)
			for i := range msgs {
				msgs[i], dst[i] = make([]byte, size), make([]byte, 64)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				k := min(batch, b.N-i)
				if m, err := q.PutBatch(ctx, msgs[:k]); m != k || err != nil {
					b.Fatal(m, err)
				}
				if m, err := q.GetBatch(ctx, dst[:k]); m != k || err != nil {
					b.Fatal(m, err)
				}
			}
		})
	}
}
