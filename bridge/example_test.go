package bridge_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/bridge"
	"github.com/shmkit/shmkit/ring"
)

// An Out bridge on one machine and an In bridge on another carry the
// messages of a local queue through a JetStream stream that captures
// "jobs.>". Each side's local processes only see their SPSC queue.
func Example() {
	ctx := context.Background()
	nc, err := nats.Connect("nats://nats.example:4222")
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}

	// Machine A: producers put into "jobs"; the bridge consumes it.
	out, err := ring.Open(ctx, "jobs")
	if err != nil {
		log.Fatal(err)
	}
	o, err := bridge.NewOut(ctx, bridge.OutConfig{Queue: out, JetStream: js, Subject: "jobs.a"})
	if err != nil {
		log.Fatal(err) // no stream captures jobs.a, the queue is MPMC, ...
	}
	go o.Run(ctx)

	// Machine B: the bridge puts into its own "jobs"; consumers get from it.
	in, err := ring.Open(ctx, "jobs")
	if err != nil {
		log.Fatal(err)
	}
	i, err := bridge.NewIn(ctx, bridge.InConfig{Queue: in, JetStream: js, Stream: "JOBS", Consumer: "jobs-b"})
	if err != nil {
		log.Fatal(err)
	}
	defer i.Close()
	log.Fatal(i.Run(ctx))
}
