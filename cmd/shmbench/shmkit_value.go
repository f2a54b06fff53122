package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// valueTransport measures value.Value[int64] across processes: each
// contender process loops on Update (the lock, like Python's
// Value(lock=True)) or, with atomic set, on the lock-free AtomicOf Add.
type valueTransport struct {
	name   string
	atomic bool
}

func init() {
	register(&valueTransport{name: "value"})
	register(&valueTransport{name: "value-atomic", atomic: true})
}

// Spec implements Transport.
func (t *valueTransport) Spec() Spec {
	desc := "shmkit value.Value[int64].Update(ctx, func(p *int64){ *p++ }) (locked)"
	if t.atomic {
		desc = "shmkit value.AtomicOf(v).Add(1) (lock-free, one atomic instruction)"
	}
	return Spec{Name: t.name, Kind: KindShmkit, Desc: desc, NoProducer: true,
		Patterns: []Pattern{PatContention}, Batching: "none: one update per call"}
}

// Unavailable implements Transport.
func (t *valueTransport) Unavailable() string { return shmUnavailable() }

// segSeq numbers the segments shmbench creates within one run.
var segSeq atomic.Int64

// segName returns a fresh segment name for this run.
func segName(what string) string {
	return fmt.Sprintf("shmbench-%d-%s-%d", os.Getpid(), what, segSeq.Add(1))
}

// Setup implements Transport.
func (t *valueTransport) Setup(m *Measurement) (*Setup, error) {
	name := segName("value")
	v, err := value.Create[int64](name, 0)
	if err != nil {
		return nil, err
	}
	v.Close()
	// The peers have mapped it by the time Cleanup runs (after "ready").
	return &Setup{
		Args:    map[string]string{"name": name},
		Cleanup: func() { shm.Unlink(name) },
	}, nil
}

// Open implements Transport.
func (t *valueTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	v, err := value.Open[int64](context.Background(), env.Args["name"])
	if err != nil {
		return nil, err
	}
	e := &valueEndpoint{v: v, atomic: t.atomic}
	if t.atomic {
		e.a = value.AtomicOf(v)
	}
	return []Endpoint{e}, nil
}

type valueEndpoint struct {
	v      *value.Value[int64]
	a      value.Atomic[int64]
	atomic bool
}

// Send implements Endpoint.
func (e *valueEndpoint) Send(uint64) error { return errUnsupported }

// Recv performs one update.
func (e *valueEndpoint) Recv() (uint64, error) {
	if e.atomic {
		e.a.Add(1)
		return 0, nil
	}
	return 0, e.v.Update(context.Background(), incr)
}

func incr(p *int64) { *p++ }

// Close implements Endpoint.
func (e *valueEndpoint) Close() error { return e.v.Close() }

var (
	shmOnce sync.Once
	shmWhy  string
)

// shmUnavailable says why named shm segments do not work here ("" if they
// do), trying once per run.
func shmUnavailable() string {
	shmOnce.Do(func() {
		name := segName("probe")
		s, err := shm.Create(name, 64)
		if err != nil {
			shmWhy = "shm segments unavailable: " + err.Error()
			return
		}
		s.Close()
		shm.Unlink(name)
	})
	return shmWhy
}

// arrayLen is the length of the contended array.
const arrayLen = 16

// arrayTransport measures array.Array[int64] across processes: contender
// i loops on Update of element i mod 16, under the array's one lock (like
// Python's Array(lock=True) with get_lock()).
type arrayTransport struct{}

func init() { register(arrayTransport{}) }

// Spec implements Transport.
func (arrayTransport) Spec() Spec {
	return Spec{Name: "array", Kind: KindShmkit, NoProducer: true, Patterns: []Pattern{PatContention},
		Batching: "none: one update per call",
		Desc:     "shmkit array.Array[int64] (16 elements), Update(ctx, i, func(p *int64){ *p++ }), one lock"}
}

// Unavailable implements Transport.
func (arrayTransport) Unavailable() string { return shmUnavailable() }

// Setup implements Transport.
func (arrayTransport) Setup(m *Measurement) (*Setup, error) {
	name := segName("array")
	a, err := array.Create[int64](name, arrayLen)
	if err != nil {
		return nil, err
	}
	a.Close()
	return &Setup{Args: map[string]string{"name": name}, Cleanup: func() { shm.Unlink(name) }}, nil
}

// Open implements Transport.
func (arrayTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	a, err := array.Open[int64](context.Background(), env.Args["name"])
	if err != nil {
		return nil, err
	}
	return []Endpoint{&arrayEndpoint{a: a, i: env.Index % arrayLen}}, nil
}

type arrayEndpoint struct {
	a *array.Array[int64]
	i int
}

// Send implements Endpoint.
func (e *arrayEndpoint) Send(uint64) error { return errUnsupported }

// Recv implements Endpoint: it performs one update.
func (e *arrayEndpoint) Recv() (uint64, error) {
	return 0, e.a.Update(context.Background(), e.i, incr)
}

// Close implements Endpoint.
func (e *arrayEndpoint) Close() error { return e.a.Close() }
