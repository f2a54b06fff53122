//go:build linux

package value_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func init() {
	// share-value fd|sock PATH M: attach to an anonymous Value[pair]
	// handed over by the parent and apply M locked updates.
	testproc.Register("share-value", func(args []string) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		v, err := objecttest.Attach(ctx, args, value.OpenFile[pair], value.Receive[pair])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		defer v.Close()
		m, _ := strconv.Atoi(args[2])
		for i := range m {
			if err := v.Update(ctx, func(p *pair) { p.A++; p.B += int64(i) }); err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
		}
		testproc.Printf("done %s", v.Segment().TypeName())
		return 0
	})
}

func TestAnonymousAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	const m = 2000
	v, err := value.CreateAnonymous(pair{})
	must(t, err)
	defer v.Close()
	if v.Name() != "" || !v.Segment().Sealed() {
		t.Fatalf("anonymous Value: name %q, sealed %v", v.Name(), v.Segment().Sealed())
	}
	ps := objecttest.ShareAcross(t, v, "share-value", strconv.Itoa(m))
	for i := range m {
		must(t, v.Update(ctx, func(p *pair) { p.A++; p.B += int64(i) }))
	}
	for _, p := range ps {
		p.Expect(t, "done value_test.pair")
		must(t, p.Wait())
	}
	got, err := v.Load(ctx)
	must(t, err)
	if want := (pair{A: 3 * m, B: 3 * m * (m - 1) / 2}); got != want {
		t.Fatalf("after three processes' updates: %+v, want %+v", got, want)
	}
}

func TestAnonymousRaw(t *testing.T) {
	r, err := value.CreateAnonymousRaw(int64(7))
	must(t, err)
	defer r.Close()
	o, err := value.OpenRawFile[int64](context.Background(), r.File())
	must(t, err)
	defer o.Close()
	r.Store(42)
	if o.Load() != 42 {
		t.Fatalf("OpenRawFile view reads %d", o.Load())
	}
	// A locked Value's segment opens as Raw too.
	v, err := value.CreateAnonymous(int64(5))
	must(t, err)
	defer v.Close()
	x, err := value.OpenRawFile[int64](context.Background(), v.File())
	must(t, err)
	defer x.Close()
	if x.Load() != 5 {
		t.Fatalf("Raw over a Value reads %d", x.Load())
	}
	// ... but a Raw's does not open as a Value.
	if _, err := value.OpenFile[int64](context.Background(), r.File()); !errors.Is(err, value.ErrKind) {
		t.Fatalf("OpenFile of a Raw as a Value: %v, want ErrKind", err)
	}
}

func TestOpenFileWrongThings(t *testing.T) {
	ctx := context.Background()
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	defer w.Close()
	_, err = value.OpenFile[int64](ctx, r)
	if !errors.Is(err, shm.ErrNotSegment) || errors.Is(err, value.ErrCorrupt) {
		t.Fatalf("OpenFile of a pipe: %v, want ErrNotSegment", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "value: open file: descriptor ") || strings.Count(msg, "open") > 1 {
		t.Errorf("message %q: want one 'value: open file:' prefix", msg)
	}

	v, err := value.CreateAnonymous(int64(1))
	must(t, err)
	defer v.Close()
	_, err = value.OpenFile[float64](ctx, v.File())
	var me *shm.MismatchError
	if !errors.Is(err, value.ErrType) || !errors.As(err, &me) || me.WantType != "float64" || me.GotType != "int64" {
		t.Fatalf("OpenFile[float64] of a Value[int64]: %v (%+v)", err, me)
	}
	if !strings.Contains(err.Error(), "want float64") || !strings.Contains(err.Error(), "got int64") {
		t.Errorf("type mismatch message %q does not name both types", err)
	}

	name := segName(t)
	n, err := value.Create(name, int64(1))
	must(t, err)
	defer n.Close()
	_, err = value.Open[pair](ctx, name)
	if !errors.As(err, &me) || me.WantType != "value_test.pair" || me.GotType != "int64" {
		t.Fatalf("Open[pair] of a named Value[int64]: %v", err)
	}
	if strings.Count(err.Error(), "open") > 1 {
		t.Errorf("message %q stutters", err)
	}
	_, err = value.Open[int64](ctx, name+"-missing")
	if !errors.Is(err, os.ErrNotExist) || strings.Count(err.Error(), "open") > 1 {
		t.Errorf("Open of a missing Value: %v", err)
	}
	must(t, value.Unlink(name))
	if _, err := value.Open[int64](ctx, name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open after Unlink: %v", err)
	}
}

// Every Open and every blocking call takes a nil context as Background.
// A done context does not stop what needs no waiting (the shmkit rule),
// and fails at once what would wait (the lock held elsewhere).
func TestContexts(t *testing.T) {
	name := segName(t)
	v, err := value.Create(name, pair{})
	must(t, err)
	defer v.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var nilCtx context.Context
	open := map[string]func(ctx context.Context) (*value.Value[pair], error){
		"Open": func(ctx context.Context) (*value.Value[pair], error) { return value.Open[pair](ctx, name) },
		"OpenOrCreate": func(ctx context.Context) (*value.Value[pair], error) {
			x, _, err := value.OpenOrCreate(ctx, name, pair{})
			return x, err
		},
		"OpenFile": func(ctx context.Context) (*value.Value[pair], error) { return value.OpenFile[pair](ctx, v.File()) },
		"Receive": func(ctx context.Context) (*value.Value[pair], error) {
			return objecttest.SendReceive(t, ctx, v, value.Receive[pair])
		},
	}
	for what, f := range open {
		for _, ctx := range []context.Context{nilCtx, done} {
			x, err := f(ctx)
			if err != nil {
				t.Errorf("%s(%v): %v", what, ctx, err)
				continue
			}
			x.Close()
		}
	}
	calls := map[string]func(ctx context.Context) error{
		"Load":   func(ctx context.Context) error { _, err := v.Load(ctx); return err },
		"Store":  func(ctx context.Context) error { return v.Store(ctx, pair{A: 1}) },
		"Update": func(ctx context.Context) error { return v.Update(ctx, func(p *pair) { p.B++ }) },
	}
	for what, f := range calls {
		if err := f(nilCtx); err != nil {
			t.Errorf("%s(nil): %v", what, err)
		}
		if err := f(done); err != nil {
			t.Errorf("%s(done) with the lock free: %v, want success", what, err)
		}
	}
	must(t, v.Lock().Lock(context.Background()))
	for what, f := range calls {
		if err := f(done); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(done) with the lock held: %v, want context.Canceled", what, err)
		}
	}
	must(t, v.Lock().Unlock())
}
