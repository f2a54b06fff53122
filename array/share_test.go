//go:build linux

package array_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	// share-array fd|sock PATH M: attach to an anonymous Array[int64] of 4
	// handed over by the parent; M times, add 1 lock-free to element 1
	// (fd) or 2 (sock), and i to element 3 under the lock.
	testproc.Register("share-array", func(args []string) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := objecttest.Attach(ctx, args, array.OpenFile[int64], array.Receive[int64])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		defer a.Close()
		id := map[string]int{"fd": 1, "sock": 2}[args[0]]
		m, _ := strconv.Atoi(args[2])
		for i := range m {
			array.AtomicOf(a).AddAt(id, 1)
			if err := a.Update(ctx, 3, func(x *int64) { *x += int64(i) }); err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
		}
		testproc.Printf("done %d %s", a.Len(), a.Segment().TypeName())
		return 0
	})
}

func TestAnonymousAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	const m = 2000
	a, err := array.CreateAnonymousFrom([]int64{0, 0, 0, 100})
	must(t, err)
	defer a.Close()
	if a.Name() != "" || !a.Segment().Sealed() {
		t.Fatalf("anonymous Array: name %q, sealed %v", a.Name(), a.Segment().Sealed())
	}
	ps := objecttest.ShareAcross(t, a, "share-array", strconv.Itoa(m))
	for i := range m {
		array.AtomicOf(a).AddAt(0, 1)
		must(t, a.Update(ctx, 3, func(x *int64) { *x += int64(i) }))
	}
	for _, p := range ps {
		p.Expect(t, "done 4 int64")
		must(t, p.Wait())
	}
	want := []int64{m, m, m, 100 + 3*m*(m-1)/2}
	for i, w := range want {
		if got := a.At(i); got != w {
			t.Errorf("element %d = %d, want %d", i, got, w)
		}
	}
}

func TestAnonymousForms(t *testing.T) {
	ctx := context.Background()
	z, err := array.CreateAnonymous[float32](5)
	must(t, err)
	defer z.Close()
	if z.Len() != 5 || z.At(4) != 0 {
		t.Fatalf("CreateAnonymous: len %d", z.Len())
	}
	r, err := array.CreateAnonymousRaw[int32](3)
	must(t, err)
	defer r.Close()
	o, err := array.OpenRawFile[int32](ctx, r.File())
	must(t, err)
	defer o.Close()
	r.Set(2, 9)
	if o.At(2) != 9 || o.Len() != 3 {
		t.Fatalf("OpenRawFile view: %v", o.Slice())
	}
	if _, err := array.OpenFile[int32](ctx, r.File()); !errors.Is(err, array.ErrKind) {
		t.Fatalf("OpenFile of a Raw as an Array: %v, want ErrKind", err)
	}
	_, err = array.OpenFile[int64](ctx, z.File())
	var me *shm.MismatchError
	if !errors.As(err, &me) || me.WantType != "int64" || me.GotType != "float32" {
		t.Fatalf("OpenFile[int64] of an Array[float32]: %v", err)
	}
	if _, err := array.CreateAnonymous[int64](-1); !errors.Is(err, shm.ErrInvalidSize) {
		t.Fatalf("negative length: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	must(t, err)
	defer f.Close()
	_, err = array.OpenFile[int64](ctx, f)
	if !errors.Is(err, shm.ErrNotSegment) || !strings.HasPrefix(err.Error(), "array: open file: descriptor") {
		t.Fatalf("OpenFile of a regular file: %v", err)
	}
	name := segName(t)
	n, err := array.Create[int64](name, 2)
	must(t, err)
	n.Close()
	must(t, array.Unlink(name))
	if _, err := array.Open[int64](ctx, name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open after Unlink: %v", err)
	}
}

// Every Open and every blocking call takes a nil context as Background.
// A done context does not stop what needs no waiting (the shmkit rule),
// and fails at once what would wait (the lock held elsewhere).
func TestContexts(t *testing.T) {
	name := segName(t)
	a, err := array.Create[int64](name, 4)
	must(t, err)
	defer a.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var nilCtx context.Context
	open := map[string]func(ctx context.Context) (*array.Array[int64], error){
		"Open": func(ctx context.Context) (*array.Array[int64], error) { return array.Open[int64](ctx, name) },
		"OpenOrCreate": func(ctx context.Context) (*array.Array[int64], error) {
			x, _, err := array.OpenOrCreate[int64](ctx, name, 4)
			return x, err
		},
		"OpenFile": func(ctx context.Context) (*array.Array[int64], error) { return array.OpenFile[int64](ctx, a.File()) },
		"Receive": func(ctx context.Context) (*array.Array[int64], error) {
			return objecttest.SendReceive(t, ctx, a, array.Receive[int64])
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
	buf := make([]int64, 4)
	calls := map[string]func(ctx context.Context) error{
		"Update":   func(ctx context.Context) error { return a.Update(ctx, 1, func(x *int64) { *x++ }) },
		"WithLock": func(ctx context.Context) error { return a.WithLock(ctx, func(s []int64) { s[2]++ }) },
		"CopyOut":  func(ctx context.Context) error { _, err := a.CopyOut(ctx, buf, 0); return err },
		"CopyIn":   func(ctx context.Context) error { _, err := a.CopyIn(ctx, 0, buf[:1]); return err },
	}
	for what, f := range calls {
		if err := f(nilCtx); err != nil {
			t.Errorf("%s(nil): %v", what, err)
		}
		if err := f(done); err != nil {
			t.Errorf("%s(done) with the lock free: %v, want success", what, err)
		}
	}
	must(t, a.Lock().Lock(context.Background()))
	for what, f := range calls {
		if err := f(done); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(done) with the lock held: %v, want context.Canceled", what, err)
		}
	}
	must(t, a.Lock().Unlock())
}
