// Package examples_test builds every program under examples/ once and runs
// each, checking its output: exact lines where the output is fixed,
// patterns (and relations between the pids) where process ids appear.
package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runTimeout bounds one example's run; every example finishes in well
// under a second or two when it works.
const runTimeout = 30 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildOut  []byte
	buildTime time.Duration
)

// build compiles every example with one go build (the packages share the
// compilation of shmkit) into a directory that outlives the tests' own
// temporary directories, removed by TestMain.
func build(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the examples start worker processes, which needs Linux")
	}
	buildOnce.Do(func() {
		start := time.Now()
		binDir, buildErr = os.MkdirTemp("", "shmkit-examples-")
		if buildErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		cmd := exec.Command(goTool, "build", "-o", binDir+string(filepath.Separator), "./...")
		buildOut, buildErr = cmd.CombinedOutput()
		buildTime = time.Since(start)
	})
	if buildErr != nil {
		t.Fatalf("go build ./examples/...: %v\n%s", buildErr, buildOut)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// run runs example name and returns its standard output. It fails the
// test when the example exits with an error, writes to standard error
// (unless stderrOK), or runs past runTimeout.
func run(t *testing.T, name string, stderrOK bool) string {
	t.Helper()
	dir := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, name))
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s ran in %v", name, time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v\nstdout:\n%s\nstderr:\n%s", name, runTimeout, &stdout, &stderr)
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, &stdout, &stderr)
	}
	if !stderrOK && stderr.Len() > 0 {
		t.Errorf("%s wrote to standard error:\n%s", name, &stderr)
	}
	return stdout.String()
}

// lines splits out into lines, without the final newline.
func lines(out string) []string {
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// exact checks that out is want, line for line.
func exact(t *testing.T, out string, want ...string) {
	t.Helper()
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}

// match checks that out has exactly one line per pattern, each matching
// (anchored), and returns the submatches of each line.
func match(t *testing.T, out string, patterns ...string) [][]string {
	t.Helper()
	got := lines(out)
	if len(got) != len(patterns) {
		t.Fatalf("output has %d lines, want %d:\n%s", len(got), len(patterns), out)
	}
	subs := make([][]string, len(got))
	for i, p := range patterns {
		subs[i] = regexp.MustCompile("^" + p + "$").FindStringSubmatch(got[i])
		if subs[i] == nil {
			t.Fatalf("line %d: %q does not match %q\noutput:\n%s", i+1, got[i], p, out)
		}
	}
	return subs
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBuild reports how long building every example takes.
func TestBuild(t *testing.T) {
	build(t)
	t.Logf("go build ./examples/... took %v", buildTime.Round(time.Millisecond))
}

func TestProcess(t *testing.T) {
	t.Parallel()
	subs := match(t, run(t, "process", false),
		`main: pid (\d+)`,
		`worker 0: pid (\d+), parent (\d+)`,
		`worker 1: pid (\d+), parent (\d+)`,
		`worker 2: pid (\d+), parent (\d+)`)
	mainPid := atoi(t, subs[0][1])
	seen := map[int]bool{mainPid: true}
	for _, s := range subs[1:] {
		pid, parent := atoi(t, s[1]), atoi(t, s[2])
		if parent != mainPid {
			t.Errorf("%q: the parent is not main (pid %d)", s[0], mainPid)
		}
		if seen[pid] {
			t.Errorf("%q: pid %d seen twice", s[0], pid)
		}
		seen[pid] = true
	}
}

func TestQueue(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "queue", false), "hello from the child")
}

func TestValueArray(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "valuearray", false), "3.14 [42 1 2]")
}

func TestManagerList(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "managerlist", false), "[1 2 3 100]")
}

func TestManagerDict(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "managerdict", false), "map[0.25:None 1:1 2:2]", "[9 8 7 6 5 4 3 2 1 0]")
}

func TestPipe(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "pipe", false), "HELLO", "child closed its end: io.EOF")
}

func TestJoinQueue(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "joinqueue", false),
		"1. joined, then got 1000000 bytes: no deadlock",
		"2. after 0.5s the child is still running: its Put waits for room (16 messages, a queue of 4)",
		"   got 16 messages, then joined: the child exited cleanly",
		"3. joined without getting: the child failed with exit code 1: put 5 of 16: context deadline exceeded",
		"   the 4 messages it had put are still in the queue")
}

// TestLogging checks that each worker's two records (and not its Debug
// one) reached the parent's handler in order, with the worker's own pid
// and name; the workers' records may interleave in any order.
func TestLogging(t *testing.T) {
	t.Parallel()
	out := run(t, "logging", false)
	got := lines(out)
	if len(got) != 7 {
		t.Fatalf("output has %d lines, want 7:\n%s", len(got), out)
	}
	last := regexp.MustCompile(`^level=INFO msg="all workers joined" pid=(\d+)$`).FindStringSubmatch(got[6])
	if last == nil {
		t.Fatalf("last line %q is not the parent's", got[6])
	}
	parent := atoi(t, last[1])
	rec := regexp.MustCompile(`^level=(INFO|WARN) msg=(starting|done) pid=(\d+) worker=worker-(\d) num=(\d)( square=(\d))?$`)
	pids := map[int]int{} // worker -> pid
	seen := map[int][]string{}
	for _, l := range got[:6] {
		m := rec.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("record %q does not match %v\noutput:\n%s", l, rec, out)
		}
		w, pid := atoi(t, m[4]), atoi(t, m[3])
		if m[5] != m[4] {
			t.Errorf("%q: num is not the worker's", l)
		}
		if p, ok := pids[w]; ok && p != pid {
			t.Errorf("%q: worker-%d had pid %d before", l, w, p)
		}
		if pid == parent {
			t.Errorf("%q: the parent's pid", l)
		}
		pids[w] = pid
		seen[w] = append(seen[w], m[1]+" "+m[2]+m[6])
	}
	for w := range 3 {
		want := []string{"INFO starting", "WARN done square=" + strconv.Itoa(w*w)}
		if !slices.Equal(seen[w], want) {
			t.Errorf("worker-%d's records: %q, want %q", w, seen[w], want)
		}
	}
	if len(pids) == 3 && (pids[0] == pids[1] || pids[1] == pids[2] || pids[0] == pids[2]) {
		t.Errorf("workers share pids: %v", pids)
	}
}

func TestPoolMap(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "poolmap", false), "[0 1 4 9 16 25 36 49 64 81]", "400")
}

func TestStarmap(t *testing.T) {
	t.Parallel()
	exact(t, run(t, "starmap", false), "[2 12 30]", `["cube: 8" "slab: 12"]`)
}

func TestCPUPool(t *testing.T) {
	t.Parallel()
	n := runtime.NumCPU() // the example's process sees the same CPUs
	exact(t, run(t, "cpupool", false),
		fmt.Sprintf("%d workers (runtime.NumCPU() is %d)", n, n),
		"100 328350",
		"328350")
}

// TestKilledWorker checks that the worker killed while holding the chunk
// of tasks 5 to 9 fails exactly those, all naming the same pid, while
// tasks 0 to 4 complete and the pool takes the next Map.
func TestKilledWorker(t *testing.T) {
	t.Parallel()
	pat := []string{`\[0 1 4 9 16 0 0 0 0 0\]`}
	for i := 5; i < 10; i++ {
		pat = append(pat, fmt.Sprintf(`proc: task %d: worker pid (\d+) killed by SIGKILL while holding task %d`, i, i))
	}
	pat = append(pat,
		`first failed: task 5, worker pid (\d+), signal 9 \(killed\), attempt 1`,
		`next Map: \[1 4 9\]`)
	subs := match(t, run(t, "killedworker", false), pat...)
	pid := subs[1][1]
	for _, s := range subs[2:7] {
		if s[1] != pid {
			t.Errorf("%q: not the pid of task 5's worker (%s)", s[0], pid)
		}
	}
}
