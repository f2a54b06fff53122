package main

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// ringVariant is how a shmkit ring transport moves messages.
type ringVariant int

const (
	ringSingle    ringVariant = iota // Queue.Put / Queue.Get
	ringBatch                        // Queue.PutBatch / Queue.GetBatch
	ringZeroCopy                     // Reserve+Commit / Next+Release
	ringPipe                         // ring.Conn Send / Recv (CreatePipe, OpenPipe)
	ringPipeBlock                    // ringPipe with SetSpin(0): sleeps at once
)

// ringTransport measures package ring. The queue variants use a named
// queue the coordinator creates (SPSC for one producer and one consumer,
// MPMC otherwise; two SPSC queues, one each way, for ping-pong). The pipe
// is created by its first peer (end 0) and opened by the second (end 1),
// which the coordinator starts only once the first is ready.
type ringTransport struct {
	name    string
	desc    string
	variant ringVariant
}

func init() {
	register(&ringTransport{name: "queue", variant: ringSingle,
		desc: "shmkit ring.Queue, one Put and one Get per message (copy in, copy out)"})
	register(&ringTransport{name: "queue-batch", variant: ringBatch,
		desc: "shmkit ring.Queue, PutBatch/GetBatch of 64 KiB of messages (one message when larger), as unix-buf's bufio"})
	register(&ringTransport{name: "queue-zc", variant: ringZeroCopy,
		desc: "shmkit ring.Queue zero-copy: Reserve, payload copied in place (ring.CopyIn), Commit; Next, payload read in place (a word per 64-byte line), Release"})
	register(&ringTransport{name: "pipe-block", variant: ringPipeBlock,
		desc: "shmkit ring.Conn Send/Recv with SetSpin(0): a blocked side sleeps on its futex at once (against the futex row)"})
	register(&ringTransport{name: "pipe", variant: ringPipe,
		desc: "shmkit ring.Conn (CreatePipe/OpenPipe), Send/Recv; duplex"})
}

// Spec implements Transport.
func (t *ringTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindShmkit, Desc: t.desc}
	switch t.variant {
	case ringBatch:
		s.Patterns = []Pattern{PatThroughput, PatMPMC, PatScaling} // a ping-pong has nothing to batch
		s.Batching, s.Batched = "64 KiB of messages per PutBatch and per GetBatch (one message when larger): the bytes unix-buf's bufio gathers per system call", true
	case ringPipe:
		s.Patterns = []Pattern{PatThroughput, PatPingPong} // one writer, one reader per direction
		s.StartInOrder = true
		s.Batching = "none: one Send and one Recv per message"
	case ringPipeBlock:
		s.Patterns = []Pattern{PatPingPong}
		s.StartInOrder = true
		s.Batching = "none: one Send and one Recv per message, each blocked side asleep on a futex"
	case ringZeroCopy:
		s.Patterns = []Pattern{PatThroughput, PatMPMC, PatPingPong}
		s.Batching = "none: one Reserve/Commit and one Next/Release per message"
	default:
		s.Patterns = []Pattern{PatThroughput, PatMPMC, PatScaling, PatPingPong}
		s.Batching = "none: one Put and one Get per message"
	}
	return s
}

// Unavailable implements Transport.
func (t *ringTransport) Unavailable() string { return shmUnavailable() }

// ringConfig sizes a queue for messages of size bytes: about 2 MiB of
// ring, between 8 and 4096 messages.
func ringConfig(m *Measurement) ring.Config {
	c := ring.Config{Mode: ring.SPSC, MaxMessage: m.Size, Capacity: max(8, min(1<<16, (2<<20)/m.Size))}
	if isMPMC(m.Pattern) {
		c.Mode = ring.MPMC
		c.Participants = max(8, m.Producers+m.Consumers+2)
	}
	return c
}

// batchLen is how many messages queue-batch moves per call: 64 KiB of
// them, the bytes unix-buf's bufio buffers gather before a system call,
// so that the two batched rows compare like with like.
func batchLen(size int) int { return max(1, (64<<10)/max(size, 1)) }

// Setup implements Transport.
func (t *ringTransport) Setup(m *Measurement) (*Setup, error) {
	cfg := ringConfig(m)
	if t.variant == ringPipe || t.variant == ringPipeBlock {
		name := segName("pipe")
		return &Setup{Args: map[string]string{"name": name}, Cleanup: func() { ring.Unlink(name) }}, nil
	}
	return queueSetup(m, "queue", func(name string) error {
		q, err := ring.Create(name, cfg, shm.WithPopulate()) // fallocate: a full /dev/shm fails here
		if err != nil {
			return err
		}
		return q.Close()
	})
}

// queueSetup creates the named queues of a measurement with create: one,
// or for ping-pong two (args "name" and "back"), unlinked by Cleanup.
func queueSetup(m *Measurement, prefix string, create func(name string) error) (*Setup, error) {
	names := []string{segName(prefix)}
	if m.Pattern == PatPingPong {
		names = append(names, segName(prefix))
	}
	cleanup := func() {
		for _, n := range names {
			ring.Unlink(n)
		}
	}
	for _, n := range names {
		if err := create(n); err != nil {
			cleanup()
			return nil, err
		}
	}
	args := map[string]string{"name": names[0]}
	if len(names) > 1 {
		args["back"] = names[1]
	}
	return &Setup{Args: args, Cleanup: cleanup}, nil
}

// prefault maps a peer's ring with its pages faulted in: a page's first
// touch through a new mapping costs microseconds on some machines (6 us
// on our 2-vCPU VM), which would otherwise land in the first lap of the
// ring, past the warm-up for large messages.
var prefault = shm.WithPopulate()

// Open implements Transport.
func (t *ringTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	ctx := context.Background()
	size := env.M.Size
	if t.variant == ringPipe || t.variant == ringPipeBlock {
		var c *ring.Conn
		var err error
		// The first peer started (producer, or pong) creates end 0.
		if env.Role == roleProducer || env.Role == rolePong {
			c, err = ring.CreatePipe(env.Args["name"], ringConfig(env.M), prefault)
		} else {
			c, err = ring.OpenPipe(ctx, env.Args["name"], prefault)
		}
		if err != nil {
			return nil, err
		}
		if t.variant == ringPipeBlock {
			c.SetSpin(0)
		}
		return []Endpoint{&pipeEndpoint{c: c, msg: make([]byte, size), buf: make([]byte, size)}}, nil
	}
	in, err := ring.Open(ctx, env.Args["name"], prefault)
	if err != nil {
		return nil, err
	}
	in.SetExclusive() // one goroutine per side in each process: no handle lock
	e := &queueEndpoint{variant: t.variant, in: in, out: in, size: size,
		msg: make([]byte, size), buf: make([]byte, size)}
	if back := env.Args["back"]; back != "" {
		q2, err := ring.Open(ctx, back, prefault)
		if err != nil {
			in.Close()
			return nil, err
		}
		q2.SetExclusive()
		// The pinger puts on the first queue and gets from the second.
		if env.Role == rolePing {
			e.in = q2
		} else {
			e.out = q2
		}
	}
	if t.variant == ringBatch {
		// Exactly n buffers: Send fills e.batch up to its capacity.
		n := batchLen(size)
		e.batch, e.got = make([][]byte, n), make([][]byte, n)
		for i := range n {
			e.batch[i], e.got[i] = make([]byte, size), make([]byte, size)
		}
		e.batch = e.batch[:0]
		return []Endpoint{queueRunEndpoint{e}}, nil
	}
	return []Endpoint{e}, nil
}

// queueEndpoint is one side of the queue variants.
type queueEndpoint struct {
	variant  ringVariant
	in, out  *ring.Queue
	size     int
	msg, buf []byte
	batch    [][]byte // queue-batch: messages waiting to be put
	got      [][]byte // queue-batch: messages taken, handed out one by one
	gotN     int
	gotI     int
	sink     uint64 // queue-zc: what touchLines read, kept so the reads are not dead
}

// touchLines reads the payload of a message in place, one 8-byte word
// per 64-byte cache line (and the last word), and returns their sum: the
// consumer of a zero-copy queue reads the message where it lies, and
// every line of it crosses to the consumer's CPU.
func touchLines(m []byte) uint64 {
	var sum uint64
	for off := 0; off+8 <= len(m); off += 64 {
		sum += binary.LittleEndian.Uint64(m[off:])
	}
	switch {
	case len(m) >= 8:
		sum += binary.LittleEndian.Uint64(m[len(m)-8:])
	case len(m) > 0:
		sum += uint64(m[0])
	}
	return sum
}

// Send implements Endpoint.
func (e *queueEndpoint) Send(seq uint64) error {
	ctx := context.Background()
	switch e.variant {
	case ringZeroCopy:
		b, err := e.out.Reserve(ctx, e.size)
		if err != nil {
			return err
		}
		// The producer writes its message where the consumer will read
		// it: one copy, from the buffer it built the message in, as Put
		// copies (ring.CopyIn: non-temporal stores from 32 KiB).
		putSeq(e.msg, seq)
		ring.CopyIn(b, e.msg)
		return e.out.Commit(e.size)
	case ringBatch:
		b := e.batch[:len(e.batch)+1]
		putSeq(b[len(b)-1], seq)
		e.batch = b
		if len(b) < cap(b) {
			return nil
		}
		_, err := e.out.PutBatch(ctx, b)
		e.batch = b[:0]
		return err
	}
	putSeq(e.msg, seq)
	return e.out.Put(ctx, e.msg)
}

// Recv implements Endpoint.
func (e *queueEndpoint) Recv() (uint64, error) {
	ctx := context.Background()
	switch e.variant {
	case ringZeroCopy:
		m, err := e.in.Next(ctx)
		if err != nil {
			return 0, err
		}
		if len(m) != e.size {
			e.in.Release()
			return 0, fmt.Errorf("got a %d-byte message, want %d", len(m), e.size)
		}
		seq := getSeq(m)
		e.sink += touchLines(m)
		return seq, e.in.Release()
	case ringBatch:
		if e.gotI == e.gotN {
			n, err := e.in.GetBatch(ctx, e.got)
			if err != nil {
				return 0, err
			}
			e.gotN, e.gotI = n, 0
		}
		m := e.got[e.gotI]
		e.gotI++
		if len(m) != e.size {
			return 0, fmt.Errorf("got a %d-byte message, want %d", len(m), e.size)
		}
		return getSeq(m), nil
	}
	n, err := e.in.Get(ctx, e.buf)
	if err != nil {
		return 0, err
	}
	if n != e.size {
		return 0, fmt.Errorf("got a %d-byte message, want %d", n, e.size)
	}
	return getSeq(e.buf), nil
}

// queueRunEndpoint is a queue-batch side, with runs (see runEndpoint).
type queueRunEndpoint struct{ *queueEndpoint }

// SendRun implements runEndpoint.
func (e queueRunEndpoint) SendRun(seqs []uint64) error {
	for _, seq := range seqs {
		if err := e.Send(seq); err != nil {
			return err
		}
	}
	return nil
}

// RecvRun implements runEndpoint: the messages of the last GetBatch not
// handed out yet, or of a new one.
func (e queueRunEndpoint) RecvRun(seqs []uint64) (int, error) {
	if e.gotI == e.gotN {
		n, err := e.in.GetBatch(context.Background(), e.got)
		if err != nil {
			return 0, err
		}
		e.gotN, e.gotI = n, 0
	}
	k := min(len(seqs), e.gotN-e.gotI)
	for i, m := range e.got[e.gotI : e.gotI+k] {
		if len(m) != e.size {
			return i, fmt.Errorf("got a %d-byte message, want %d", len(m), e.size)
		}
		seqs[i] = getSeq(m)
	}
	e.gotI += k
	return k, nil
}

// Close implements Endpoint.
func (e *queueEndpoint) Close() error {
	if e.in != e.out {
		e.out.Close()
	}
	return e.in.Close()
}

// pipeEndpoint is one end of a ring.Conn.
type pipeEndpoint struct {
	c        *ring.Conn
	msg, buf []byte
}

// Send implements Endpoint.
func (e *pipeEndpoint) Send(seq uint64) error {
	putSeq(e.msg, seq)
	return e.c.Send(context.Background(), e.msg)
}

// Recv implements Endpoint.
func (e *pipeEndpoint) Recv() (uint64, error) {
	n, err := e.c.Recv(context.Background(), e.buf)
	if err != nil {
		return 0, err
	}
	if n != len(e.buf) {
		return 0, fmt.Errorf("got a %d-byte message, want %d", n, len(e.buf))
	}
	return getSeq(e.buf), nil
}

// Close implements Endpoint.
func (e *pipeEndpoint) Close() error { return e.c.Close() }
