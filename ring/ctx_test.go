package ring

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// call is one blocking call of the package, made with ctx.
type call struct {
	name string
	do   func(ctx context.Context) error
}

// queueCalls returns the blocking Put-side and Get-side calls of q, each
// for one message of 8 bytes.
func queueCalls(q *Queue) (puts, gets []call) {
	msg := make([]byte, 8)
	puts = []call{
		{"Put", func(ctx context.Context) error { return q.Put(ctx, msg) }},
		{"PutBatch", func(ctx context.Context) error { _, err := q.PutBatch(ctx, [][]byte{msg}); return err }},
		{"Reserve+Commit", func(ctx context.Context) error {
			if _, err := q.Reserve(ctx, 8); err != nil {
				return err
			}
			return q.Commit(8)
		}},
		{"Typed.Put", func(ctx context.Context) error { return (&Typed[int64]{q: q, size: 8}).Put(ctx, 1) }},
	}
	gets = []call{
		{"Get", func(ctx context.Context) error { _, err := q.Get(ctx, make([]byte, 8)); return err }},
		{"GetAppend", func(ctx context.Context) error { _, err := q.GetAppend(ctx, nil); return err }},
		{"GetBatch", func(ctx context.Context) error { _, err := q.GetBatch(ctx, [][]byte{make([]byte, 8)}); return err }},
		{"Next+Release", func(ctx context.Context) error {
			if _, err := q.Next(ctx); err != nil {
				return err
			}
			return q.Release()
		}},
		{"Typed.Get", func(ctx context.Context) error { _, err := (&Typed[int64]{q: q, size: 8}).Get(ctx); return err }},
		{"Encoded.Get", func(ctx context.Context) error {
			// Any 8 bytes are not valid gob: ErrDecode, after the take.
			_, err := NewEncoded[int](q, Gob).Get(ctx)
			if errors.Is(err, ErrDecode) {
				err = nil
			}
			return err
		}},
	}
	return puts, gets
}

func doneCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// The package's context rule: a nil ctx is context.Background(); a done
// ctx fails a call only when it must wait (with ctx.Err(), at once), and
// a call that can complete at once still does.
func TestContexts(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	ctxs := []struct {
		name string
		ctx  context.Context
		err  error
	}{
		{"nil", nil, nil},
		{"canceled", doneCtx(), context.Canceled},
		{"expired", expired, context.DeadlineExceeded},
	}
	for _, mode := range []Mode{SPSC, MPMC} {
		for _, c := range ctxs {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				// Capacity 1 per message kind: each Put fills the queue.
				q := newQueue(t, Config{Mode: mode, MaxMessage: 8, Capacity: 1})
				q.SetSpinTime(time.Hour) // a done ctx must not spin first
				puts, gets := queueCalls(q)
				for _, p := range puts {
					// Room: the Put completes whatever ctx says.
					if err := p.do(c.ctx); err != nil {
						t.Fatalf("%s with room: %v", p.name, err)
					}
					if c.err != nil {
						// Full: it must wait, so a done ctx ends it.
						fill(t, q, make([]byte, 8))
						if err := p.do(c.ctx); !errors.Is(err, c.err) {
							t.Fatalf("%s on a full queue: %v, want %v", p.name, err, c.err)
						}
					}
					drain(t, q)
				}
				for _, g := range gets {
					if err := puts[0].do(nil); err != nil {
						t.Fatal(err)
					}
					if err := g.do(c.ctx); err != nil {
						t.Fatalf("%s with a message: %v", g.name, err)
					}
					if c.err != nil {
						if err := g.do(c.ctx); !errors.Is(err, c.err) {
							t.Fatalf("%s on an empty queue: %v, want %v", g.name, err, c.err)
						}
					}
				}
				if c.ctx != nil {
					return
				}
				// A nil ctx in calls that sleep: a goroutine puts (gets)
				// once the call is asleep.
				q.SetSpinTime(0)
				// Each helper goroutine is waited for: two Put-side (or
				// Get-side) calls on one handle must not overlap.
				for _, g := range gets {
					waits := q.Stats().GetWaits
					done := make(chan error)
					go func() {
						for atomic.LoadUint64(q.getWaits) == waits { // atomic: the sleeper counts itself
							runtime.Gosched()
						}
						done <- q.Put(context.Background(), make([]byte, 8))
					}()
					if err := g.do(nil); err != nil {
						t.Fatalf("%s asleep with a nil ctx: %v", g.name, err)
					}
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range puts {
					fill(t, q, make([]byte, 8))
					waits := q.Stats().PutWaits
					done := make(chan error)
					go func() {
						for atomic.LoadUint64(q.putWaits) == waits { // atomic, as above
							runtime.Gosched()
						}
						_, err := q.Get(context.Background(), make([]byte, 8))
						done <- err
					}()
					if err := p.do(nil); err != nil {
						t.Fatalf("%s asleep with a nil ctx: %v", p.name, err)
					}
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					drain(t, q)
				}
			})
		}
	}
}

// drain takes every queued message.
func drain(t *testing.T, q *Queue) {
	t.Helper()
	buf := make([]byte, q.MaxMessage())
	for {
		_, ok, err := q.TryGet(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return
		}
	}
}

func TestContextsConn(t *testing.T) {
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
	}{{"nil", nil, nil}, {"canceled", doneCtx(), context.Canceled}} {
		t.Run(c.name, func(t *testing.T) {
			a, b, err := Pipe(Config{MaxMessage: 8, Capacity: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			defer b.Close()
			a.SetSpinTime(time.Hour)
			b.SetSpinTime(time.Hour)
			if err := a.Send(c.ctx, []byte("1")); err != nil {
				t.Fatalf("Send with room: %v", err)
			}
			if n, err := b.Recv(c.ctx, make([]byte, 8)); err != nil || n != 1 {
				t.Fatalf("Recv with a message: %d, %v", n, err)
			}
			if err := a.Send(c.ctx, []byte("2")); err != nil {
				t.Fatal(err)
			}
			if m, err := b.RecvAppend(c.ctx, nil); err != nil || string(m) != "2" {
				t.Fatalf("RecvAppend with a message: %q, %v", m, err)
			}
			if c.err == nil {
				return
			}
			if _, err := b.Recv(c.ctx, make([]byte, 8)); !errors.Is(err, c.err) {
				t.Fatalf("Recv on an empty pipe: %v", err)
			}
			if _, err := b.RecvAppend(c.ctx, nil); !errors.Is(err, c.err) {
				t.Fatalf("RecvAppend on an empty pipe: %v", err)
			}
			for a.out.Len() < a.out.Cap() {
				if err := a.Send(nil, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Send(c.ctx, []byte("3")); !errors.Is(err, c.err) {
				t.Fatalf("Send on a full pipe: %v", err)
			}
		})
	}
}

// Every Open takes a nil ctx, and a done one when it need not wait (the
// segment is ready, the descriptor already sent).
func TestContextsOpen(t *testing.T) {
	name := "ctx-" + strconv.Itoa(os.Getpid())
	q, err := Create(name, Config{MaxMessage: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer q.Close()
	tq, err := CreateAnonymousTyped[int64](Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tq.Close()
	tname := name + "-typed"
	tn, err := CreateTyped[int64](tname, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(tname)
	defer tn.Close()
	pname := name + "-pipe"
	pc, err := CreatePipe(pname, Config{MaxMessage: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(pname)
	defer pc.Close()
	ap, err := NewPipe(Config{MaxMessage: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Close()

	closer := func(c interface{ Close() error }, err error) error {
		if err == nil {
			err = c.Close()
		}
		return err
	}
	send := func(s interface{ Send(c *net.UnixConn) error }) *net.UnixConn {
		t.Helper()
		conns, err := unixSocketpair()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conns[0].Close(); conns[1].Close() })
		if err := s.Send(conns[0]); err != nil {
			t.Fatal(err)
		}
		return conns[1]
	}
	opens := []call{
		{"Open", func(ctx context.Context) error { return closer(Open(ctx, name)) }},
		{"OpenFile", func(ctx context.Context) error { return closer(OpenFile(ctx, q.File())) }},
		{"Receive", func(ctx context.Context) error { return closer(Receive(ctx, send(q.Segment()))) }},
		{"OpenOrCreate", func(ctx context.Context) error {
			q, _, err := OpenOrCreate(ctx, name, Config{})
			return closer(q, err)
		}},
		{"OpenOrCreate new", func(ctx context.Context) error {
			n := name + "-new"
			defer Unlink(n)
			q, created, err := OpenOrCreate(ctx, n, Config{})
			if err == nil && !created {
				t.Errorf("OpenOrCreate of a new name did not create")
			}
			return closer(q, err)
		}},
		{"OpenTyped", func(ctx context.Context) error { return closer(OpenTyped[int64](ctx, tname)) }},
		{"OpenFileTyped", func(ctx context.Context) error { return closer(OpenFileTyped[int64](ctx, tq.File())) }},
		{"ReceiveTyped", func(ctx context.Context) error { return closer(ReceiveTyped[int64](ctx, send(tq.Segment()))) }},
		{"OpenPipe", func(ctx context.Context) error { return closer(OpenPipe(ctx, pname)) }},
		{"OpenPipeFile", func(ctx context.Context) error { return closer(OpenPipeFile(ctx, ap.File())) }},
		{"ReceivePipe", func(ctx context.Context) error { return closer(ReceivePipe(ctx, send(ap.Segment()))) }},
	}
	for _, ctx := range []context.Context{nil, doneCtx()} {
		for _, o := range opens {
			if err := o.do(ctx); err != nil {
				t.Errorf("%s with ctx %v: %v", o.name, ctx, err)
			}
		}
	}
	// Receive must wait when nothing was sent: a done ctx ends it.
	conns, err := unixSocketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer conns[0].Close()
	defer conns[1].Close()
	if _, err := Receive(doneCtx(), conns[1]); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive of nothing with a done ctx: %v", err)
	}
	if _, err := ReceivePipe(doneCtx(), conns[1]); !errors.Is(err, context.Canceled) {
		t.Errorf("ReceivePipe of nothing with a done ctx: %v", err)
	}
}

func TestCancellation(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 2})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, err := q.Get(ctx, make([]byte, 16)); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Get on empty = %v", err)
			}
			for {
				if ok, _ := q.TryPut([]byte("x")); !ok {
					break
				}
			}
			ctx2, cancel2 := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Add(1)
			var perr error
			go func() {
				defer wg.Done()
				perr = q.Put(ctx2, []byte("y"))
			}()
			for q.Stats().PutWaits == 0 {
			}
			cancel2()
			wg.Wait()
			if !errors.Is(perr, context.Canceled) {
				t.Fatalf("Put on full after cancel = %v", perr)
			}
			// The queue still works.
			buf := make([]byte, 16)
			if n, err := q.Get(context.Background(), buf); err != nil || string(buf[:n]) != "x" {
				t.Fatal(n, err)
			}
		})
	}
}
