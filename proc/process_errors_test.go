package proc_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

// hiddenWorker is registered in the parent but not in a child started
// with PROCTEST_HIDE=1 in its environment: the child does not know it.
var hiddenWorker = func() *proc.Func {
	if os.Getenv("PROCTEST_HIDE") != "" {
		return nil
	}
	return proc.Register("hidden", func(ctx context.Context, a *proc.Args) error { return nil })
}()

// lateWorker registers a Func after Main, once per process, so that the
// test can run again (-count) without registering the name twice.
var lateWorker = sync.OnceValue(func() *proc.Func {
	return proc.Register("late", func(ctx context.Context, a *proc.Args) error { return nil })
})

// TestNotRegistered: a Func registered after Main is refused at Start;
// a child that does not know the name exits with its distinctive status,
// which Wait turns into ErrNotRegistered.
func TestNotRegistered(t *testing.T) {
	late := lateWorker()
	if p, err := late.Start(context.Background()); !errors.Is(err, proc.ErrNotRegistered) {
		if p != nil {
			p.Kill()
		}
		t.Fatalf("Start of a Func registered after Main = %v, want ErrNotRegistered", err)
	}

	p, err := hiddenWorker.StartWith(context.Background(), proc.Config{Env: []string{"PROCTEST_HIDE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait()
	if !errors.Is(err, proc.ErrNotRegistered) {
		t.Fatalf("Wait = %v, want ErrNotRegistered", err)
	}
	if ee := asExit(t, err); ee.Code != 120 {
		t.Fatalf("%+v, want Code 120", ee)
	}
}

// TestUnencodable: an argument that can be neither passed as an object
// nor encoded is an *EncodeError naming it, at Start.
func TestUnencodable(t *testing.T) {
	closed, err := ring.CreateAnonymous(ring.Config{})
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	var nilQueue *ring.Queue
	for _, tc := range []struct {
		arg any
		typ string
	}{
		{make(chan int), "chan int"},
		{func() {}, "func()"},
		{closed, "*ring.Queue"},
		{nilQueue, "*ring.Queue"},
		{nil, "<nil>"},
	} {
		p, err := exitWorker.Start(context.Background(), "ok", tc.arg)
		if p != nil {
			p.Kill()
			t.Fatalf("%s: started", tc.typ)
		}
		var ee *proc.EncodeError
		if !errors.Is(err, proc.ErrEncode) || !errors.As(err, &ee) || ee.Index != 1 || ee.Type != tc.typ {
			t.Errorf("%s: Start = %v, want an EncodeError for argument 1 of type %s", tc.typ, err, tc.typ)
		}
	}
}

// TestOrphanCheck: a worker whose parent is not the process that started
// it (the parent died before PR_SET_PDEATHSIG took hold) exits at once
// with status 122 and runs nothing. The test fakes the parent's pid.
func TestOrphanCheck(t *testing.T) {
	p, err := exitWorker.StartWith(context.Background(), proc.Config{Env: []string{"SHMKIT_PROC_PARENT=1"}}, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if ee := asExit(t, p.Wait()); ee.Code != 122 {
		t.Fatalf("%+v, want Code 122", ee)
	}
}
