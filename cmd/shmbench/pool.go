package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/shmkit/shmkit/internal/hdr"
	"github.com/shmkit/shmkit/proc"
)

// The pool pattern: pools of worker processes mapping a tiny task, the
// square of an int, over many inputs (tasks/s), and what it costs to
// start them. Python's rows run in the embedded script (pybench.py); the
// shmkit and Go rows are runners: one peer process does the whole
// measurement (for shmkit's pools, with its workers as children started
// by package proc: this binary again, dispatched by proc.Main).

// Inputs of one Map call. The chunked rows (automatic or tuned chunks)
// all map the same poolTasks inputs, so that Python's default chunksize
// (len/(4*workers)) is what a user of Pool.map(square, range(n)) gets;
// the rows that pay per task (chunk size 1) map fewer, or a repetition
// of ProcessPoolExecutor.map would take seconds.
const (
	poolTasksDefault        = 100_000
	poolTasksQuick          = 20_000
	poolTasksPerTaskDefault = 1_000
	poolTasksPerTaskQuick   = 200
	// pyTunedDiv makes py-pool-tuned's chunksize poolTasks/pyTunedDiv
	// (5,000 by default): the best of a sweep of 100 to 50,000 at 100,000
	// tasks on a 2-CPU virtual machine (Python's default there is 12,500).
	pyTunedDiv = 20
	// goBatch is how many tasks gopool-batch sends at a time.
	goBatch = 1000
	// workersNumCPU in Spec.Workers means runtime.NumCPU() workers.
	workersNumCPU = -1
)

// envHello makes this binary exit at once, at the top of main: the
// hello-world program exec-start measures.
const envHello = "SHMBENCH_HELLO"

// runner is implemented by transports whose one peer process runs the
// whole measurement (Spec.Runs).
type runner interface {
	// Run sets up, reports ready, waits until start is closed, runs
	// env.M.Warmup unreported repetitions and then env.M.Reps measured
	// ones, each reported by a line of its own.
	Run(env *PeerEnv, start <-chan struct{}) error
}

// poolQuick are the pool rows -quick runs: those the targets
// compare, and the cost of one task.
var poolQuick = []string{"pool", "py-pool", "gopool-batch", "pool-c1", "pool-start", "py-pool-start"}

// poolOrder puts the pool pattern's transports in the order they run and
// are reported: each shmkit row next to what it is compared with, so that
// rows compared with each other run close together in time.
func poolOrder(names []string) []string {
	order := []string{"pool", "py-pool", "py-pool-tuned", "gopool-batch", "gopool",
		"pool-star", "py-starmap", "pool-c1", "py-pool-c1", "py-executor",
		"pool-start", "py-pool-start", "pool-start-ncpu", "proc-start", "exec-start"}
	var out []string
	for _, n := range order {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// poolWorkers is the worker count of a pool row.
func poolWorkers(s Spec, c *config) int {
	switch {
	case s.Workers == workersNumCPU:
		return runtime.NumCPU()
	case s.Workers > 0:
		return s.Workers
	}
	return c.workers
}

// poolTasks is the number of inputs of one Map call of a pool row (0 for
// start-up rows).
func poolTasks(s Spec, c *config) int {
	switch {
	case s.Startup:
		return 0
	case s.PerTask && c.quick:
		return poolTasksPerTaskQuick
	case s.PerTask:
		return poolTasksPerTaskDefault
	case c.quick:
		return poolTasksQuick
	}
	return poolTasksDefault
}

// isStartup reports whether transport name times starts.
func isStartup(name string) bool {
	t, ok := lookup(name)
	return ok && t.Spec().Startup
}

// squareFn is the task of every Map row: shmkit's pools run it in their
// workers (registered as a task in pool_shmkit.go), the goroutine pools
// call it through the same function value.
var squareFn = func(_ context.Context, x int) (int, error) { return x * x, nil }

// runMaps runs the repetitions of a Map row: in each, calls of call (one
// Map of m.Tasks inputs, which returns the time spent inside the Map and
// how many results were wrong, checked outside that time) until
// m.Duration has passed, at least one. A repetition reports its tasks
// over the time spent in the calls.
func runMaps(m *Measurement, note string, call func() (time.Duration, uint64, error)) error {
	for rep := 1 - m.Warmup; rep <= m.Reps; rep++ {
		var tasks, errs uint64
		var spent time.Duration
		t0 := time.Now()
		for tasks == 0 || time.Since(t0) < m.Duration {
			d, bad, err := call()
			if err != nil {
				return err
			}
			spent += d
			errs += bad
			tasks += uint64(m.Tasks)
		}
		if rep >= 1 {
			emit(report{Rep: rep, Msgs: tasks, NS: int64(spent), Errs: errs, Note: note})
		}
	}
	return nil
}

// runStarts runs the repetitions of a start-up row: in each, starts (one
// start, timed by start itself, which tears down what it started outside
// that time) until m.Duration has passed, at least one. A repetition
// reports its starts over the time they took; the last one adds the
// percentiles of every measured start.
func runStarts(m *Measurement, note string, start func() (time.Duration, error)) error {
	h := hdr.New()
	for rep := 1 - m.Warmup; rep <= m.Reps; rep++ {
		if rep == 1 {
			h.Reset() // forget the warm-up
		}
		var n uint64
		var spent time.Duration
		t0 := time.Now()
		for n == 0 || time.Since(t0) < m.Duration {
			d, err := start()
			if err != nil {
				return err
			}
			h.Record(int64(d))
			spent += d
			n++
		}
		if rep >= 1 {
			r := report{Rep: rep, Msgs: n, NS: int64(spent), Note: note}
			if rep == m.Reps {
				r.P50, r.P90, r.P99 = h.Quantile(0.50), h.Quantile(0.90), h.Quantile(0.99)
				r.P999, r.Max = h.Quantile(0.999), h.Max()
			}
			emit(r)
		}
	}
	return nil
}

// inputs returns 0, 1, ..., n-1.
func inputs(n int) []int {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	return in
}

// checkSquares counts the results that are not the squares of in.
func checkSquares(in, out []int) uint64 {
	if len(out) != len(in) {
		return uint64(max(len(in), 1))
	}
	var bad uint64
	for i, x := range in {
		if out[i] != x*x {
			bad++
		}
	}
	return bad
}

// waitGo reports ready and waits for the coordinator's "go".
func waitGo(start <-chan struct{}) {
	emit(report{Ready: true})
	<-start
}

// goPoolTransport is the in-process yardstick of the pool pattern: a
// pool of worker goroutines in ONE process, started once, fed through a
// buffered channel one task per send (gopool) or goBatch tasks per send
// (gopool-batch); each worker calls squareFn and writes the result in
// place, and a Map waits on a sync.WaitGroup.
type goPoolTransport struct {
	name  string
	batch int
}

func init() {
	register(&goPoolTransport{name: "gopool", batch: 1})
	register(&goPoolTransport{name: "gopool-batch", batch: goBatch})
	register(&execStartTransport{})
	register(&procStartTransport{})
	register(&pyPoolTransport{name: "py-pool", batched: true,
		desc:     "Python multiprocessing.Pool(workers).map(square, range(n)), fork, its default chunksize (len/(4*workers))",
		batching: "len/(4*workers) tasks per pickled message (Pool.map's default chunksize)"})
	register(&pyPoolTransport{name: "py-pool-tuned", batched: true, tuned: true,
		desc:     fmt.Sprintf("Python Pool(workers).map(square, range(n), chunksize=n/%d), fork: a tuned chunksize", pyTunedDiv),
		batching: fmt.Sprintf("n/%d tasks per pickled message (the best of a sweep on a 2-CPU VM)", pyTunedDiv)})
	register(&pyPoolTransport{name: "py-starmap", batched: true,
		desc:     "Python Pool(workers).starmap(multiply, zip(range(n), range(n))), fork, its default chunksize",
		batching: "len/(4*workers) argument tuples per pickled message (the default chunksize)"})
	register(&pyPoolTransport{name: "py-pool-c1", perTask: true, chunk: 1,
		desc:     "Python Pool(workers).map(square, range(n), chunksize=1), fork: the cost of one task",
		batching: "none: one pickled task and one pickled result per task"})
	register(&pyPoolTransport{name: "py-executor", perTask: true,
		desc:     "Python concurrent.futures.ProcessPoolExecutor(workers).map(square, range(n)), fork, chunksize 1 (its default)",
		batching: "none: one future, one pickled call and one pickled result per task (map's default chunksize 1)"})
	register(&pyPoolTransport{name: "py-pool-start", startup: true,
		desc:     "Python multiprocessing.Pool(workers) by fork, timed until pool.apply(square, (3,)) returns",
		batching: "n/a: one pool start, one task"})
}

// Spec implements Transport.
func (t *goPoolTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindInProcess, Runs: true, NoPin: true,
		Desc:     "a pool of -workers goroutines in ONE process, fed through a buffered channel (in-process yardstick)",
		Batching: "none: one channel send and one receive per task",
		Note:     "one process: no copy, no encoding, no other address space",
		Patterns: []Pattern{PatPool}, ExpectRate: 1e6}
	if t.batch > 1 {
		s.Batching = fmt.Sprintf("%d tasks (an index range) per channel send", t.batch)
		s.Batched = true
		s.ExpectRate = 0
	}
	return s
}

// Unavailable implements Transport.
func (t *goPoolTransport) Unavailable() string { return "" }

// Setup implements Transport.
func (t *goPoolTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (t *goPoolTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }

// goCall is one Map of a goroutine pool.
type goCall struct {
	in, out []int
	wg      sync.WaitGroup
}

// goJob is what one channel send carries: tasks lo..hi-1 of a call.
type goJob struct {
	c      *goCall
	lo, hi int
}

// goPool is a pool of worker goroutines started once.
type goPool struct {
	jobs  chan goJob
	batch int
}

func newGoPool(workers, batch int) *goPool {
	p := &goPool{jobs: make(chan goJob, 1024), batch: batch}
	for range workers {
		go func() {
			ctx := context.Background()
			for j := range p.jobs {
				for i := j.lo; i < j.hi; i++ {
					j.c.out[i], _ = squareFn(ctx, j.c.in[i])
				}
				j.c.wg.Done()
			}
		}()
	}
	return p
}

// Map returns the squares of in, computed by the pool's goroutines.
func (p *goPool) Map(in []int) []int {
	c := &goCall{in: in, out: make([]int, len(in))}
	c.wg.Add((len(in) + p.batch - 1) / p.batch)
	for lo := 0; lo < len(in); lo += p.batch {
		p.jobs <- goJob{c, lo, min(lo+p.batch, len(in))}
	}
	c.wg.Wait()
	return c.out
}

// Close stops the workers.
func (p *goPool) Close() { close(p.jobs) }

// Run implements runner.
func (t *goPoolTransport) Run(env *PeerEnv, start <-chan struct{}) error {
	m := env.M
	p := newGoPool(m.Consumers, t.batch)
	defer p.Close()
	in := inputs(m.Tasks)
	waitGo(start)
	note := fmt.Sprintf("%d goroutines, %d tasks a call", m.Consumers, m.Tasks)
	return runMaps(m, note, func() (time.Duration, uint64, error) {
		t0 := time.Now()
		out := p.Map(in)
		d := time.Since(t0)
		return d, checkSquares(in, out), nil
	})
}

// execStartTransport times an exec of this binary that exits at once
// (envHello, checked first thing in main): what starting any Go program
// of this size costs here, the floor under proc-start.
type execStartTransport struct{}

// Spec implements Transport.
func (execStartTransport) Spec() Spec {
	return Spec{Name: "exec-start", Kind: KindReference, Runs: true, NoPin: true, Startup: true, Workers: 1,
		Desc:     "os/exec of this binary, which exits at the top of main (a hello-world Go program of shmbench's size), start to exit",
		Batching: "n/a: one process start",
		Patterns: []Pattern{PatPool}}
}

// Unavailable implements Transport.
func (execStartTransport) Unavailable() string { return "" }

// Setup implements Transport.
func (execStartTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (execStartTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }

// Run implements runner.
func (execStartTransport) Run(env *PeerEnv, start <-chan struct{}) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	environ := append(os.Environ(), envHello+"=1")
	waitGo(start)
	return runStarts(env.M, "start to exit", func() (time.Duration, error) {
		cmd := exec.Command(exe)
		cmd.Env = environ
		t0 := time.Now()
		err := cmd.Run()
		return time.Since(t0), err
	})
}

// helloFunc is the worker proc-start starts: it returns at once.
var helloFunc = proc.Register("shmbench-hello", func(context.Context, *proc.Args) error { return nil })

// procStartTransport times proc's Start of one worker function that
// returns at once, until Wait returns: the cost of one worker process
// (re-execution, manifest, event ring, the parent check) start to exit.
type procStartTransport struct{}

// Spec implements Transport.
func (procStartTransport) Spec() Spec {
	return Spec{Name: "proc-start", Kind: KindShmkit, Runs: true, NoPin: true, Startup: true, Workers: 1,
		Desc:     "shmkit proc: Start of one worker (this binary re-executed) whose function returns at once, until Wait returns",
		Batching: "n/a: one process start",
		Patterns: []Pattern{PatPool}}
}

// Unavailable implements Transport.
func (procStartTransport) Unavailable() string { return shmUnavailable() }

// Setup implements Transport.
func (procStartTransport) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (procStartTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }

// Run implements runner.
func (procStartTransport) Run(env *PeerEnv, start <-chan struct{}) error {
	ctx := context.Background()
	// The peer's stdout carries its reports: the worker's output goes to
	// stderr, unprefixed.
	cfg := proc.Config{Stdout: os.Stderr, Stderr: os.Stderr}
	waitGo(start)
	return runStarts(env.M, "start to Wait", func() (time.Duration, error) {
		t0 := time.Now()
		p, err := helloFunc.StartWith(ctx, cfg)
		if err != nil {
			return 0, err
		}
		err = p.Wait()
		return time.Since(t0), err
	})
}

// pyPoolTransport is one of the Python rows of the pool pattern, run by
// the embedded script.
type pyPoolTransport struct {
	name     string
	desc     string
	batching string
	batched  bool
	perTask  bool
	startup  bool
	tuned    bool // chunksize poolTasks/pyTunedDiv
	chunk    int  // chunksize; 0 for the default
}

// Spec implements Transport.
func (t *pyPoolTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindPython, Desc: t.desc, Batching: t.batching, Batched: t.batched,
		External: true, NoPin: true, PerTask: t.perTask, Startup: t.startup, Patterns: []Pattern{PatPool},
		Note: "workers left to the scheduler"}
	switch {
	case t.name == "py-executor":
		s.ExpectRate = 4e3 // the reference figure
	case t.perTask:
		s.ExpectRate = 20e3
	case !t.startup:
		s.ExpectRate = 1e6
	}
	return s
}

// Unavailable implements Transport.
func (t *pyPoolTransport) Unavailable() string {
	if pythonPath == "" {
		return pythonWhy + ": the Python comparison is skipped"
	}
	return ""
}

// Setup implements Transport.
func (t *pyPoolTransport) Setup(m *Measurement) (*Setup, error) {
	file, err := scriptFile()
	if err != nil {
		return nil, err
	}
	chunk := t.chunk
	if t.tuned {
		chunk = max(1, m.Tasks/pyTunedDiv)
	}
	arg, err := json.Marshal(map[string]any{
		"transport": t.name, "pattern": m.Pattern, "size": m.Size,
		"producers": m.Producers, "consumers": m.Consumers,
		"duration": m.Duration.Nanoseconds(), "reps": m.Reps, "warmup": m.Warmup,
		"tasks": m.Tasks, "chunksize": chunk,
	})
	if err != nil {
		return nil, err
	}
	return &Setup{Command: []string{pythonPath, "-u", file, string(arg)}}, nil
}

// Open implements Transport.
func (t *pyPoolTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }
