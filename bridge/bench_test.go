package bridge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/ring"
)

// The bridge beside the plain client doing the same work, against one
// embedded server: go test -run '^$' -bench . ./bridge
//
//   - PlainPublish: PublishAsync with 256 in flight, waiting for every ack.
//   - Out: a local producer's Puts carried by an Out bridge, until every
//     message is acknowledged by the stream.
//   - PlainConsume: a pull consumer (Messages) double-acknowledging each
//     message, 64 acknowledgements in flight.
//   - In: an In bridge putting a preloaded stream into a local queue that
//     a local consumer drains.

func benchSetup(b *testing.B, size int) (*natsServer, jetstream.JetStream, string) {
	ns := &natsServer{t: b, dir: b.TempDir(), port: -1}
	ns.start()
	b.Cleanup(ns.stop)
	nc, js, err := connect(ns.url())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "BB", Subjects: []string{"bb.>"}, Storage: jetstream.MemoryStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		b.Fatal(err)
	}
	q := fmt.Sprintf("bridge-bench-%d-%d", size, time.Now().UnixNano())
	return ns, js, q
}

func benchSizes(b *testing.B, f func(b *testing.B, size int)) {
	for _, size := range []int{64, 4096} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { f(b, size) })
	}
}

func BenchmarkPlainPublish(b *testing.B) {
	benchSizes(b, func(b *testing.B, size int) {
		_, js, _ := benchSetup(b, size)
		msg := make([]byte, size)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		sem := make(chan struct{}, 256)
		var wg sync.WaitGroup
		for i := 0; i < b.N; i++ {
			sem <- struct{}{}
			f, err := js.PublishAsync("bb.x", msg, jetstream.WithMsgID(fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Error(err)
				}
				<-sem
			}()
		}
		wg.Wait()
	})
}

func BenchmarkOut(b *testing.B) {
	benchSizes(b, func(b *testing.B, size int) {
		_, js, name := benchSetup(b, size)
		q, err := ring.Create(name, ring.Config{Mode: ring.SPSC, Capacity: 4096, MaxMessage: size})
		if err != nil {
			b.Fatal(err)
		}
		defer ring.Unlink(name)
		defer q.Close()
		pq, err := ring.Open(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		defer pq.Close()
		o, err := NewOut(context.Background(), OutConfig{Queue: q, JetStream: js, Subject: "bb.x", Logger: helperLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()
		msg := make([]byte, size)
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := pq.Put(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		for o.Stats().Snapshot().Messages < uint64(b.N) {
			time.Sleep(50 * time.Microsecond)
		}
		b.StopTimer()
		cancel()
		<-done
	})
}

func preload(b *testing.B, js jetstream.JetStream, n, size int) {
	msg := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync("bb.x", msg); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
}

func BenchmarkPlainConsume(b *testing.B) {
	benchSizes(b, func(b *testing.B, size int) {
		_, js, _ := benchSetup(b, size)
		preload(b, js, b.N, size)
		ctx := context.Background()
		cons, err := js.CreateOrUpdateConsumer(ctx, "BB", jetstream.ConsumerConfig{Durable: "P", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			b.Fatal(err)
		}
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for i := 0; i < b.N; i++ {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = m.DoubleAck(ctx)
				<-sem
			}()
		}
		wg.Wait()
		it.Stop()
	})
}

func BenchmarkIn(b *testing.B) {
	benchSizes(b, func(b *testing.B, size int) {
		_, js, name := benchSetup(b, size)
		preload(b, js, b.N, size)
		q, err := ring.Create(name, ring.Config{Mode: ring.SPSC, Capacity: 4096, MaxMessage: size})
		if err != nil {
			b.Fatal(err)
		}
		defer ring.Unlink(name)
		defer shmUnlink(name + ".bridge-in")
		defer q.Close()
		cq, err := ring.Open(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		defer cq.Close()
		ctx, cancel := context.WithCancel(context.Background())
		in, err := NewIn(ctx, InConfig{Queue: q, JetStream: js, Stream: "BB", Consumer: "I", Logger: helperLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		b.SetBytes(int64(size))
		b.ReportAllocs()
		b.ResetTimer()
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()
		buf := make([]byte, size)
		for i := 0; i < b.N; i++ {
			if _, err := cq.Get(ctx, buf); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cancel()
		<-done
	})
}
