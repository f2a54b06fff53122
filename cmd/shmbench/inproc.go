package main

import (
	"sync"
)

// chanTransport is the in-process yardstick: goroutines of one process
// passing []byte messages over a buffered channel (of inFlight messages:
// about 2 MiB, 8 to 1024 of them), each message copied once into a buffer
// recycled through a sync.Pool, as idiomatic Go code would. It is
// labelled in-process: no other transport here shares an address space.
type chanTransport struct {
	once sync.Once
	ch   chan []byte // producers -> consumers
	back chan []byte // pong -> ping (ping-pong only)
	pool sync.Pool
}

func init() { register(&chanTransport{}) }

// Spec implements Transport.
func (t *chanTransport) Spec() Spec {
	return Spec{Name: "chan", Kind: KindInProcess, InProcess: true,
		Desc:     "Go channel of []byte between goroutines of ONE process (in-process yardstick)",
		Batching: "none: one channel send and one receive per message",
		Patterns: []Pattern{PatThroughput, PatMPMC, PatPingPong}}
}

// Unavailable implements Transport.
func (t *chanTransport) Unavailable() string { return "" }

// Setup implements Transport.
func (t *chanTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (t *chanTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	t.once.Do(func() {
		t.ch = make(chan []byte, inFlight(env.M.Size))
		t.back = make(chan []byte, inFlight(env.M.Size))
		size := env.M.Size
		t.pool.New = func() any { return make([]byte, size) }
	})
	e := &chanEndpoint{t: t, in: t.ch, out: t.ch, msg: make([]byte, env.M.Size)}
	switch env.Role {
	case rolePing:
		e.in = t.back
	case rolePong:
		e.out = t.back
	}
	return []Endpoint{e}, nil
}

type chanEndpoint struct {
	t       *chanTransport
	in, out chan []byte
	msg     []byte // the message, copied once into a pooled buffer per Send
}

// Send implements Endpoint.
func (e *chanEndpoint) Send(seq uint64) error {
	b := e.t.pool.Get().([]byte)
	putSeq(e.msg, seq)
	copy(b, e.msg)
	e.out <- b
	return nil
}

// Recv implements Endpoint.
func (e *chanEndpoint) Recv() (uint64, error) {
	b := <-e.in
	seq := getSeq(b)
	e.t.pool.Put(b) //nolint:staticcheck // a []byte in the pool is the idiom being measured
	return seq, nil
}

// Close implements Endpoint.
func (e *chanEndpoint) Close() error { return nil }
