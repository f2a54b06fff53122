//go:build linux

package sem

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/proc"
)

// The ErrOwnerDead result names the dead owner (pid and start time), on
// the takeover and on every Lock until MarkConsistent; ErrNotOwner names
// the holder.
func TestOwnerDeadDetail(t *testing.T) {
	s := newSeg(t)
	m := must[*Mutex](t)(InitMutex(s.at(segMutex)))
	h := s.start(t, "holder")
	h.Expect(t, "locked")
	pid := h.Pid()
	start, err := proc.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	var no *NotOwnerError
	if err := m.Unlock(); !errors.As(err, &no) || no.Owner != pid || !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock of a mutex pid %d holds = %v", pid, err)
	}
	h.Kill()
	for i, lock := range []func() error{
		func() error { ok, err := m.TryLock(); _ = ok; return err },
		func() error { return m.Lock(context.Background()) },
	} {
		err := lock()
		var od *OwnerDeadError
		if !errors.As(err, &od) || !errors.Is(err, ErrOwnerDead) || od.Pid != pid || od.Start != start {
			t.Fatalf("lock %d after the owner died = %#v, want pid %d start %d", i, err, pid, start)
		}
		if err := m.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Unlock(); !errors.As(err, &no) || no.Owner != 0 {
		t.Fatalf("Unlock of an unlocked mutex = %v", err)
	}
}

// The context rule of doc.go, for every blocking call and every open: a
// nil context is Background; a call that can complete without waiting
// completes even with a done context; one that would wait returns an
// error matching ctx.Err() at once.
func TestContextRule(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	mem := anonMem(t, 4096)
	m := must[*Mutex](t)(InitMutex(mem[0:64]))
	sm := must[*Semaphore](t)(InitSemaphore(mem[64:128], 2, 0))
	ev := must[*Event](t)(InitEvent(mem[128:192]))
	c := must[*Cond](t)(InitCond(mem[192:256], m))
	b1 := must[*Barrier](t)(InitBarrier(mem[256:384], 1))
	b2 := must[*Barrier](t)(InitBarrier(mem[384:512], 2))

	check := func(what string, err, want error) {
		t.Helper()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("%s = %v, want %v", what, err, want)
		}
	}
	// Mutex.
	check("Lock(nil)", m.Lock(nil), nil)
	check("Lock(done) held", m.Lock(done), context.Canceled)
	check("Unlock", m.Unlock(), nil)
	check("Lock(done) free", m.Lock(done), nil)
	// Cond: Wait always waits, so a done ctx returns at once, still locked.
	check("Cond.Wait(done)", c.Wait(done), context.Canceled)
	if ok, _ := m.TryLock(); ok {
		t.Error("Cond.Wait(done) unlocked the Mutex")
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Wait(nil) }()
	waitFor(t, func() bool { return ok(m.TryLock()) })
	check("Signal", c.Signal(), nil)
	check("Unlock", m.Unlock(), nil)
	check("Cond.Wait(nil)", <-errc, nil)
	check("Unlock after Wait", m.Unlock(), nil)
	// Semaphore.
	check("Acquire(nil)", sm.Acquire(nil), nil)
	check("Acquire(done) available", sm.Acquire(done), nil)
	check("Acquire(done) none", sm.Acquire(done), context.Canceled)
	// Event.
	check("Wait(done) clear", ev.Wait(done), context.Canceled)
	check("Set", ev.Set(), nil)
	check("Wait(nil) set", ev.Wait(nil), nil)
	check("Wait(done) set", ev.Wait(done), nil)
	// Barrier: the last party completes the round; another one breaks it.
	_, err := b1.Wait(nil)
	check("Barrier(1).Wait(nil)", err, nil)
	_, err = b1.Wait(done)
	check("Barrier(1).Wait(done)", err, nil)
	_, err = b2.Wait(done)
	check("Barrier(2).Wait(done)", err, context.Canceled)
	check("Barrier(2).Wait(done) broken", err, ErrBrokenBarrier)

	// Opens: by name, by file, over a socket.
	name := testName(t)
	mx := must[*Mutex](t)(CreateMutex(name + "-m"))
	defer mx.Close()
	for _, ctx := range []context.Context{nil, done} {
		what := "nil"
		if ctx != nil {
			what = "done"
		}
		h, err := OpenMutex(ctx, name+"-m")
		check("OpenMutex("+what+")", err, nil)
		if h != nil {
			h.Close()
		}
		h, err = OpenMutexFile(ctx, mx.File())
		check("OpenMutexFile("+what+")", err, nil)
		if h != nil {
			h.Close()
		}
		a, b := socketPair(t)
		check("Send", mx.Segment().Send(a), nil)
		h, err = ReceiveMutex(ctx, b)
		check("ReceiveMutex("+what+") queued", err, nil)
		if h != nil {
			h.Close()
		}
	}
	_, b := socketPair(t)
	_, err = ReceiveMutex(done, b)
	check("ReceiveMutex(done) nothing queued", err, context.Canceled)
	// Every other kind's opens with nil and done contexts.
	anon := []interface {
		Close() error
		File() *os.File
	}{
		must[*Semaphore](t)(CreateAnonymousSemaphore(1, 1)),
		must[*Event](t)(CreateAnonymousEvent()),
		must[*Barrier](t)(CreateAnonymousBarrier(2)),
		must[*Cond](t)(CreateAnonymousCond()),
	}
	opens := []func(context.Context, *os.File) (interface{ Close() error }, error){
		func(ctx context.Context, f *os.File) (interface{ Close() error }, error) {
			return OpenSemaphoreFile(ctx, f)
		},
		func(ctx context.Context, f *os.File) (interface{ Close() error }, error) {
			return OpenEventFile(ctx, f)
		},
		func(ctx context.Context, f *os.File) (interface{ Close() error }, error) {
			return OpenBarrierFile(ctx, f)
		},
		func(ctx context.Context, f *os.File) (interface{ Close() error }, error) { return OpenCondFile(ctx, f) },
	}
	for i, o := range anon {
		for _, ctx := range []context.Context{nil, done} {
			h, err := opens[i](ctx, o.File())
			check("OpenXFile", err, nil)
			if err == nil {
				h.Close()
			}
		}
		o.Close()
	}
	for _, n := range []string{"-s", "-e", "-b", "-c"} {
		var err error
		var h interface{ Close() error }
		switch n {
		case "-s":
			h, err = CreateSemaphore(name+n, 0, 0)
		case "-e":
			h, err = CreateEvent(name + n)
		case "-b":
			h, err = CreateBarrier(name+n, 2)
		case "-c":
			h, err = CreateCond(name + n)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer Unlink(name + n)
		h.Close()
		for _, ctx := range []context.Context{nil, done} {
			switch n {
			case "-s":
				h, err = OpenSemaphore(ctx, name+n)
			case "-e":
				h, err = OpenEvent(ctx, name+n)
			case "-b":
				h, err = OpenBarrier(ctx, name+n)
			case "-c":
				h, err = OpenCond(ctx, name+n)
			}
			check("Open"+n, err, nil)
			if err == nil {
				h.Close()
			}
		}
	}
}

func ok(b bool, _ error) bool { return b }

func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}
