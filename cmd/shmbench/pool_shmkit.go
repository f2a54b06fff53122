package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/proc"
)

// The tasks shmkit's pools run in their workers: this binary re-executed,
// dispatched by proc.Main at the top of main.
var (
	squareTask   = proc.RegisterTask("shmbench-square", squareFn)
	multiplyTask = proc.RegisterTask("shmbench-multiply", func(_ context.Context, p proc.Pair[int, int]) (int, error) {
		return p.A * p.B, nil
	})
)

// poolTransport is a shmkit proc.Pool row of the pool pattern: a Map of
// square (or, for pool-star, of multiply over Pair[int, int], Python's
// starmap), or a start-up row (a new pool until its first result).
type poolTransport struct {
	name    string
	chunk   int  // PoolConfig.ChunkSize: 0 automatic
	star    bool // Map of multiply over pairs
	startup bool
	ncpu    bool // runtime.NumCPU() workers
}

func init() {
	register(&poolTransport{name: "pool"})
	register(&poolTransport{name: "pool-star", star: true})
	register(&poolTransport{name: "pool-c1", chunk: 1})
	register(&poolTransport{name: "pool-start", startup: true})
	register(&poolTransport{name: "pool-start-ncpu", startup: true, ncpu: true})
}

// Spec implements Transport.
func (t *poolTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindShmkit, Runs: true, NoPin: true, Patterns: []Pattern{PatPool},
		Note: "workers left to the scheduler"}
	switch {
	case t.startup:
		s.Startup = true
		s.Desc = "shmkit proc.NewPool(-workers workers) timed until the result of a one-input Map (then Terminate)"
		if t.ncpu {
			s.Workers = workersNumCPU
			s.Desc = "shmkit proc.NewPool(runtime.NumCPU() workers) timed until the result of a one-input Map (then Terminate)"
		}
		s.Batching = "n/a: one pool start, one task"
	case t.chunk == 1:
		s.PerTask = true
		s.ExpectRate = 50e3
		s.Desc = "shmkit proc.Pool.Map(square, inputs) with PoolConfig.ChunkSize 1: the cost of one task"
		s.Batching = "none: one job message and one result message per task (typed rings, raw ints)"
	case t.star:
		s.Batched = true
		s.Desc = "shmkit proc.Pool.Map(multiply, []proc.Pair[int, int]), automatic chunking: Python's starmap"
		s.Batching = "automatic chunks: len/(4*workers) pairs per job message, at most 8192 for plain values (raw bytes)"
	default:
		s.Batched = true
		s.Desc = "shmkit proc.Pool.Map(square, inputs []int), automatic chunking, workers = this binary re-executed"
		s.Batching = "automatic chunks: len/(4*workers) tasks per job message, at most 8192 for plain values (raw ints)"
	}
	return s
}

// Unavailable implements Transport.
func (t *poolTransport) Unavailable() string { return shmUnavailable() }

// Setup implements Transport.
func (t *poolTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (t *poolTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }

// poolConfig is the configuration of the pools of a measurement: the
// workers' output goes to stderr (the peer's stdout carries its reports).
func poolConfig(workers, chunk int) proc.PoolConfig {
	return proc.PoolConfig{Workers: workers, ChunkSize: chunk,
		Process: proc.Config{Stdout: os.Stderr, Stderr: os.Stderr}}
}

// autoChunk is the chunk size PoolConfig.ChunkSize 0 gives n plain
// inputs (ints, pairs of ints), by its documented rule (for the row's
// note).
func autoChunk(n, workers int) int { return max(1, min(8192, n/(4*workers))) }

// Run implements runner.
func (t *poolTransport) Run(env *PeerEnv, start <-chan struct{}) error {
	m := env.M
	ctx := context.Background()
	if t.startup {
		waitGo(start)
		return runStarts(m, fmt.Sprintf("%d workers until one Map's result", m.Consumers), func() (time.Duration, error) {
			return startPool(ctx, m.Consumers)
		})
	}
	chunk := fmt.Sprintf("ChunkSize %d", t.chunk)
	if t.chunk == 0 {
		chunk = fmt.Sprintf("ChunkSize 0 (automatic: %d)", autoChunk(m.Tasks, m.Consumers))
	}
	note := fmt.Sprintf("%d tasks a call, %s", m.Tasks, chunk)
	if t.star {
		return t.runStar(ctx, env, start, note)
	}
	p, err := proc.NewPool(ctx, squareTask, poolConfig(m.Consumers, t.chunk))
	if err != nil {
		return err
	}
	defer p.Terminate()
	in := inputs(m.Tasks)
	if _, err := p.Map(ctx, in[:min(len(in), 4*m.Consumers)]); err != nil {
		return err // every worker is up and has answered
	}
	waitGo(start)
	return runMaps(m, note, func() (time.Duration, uint64, error) {
		t0 := time.Now()
		out, err := p.Map(ctx, in)
		d := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		return d, checkSquares(in, out), nil
	})
}

// runStar is Run for pool-star: Map of multiply over pairs (i, i).
func (t *poolTransport) runStar(ctx context.Context, env *PeerEnv, start <-chan struct{}, note string) error {
	m := env.M
	p, err := proc.NewPool(ctx, multiplyTask, poolConfig(m.Consumers, t.chunk))
	if err != nil {
		return err
	}
	defer p.Terminate()
	in := make([]proc.Pair[int, int], m.Tasks)
	for i := range in {
		in[i] = proc.Pair[int, int]{A: i, B: i}
	}
	if _, err := p.Map(ctx, in[:min(len(in), 4*m.Consumers)]); err != nil {
		return err
	}
	waitGo(start)
	return runMaps(m, note, func() (time.Duration, uint64, error) {
		t0 := time.Now()
		out, err := p.Map(ctx, in)
		d := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		var bad uint64
		if len(out) != len(in) {
			bad = uint64(len(in))
		} else {
			for i, x := range in {
				if out[i] != x.A*x.B {
					bad++
				}
			}
		}
		return d, bad, nil
	})
}

// startPool starts a pool of n workers, times it until the result of a
// Map of one input and terminates it (not timed).
func startPool(ctx context.Context, n int) (time.Duration, error) {
	t0 := time.Now()
	p, err := proc.NewPool(ctx, squareTask, poolConfig(n, 0))
	if err != nil {
		return 0, err
	}
	out, err := p.Map(ctx, []int{3})
	d := time.Since(t0)
	if err == nil && (len(out) != 1 || out[0] != 9) {
		err = fmt.Errorf("Map([3]) = %v, want [9]", out)
	}
	return d, errors.Join(err, p.Terminate())
}
