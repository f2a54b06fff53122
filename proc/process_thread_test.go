package proc_test

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStartThreadExits: PR_SET_PDEATHSIG fires when the *thread* that
// forked the child exits, not the process (golang/go#27505). A worker
// started from a goroutine whose locked OS thread then ends must live on,
// which holds only if Start forks from a thread that outlives every
// caller.
func TestStartThreadExits(t *testing.T) {
	tids := make(chan int, 1)
	started := make(chan error, 1)
	var p interface {
		Pid() int
		Done() <-chan struct{}
	}
	var onThread func()
	onThread = func() {
		runtime.LockOSThread()
		if unix.Gettid() == os.Getpid() {
			// The main thread is never ended by the runtime: hold it
			// and try on another one, then let it go.
			done := make(chan struct{})
			go func() { defer close(done); onThread() }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		// Never unlocked: the thread ends with this goroutine.
		tids <- unix.Gettid()
		w, err := exitWorker.Start(t.Context(), "sleep")
		if err == nil {
			p = w
			t.Cleanup(func() { _ = w.Kill(); _ = w.Wait() })
		}
		started <- err
	}
	go onThread()
	tid := <-tids
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	// Wait, bounded, until that thread is gone from the process.
	task := "/proc/self/task/" + strconv.Itoa(tid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(task); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d that ended locked is still in %s", tid, task)
		}
		runtime.Gosched()
	}
	// The kernel sends the death signal as the thread exits, before its
	// /proc entry goes; a worker killed by it is reaped by Wait's
	// goroutine. Give any such signal a bounded time to show.
	select {
	case <-p.Done():
		t.Fatalf("worker %d died when the thread that started it exited", p.Pid())
	case <-time.After(200 * time.Millisecond):
	}
	if err := unix.Kill(p.Pid(), 0); err != nil {
		t.Fatalf("worker %d is gone: %v", p.Pid(), err)
	}
}
