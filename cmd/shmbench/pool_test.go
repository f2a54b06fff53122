package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// poolTransports are the transports of the pool pattern, in report order.
var poolTransports = []string{"pool", "py-pool", "py-pool-tuned", "gopool-batch", "gopool",
	"pool-star", "py-starmap", "pool-c1", "py-pool-c1", "py-executor",
	"pool-start", "py-pool-start", "pool-start-ncpu", "proc-start", "exec-start"}

// TestPoolPlan: the pool pattern's plan has every row, compared rows next
// to each other, the worker counts, the Map sizes of chunked and per-task
// rows (shorter with -quick) and no message size for start-up rows.
func TestPoolPlan(t *testing.T) {
	defer func(p string) { pythonPath = p }(pythonPath)
	pythonPath = "python3"
	for _, quick := range []bool{false, true} {
		args := []string{"-patterns", "pool", "-workers", "3"}
		if quick {
			args = append(args, "-quick")
		}
		c, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, it := range buildPlan(c) {
			if it.rec != nil {
				t.Errorf("%s: reported as %s: %s", it.rec.Transport, it.rec.Status, it.rec.Notes)
				continue
			}
			m := it.m
			names = append(names, m.Transport)
			s := it.t.Spec()
			wantWorkers := 3
			switch m.Transport {
			case "pool-start-ncpu":
				wantWorkers = runtime.NumCPU()
			case "proc-start", "exec-start":
				wantWorkers = 1
			}
			wantTasks := poolTasksDefault
			switch {
			case s.Startup:
				wantTasks = 0
			case s.PerTask && quick:
				wantTasks = poolTasksPerTaskQuick
			case s.PerTask:
				wantTasks = poolTasksPerTaskDefault
			case quick:
				wantTasks = poolTasksQuick
			}
			wantSize := 8
			if s.Startup {
				wantSize = 0
			}
			if m.Pattern != PatPool || m.Consumers != wantWorkers || m.Producers != 0 || m.Tasks != wantTasks || m.Size != wantSize {
				t.Errorf("quick %v: %s: %+v, want %d workers, %d tasks, size %d", quick, m.Transport, m, wantWorkers, wantTasks, wantSize)
			}
			if !s.NoPin || !(s.Runs || s.External) {
				t.Errorf("%s: spec %+v: want a runner or external, never pinned", m.Transport, s)
			}
		}
		want := poolTransports
		if quick {
			want = slices.DeleteFunc(slices.Clone(want), func(n string) bool { return !slices.Contains(poolQuick, n) })
		}
		if !slices.Equal(names, want) {
			t.Errorf("quick %v: plan %q, want %q", quick, names, want)
		}
	}
	// The per-task rows' Map calls are the expensive ones: with -quick
	// the whole pattern fits in a few seconds.
	c, _ := parseFlags([]string{"-patterns", "pool", "-quick"}, io.Discard)
	if cost := planCost(buildPlan(c)); cost > 2500*time.Millisecond {
		t.Errorf("-quick -patterns pool costs %v", cost)
	}
}

// TestPoolBaseline: Map rows are compared with Python's Pool.map (the
// per-task ones with chunksize 1), start-up rows by p50 with Python's
// fork Pool, whatever their worker counts.
func TestPoolBaseline(t *testing.T) {
	rate := func(tr string, workers int, v float64) Record {
		return Record{Transport: tr, Pattern: PatPool, Size: 8, Consumers: workers, Status: StatusOK, MsgsPerSec: v}
	}
	start := func(tr string, workers int, p50 int64) Record {
		return Record{Transport: tr, Pattern: PatPool, Consumers: workers, Status: StatusOK, P50NS: p50, MsgsPerSec: 1e9 / float64(p50)}
	}
	recs := []Record{rate("pool", 2, 40e6), rate("py-pool", 2, 4e6), rate("gopool-batch", 2, 200e6),
		rate("pool-c1", 2, 30e3), rate("py-pool-c1", 2, 60e3),
		start("pool-start", 2, 2e6), start("py-pool-start", 2, 8e6), start("proc-start", 1, 1e6)}
	applyBaseline(recs, "unix")
	want := []struct {
		base  string
		ratio float64
	}{{"py-pool", 10}, {"py-pool", 1}, {"py-pool", 50}, {"py-pool-c1", 0.5}, {"py-pool-c1", 1},
		{"py-pool-start", 4}, {"py-pool-start", 1}, {"py-pool-start", 8}}
	for i, w := range want {
		if recs[i].Baseline != w.base || !approx(recs[i].Ratio, w.ratio) {
			t.Errorf("%s: baseline %q ratio %v, want %q %v", recs[i].Transport, recs[i].Baseline, recs[i].Ratio, w.base, w.ratio)
		}
	}
}

// syntheticPools is a pool pattern's records with round numbers.
func syntheticPools() []Record {
	rate := func(tr string, v float64) Record {
		return Record{Transport: tr, Kind: KindShmkit, Pattern: PatPool, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: v, RepRates: []float64{v}}
	}
	start := func(tr string, workers int, p50 int64) Record {
		return Record{Transport: tr, Kind: KindShmkit, Pattern: PatPool, Consumers: workers, Status: StatusOK,
			P50NS: p50, P90NS: p50, P99NS: p50, MaxNS: p50, MsgsPerSec: 1e9 / float64(p50)}
	}
	return []Record{
		rate("pool", 60e6), rate("py-pool", 3e6), rate("py-pool-tuned", 4e6), rate("gopool-batch", 100e6), rate("gopool", 1.5e6),
		rate("pool-star", 30e6), rate("py-starmap", 1e6),
		rate("pool-c1", 50e3), rate("py-pool-c1", 25e3), rate("py-executor", 4e3),
		start("pool-start", 2, 5e6), start("py-pool-start", 2, 10e6), start("pool-start-ncpu", 4, 8e6),
		start("proc-start", 1, 3e6), start("exec-start", 1, 2e6),
	}
}

// TestSummarizePools: the pool sentences are computed from the records
// and say whether each target of the issue is met, and change when the
// figures do.
func TestSummarizePools(t *testing.T) {
	defer func(f func() bool) { builtWithCgo = f }(builtWithCgo)
	builtWithCgo = func() bool { return false }
	if text := strings.Join(summarizePools(syntheticPools()), "\n"); strings.Contains(text, "CGO_ENABLED") {
		t.Errorf("a static build's summary mentions cgo:\n%s", text)
	}
	builtWithCgo = func() bool { return true }
	text := strings.Join(summarizePools(syntheticPools()), "\n")
	t.Logf("summary:\n%s", text)
	for _, want := range []string{
		"Map of tiny tasks (the square of an int, 2 workers): shmkit's pool runs 60M tasks/s with automatic chunking, " +
			"20x Python's Pool.map with its default chunksize (py-pool, 3.00M/s; target at least 20x: met) and 15x with a tuned chunksize (py-pool-tuned, 4.00M/s).",
		"Across processes, pool runs 60% of the goroutine pool of one process sending 1000 tasks at a time (gopool-batch, 100M/s; target within 2x, at least 50%: met); " +
			"40x the one sending each task alone (gopool, 1.50M/s).",
		"Starmap (multiply over pairs): pool-star runs 30M tasks/s, 30x Python's Pool.starmap (1.00M/s).",
		"One task a message (chunk size 1): a task costs 20µs through shmkit's pool (pool-c1, 50k tasks/s), 40µs through Python's Pool.map(chunksize=1) (pool-c1 runs 2.00x its tasks/s), 250µs through ProcessPoolExecutor.map (12x).",
		"A shmkit pool of 2 workers is ready for its first result in 5.00ms (p50), Python's fork Pool(2) in 10ms: 50% of Python's time (target: faster than Python in the same run: met); a pool of NumCPU (4) workers in 8.00ms.",
		"One worker process from Start to Wait (proc-start) takes 3.00ms (p50), an exec of this binary that exits at once (exec-start) 2.00ms: proc adds 1.00ms.",
		"built with CGO_ENABLED=0 it is static and starts faster",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	// Slower shmkit figures: the targets are said not to be met.
	recs := syntheticPools()
	for i := range recs {
		switch recs[i].Transport {
		case "pool":
			recs[i].MsgsPerSec = 30e6
		case "pool-start":
			recs[i].P50NS = 12e6
		}
	}
	text = strings.Join(summarizePools(recs), "\n")
	for _, want := range []string{"10x Python's Pool.map", "target at least 20x: NOT met", "30% of the goroutine pool", "at least 50%: NOT met",
		"120% of Python's time (target: faster than Python in the same run: NOT met)"} {
		if !strings.Contains(text, want) {
			t.Errorf("with a slower pool, the summary lacks %q:\n%s", want, text)
		}
	}
	// Missing rows leave their sentences out.
	var some []Record
	for _, r := range syntheticPools() {
		if !strings.HasPrefix(r.Transport, "py-") && r.Transport != "gopool-batch" && r.Transport != "exec-start" {
			some = append(some, r)
		}
	}
	text = strings.Join(summarizePools(some), "\n")
	for _, absent := range []string{"Python", "gopool-batch", "exec-start", "NaN", "Inf", "-x"} {
		if strings.Contains(text, absent) {
			t.Errorf("without Python, gopool-batch and exec-start, the summary mentions %q:\n%s", absent, text)
		}
	}
	if !strings.Contains(text, "shmkit's pool runs 60M tasks/s") || !strings.Contains(text, "(gopool, 1.50M/s)") {
		t.Errorf("summary lost what it could still say:\n%s", text)
	}
	if s := summarizePools(nil); s != nil {
		t.Errorf("summary of no pools: %q", s)
	}
}

// TestPoolTable: the pool pattern prints its Map rows in tasks/s and its
// start-up rows in times, in separate tables, and the summary follows.
func TestPoolTable(t *testing.T) {
	c, err := parseFlags([]string{"-patterns", "pool", "-python", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	doc := &Document{Schema: SchemaVersion, Results: syntheticPools()}
	applyBaseline(doc.Results, c.baseline)
	doc.Legend, doc.Summary = legendFor(doc.Results), summarize(doc.Results)
	var b bytes.Buffer
	writeTable(&b, doc, c)
	out := b.String()
	t.Log(out)
	i, j := strings.Index(out, "Pools: Map of a tiny task"), strings.Index(out, "Pools: start-up")
	k := strings.Index(out, "Transports (what each row is")
	if i < 0 || j < i || k < j {
		t.Fatalf("Map table, start-up table, legend not in that order (%d %d %d):\n%s", i, j, k, out)
	}
	for _, want := range []string{"  pool             shmkit           2        60M ", "20µs", "  pool-start       shmkit           2   5.00ms ",
		"Compare like with like in pools: several tasks per message: ", "target at least 20x: met"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(out[i:j], "py-pool-start") || strings.Contains(out[j:k], "py-executor") {
		t.Errorf("a row in the wrong table:\n%s", out)
	}
}

// TestPythonPools runs every Python row of the pool pattern once, when
// python3 is installed: each reports its rate (or its start times) and
// checks its results.
func TestPythonPools(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	cmd := command(t, "-json", "-transports", "py-pool,py-pool-tuned,py-starmap,py-pool-c1,py-executor,py-pool-start",
		"-patterns", "pool", "-duration", "5ms", "-reps", "1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, errb.String())
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range doc.Results {
		if r.Kind != KindPython {
			continue
		}
		seen[r.Transport] = true
		if r.Status != StatusOK || r.MsgsPerSec <= 0 || r.Consumers != 2 {
			t.Errorf("%s: %s %v (%d workers): %s", r.Transport, r.Status, r.MsgsPerSec, r.Consumers, r.Notes)
		}
		if isStartup(r.Transport) && (r.P50NS <= 0 || r.MaxNS < r.P50NS) {
			t.Errorf("%s: start times p50 %d max %d", r.Transport, r.P50NS, r.MaxNS)
		}
		if r.Transport == "py-pool-tuned" && !strings.Contains(r.Notes, "chunksize 5000") {
			t.Errorf("%s: notes %q", r.Transport, r.Notes)
		}
	}
	if len(seen) != 6 {
		t.Errorf("Python rows %v, want 6", seen)
	}
}
