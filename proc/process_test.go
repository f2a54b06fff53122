package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/proc"
)

// exitWorker behaves as its argument says: "ok", "err", "exit3", "panic",
// or "sleep" (until killed).
var exitWorker = proc.Register("exit", func(ctx context.Context, args *proc.Args) error {
	var mode string
	if err := args.Decode(0, &mode); err != nil {
		return err
	}
	switch mode {
	case "ok":
		return nil
	case "err":
		return errors.New("boom")
	case "exit3":
		os.Exit(3)
	case "panic":
		panic("kaput")
	case "sleep":
		time.Sleep(time.Hour)
	}
	return fmt.Errorf("unknown mode %q", mode)
})

func mustStart(t *testing.T, f *proc.Func, args ...any) *proc.Process {
	t.Helper()
	p, err := f.Start(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(); _ = p.Wait() })
	return p
}

func asExit(t *testing.T, err error) *proc.ExitError {
	t.Helper()
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v (%T), want an *ExitError", err, err)
	}
	if !errors.Is(err, proc.ErrWorkerFailed) {
		t.Errorf("errors.Is(%v, ErrWorkerFailed) = false", err)
	}
	return ee
}

// TestExitStatus starts several workers of each kind of ending at once and
// joins each with the right result: nil, the function's error (code 1), a
// panic with its stack (code 2), os.Exit's code, and SIGKILL.
func TestExitStatus(t *testing.T) {
	const n = 3
	modes := []string{"ok", "err", "exit3", "panic", "sleep"}
	var ps []*proc.Process
	for range n {
		for _, m := range modes {
			ps = append(ps, mustStart(t, exitWorker, m))
		}
	}
	for i, p := range ps {
		mode := modes[i%len(modes)]
		if mode == "sleep" {
			if err := p.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		err := p.Wait()
		if mode == "ok" {
			if err != nil {
				t.Errorf("%s: Wait = %v, want nil", mode, err)
			}
			continue
		}
		ee := asExit(t, err)
		if ee.Pid != p.Pid() || ee.Name != "exit" {
			t.Errorf("%s: Pid, Name = %d, %q, want %d, exit", mode, ee.Pid, ee.Name, p.Pid())
		}
		switch mode {
		case "err":
			if ee.Code != 1 || ee.Err != "boom" || ee.Signal != 0 {
				t.Errorf("err: %+v, want Code 1, Err boom", ee)
			}
		case "exit3":
			if ee.Code != 3 || ee.Err != "" || ee.Panic != "" {
				t.Errorf("exit3: %+v, want Code 3 alone", ee)
			}
		case "panic":
			if ee.Code != 2 || !strings.HasPrefix(ee.Panic, "kaput\n") || !strings.Contains(ee.Panic, "process_test.go") {
				t.Errorf("panic: Code %d, Panic %q, want 2 and kaput with a stack", ee.Code, ee.Panic)
			}
		case "sleep":
			if ee.Code != -1 || ee.Signal != syscall.SIGKILL {
				t.Errorf("sleep: %+v, want Code -1 Signal SIGKILL", ee)
			}
		}
		select {
		case <-p.Done():
		default:
			t.Errorf("%s: Done not closed after Wait", mode)
		}
		if err := p.Kill(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("%s: Kill after Wait = %v, want os.ErrProcessDone", mode, err)
		}
	}
}

// TestWaitConcurrent: several goroutines wait; all get the same result
// once Done is closed.
func TestWaitConcurrent(t *testing.T) {
	p := mustStart(t, exitWorker, "err")
	<-p.Done()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = p.Wait() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != errs[0] || err == nil {
			t.Fatalf("Wait results differ or nil: %v", errs)
		}
	}
}

// TestSignal: SIGTERM kills a worker that does not handle it, and Wait says so.
func TestSignal(t *testing.T) {
	p := mustStart(t, exitWorker, "sleep")
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ee := asExit(t, p.Wait()); ee.Signal != syscall.SIGTERM || ee.Code != -1 {
		t.Fatalf("%+v, want Signal SIGTERM", ee)
	}
}

// TestCancelKills: cancelling Start's context kills the worker, and the
// error matches the context's.
func TestCancelKills(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := exitWorker.Start(ctx, "sleep")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	err = p.Wait()
	if ee := asExit(t, err); ee.Signal != syscall.SIGKILL {
		t.Fatalf("%+v, want SIGKILL", ee)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("errors.Is(%v, context.Canceled) = false", err)
	}
	// A done context refuses to start.
	if _, err := exitWorker.Start(ctx, "ok"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a done ctx = %v, want context.Canceled", err)
	}
}

// nestWorker starts a worker of its own (a worker's Main has run, and the
// variables it was started with do not leak into its child) and returns
// that worker's error.
var nestWorker = proc.Register("nest", func(ctx context.Context, a *proc.Args) error {
	p, err := exitWorker.Start(ctx, "err")
	if err != nil {
		return err
	}
	return p.Wait()
})

// TestNested: a worker can start workers.
func TestNested(t *testing.T) {
	ee := asExit(t, mustStart(t, nestWorker).Wait())
	if ee.Code != 1 || !strings.Contains(ee.Err, "worker exit (pid ") || !strings.HasSuffix(ee.Err, "failed: boom") {
		t.Fatalf("%+v, want Code 1 and the inner worker's error", ee)
	}
}
