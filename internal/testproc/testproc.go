// Package testproc runs parts of a test in separate OS processes, the way
// os/exec's own tests do: the test binary re-executes itself, and TestMain
// dispatches to a registered helper instead of running the tests.
//
// In a package's tests:
//
//	func TestMain(m *testing.M) { testproc.Main(m) }
//
//	func init() {
//		testproc.Register("incr", func(args []string) int {
//			// ... open a segment, do work, print progress ...
//			return 0
//		})
//	}
//
//	func TestIncr(t *testing.T) {
//		p := testproc.Start(t, "incr", "seg-name", "1000")
//		p.Expect(t, "ready")   // synchronise on a line the helper prints
//		if err := p.Wait(); err != nil { t.Fatal(err) }
//	}
//
// Helpers talk to the parent through their standard output (one line a
// message) and through shmkit itself; no test synchronises with sleeps.
// A helper that is registered but never started during a full run (no
// -run filter) fails the run, so helpers cannot silently rot.
package testproc

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// envHelper names the helper a re-executed test binary must run.
const envHelper = "SHMKIT_TEST_HELPER"

var (
	mu      sync.Mutex
	helpers = map[string]func(args []string) int{}
	used    = map[string]bool{}
)

// Register adds a helper under name. Call it from init or TestMain, before
// Main. The function receives the arguments given to Start and returns the
// exit code.
func Register(name string, fn func(args []string) int) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := helpers[name]; dup {
		panic("testproc: helper registered twice: " + name)
	}
	helpers[name] = fn
}

// IsHelper reports whether this process is a re-executed helper.
func IsHelper() bool { return os.Getenv(envHelper) != "" }

// Main runs the named helper when the binary was re-executed as one, and
// otherwise the tests. It does not return.
func Main(m *testing.M) {
	if name := os.Getenv(envHelper); name != "" {
		mu.Lock()
		fn := helpers[name]
		mu.Unlock()
		if fn == nil {
			fmt.Fprintf(os.Stderr, "testproc: unknown helper %q\n", name)
			os.Exit(2)
		}
		var args []string
		if a := os.Getenv(envHelper + "_ARGS"); a != "" {
			args = strings.Split(a, "\x1f")
		}
		os.Exit(fn(args))
	}
	code := m.Run()
	if code == 0 && fullRun() {
		mu.Lock()
		var unused []string
		for name := range helpers {
			if !used[name] {
				unused = append(unused, name)
			}
		}
		mu.Unlock()
		if len(unused) > 0 {
			sort.Strings(unused)
			fmt.Fprintf(os.Stderr, "testproc: helpers never started: %s\n", strings.Join(unused, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun reports whether every test ran (no -run or -skip filter, not
// -short and not only benchmarks or fuzzing).
func fullRun() bool {
	full := true
	flag.Visit(func(f *flag.Flag) {
		switch strings.TrimPrefix(f.Name, "test.") {
		case "run", "skip", "bench", "fuzz", "list", "short":
			if f.Value.String() != "" && f.Value.String() != "false" {
				full = false
			}
		}
	})
	return full
}

// Proc is a running helper process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd

	lines  chan string // stdout, line by line
	stderr strings.Builder
	done   chan struct{}
	err    error
}

// Command returns an unstarted command that runs helper name with args.
// Use it to add ExtraFiles or change the environment; then call StartCmd.
func Command(tb testing.TB, name string, args ...string) *exec.Cmd {
	tb.Helper()
	mu.Lock()
	_, ok := helpers[name]
	used[name] = true
	mu.Unlock()
	if !ok {
		tb.Fatalf("testproc: unknown helper %q", name)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range args {
		if strings.Contains(a, "\x1f") {
			tb.Fatalf("testproc: argument %q contains \\x1f", a)
		}
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+name, envHelper+"_ARGS="+strings.Join(args, "\x1f"))
	// Under -race a process sleeps 1 s at exit by default (atexit_sleep_ms)
	// to let reports flush; helpers exit often, so skip that wait.
	cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return cmd
}

// Start starts helper name with args. The process is killed, if still
// running, when the test ends.
func Start(tb testing.TB, name string, args ...string) *Proc {
	tb.Helper()
	return StartCmd(tb, name, Command(tb, name, args...))
}

// StartCmd starts a command made by Command.
func StartCmd(tb testing.TB, name string, cmd *exec.Cmd) *Proc {
	tb.Helper()
	p := &Proc{Name: name, Cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{b: &p.stderr}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("testproc: start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Stderr returns what the helper has written to its standard error so far.
func (p *Proc) Stderr() string { return p.Cmd.Stderr.(*lockedWriter).String() }

// Pid returns the helper's process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// DefaultTimeout bounds Expect, Line and Wait: a helper that neither
// answers nor exits in this time fails the test instead of hanging it.
var DefaultTimeout = 2 * time.Minute

// Line returns the next line the helper printed. It fails the test if the
// helper exits first or nothing comes within DefaultTimeout.
func (p *Proc) Line(tb testing.TB) string {
	tb.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			tb.Fatalf("testproc: %s exited (%v) before printing a line; stderr:\n%s", p.Name, p.err, p.Stderr())
		}
		return l
	case <-time.After(DefaultTimeout):
		tb.Fatalf("testproc: %s printed nothing for %v; stderr:\n%s", p.Name, DefaultTimeout, p.Stderr())
	}
	return ""
}

// Expect reads the next line and fails the test unless it equals want.
func (p *Proc) Expect(tb testing.TB, want string) {
	tb.Helper()
	if got := p.Line(tb); got != want {
		tb.Fatalf("testproc: %s printed %q, want %q; stderr:\n%s", p.Name, got, want, p.Stderr())
	}
}

// Wait waits for the helper to exit and returns its exit error, with its
// standard error attached when it failed. Lines it printed and nobody read
// are discarded.
func (p *Proc) Wait() error {
	go func() {
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
	case <-time.After(DefaultTimeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("testproc: %s did not exit within %v; stderr:\n%s", p.Name, DefaultTimeout, p.Stderr())
	}
	if p.err != nil {
		return fmt.Errorf("testproc: %s: %w; stderr:\n%s", p.Name, p.err, p.Stderr())
	}
	return nil
}

// Kill sends SIGKILL to the helper and waits for it to be reaped, so that
// afterwards its pid names no live process.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	go func() {
		for range p.lines {
		}
	}()
	<-p.done
}

// Killed reports whether err (from Wait) means the helper died of SIGKILL.
func Killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Printf writes one line to standard output from inside a helper, for the
// parent to read with Line or Expect.
func Printf(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}
