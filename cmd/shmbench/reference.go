package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/internal/refring"
	"github.com/shmkit/shmkit/ring"
)

// memcpyTransport measures the copy a queue's producer makes, alone, in
// one process: each "message" is a copy of size bytes from one hot
// size-byte source buffer into a destination that walks, record by
// record (an 8-byte header, then the payload rounded up to 8 bytes),
// through as many bytes as the queue transport's ring for that size
// (ring.SizeOf of ringConfig): the same destination footprint and the
// same source as queue's Put. A copying queue makes this copy and more
// (the consumer's copy out, the synchronisation, the cache lines moving
// to the consumer's CPU), so its bytes/s should stay below memcpy's.
type memcpyTransport struct{}

func init() {
	register(memcpyTransport{})
	register(&refringTransport{})
	register(&cachelineTransport{})
}

// Spec implements Transport.
func (memcpyTransport) Spec() Spec {
	return Spec{Name: "memcpy", Kind: KindReference, NoProducer: true,
		Desc:     "one copy per message from a hot buffer into a ring-sized destination, in one process: a producer's copy alone",
		Note:     "the producer's copy alone, ring-sized destination",
		Batching: "none: one copy per message, no consumer",
		Patterns: []Pattern{PatThroughput}}
}

// Unavailable implements Transport.
func (memcpyTransport) Unavailable() string { return "" }

// Setup implements Transport.
func (memcpyTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// memcpyFootprint is the destination memcpy walks for messages of m.Size
// bytes: the size of the queue transport's ring.
func memcpyFootprint(m *Measurement) (int, error) {
	q := *m
	q.Pattern = PatThroughput // queue's throughput ring: SPSC
	return ring.SizeOf(ringConfig(&q))
}

// memcpyStride is the distance between records of size bytes in an SPSC
// ring: an 8-byte header and the payload rounded up to 8 bytes.
func memcpyStride(size int) int { return 8 + (size+7)&^7 }

// Open implements Transport.
func (memcpyTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	size := env.M.Size
	span, err := memcpyFootprint(env.M)
	if err != nil {
		return nil, err
	}
	e := &memcpyEndpoint{src: make([]byte, size), dst: make([]byte, max(span, memcpyStride(size))),
		size: size, stride: memcpyStride(size)}
	for i := range e.src {
		e.src[i] = byte(i)
	}
	for i := 0; i < len(e.dst); i += 4096 {
		e.dst[i] = 1 // fault the pages in before measuring
	}
	return []Endpoint{e}, nil
}

type memcpyEndpoint struct {
	src, dst     []byte
	off          int
	size, stride int
}

// Send implements Endpoint.
func (e *memcpyEndpoint) Send(uint64) error { return errUnsupported }

// Recv implements Endpoint.
func (e *memcpyEndpoint) Recv() (uint64, error) {
	if e.off+e.stride > len(e.dst) {
		e.off = 0
	}
	copy(e.dst[e.off+8:e.off+8+e.size], e.src)
	e.off += e.stride
	return 0, nil
}

// Close implements Endpoint.
func (e *memcpyEndpoint) Close() error { return nil }

// refringSlots is the reference ring's capacity in 64-byte slots.
const refringSlots = 1024

// refringTransport is internal/refring: the barest shared-memory ring
// (fixed 64-byte slots, busy-spinning, no features), the ceiling for
// shmkit's queue on small messages.
type refringTransport struct{}

// Spec implements Transport.
func (*refringTransport) Spec() Spec {
	return Spec{Name: "refring", Kind: KindReference, Spins: true,
		Desc:     "internal/refring: bare SPSC ring, fixed 64-byte slots, busy-spin (ceiling for small messages)",
		Patterns: []Pattern{PatThroughput}, FixedSize: refring.SlotSize,
		Batching: "none: one slot written and one read per message"}
}

// Unavailable implements Transport.
func (*refringTransport) Unavailable() string { return memfdUnavailable() }

// memfdUnavailable tells whether refring's memfd mapping works here.
func memfdUnavailable() string {
	mem, f, err := refring.Anonymous(4096)
	if err != nil {
		return err.Error()
	}
	refring.Unmap(mem)
	f.Close()
	return ""
}

// Setup implements Transport.
func (*refringTransport) Setup(m *Measurement) (*Setup, error) {
	size := refring.Size(refringSlots)
	mem, f, err := refring.Anonymous(size)
	if err != nil {
		return nil, err
	}
	if err := refring.Init(mem, refringSlots); err != nil {
		return nil, err
	}
	refring.Unmap(mem)
	return &Setup{
		Args:    map[string]string{"size": strconv.Itoa(size)},
		Files:   func(string, int) []*os.File { return []*os.File{f} },
		Cleanup: func() { f.Close() },
	}, nil
}

// Open implements Transport.
func (*refringTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	mem, err := mapArg(env)
	if err != nil {
		return nil, err
	}
	e := &refringEndpoint{buf: make([]byte, refring.SlotSize), size: min(env.M.Size, refring.SlotSize)}
	if env.Role == roleProducer {
		e.p, err = refring.NewProducer(mem, refringSlots)
	} else {
		e.c, err = refring.NewConsumer(mem, refringSlots)
	}
	return []Endpoint{e}, err
}

// mapArg maps the memfd a peer inherited (fd 3) of the size in its args.
func mapArg(env *PeerEnv) ([]byte, error) {
	size, err := strconv.Atoi(env.Args["size"])
	if err != nil || len(env.Files) != 1 {
		return nil, fmt.Errorf("bad peer arguments (size %q, %d files)", env.Args["size"], len(env.Files))
	}
	return refring.MapFile(env.Files[0], size)
}

type refringEndpoint struct {
	p    *refring.Producer
	c    *refring.Consumer
	buf  []byte
	size int
}

// Send implements Endpoint.
func (e *refringEndpoint) Send(seq uint64) error {
	putSeq(e.buf, seq)
	e.p.Put(e.buf[:e.size])
	return nil
}

// Recv implements Endpoint.
func (e *refringEndpoint) Recv() (uint64, error) {
	e.c.Get(e.buf)
	if e.size < 8 {
		return 0, nil
	}
	return getSeq(e.buf), nil
}

// Close implements Endpoint.
func (e *refringEndpoint) Close() error { return nil }

// PingSizeLine is the size the cache-line ping-pong is reported at.
const PingSizeLine = refring.PingSize

// cachelineTransport flips one shared cache line between two processes
// (refring.Ping/Pong): the floor of any cross-process round trip.
type cachelineTransport struct{}

// Spec implements Transport.
func (*cachelineTransport) Spec() Spec {
	return Spec{Name: "cacheline", Kind: KindReference, Spins: true,
		Desc:     "one shared cache line flipped between two processes (floor for a round trip)",
		Patterns: []Pattern{PatPingPong}, FixedSize: PingSizeLine,
		Batching: "none: one store and one load each way per round trip"}
}

// Unavailable implements Transport.
func (*cachelineTransport) Unavailable() string { return memfdUnavailable() }

// Setup implements Transport.
func (*cachelineTransport) Setup(m *Measurement) (*Setup, error) { return sharedPage() }

// sharedPage is the Setup of the references that share one page (the
// cache line, the futex words): a memfd of 4096 bytes every peer maps.
func sharedPage() (*Setup, error) {
	mem, f, err := refring.Anonymous(4096)
	if err != nil {
		return nil, err
	}
	refring.Unmap(mem)
	return &Setup{
		Args:    map[string]string{"size": "4096"},
		Files:   func(string, int) []*os.File { return []*os.File{f} },
		Cleanup: func() { f.Close() },
	}, nil
}

// Open implements Transport.
func (*cachelineTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	mem, err := mapArg(env)
	if err != nil {
		return nil, err
	}
	return []Endpoint{&cachelineEndpoint{mem: mem}}, nil
}

// cachelineEndpoint implements the ping side as a batch timer (RoundTrips)
// and the pong side as an endless responder (Serve); Send and Recv are not
// used.
type cachelineEndpoint struct{ mem []byte }

// Send implements Endpoint.
func (e *cachelineEndpoint) Send(uint64) error { return errUnsupported }

// Recv implements Endpoint.
func (e *cachelineEndpoint) Recv() (uint64, error) { return 0, errUnsupported }

// Close implements Endpoint.
func (e *cachelineEndpoint) Close() error { return nil }

// RoundTrips runs n round trips and returns their durations.
func (e *cachelineEndpoint) RoundTrips(n int) ([]time.Duration, error) {
	return refring.Ping(e.mem, n)
}

// Serve answers round trips until the process exits.
func (e *cachelineEndpoint) Serve() error {
	for {
		if err := refring.Pong(e.mem, 1<<20); err != nil {
			return err
		}
		runtime.Gosched()
	}
}

// roundTripper is implemented by endpoints that time their own round
// trips (the ping side) and serve them (the pong side).
type roundTripper interface {
	RoundTrips(n int) ([]time.Duration, error)
	Serve() error
}
