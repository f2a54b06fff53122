package proc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

// Tasks of the pool tests, registered before TestMain runs proc.Main.

var poolSquare = proc.RegisterTask("pooltest.square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

// op is a plain input telling poolBehave what to do.
type poolOp struct {
	X   int64
	Op  int32 // opSquare, opPanic, ...
	Arg int64
}

type poolOpOut struct {
	Y   int64
	Pid int32
}

const (
	opSquare = iota
	opPanic
	opError
	opExit  // os.Exit(Arg)
	opSleep // sleep Arg µs, then square
	opKill  // SIGKILL the worker itself
)

var poolBehave = proc.RegisterTask("pooltest.behave", func(ctx context.Context, o poolOp) (poolOpOut, error) {
	switch o.Op {
	case opPanic:
		panic(fmt.Sprintf("boom %d", o.X))
	case opError:
		return poolOpOut{}, fmt.Errorf("no good: %d", o.X)
	case opExit:
		os.Exit(int(o.Arg))
	case opSleep:
		time.Sleep(time.Duration(o.Arg) * time.Microsecond)
	case opKill:
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	}
	return poolOpOut{Y: o.X * o.X, Pid: int32(os.Getpid())}, nil
})

type poolNamed struct {
	Name string
	Pad  string
}

var poolUpper = proc.RegisterTask("pooltest.upper", func(ctx context.Context, n poolNamed) (string, error) {
	return strings.ToUpper(n.Name) + ":" + strconv.Itoa(len(n.Pad)), nil
})

type poolBoxedIn struct{ V any }

var poolBoxed = proc.RegisterTask("pooltest.poolBoxedIn", func(ctx context.Context, b poolBoxedIn) (int, error) {
	return b.V.(int) + 1, nil
})

var poolMultiply = proc.RegisterTask("pooltest.multiply", func(ctx context.Context, p proc.Pair[int, int]) (int, error) {
	return p.A * p.B, nil
})

func init() {
	testproc.Register("pool-parent", poolParentHelper)
}

// newPool starts a pool and checks, when the test ends, that it leaves no
// process and no goroutine behind.
func poolNew[In, Out any](t *testing.T, task *proc.Task[In, Out], cfg proc.PoolConfig) *proc.Pool[In, Out] {
	t.Helper()
	base := poolBaseline(t)
	p, err := proc.NewPool(context.Background(), task, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Terminate(); err != nil {
			t.Error(err)
		}
		poolCheckNoLeaks(t, base)
	})
	return p
}

var poolWarm sync.Once

// poolBaseline returns the goroutines of this process at rest, after the
// first Start, less the goroutines that start workers (up to a few, each
// created when a start finds the others busy, and kept as long as the
// process lives).
func poolBaseline(t *testing.T) int {
	poolWarm.Do(func() {
		p, err := proc.NewPool(context.Background(), poolSquare, proc.PoolConfig{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		p.Terminate()
	})
	return runtime.NumGoroutine() - proc.StarterThreads()
}

// checkNoLeaks waits (bounded) until this process has no child left and
// no more goroutines than base.
func poolCheckNoLeaks(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids, g := poolChildPids(), runtime.NumGoroutine()-proc.StarterThreads()
		if len(kids) == 0 && g <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: children %v, %d goroutines (baseline %d)\n%s", kids, g, base, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childPids lists the live (not zombie) processes whose parent is this one.
func poolChildPids() []int {
	ents, _ := os.ReadDir("/proc")
	var kids []int
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := poolProcStat(pid)
		if ok && ppid == me && state != 'Z' {
			kids = append(kids, pid)
		}
	}
	return kids
}

// procStat returns the parent and state of pid from /proc.
func poolProcStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+4 > len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0], true
}

// alive reports whether pid names a process that is not a zombie.
func poolAlive(pid int) bool {
	_, state, ok := poolProcStat(pid)
	return ok && state != 'Z'
}

func poolInts(n int) []int {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	return in
}

func TestPoolMap(t *testing.T) {
	p := poolNew(t, poolSquare, proc.PoolConfig{Workers: 2})
	in := poolInts(10000)
	out, err := p.Map(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d results for %d inputs", len(out), len(in))
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d, want %d", i, v, i*i)
		}
	}
	// Chunk size 1, and an empty map.
	if out, err := p.Map(context.Background(), nil); err != nil || len(out) != 0 {
		t.Fatalf("empty Map: %v, %v", out, err)
	}
	if n := proc.PoolDuplicates(p); n != 0 {
		t.Fatalf("%d duplicate results", n)
	}
}

func TestPoolChunkSizeOne(t *testing.T) {
	p := poolNew(t, poolSquare, proc.PoolConfig{Workers: 2, ChunkSize: 1})
	out, err := p.Map(context.Background(), poolInts(500))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d", i, v)
		}
	}
}

func TestPoolMapUnorderedImapSubmit(t *testing.T) {
	p := poolNew(t, poolSquare, proc.PoolConfig{Workers: 2})
	ctx := context.Background()
	seen := make([]int, 3000)
	for i, r := range p.MapUnordered(ctx, poolInts(len(seen))) {
		if i < 0 || i >= len(seen) || r.Err != nil || r.Value != i*i {
			t.Fatalf("MapUnordered yielded %d, %+v", i, r)
		}
		seen[i]++
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d yielded %d times", i, n)
		}
	}
	next := 0
	for v, err := range p.Imap(ctx, poolInts(3000)) {
		if err != nil || v != next*next {
			t.Fatalf("Imap yielded %d, %v at %d", v, err, next)
		}
		next++
	}
	if next != 3000 {
		t.Fatalf("Imap yielded %d results", next)
	}
	// Stopping early gives up on the rest, and the pool goes on.
	for range p.Imap(ctx, poolInts(100000)) {
		break
	}
	futures := make([]*proc.Future[int], 50)
	for i := range futures {
		futures[i] = p.Submit(ctx, i)
	}
	for i, f := range futures {
		v, err := f.Get(ctx)
		if err != nil || v != i*i {
			t.Fatalf("future %d: %d, %v", i, v, err)
		}
	}
}

func TestPoolStarmapAndCodec(t *testing.T) {
	ctx := context.Background()
	pm := poolNew(t, poolMultiply, proc.PoolConfig{Workers: 2})
	out, err := pm.Map(ctx, []proc.Pair[int, int]{{1, 2}, {3, 4}, {5, 6}})
	if err != nil || !slices.Equal(out, []int{2, 12, 30}) {
		t.Fatalf("starmap: %v, %v", out, err)
	}

}

func TestPoolCodecChunkCut(t *testing.T) {
	ctx := context.Background()
	// Strings travel through gob; a chunk that does not fit in a message
	// is cut, and an input that fits in none fails alone.
	pu := poolNew(t, poolUpper, proc.PoolConfig{Workers: 2, MaxMessage: 64 << 10})
	in := make([]poolNamed, 200)
	for i := range in {
		in[i] = poolNamed{Name: "n" + strconv.Itoa(i), Pad: strings.Repeat("x", i*100)}
	}
	in[150].Pad = strings.Repeat("y", 100<<10)
	res, err := pu.Map(ctx, in)
	var te *proc.TaskError
	if !errors.As(err, &te) || te.Index != 150 || !errors.Is(err, ring.ErrTooLarge) {
		t.Fatalf("Map error %v, want a TaskError for 150 wrapping ErrTooLarge", err)
	}
	for i, s := range res {
		want := "N" + strconv.Itoa(i) + ":" + strconv.Itoa(len(in[i].Pad))
		if i == 150 {
			want = ""
		}
		if s != want {
			t.Fatalf("res[%d] = %q, want %q", i, s, want)
		}
	}

}

func TestPoolUnencodable(t *testing.T) {
	ctx := context.Background()
	var te *proc.TaskError
	// An input the codec cannot encode fails its task only.
	pb := poolNew(t, poolBoxed, proc.PoolConfig{Workers: 1, Codec: ring.Gob})
	got, err := pb.Map(ctx, []poolBoxedIn{{1}, {make(chan int)}, {3}})
	if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, proc.ErrEncode) {
		t.Fatalf("Map error %v, want a TaskError for 1 wrapping ErrEncode", err)
	}
	if !slices.Equal(got, []int{2, 0, 4}) {
		t.Fatalf("got %v", got)
	}
}

func TestPoolTaskFailures(t *testing.T) {
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 8})
	ctx := context.Background()
	pids := p.Workers()
	in := make([]poolOp, 200)
	for i := range in {
		in[i] = poolOp{X: int64(i)}
		switch i % 10 {
		case 3:
			in[i].Op = opPanic
		case 7:
			in[i].Op = opError
		}
	}
	out, err := p.Map(ctx, in)
	if err == nil {
		t.Fatal("no error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) != 40 {
		t.Fatalf("error is not a join of 40: %v", err)
	}
	prev := -1
	for _, e := range joined.Unwrap() {
		var te *proc.TaskError
		if !errors.As(e, &te) || te.Index <= prev {
			t.Fatalf("not a TaskError in index order: %v", e)
		}
		prev = te.Index
		var pe *proc.PanicError
		switch te.Index % 10 {
		case 3:
			if !errors.As(e, &pe) || !errors.Is(e, proc.ErrPanic) || pe.Value != fmt.Sprintf("boom %d", te.Index) ||
				!strings.Contains(pe.Stack, "pool_test.go") {
				t.Fatalf("task %d: %v (%+v)", te.Index, e, pe)
			}
		case 7:
			if errors.As(e, &pe) || te.Err.Error() != fmt.Sprintf("no good: %d", te.Index) {
				t.Fatalf("task %d: %v", te.Index, e)
			}
		default:
			t.Fatalf("task %d failed: %v", te.Index, e)
		}
	}
	for i, o := range out {
		want := int64(i * i)
		if i%10 == 3 || i%10 == 7 {
			want = 0
		}
		if o.Y != want {
			t.Fatalf("out[%d] = %+v", i, o)
		}
	}
	// The workers survived their panics.
	if now := p.Workers(); !poolSameSet(now, pids) {
		t.Fatalf("workers %v, then %v: a panic cost a worker", pids, now)
	}
	// A worker that exits holding a task: that task, with the code.
	_, err = p.Map(ctx, []poolOp{{X: 2, Op: opExit, Arg: 3}})
	var wd *proc.WorkerDiedError
	if !errors.As(err, &wd) || wd.Index != 0 || wd.Code != 3 || wd.Signal != 0 || wd.Attempts != 1 || wd.BeforeStart || !errors.Is(err, proc.ErrWorkerDied) {
		t.Fatalf("Map error %v (%+v), want a WorkerDiedError for task 0 with code 3", err, wd)
	}
	if v, err := p.Submit(ctx, poolOp{X: 5}).Get(ctx); err != nil || v.Y != 25 {
		t.Fatalf("after a death: %v, %v", v, err)
	}
}

func poolSameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// killDuring SIGKILLs a random worker of p every few milliseconds, at most
// kills times, until stop is closed, and returns how many it killed.
func poolKillDuring(p *proc.Pool[poolOp, poolOpOut], kills int, stop <-chan struct{}) <-chan int {
	n := make(chan int, 1)
	go func() {
		k := 0
		defer func() { n <- k }()
		for k < kills {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
			}
			if pids := p.Workers(); len(pids) > 0 {
				if syscall.Kill(pids[rand.IntN(len(pids))], syscall.SIGKILL) == nil {
					k++
				}
			}
		}
	}()
	return n
}

func poolSleepOps(n int, us int64) []poolOp {
	in := make([]poolOp, n)
	for i := range in {
		in[i] = poolOp{X: int64(i), Op: opSleep, Arg: us}
	}
	return in
}

// TestPoolWorkersKilled SIGKILLs workers at random during a Map of
// 10,000 tasks (5 kills); SHMKIT_STRESS=1 makes it 100,000 tasks and 40
// kills.
func TestPoolWorkersKilled(t *testing.T) {
	tasks, kills := 10000, 5
	if os.Getenv("SHMKIT_STRESS") == "1" {
		tasks, kills = 100000, 40
	}
	for _, retries := range []int{0, 50} {
		t.Run(fmt.Sprintf("retries=%d", retries), func(t *testing.T) {
			cfg := proc.PoolConfig{Workers: 3, Retries: retries}
			if retries > 0 {
				cfg.ChunkSize = 16
			}
			p := poolNew(t, poolBehave, cfg)
			ctx := context.Background()
			in := poolSleepOps(tasks, 50)
			stop := make(chan struct{})
			killed := poolKillDuring(p, kills, stop)
			out, err := p.Map(ctx, in)
			close(stop)
			k := <-killed
			if k == 0 {
				t.Log("no worker was killed: the map was too quick")
			}
			failed := map[int]bool{}
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var te *proc.TaskError
					var wd *proc.WorkerDiedError
					if !errors.As(e, &te) || !errors.As(e, &wd) || wd.Index != te.Index || wd.Signal != syscall.SIGKILL || wd.Attempts != retries+1 || wd.BeforeStart {
						t.Fatalf("unexpected error %v", e)
					}
					if failed[te.Index] {
						t.Fatalf("task %d failed twice", te.Index)
					}
					failed[te.Index] = true
				}
			}
			if retries > 0 && len(failed) > 0 {
				t.Fatalf("%d tasks failed with retries on", len(failed))
			}
			for i, o := range out {
				if failed[i] {
					if o != (poolOpOut{}) {
						t.Fatalf("failed task %d has a result %+v", i, o)
					}
				} else if o.Y != int64(i*i) {
					t.Fatalf("out[%d] = %+v", i, o)
				}
			}
			if n := proc.PoolDuplicates(p); n != 0 {
				t.Fatalf("%d duplicate results", n)
			}
			t.Logf("%d kills, %d tasks failed", k, len(failed))
			// The pool still answers.
			out, err = p.Map(ctx, poolSleepOps(100, 0))
			if err != nil || out[99].Y != 99*99 {
				t.Fatalf("after the kills: %v", err)
			}
		})
	}
}

func TestPoolCancel(t *testing.T) {
	base := poolBaseline(t)
	p, err := proc.NewPool(context.Background(), poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Both workers must be ready, so that both hold tasks when the cancel
	// comes (a worker still starting is given none, and need not be
	// killed): under -race on a loaded machine a start takes longer than
	// the 50 ms below.
	for end := time.Now().Add(30 * time.Second); proc.PoolReadyWorkers(p) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d workers ready after 30 s", proc.PoolReadyWorkers(p))
		}
	}
	before := p.Workers()
	ctx, cancel := context.WithCancel(context.Background())
	in := poolSleepOps(1000, 200_000) // 200 s of work
	f := p.Submit(ctx, poolOp{X: 1, Op: opSleep, Arg: 100_000_000})
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err = p.Map(ctx, in)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Map took %v after cancel", d)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Map error %v", err)
	}
	if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("future: %v", err)
	}
	// The workers holding the tasks were killed and replaced; the pool
	// goes on.
	out, err := p.Map(context.Background(), poolSleepOps(10, 0))
	if err != nil || out[9].Y != 81 {
		t.Fatalf("after cancel: %v, %v", out, err)
	}
	for _, pid := range before {
		if poolAlive(pid) {
			t.Errorf("worker %d still alive after cancel", pid)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	poolCheckNoLeaks(t, base)
}

func TestPoolContextTerminates(t *testing.T) {
	base := poolBaseline(t)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := proc.NewPool(ctx, poolBehave, proc.PoolConfig{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = p.Map(context.Background(), poolSleepOps(100, 10_000_000))
	if !errors.Is(err, proc.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Map error %v", err)
	}
	// Every task ends for the pool's end, none as a death: a worker killed
	// by the context may be reaped before terminate takes the lock.
	tes := proc.TaskErrors(err)
	if len(tes) != 100 {
		t.Fatalf("%d task errors, want 100", len(tes))
	}
	for _, te := range tes {
		var wd *proc.WorkerDiedError
		if !errors.Is(te, proc.ErrClosed) || errors.As(te, &wd) {
			t.Fatalf("task %d: %v", te.Index, te.Err)
		}
	}
	if _, err := p.Map(context.Background(), poolSleepOps(1, 0)); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Map after the pool's ctx: %v", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	poolCheckNoLeaks(t, base)
}

func TestPoolMaxTasksPerWorker(t *testing.T) {
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, MaxTasksPerWorker: 10})
	out, err := p.Map(context.Background(), poolSleepOps(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	perPid := map[int32]int{}
	for i, o := range out {
		if o.Y != int64(i*i) {
			t.Fatalf("out[%d] = %+v", i, o)
		}
		perPid[o.Pid]++
	}
	if len(perPid) < 10 {
		t.Fatalf("100 tasks ran in %d workers, want at least 10", len(perPid))
	}
	for pid, n := range perPid {
		if n > 10 {
			t.Fatalf("worker %d ran %d tasks", pid, n)
		}
	}
}

func TestPoolCloseWait(t *testing.T) {
	base := poolBaseline(t)
	p, err := proc.NewPool(context.Background(), poolBehave, proc.PoolConfig{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Wait(); err == nil {
		t.Fatal("Wait before Close did not fail")
	}
	var futures []*proc.Future[poolOpOut]
	for i := range 20 {
		futures = append(futures, p.Submit(ctx, poolOp{X: int64(i), Op: opSleep, Arg: 2000}))
	}
	var wg sync.WaitGroup
	var mapOut []poolOpOut
	var mapErr error
	wg.Go(func() { mapOut, mapErr = p.Map(ctx, poolSleepOps(200, 100)) })
	time.Sleep(10 * time.Millisecond) // let the Map start (or not: either is fine)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Map(ctx, poolSleepOps(1, 0)); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Map after Close: %v", err)
	}
	if _, err := p.Submit(ctx, poolOp{}).Get(ctx); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(p.Workers()) != 0 {
		t.Fatalf("workers %v after Wait", p.Workers())
	}
	for i, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %d not done after Wait", i)
		}
		if v, err := f.Get(ctx); err != nil || v.Y != int64(i*i) {
			t.Fatalf("future %d: %+v, %v", i, v, err)
		}
	}
	wg.Wait()
	if mapErr != nil && !errors.Is(mapErr, proc.ErrClosed) {
		t.Fatal(mapErr)
	}
	if mapErr == nil && mapOut[199].Y != 199*199 {
		t.Fatalf("map result %+v", mapOut[199])
	}
	poolCheckNoLeaks(t, base)
}

func TestPoolTerminate(t *testing.T) {
	base := poolBaseline(t)
	p, err := proc.NewPool(context.Background(), poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := p.Submit(ctx, poolOp{Op: opSleep, Arg: 100_000_000})
	done := make(chan error, 1)
	go func() {
		_, err := p.Map(ctx, poolSleepOps(50, 100_000_000))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Terminate took %v", d)
	}
	if err := <-done; !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("Map error %v", err)
	}
	if _, err := f.Get(ctx); !errors.Is(err, proc.ErrClosed) {
		t.Fatalf("future: %v", err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	poolCheckNoLeaks(t, base)
}

// poolParentHelper is a pool's parent for TestPoolParentKilled: it prints
// its workers' pids and then maps slow tasks until it is killed.
func poolParentHelper(args []string) int {
	p, err := proc.NewPool(context.Background(), poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 1})
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	pids := p.Workers()
	testproc.Printf("pids %d %d", pids[0], pids[1])
	go func() {
		// The first results show that the map is under way.
		for i := range p.MapUnordered(context.Background(), poolSleepOps(1000, 1000)) {
			if i == 10 {
				testproc.Printf("mapping")
			}
		}
	}()
	select {}
}

func TestPoolParentKilled(t *testing.T) {
	shmBefore, _ := os.ReadDir("/dev/shm")
	h := testproc.Start(t, "pool-parent")
	var a, b int
	line := h.Line(t)
	if _, err := fmt.Sscanf(line, "pids %d %d", &a, &b); err != nil {
		t.Fatalf("helper said %q", line)
	}
	h.Expect(t, "mapping")
	h.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for poolAlive(a) || poolAlive(b) {
		if time.Now().After(deadline) {
			t.Fatalf("workers %d (%v) and %d (%v) outlived their parent by 10 s", a, poolAlive(a), b, poolAlive(b))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The pool's segments are anonymous, so the dead processes can leave
	// nothing in /dev/shm. Other test packages run beside this one and
	// create named segments of their own; a leak is a new name that is
	// still there a moment later and that no live process maps.
	before := map[string]bool{}
	for _, e := range shmBefore {
		before[e.Name()] = true
	}
	leaked := func() []string {
		ents, _ := os.ReadDir("/dev/shm")
		mapped := shmMappedNames()
		var s []string
		for _, e := range ents {
			if !before[e.Name()] && !mapped[e.Name()] {
				s = append(s, e.Name())
			}
		}
		return s
	}
	suspects := leaked()
	for try := 0; try < 5 && len(suspects) > 0; try++ {
		time.Sleep(200 * time.Millisecond)
		now := leaked()
		suspects = slices.DeleteFunc(suspects, func(n string) bool { return !slices.Contains(now, n) })
	}
	for _, n := range suspects {
		t.Errorf("/dev/shm/%s appeared and no process maps it", n)
	}
}

// shmMappedNames returns the names of the /dev/shm files that some
// process this user can see has mapped.
func shmMappedNames() map[string]bool {
	names := map[string]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		maps, err := os.ReadFile("/proc/" + e.Name() + "/maps")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(maps)) {
			if i := strings.Index(line, "/dev/shm/"); i >= 0 {
				n := strings.TrimSpace(line[i+len("/dev/shm/"):])
				names[strings.TrimSuffix(n, " (deleted)")] = true
			}
		}
	}
	return names
}

func TestPoolConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []proc.PoolConfig{{Workers: -1}, {ChunkSize: -1}, {Retries: -1}, {MaxTasksPerWorker: -1}, {MaxMessage: 10}, {StartTimeout: -time.Second}, {Codec: poolOtherCodec{}}} {
		if p, err := proc.NewPool(ctx, poolSquare, cfg); err == nil {
			p.Terminate()
			t.Errorf("NewPool(%+v) did not fail", cfg)
		}
	}
}

type poolOtherCodec struct{}

func (poolOtherCodec) Marshal(v any) ([]byte, error)      { return nil, nil }
func (poolOtherCodec) Unmarshal(data []byte, v any) error { return nil }

// TestPoolResultSplit: the failures of a chunk do not fit in one result
// message of a small MaxMessage, so the worker splits them (and cuts a
// stack that alone would not fit); every task still gets its own outcome.
func TestPoolResultSplit(t *testing.T) {
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 150, MaxMessage: 4096})
	in := make([]poolOp, 600)
	for i := range in {
		in[i] = poolOp{X: int64(i)}
		if i%3 == 1 {
			in[i].Op = opPanic
		}
	}
	out, err := p.Map(context.Background(), in)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok || len(joined.Unwrap()) != 200 {
		t.Fatalf("want 200 task errors, got %v", err)
	}
	for _, e := range joined.Unwrap() {
		var te *proc.TaskError
		var pe *proc.PanicError
		if !errors.As(e, &te) || !errors.As(e, &pe) || te.Index%3 != 1 || pe.Value != fmt.Sprintf("boom %d", te.Index) {
			t.Fatalf("unexpected error %v", e)
		}
	}
	for i, o := range out {
		want := int64(i * i)
		if i%3 == 1 {
			want = 0
		}
		if o.Y != want {
			t.Fatalf("out[%d] = %+v", i, o)
		}
	}
}

// envHoldStart names a directory: the first worker to start with it in its
// environment (the one that creates hold/ in it) writes its pid in
// hold/pid and waits, before proc.Main, until the test creates go in it.
const envHoldStart = "POOLTEST_HOLD_START"

// envExitStart makes every worker started with it exit with status 7 at
// once, before proc.Main: a worker that dies before it is ready.
const envExitStart = "POOLTEST_EXIT_START"

// poolHoldStart is TestMain's side of envHoldStart and envExitStart.
func poolHoldStart() {
	if os.Getenv(envExitStart) != "" {
		os.Exit(7)
	}
	dir := os.Getenv(envHoldStart)
	if dir == "" || os.Mkdir(filepath.Join(dir, "hold"), 0o755) != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "hold", "pid.tmp"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	_ = os.Rename(filepath.Join(dir, "hold", "pid.tmp"), filepath.Join(dir, "hold", "pid"))
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			return
		}
	}
}

// TestPoolFirstTaskToReadyWorker: a worker is given jobs only once it is
// ready, so a task does not wait in the job ring of a worker still
// starting while another could run it. One of two workers is held before
// proc.Main until the test lets it go: the first Map's task must be run by
// the other (with the task sent to the held one, the Map would time out).
func TestPoolFirstTaskToReadyWorker(t *testing.T) {
	dir := t.TempDir()
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2,
		Process: proc.Config{Env: []string{envHoldStart + "=" + dir}}})
	release := sync.OnceFunc(func() {
		if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
			t.Error(err)
		}
	})
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		out, err := p.Map(ctx, []poolOp{{X: int64(i + 2)}})
		if err != nil {
			t.Fatalf("Map %d with one worker held at its start: %v", i, err)
		}
		var held []byte
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			if held, err = os.ReadFile(filepath.Join(dir, "hold", "pid")); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("no worker was held: %v", err)
		}
		if want := int64((i + 2) * (i + 2)); out[0].Y != want || strconv.Itoa(int(out[0].Pid)) == string(held) {
			t.Fatalf("Map %d: %+v, the held worker is %s", i, out[0], held)
		}
	}
	release()
	in := poolSleepOps(1000, 0)
	out, err := p.Map(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Y != in[i].X*in[i].X {
			t.Fatalf("result %d: %+v", i, o)
		}
	}
}

// TestPoolWorkerDiesBeforeReady: workers that die before they are ready
// (here every one, before proc.Main) are given no task; after 2*Workers
// such deaths each further one fails a chunk of the pending tasks with a
// *WorkerDiedError: the Map ends, with every task failed, instead of
// waiting for ever on replacements that never come up; Close and Wait
// return.
func TestPoolWorkerDiesBeforeReady(t *testing.T) {
	base := poolBaseline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := proc.NewPool(ctx, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 10,
		Process: proc.Config{Env: []string{envExitStart + "=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	_, err = p.Map(ctx, poolSleepOps(30, 0))
	tes := proc.TaskErrors(err)
	if ctx.Err() != nil || len(tes) != 30 {
		t.Fatalf("Map: %d task errors, ctx %v: %v", len(tes), ctx.Err(), err)
	}
	for i, te := range tes {
		var wd *proc.WorkerDiedError
		if te.Index != i || !errors.As(te.Err, &wd) || wd.Code != 7 || wd.Attempts != 0 || !wd.BeforeStart {
			t.Fatalf("task %d: %v", i, te)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return")
	}
	poolCheckNoLeaks(t, base)
}

// TestPoolCloseTerminateBeforeReady: Close and Wait with a worker still
// starting (held before proc.Main) return once it comes up, having given
// it nothing; Terminate with a worker held returns at once (it is killed
// where it waits).
func TestPoolCloseTerminateBeforeReady(t *testing.T) {
	for _, terminate := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminate=%v", terminate), func(t *testing.T) {
			base := poolBaseline(t)
			dir := t.TempDir()
			p, err := proc.NewPool(context.Background(), poolBehave, proc.PoolConfig{Workers: 2,
				Process: proc.Config{Env: []string{envHoldStart + "=" + dir}}})
			if err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
				if _, err := os.Stat(filepath.Join(dir, "hold", "pid")); err == nil {
					break
				}
				if time.Now().After(end) {
					t.Fatal("no worker was held")
				}
			}
			done := make(chan error, 1)
			if terminate {
				go func() { done <- p.Terminate() }()
			} else {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				go func() { done <- p.Wait() }()
				select {
				case err := <-done:
					t.Fatalf("Wait returned (%v) while a worker was still starting", err)
				case <-time.After(50 * time.Millisecond):
				}
				if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the pool did not end")
			}
			poolCheckNoLeaks(t, base)
		})
	}
}

// TestPoolKilledWhileStarting: one worker killed before it took a task
// costs no task (its replacement, or the other worker, runs them all).
func TestPoolKilledWhileStarting(t *testing.T) {
	dir := t.TempDir()
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 10,
		Process: proc.Config{Env: []string{envHoldStart + "=" + dir}}})
	var held []byte
	var err error
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if held, err = os.ReadFile(filepath.Join(dir, "hold", "pid")); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no worker was held")
		}
	}
	pid, err := strconv.Atoi(string(held))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Submit queues each task before it returns: the tasks are pending
	// (the held worker holds none of them) when the kill comes.
	in := poolSleepOps(200, 500)
	futs := make([]*proc.Future[poolOpOut], len(in))
	for i, x := range in {
		futs[i] = p.Submit(ctx, x)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out := make([]poolOpOut, len(in))
	for i, f := range futs {
		if out[i], err = f.Get(ctx); err != nil {
			t.Fatalf("task %d with a worker killed while starting: %v", i, err)
		}
	}
	poolCheckSquares(t, in, out)
}

// TestPoolStartTimeout: a worker that is not ready within StartTimeout
// (held before proc.Main, as if stuck in an init function) is killed and
// replaced, and costs no task.
func TestPoolStartTimeout(t *testing.T) {
	dir := t.TempDir()
	p := poolNew(t, poolBehave, proc.PoolConfig{Workers: 2, ChunkSize: 5, StartTimeout: time.Second,
		Process: proc.Config{Env: []string{envHoldStart + "=" + dir}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	in := poolSleepOps(50, 0)
	out, err := p.Map(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	poolCheckSquares(t, in, out)
	held, err := os.ReadFile(filepath.Join(dir, "hold", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(string(held))
	for end := time.Now().Add(30 * time.Second); poolAlive(pid); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("worker %d, held at its start, still alive 30 s on (StartTimeout 1 s)", pid)
		}
	}
	// Its replacement comes up: both slots answer.
	for end := time.Now().Add(30 * time.Second); proc.PoolReadyWorkers(p) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d workers ready", proc.PoolReadyWorkers(p))
		}
	}
}

// poolCheckSquares checks that out holds the squares of in's X.
func poolCheckSquares(t *testing.T, in []poolOp, out []poolOpOut) {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("%d results for %d inputs", len(out), len(in))
	}
	for i, o := range out {
		if o.Y != in[i].X*in[i].X {
			t.Fatalf("out[%d] = %+v, want %d", i, o, in[i].X*in[i].X)
		}
	}
}
