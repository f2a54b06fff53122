package main

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// slotsTransport measures ring's Slots mode: a typed queue of [size]byte
// values, one producer and one consumer, through Typed's Put/Get (slots)
// or PutBatch/GetBatch of 64 KiB of values (slots-batch, as queue-batch
// and unix-buf's bufio). Sizes are the powers of two from 8 to 4096 bytes,
// each its own Go type.
type slotsTransport struct {
	name  string
	desc  string
	batch bool
}

func init() {
	register(&slotsTransport{name: "slots",
		desc: "shmkit ring.Typed on a Slots queue (fixed-size slots, SPSC), one Put and one Get per value"})
	register(&slotsTransport{name: "slots-batch", batch: true,
		desc: "shmkit ring.Typed on a Slots queue, PutBatch/GetBatch of 64 KiB of values, as queue-batch and unix-buf's bufio"})
}

// Spec implements Transport.
func (t *slotsTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindShmkit, Desc: t.desc, MaxSize: 4096,
		Patterns: []Pattern{PatThroughput, PatPingPong}, Batching: "none: one Put and one Get per value"}
	if t.batch {
		s.Patterns = []Pattern{PatThroughput}
		s.Batching, s.Batched = "64 KiB of values per PutBatch and per GetBatch: the bytes unix-buf's bufio gathers per system call", true
	}
	return s
}

// Unavailable implements Transport.
func (t *slotsTransport) Unavailable() string { return shmUnavailable() }

// slotsKindFuncs create and open the Slots queues of one value type.
type slotsKindFuncs struct {
	create func(name string, cfg ring.Config) error
	open   func(p *slotsPeer, name, back string, batch bool) (Endpoint, error)
}

// slotsKinds are the measured sizes' value types.
var slotsKinds = map[int]slotsKindFuncs{
	8:    slotsKind[[8]byte](),
	16:   slotsKind[[16]byte](),
	32:   slotsKind[[32]byte](),
	64:   slotsKind[[64]byte](),
	128:  slotsKind[[128]byte](),
	256:  slotsKind[[256]byte](),
	512:  slotsKind[[512]byte](),
	1024: slotsKind[[1024]byte](),
	2048: slotsKind[[2048]byte](),
	4096: slotsKind[[4096]byte](),
}

// slotsPeer says which side a peer opens (ping-pong: which queue is in).
type slotsPeer struct{ ping bool }

func slotsKind[T any]() slotsKindFuncs {
	return slotsKindFuncs{
		create: func(name string, cfg ring.Config) error {
			q, err := ring.CreateTyped[T](name, cfg, shm.WithPopulate())
			if err != nil {
				return err
			}
			return q.Close()
		},
		open: func(p *slotsPeer, name, back string, batch bool) (Endpoint, error) {
			ctx := context.Background()
			in, err := ring.OpenTyped[T](ctx, name, prefault)
			if err != nil {
				return nil, err
			}
			e := &slotsEndpoint[T]{in: in, out: in}
			if back != "" {
				q2, err := ring.OpenTyped[T](ctx, back, prefault)
				if err != nil {
					in.Close()
					return nil, err
				}
				if p.ping {
					e.in = q2
				} else {
					e.out = q2
				}
			}
			if batch {
				n := batchLen(int(unsafe.Sizeof(*new(T))))
				e.pending, e.got = make([]T, 0, n), make([]T, n)
				return slotsRunEndpoint[T]{e}, nil
			}
			return e, nil
		},
	}
}

// Setup implements Transport.
func (t *slotsTransport) Setup(m *Measurement) (*Setup, error) {
	kind, ok := slotsKinds[m.Size]
	if !ok {
		return nil, fmt.Errorf("%w: Slots rows measure powers of two from 8 to 4096 bytes", errUnsupported)
	}
	cfg := ringConfig(m)
	cfg.Mode, cfg.MaxMessage = ring.Slots, 0 // CreateTyped sets MaxMessage
	return queueSetup(m, "slots", func(name string) error { return kind.create(name, cfg) })
}

// Open implements Transport.
func (t *slotsTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	kind, ok := slotsKinds[env.M.Size]
	if !ok {
		return nil, errUnsupported
	}
	e, err := kind.open(&slotsPeer{ping: env.Role == rolePing}, env.Args["name"], env.Args["back"], t.batch)
	if err != nil {
		return nil, err
	}
	return []Endpoint{e}, nil
}

// slotsEndpoint is one side of a Slots row.
type slotsEndpoint[T any] struct {
	in, out *ring.Typed[T]
	v       T   // the value Send puts (its sequence number rewritten)
	pending []T // slots-batch: values waiting to be put
	got     []T // slots-batch: values taken, handed out one by one
	gotN    int
	gotI    int
}

func seqBytes[T any](v *T) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(v)), 8) }

// Send implements Endpoint.
func (e *slotsEndpoint[T]) Send(seq uint64) error {
	ctx := context.Background()
	if e.pending == nil {
		putSeq(seqBytes(&e.v), seq)
		return e.out.Put(ctx, e.v)
	}
	b := e.pending[:len(e.pending)+1]
	putSeq(seqBytes(&b[len(b)-1]), seq)
	e.pending = b
	if len(b) < cap(b) {
		return nil
	}
	_, err := e.out.PutBatch(ctx, b)
	e.pending = b[:0]
	return err
}

// Recv implements Endpoint.
func (e *slotsEndpoint[T]) Recv() (uint64, error) {
	ctx := context.Background()
	if e.got == nil {
		v, err := e.in.Get(ctx)
		if err != nil {
			return 0, err
		}
		return getSeq(seqBytes(&v)), nil
	}
	if e.gotI == e.gotN {
		n, err := e.in.GetBatch(ctx, e.got)
		if err != nil {
			return 0, err
		}
		e.gotN, e.gotI = n, 0
	}
	v := &e.got[e.gotI]
	e.gotI++
	return getSeq(seqBytes(v)), nil
}

// slotsRunEndpoint is a slots-batch side, with runs (see runEndpoint).
type slotsRunEndpoint[T any] struct{ *slotsEndpoint[T] }

// SendRun implements runEndpoint.
func (e slotsRunEndpoint[T]) SendRun(seqs []uint64) error {
	for _, seq := range seqs {
		if err := e.Send(seq); err != nil {
			return err
		}
	}
	return nil
}

// RecvRun implements runEndpoint: the values of the last GetBatch not
// handed out yet, or of a new one.
func (e slotsRunEndpoint[T]) RecvRun(seqs []uint64) (int, error) {
	if e.gotI == e.gotN {
		n, err := e.in.GetBatch(context.Background(), e.got)
		if err != nil {
			return 0, err
		}
		e.gotN, e.gotI = n, 0
	}
	k := min(len(seqs), e.gotN-e.gotI)
	for i := range k {
		seqs[i] = getSeq(seqBytes(&e.got[e.gotI+i]))
	}
	e.gotI += k
	return k, nil
}

// Close implements Endpoint.
func (e *slotsEndpoint[T]) Close() error {
	if e.in != e.out {
		e.out.Close()
	}
	return e.in.Close()
}
