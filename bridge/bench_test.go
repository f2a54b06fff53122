package bridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/ring"
)

// The bridge beside the plain client doing the same work, against one
// embedded server: go test -run '^$' -bench . ./bridge
//
//   - PlainPublish: PublishAsync with 1024 in flight (the Out bridge's
//     default window), waiting for every ack.
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

// benchNap sets how a local queue's consumer waits in the benchmarks: no
// spin and naps of 50 µs for up to 10 ms, then a futex sleep. A consumer
// sleeping on the futex at once (SetSpin(0) alone) blocks an OS thread
// per wait, in a process whose other goroutines (the bridge, the client,
// the embedded server) need the CPUs; that ran the In path at 0.55-0.61
// of the plain consumer (BENCHMARKS.md).
func benchNap(q *ring.Queue) {
	q.SetSpin(0)
	q.SetNap(50*time.Microsecond, 10*time.Millisecond)
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
		sem := make(chan struct{}, 1024)
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

// BenchmarkOut runs the Out bridge as configured by default (publishes
// chained by the expected last message id); BenchmarkOutUnordered without
// the chain, as the plain client publishes.
func BenchmarkOut(b *testing.B) { benchOut(b, false) }

func BenchmarkOutUnordered(b *testing.B) { benchOut(b, true) }

func benchOut(b *testing.B, unordered bool) {
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
		benchNap(q)  // the Out bridge waits for the producer, as in EndToEnd
		benchNap(pq) // and the producer for room
		o, err := NewOut(context.Background(), OutConfig{Queue: q, JetStream: js, Subject: "bb.x", Unordered: unordered, Logger: helperLogger()})
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

func BenchmarkIn(b *testing.B) { benchIn(b, false) }

// InAlone is In without the local consumer: the queue holds every message,
// so this measures the bridge's own work (state entry, Put, double ack)
// beside PlainConsume, without the hop to another consumer sharing the
// CPUs.
func BenchmarkInAlone(b *testing.B) { benchIn(b, true) }

func benchIn(b *testing.B, alone bool) {
	benchSizes(b, func(b *testing.B, size int) {
		_, js, name := benchSetup(b, size)
		preload(b, js, b.N, size)
		capacity := 4096
		if alone {
			capacity = b.N + 16
		}
		q, err := ring.Create(name, ring.Config{Mode: ring.SPSC, Capacity: capacity, MaxMessage: size})
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
		// The local consumer naps when the queue is empty (benchNap)
		// instead of spinning: on two CPUs a spinning consumer takes one
		// from the server and the bridge (the plain consumer has no such
		// hop).
		benchNap(cq)
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
		if alone {
			for in.Stats().Snapshot().Messages < uint64(b.N) {
				time.Sleep(20 * time.Microsecond)
			}
		} else {
			buf := make([]byte, size)
			for i := 0; i < b.N; i++ {
				if _, err := cq.Get(ctx, buf); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		cancel()
		<-done
	})
}

// End to end: a producer's message to a consumer, through the two bridges
// (Put -> Out -> JetStream -> In -> Get) or through the plain client
// (PublishAsync -> JetStream -> pull consumer), every message stamped with
// the time it was sent; msg/s and the p50 and p99 latency under that load.
//
// EndToEnd sends as fast as it can (throughput; the latency then is mostly
// queueing); EndToEndPaced sends 2,000 messages a second, a tenth of what
// either path carries, for the latency of a message that does not wait
// behind others.
func BenchmarkEndToEnd(b *testing.B) {
	for _, mode := range []string{"plain", "bridge"} {
		b.Run(mode, func(b *testing.B) {
			benchSizes(b, func(b *testing.B, size int) { endToEnd(b, mode, size, 0) })
		})
	}
}

func BenchmarkEndToEndPaced(b *testing.B) {
	for _, mode := range []string{"plain", "bridge"} {
		b.Run(mode, func(b *testing.B) {
			benchSizes(b, func(b *testing.B, size int) { endToEnd(b, mode, size, 2000) })
		})
	}
}

func endToEnd(b *testing.B, mode string, size, rate int) {
	_, js, name := benchSetup(b, size)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lat := make([]time.Duration, 0, b.N)
	msg := make([]byte, size)
	stamp := func() []byte {
		binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
		return msg
	}
	since := func(m []byte) time.Duration {
		return time.Duration(time.Now().UnixNano() - int64(binary.LittleEndian.Uint64(m)))
	}
	b.SetBytes(int64(size))
	var send func(i int)
	var recv func() []byte
	switch mode {
	case "plain":
		cons, err := js.CreateOrUpdateConsumer(ctx, "BB", jetstream.ConsumerConfig{Durable: "E", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024})
		if err != nil {
			b.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			b.Fatal(err)
		}
		defer it.Stop()
		sem := make(chan struct{}, 1024)
		send = func(i int) {
			sem <- struct{}{}
			f, err := js.PublishAsync("bb.x", stamp(), jetstream.WithMsgID(fmt.Sprint(i)))
			if err != nil {
				b.Error(err)
				return
			}
			go func() {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Error(err)
				}
				<-sem
			}()
		}
		acks := make(chan struct{}, 64)
		recv = func() []byte {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			acks <- struct{}{}
			go func() { _ = m.DoubleAck(ctx); <-acks }()
			return m.Data()
		}
	case "bridge":
		qa, qb := name+"-a", name+"-b"
		for _, n := range []string{qa, qb} {
			q, err := ring.Create(n, ring.Config{Mode: ring.SPSC, Capacity: 4096, MaxMessage: size})
			if err != nil {
				b.Fatal(err)
			}
			q.Close()
			defer ring.Unlink(n)
		}
		defer shmUnlink(qb + ".bridge-in")
		oq, _ := ring.Open(ctx, qa)
		iq, _ := ring.Open(ctx, qb)
		pq, _ := ring.Open(ctx, qa)
		cq, _ := ring.Open(ctx, qb)
		benchNap(cq) // as in BenchmarkIn
		benchNap(oq) // the Out bridge waits for the producer the same way
		benchNap(pq) // and the producer for room (the plain one parks on a channel)
		for _, q := range []*ring.Queue{oq, iq, pq, cq} {
			defer q.Close()
		}
		o, err := NewOut(ctx, OutConfig{Queue: oq, JetStream: js, Subject: "bb.x", Logger: helperLogger()})
		if err != nil {
			b.Fatal(err)
		}
		in, err := NewIn(ctx, InConfig{Queue: iq, JetStream: js, Stream: "BB", Consumer: "E", Logger: helperLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = o.Run(ctx) }()
		go func() { defer wg.Done(); _ = in.Run(ctx) }()
		defer wg.Wait()
		defer cancel()
		send = func(int) {
			if err := pq.Put(ctx, stamp()); err != nil {
				b.Error(err)
			}
		}
		buf := make([]byte, size)
		recv = func() []byte {
			k, err := cq.Get(ctx, buf)
			if err != nil {
				b.Fatal(err)
			}
			return buf[:k]
		}
	}
	b.ResetTimer()
	go func() {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
			}
			send(i)
		}
	}()
	for i := 0; i < b.N; i++ {
		lat = append(lat, since(recv()))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
