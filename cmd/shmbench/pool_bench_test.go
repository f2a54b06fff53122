package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/shmkit/shmkit/proc"
)

// The pool pattern as testing.B benchmarks (go test -run '^$' -bench Pool
// ./cmd/shmbench): shmkit's pool, the goroutine pools and the start-up
// costs. The Python side runs only in shmbench's pool pattern, which puts
// both in one table. Each Map benchmark reports tasks/s; b.N counts Map
// calls of poolTasksDefault (or, for chunk size 1, poolTasksPerTaskDefault)
// inputs.

func benchPoolMap(b *testing.B, chunk, n int) {
	ctx := context.Background()
	p, err := proc.NewPool(ctx, squareTask, poolConfig(2, chunk))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	in := inputs(n)
	if _, err := p.Map(ctx, in[:8]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		out, err := p.Map(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) != n || out[n-1] != (n-1)*(n-1) {
			b.Fatalf("Map: wrong results")
		}
	}
	b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkPoolMap: Map of square over 2 workers, automatic chunking.
func BenchmarkPoolMap(b *testing.B) { benchPoolMap(b, 0, poolTasksDefault) }

// BenchmarkPoolMapChunk1: the same with chunk size 1 (the cost of a task).
func BenchmarkPoolMapChunk1(b *testing.B) { benchPoolMap(b, 1, poolTasksPerTaskDefault) }

func benchGoPool(b *testing.B, batch int) {
	p := newGoPool(2, batch)
	defer p.Close()
	in := inputs(poolTasksDefault)
	for b.Loop() {
		if out := p.Map(in); checkSquares(in, out) != 0 {
			b.Fatal("wrong results")
		}
	}
	b.ReportMetric(float64(b.N)*poolTasksDefault/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkGoroutinePool: 2 goroutines, one channel send per task.
func BenchmarkGoroutinePool(b *testing.B) { benchGoPool(b, 1) }

// BenchmarkGoroutinePoolBatch: 2 goroutines, goBatch tasks per send.
func BenchmarkGoroutinePoolBatch(b *testing.B) { benchGoPool(b, goBatch) }

// benchPoolStart: ns/op includes Terminate; ns/first-result is the
// start alone, until the first result (what the pool pattern reports).
func benchPoolStart(b *testing.B, n int) {
	var total time.Duration
	for b.Loop() {
		d, err := startPool(context.Background(), n)
		if err != nil {
			b.Fatal(err)
		}
		total += d
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/first-result")
}

// BenchmarkPoolStart: a pool of 2 workers until its first result.
func BenchmarkPoolStart(b *testing.B) { benchPoolStart(b, 2) }

// BenchmarkPoolStartNumCPU: a pool of runtime.NumCPU() workers until its
// first result.
func BenchmarkPoolStartNumCPU(b *testing.B) { benchPoolStart(b, runtime.NumCPU()) }

// BenchmarkProcessStart: one worker process from Start to Wait.
func BenchmarkProcessStart(b *testing.B) {
	cfg := proc.Config{Stdout: os.Stderr, Stderr: os.Stderr}
	for b.Loop() {
		p, err := helloFunc.StartWith(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecStart: this binary exec'ed as a hello-world program.
func BenchmarkExecStart(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), envHello+"=1")
	for b.Loop() {
		cmd := exec.Command(exe)
		cmd.Env = env
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}
