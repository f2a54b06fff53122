package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// Config adjusts how StartWith starts a worker. The zero Config is what
// Start uses.
//
// The worker's standard input is the null device, and its working
// directory the parent's. The function runs with context.Background():
// SIGTERM and SIGINT keep their default action (the worker dies of them,
// and Wait reports the signal) unless the function handles them itself.
type Config struct {
	// Name names the worker in logs, output prefixes and errors; default
	// the Func's name.
	Name string

	// Stdout and Stderr receive the worker's standard output and error as
	// it writes them. When nil (the default), they are passed through to
	// the parent's os.Stdout and os.Stderr line by line, each line
	// prefixed with "[name pid] ". Unless they are *os.File, the copying
	// ends 100 ms after the worker exits: a process the worker started
	// with its output (and outliving it) does not hold up Wait, and what
	// it writes later is not copied.
	Stdout, Stderr io.Writer

	// Logger handles the worker's slog records (those of its
	// slog.Default()), with the attributes "pid" and "worker" (Name)
	// added; default slog.Default() at the time of the Start. Only
	// records at levels the Logger is enabled for at Start are sent.
	Logger *slog.Logger

	// Env holds extra environment variables ("KEY=value") for the worker,
	// on top of the parent's environment.
	Env []string
}

// Process is a running (or finished) worker process started by Start. Its
// methods are safe for concurrent use.
type Process struct {
	name string
	cmd  *exec.Cmd

	ctxKilled atomic.Bool // the start context was done and killed the worker
	ctxErr    error       // its error, set before ctxKilled

	done chan struct{}
	err  error // Wait's result, set before done is closed
}

// Start starts f in a new process, the running binary re-executed, with
// args. Start's arguments reach the worker's Args in order: a shmkit
// object (any shm.Shareable: a segment, a sem lock, a value, an array, a
// queue, a pipe end) as its descriptor in exec.Cmd.ExtraFiles, listed in a
// manifest the child reads, to be attached with Object; any other value
// gob-encoded, to be read with Args.Decode. A value that can be neither
// is an *EncodeError (ErrEncode) before anything starts. Start returns
// ErrNoMain in a binary that never called Main, and ErrNotRegistered for
// a Func registered after Main.
//
// Cancelling ctx kills the worker (SIGKILL); Wait then reports the signal,
// and its error matches ctx's. The worker never outlives this process: it
// is killed (PR_SET_PDEATHSIG) when the parent dies, however it dies.
func (f *Func) Start(ctx context.Context, args ...any) (*Process, error) {
	return f.StartWith(ctx, Config{}, args...)
}

// StartWith is Start with a Config.
func (f *Func) StartWith(ctx context.Context, cfg Config, args ...any) (*Process, error) {
	if f == nil || f.late || lookup(f.name) != f {
		name := ""
		if f != nil {
			name = f.name
		}
		return nil, fmt.Errorf("%w: %q was registered after Main ran, so a worker would not know it", ErrNotRegistered, name)
	}
	if !mainRan() {
		return nil, ErrNoMain
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if !supported {
		return nil, fmt.Errorf("proc: start %s: %w", f.name, ErrNotSupported)
	}
	const argBase = 2 // ExtraFiles: 0 the manifest, 1 the event ring, then the objects
	entries, argFiles, err := encodeArgs(args, argBase)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = f.name
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	var closers []io.Closer // closed when Start fails
	fail := func(err error) (*Process, error) {
		for _, c := range closers {
			_ = c.Close()
		}
		return nil, fmt.Errorf("proc: start %s: %w", cfg.Name, err)
	}
	events, err := ring.CreateAnonymous(eventRingConfig)
	if err != nil {
		return fail(fmt.Errorf("event ring: %w", err))
	}
	closers = append(closers, events)
	m := manifest{Version: manifestVersion, Func: f.name, Name: cfg.Name, Parent: os.Getpid(),
		Events: 1, Level: lowestLevel(logger.Handler()), Args: entries}
	mb, err := m.marshal()
	if err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	mf, err := memFile("shmkit-proc-manifest", mb)
	if err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	defer mf.Close() // the child has its own copy once started

	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{os.Args[0]},
		Env:         workerEnv(f.name, 3, cfg.Env),
		ExtraFiles:  append([]*os.File{mf, events.File()}, argFiles...),
		SysProcAttr: sysProcAttr(),
	}
	p := &Process{name: cfg.Name, cmd: cmd, done: make(chan struct{})}

	// Output: pipes we copy ourselves (the prefix needs the pid), or the
	// caller's *os.File as it is.
	type output struct {
		r      *os.File
		w      io.Writer
		prefix bool
	}
	var outs []output
	var childEnds []*os.File
	for _, o := range []struct {
		set    *io.Writer
		want   io.Writer
		parent *os.File
	}{{&cmd.Stdout, cfg.Stdout, os.Stdout}, {&cmd.Stderr, cfg.Stderr, os.Stderr}} {
		if f, ok := o.want.(*os.File); ok {
			*o.set = f
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		closers = append(closers, r, w)
		childEnds = append(childEnds, w)
		*o.set = w
		if o.want == nil {
			outs = append(outs, output{r, o.parent, true})
		} else {
			outs = append(outs, output{r, o.want, false})
		}
	}

	if err := startProcess(cmd); err != nil {
		return fail(err)
	}
	for _, w := range childEnds {
		_ = w.Close()
	}
	pid := cmd.Process.Pid
	prefix := "[" + cfg.Name + " " + strconv.Itoa(pid) + "] "
	var outWG sync.WaitGroup
	for _, o := range outs {
		outWG.Add(1)
		go func() {
			defer outWG.Done()
			defer o.r.Close()
			if o.prefix {
				copyLines(o.w, o.r, prefix)
			} else {
				_, _ = io.Copy(o.w, o.r)
			}
		}()
	}

	stopEvents, cancelEvents := context.WithCancel(context.Background())
	h := logger.Handler().WithAttrs([]slog.Attr{slog.Int("pid", pid), slog.String("worker", cfg.Name)})
	stCh := make(chan *status, 1)
	go func() {
		stCh <- readEvents(stopEvents, events, h)
		_ = events.Close()
	}()

	stopKill := context.AfterFunc(ctx, func() {
		p.ctxErr = ctx.Err()
		p.ctxKilled.Store(true)
		_ = cmd.Process.Kill()
	})
	go func() {
		werr := cmd.Wait()
		stopKill()
		cancelEvents() // the child is gone: drain what it put, then stop
		st := <-stCh
		pipes := make([]*os.File, len(outs))
		for i, o := range outs {
			pipes[i] = o.r
		}
		waitOutputs(&outWG, pipes, outputGrace)
		p.err = p.exitError(werr, st)
		close(p.done)
	}()
	return p, nil
}

// outputGrace is how long a Process goes on copying a dead child's
// stdout and stderr pipes: a grandchild that inherited them (a tool the
// function started with the worker's os.Stdout) may hold them open for
// its whole life, and Wait, a pool's Terminate and a slot's restart must
// not wait for it.
const outputGrace = 100 * time.Millisecond

// waitOutputs waits for the output copiers to reach EOF, or, after grace,
// ends their reads (what a grandchild writes later is not copied).
func waitOutputs(wg *sync.WaitGroup, pipes []*os.File, grace time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	for _, r := range pipes {
		_ = r.SetReadDeadline(time.Now())
	}
	<-done
}

// exitError turns cmd.Wait's error and the worker's status into Wait's
// result.
func (p *Process) exitError(werr error, st *status) error {
	if st == nil {
		st = &status{}
	}
	if werr == nil && !st.NotRegistered {
		return nil
	}
	e := &ExitError{Pid: p.cmd.Process.Pid, Name: p.name, Code: -1, Err: st.Err, Panic: st.Panic, notRegistered: st.NotRegistered}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		if werr != nil {
			e.Err = werr.Error()
		}
		return e
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
		e.Code = ws.ExitStatus()
		if ws.Signaled() {
			e.Signal = ws.Signal()
			if p.ctxKilled.Load() {
				e.ctxErr = p.ctxErr
			}
		}
	} else {
		e.Code = ee.ExitCode()
	}
	return e
}

// workerEnv is the parent's environment without inherited worker
// variables, plus ours and extra.
func workerEnv(fn string, manifestFD int, extra []string) []string {
	env := make([]string, 0, len(os.Environ())+3+len(extra))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	env = append(env, envWorker+"="+fn, envManifest+"="+strconv.Itoa(manifestFD), envParent+"="+strconv.Itoa(os.Getpid()))
	return append(env, extra...)
}

// Pid returns the worker's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Name returns the worker's name (Config.Name, default the Func's).
func (p *Process) Name() string { return p.name }

// Wait waits for the worker to exit and returns nil when it exited with
// status 0, an *ExitError otherwise. When Wait returns, the worker has
// been reaped and every log record and every byte of output it produced
// has been handled. Wait may be called from several goroutines and more
// than once; each call returns the same result.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done returns a channel closed when the worker has exited and Wait's
// result is ready.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill kills the worker with SIGKILL. It returns os.ErrProcessDone when
// the worker has already exited and been reaped.
func (p *Process) Kill() error { return p.Signal(syscall.SIGKILL) }

// Signal sends sig to the worker. It returns os.ErrProcessDone when the
// worker has already exited and been reaped.
func (p *Process) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}
