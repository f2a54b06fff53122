package main

import (
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
)

// futexTransport is the floor of a blocking round trip: two processes
// passing a sequence number through two futex words of a shared page,
// each sleeping on its word at once (futex wait) and woken by the other's
// store and futex wake, with nothing else: the yardstick for the rows
// that sleep instead of spinning (pipe-block).
type futexTransport struct{}

func init() { register(&futexTransport{}) }

// Spec implements Transport.
func (*futexTransport) Spec() Spec {
	return Spec{Name: "futex", Kind: KindReference,
		Desc:     "two futex words in a shared page, each side sleeping at once: the floor of a blocking round trip",
		Patterns: []Pattern{PatPingPong}, FixedSize: 8,
		Batching: "none: one store, one FUTEX_WAKE and one FUTEX_WAIT each way per round trip"}
}

// Unavailable implements Transport.
func (*futexTransport) Unavailable() string { return memfdUnavailable() }

// Setup implements Transport.
func (*futexTransport) Setup(m *Measurement) (*Setup, error) { return sharedPage() }

// Open implements Transport.
func (*futexTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	mem, err := mapArg(env)
	if err != nil {
		return nil, err
	}
	// Word 0 carries ping to pong, word 16 (the next cache line) back.
	a, b := (*uint32)(unsafe.Pointer(&mem[0])), (*uint32)(unsafe.Pointer(&mem[64]))
	e := &futexEndpoint{out: a, in: b}
	if env.Role == rolePong {
		e.out, e.in = b, a
	}
	return []Endpoint{e}, nil
}

type futexEndpoint struct {
	out, in *uint32
	last    uint32
}

// Send stores seq in the outgoing word and wakes the other side.
func (e *futexEndpoint) Send(seq uint64) error {
	atomic.StoreUint32(e.out, uint32(seq)) // atomic: read by the other process
	_, err := futex.Wake(e.out, 1)
	return err
}

// Recv sleeps until the incoming word changes and returns it.
func (e *futexEndpoint) Recv() (uint64, error) {
	for {
		v := atomic.LoadUint32(e.in) // atomic: written by the other process
		if v != e.last {
			e.last = v
			return uint64(v), nil
		}
		if err := futex.Wait(e.in, v, 100*time.Millisecond); err != nil && err != futex.ErrTimeout {
			return 0, err
		}
	}
}

// Close implements Endpoint.
func (e *futexEndpoint) Close() error { return nil }
