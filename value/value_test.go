//go:build linux

package value_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// pair is updated under the lock (not an integer: the in-place path).
type pair struct {
	A int64
	B int64
}

// Test helpers shared with the other object package (objecttest).
func segName(t testing.TB, suffix ...string) string {
	return objecttest.SegName(t, "vtest", suffix...)
}

func newGate(t *testing.T) *objecttest.Gate { return objecttest.NewGate(t, segName(t, "-gate")) }

var (
	must     = objecttest.Must
	waitGate = objecttest.WaitGate
)

func init() {
	// count opens a Value[int64] and a Value[pair] and does M Update and
	// M Add calls on the first and M Updates on the second. The pair's
	// Update counts the processes inside its fn in a third Value (int32)
	// and fails if it is ever not exactly one.
	testproc.Register("count", func(args []string) int {
		ctx := context.Background()
		m, _ := strconv.Atoi(args[2])
		n, err := value.Open[int64](ctx, args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		p, err := value.Open[pair](ctx, args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		inside, err := value.Open[int32](ctx, args[4])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		in := value.AtomicOf(inside)
		overlaps := 0
		if err := waitGate(ctx, args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The lock-free Adds run on their own goroutine, so that they
		// land inside other Updates' functions (of this process and the
		// others) as often as possible: the compare-and-swap retry of
		// Update is what keeps the total exact then.
		a := value.AtomicOf(n)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range m {
				a.Add(1)
			}
		})
		for i := range m {
			if err := n.Update(ctx, func(x *int64) { *x++ }); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			// A read, a yield and a write: a wide window, so that two
			// processes in fn at once (a missing lock) lose increments
			// and are seen inside together.
			if err := p.Update(ctx, func(q *pair) {
				if in.Add(1) != 1 {
					overlaps++
				}
				a := q.A
				runtime.Gosched()
				q.A = a + 1
				q.B += int64(i)
				in.Add(-1)
			}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		wg.Wait()
		if overlaps != 0 {
			fmt.Fprintf(os.Stderr, "another process was inside the pair's Update %d times\n", overlaps)
			return 1
		}
		testproc.Printf("done")
		return 0
	})

	// count-ack alternates Update and Atomic.Add of 1 on a Value[int64],
	// M of them (for ever if M is 0), and after each one stores the number
	// applied so far into its own element of an Array[int64] of
	// acknowledgements, so that a process killed at any moment has
	// acknowledged all its updates but at most one. An Update that took
	// the lock over from a dead holder (sem.ErrOwnerDead) was applied; the
	// helper counts those and prints the count when done.
	testproc.Register("count-ack", func(args []string) int {
		ctx := context.Background()
		n, err := value.Open[int64](ctx, args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		acks, err := array.Open[int64](ctx, args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		id, _ := strconv.Atoi(args[2])
		m, _ := strconv.Atoi(args[3])
		if err := waitGate(ctx, args[4]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		a := value.AtomicOf(n)
		tookOver := 0
		for k := 1; m == 0 || k <= m; k++ {
			if k%2 == 0 {
				a.Add(1)
			} else if err := n.Update(ctx, func(x *int64) { *x++ }); errors.Is(err, sem.ErrOwnerDead) {
				tookOver++
			} else if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			acks.Set(id, int64(k))
		}
		testproc.Printf("done %d", tookOver)
		return 0
	})

	// die-inside blocks inside Update after a half-done write, to be killed.
	testproc.Register("die-inside", func(args []string) int {
		ctx := context.Background()
		p, err := value.Open[pair](ctx, args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = p.Update(ctx, func(q *pair) {
			q.A = -1 // half an update: B is never written
			testproc.Printf("inside")
			time.Sleep(time.Hour) // killed by the parent long before
		})
		return 1
	})

	// die-inside-int blocks inside Update of a Value[int64], to be killed.
	testproc.Register("die-inside-int", func(args []string) int {
		ctx := context.Background()
		v, err := value.Open[int64](ctx, args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = v.Update(ctx, func(x *int64) {
			*x = -1 // on the scratch copy: never installed
			testproc.Printf("inside")
			time.Sleep(time.Hour) // killed by the parent long before
		})
		return 1
	})

	// open-as opens a Value created as int64 with another type and prints
	// the error.
	testproc.Register("open-as", func(args []string) int {
		var err error
		ctx := context.Background()
		switch args[1] {
		case "float64":
			_, err = value.Open[float64](ctx, args[0])
		case "int32":
			_, err = value.Open[int32](ctx, args[0])
		case "pair":
			_, err = value.Open[pair](ctx, args[0])
		}
		var me *shm.MismatchError
		typed := errors.As(err, &me) && me.What == "type" && me.Err == shm.ErrType
		testproc.Printf("%v|%v|%v", errors.Is(err, value.ErrType), typed, err)
		return 0
	})
}

func TestCreateOpenLoadStore(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	v, err := value.Create(name, 2.5)
	must(t, err)
	defer v.Close()
	if v.Name() != name {
		t.Fatalf("Name = %q", v.Name())
	}
	w, err := value.Open[float64](ctx, name)
	must(t, err)
	defer w.Close()
	x, err := w.Load(ctx)
	must(t, err)
	if x != 2.5 {
		t.Fatalf("Load = %v, want 2.5", x)
	}
	must(t, w.Store(ctx, 7))
	must(t, v.Update(ctx, func(f *float64) { *f *= 2 }))
	if x, _ := w.Load(ctx); x != 14 {
		t.Fatalf("Load = %v, want 14", x)
	}
	if _, err := value.Create(name, 1.0); err == nil {
		t.Fatal("second Create succeeded")
	}
	u, created, err := value.OpenOrCreate(ctx, name, 0.0)
	must(t, err)
	if created {
		t.Fatal("OpenOrCreate created an existing value")
	}
	must(t, u.Close())

	// Lock, like get_lock(): guards Pointer.
	mu := v.Lock()
	must(t, mu.Lock(ctx))
	*v.Pointer() = 1
	must(t, mu.Unlock())
	if x, _ := w.Load(ctx); x != 1 {
		t.Fatalf("Load = %v, want 1", x)
	}

	must(t, v.Close())
	if err := v.Update(ctx, func(*float64) {}); !errors.Is(err, value.ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	_ = v.Pointer() // still safe: private zeroed memory

	// The lock-free Load and Store of an integer Value report ErrClosed
	// too, like the locked ones.
	n, err := value.Create[int64](segName(t, "-n"), 5)
	must(t, err)
	must(t, n.Close())
	if _, err := n.Load(ctx); !errors.Is(err, value.ErrClosed) {
		t.Fatalf("integer Load after Close: %v", err)
	}
	if err := n.Store(ctx, 1); !errors.Is(err, value.ErrClosed) {
		t.Fatalf("integer Store after Close: %v", err)
	}
}

func TestAtomic(t *testing.T) {
	ctx := context.Background()
	type ticks uint32 // a named integer type
	v, err := value.Create[ticks](segName(t), 5)
	must(t, err)
	defer v.Close()
	a := value.AtomicOf(v)
	if a.Load() != 5 || a.Add(3) != 8 || a.Swap(1) != 8 || !a.CompareAndSwap(1, 2) || a.CompareAndSwap(1, 3) {
		t.Fatal("atomic sequence wrong")
	}
	a.Store(10)
	a.Add(^ticks(0)) // -1, wrapping
	if x, _ := v.Load(ctx); x != 9 {
		t.Fatalf("Load = %d, want 9", x)
	}
	must(t, v.Store(ctx, 20))
	must(t, v.Update(ctx, func(x *ticks) { *x += 2 }))
	if a.Load() != 22 {
		t.Fatalf("Load = %d", a.Load())
	}

	// Update and Add from many goroutines at once: the compare-and-swap
	// path loses nothing.
	w, err := value.Create[int64](segName(t, "-64"), 0)
	must(t, err)
	defer w.Close()
	aw := value.AtomicOf(w)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				if err := w.Update(ctx, func(x *int64) { *x += 2 }); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 2000 {
				aw.Add(1)
			}
		})
	}
	wg.Wait()
	if got := aw.Load(); got != 4*2000*3 {
		t.Fatalf("total %d, want %d", got, 4*2000*3)
	}
}

// A lock-free write that lands while Update's fn runs makes Update run fn
// again on the new value: deterministic, with the write made from inside
// fn itself.
func TestUpdateRetriesAfterLockFreeWrite(t *testing.T) {
	ctx := context.Background()
	v, err := value.Create[int64](segName(t), 10)
	must(t, err)
	defer v.Close()
	a := value.AtomicOf(v)
	var seen []int64
	must(t, v.Update(ctx, func(x *int64) {
		seen = append(seen, *x)
		if len(seen) == 1 {
			a.Add(100) // as another process would, between load and swap
		}
		*x++
	}))
	if len(seen) != 2 || seen[0] != 10 || seen[1] != 110 {
		t.Fatalf("fn saw %v, want [10 110]", seen)
	}
	if got := a.Load(); got != 111 {
		t.Fatalf("value %d, want 111 (no update lost)", got)
	}
	// Without lock-free writers, fn runs exactly once.
	calls := 0
	must(t, v.Update(ctx, func(x *int64) { calls++; *x *= 2 }))
	if calls != 1 || a.Load() != 222 {
		t.Fatalf("%d calls, value %d", calls, a.Load())
	}
}

func TestCrossProcessCount(t *testing.T) {
	const procs = 4
	m := 20000
	if testing.Short() {
		m = 2000
	}
	if os.Getenv("SHMKIT_STRESS") == "1" {
		m = 100000
	}
	ctx := context.Background()
	n, err := value.Create[int64](segName(t, "-n"), 0)
	must(t, err)
	defer n.Close()
	p, err := value.Create(segName(t, "-p"), pair{})
	must(t, err)
	defer p.Close()
	inside, err := value.Create[int32](segName(t, "-in"), 0)
	must(t, err)
	defer inside.Close()
	gate := newGate(t)
	var ps []*testproc.Proc
	for range procs {
		ps = append(ps, testproc.Start(t, "count", n.Name(), p.Name(), strconv.Itoa(m), gate.Name, inside.Name()))
	}
	gate.Open(t, ps)
	for _, c := range ps {
		c.Expect(t, "done")
		must(t, c.Wait())
	}
	t.Logf("%d processes x %d iterations", procs, m)
	if got, _ := n.Load(ctx); got != int64(2*procs*m) {
		t.Fatalf("counter %d, want %d", got, 2*procs*m)
	}
	got, err := p.Load(ctx)
	must(t, err)
	want := pair{A: int64(procs * m), B: int64(procs * m * (m - 1) / 2)}
	if got != want {
		t.Fatalf("pair %+v, want %+v", got, want)
	}
}

// One of several counting processes is killed with SIGKILL at a random
// moment of its run (inside Update's fn holding the lock, inside the swap,
// in an Atomic.Add, between operations): the others finish, and the total
// is what every process acknowledged, plus at most the one update the
// killed process applied but had not acknowledged yet.
func TestKillCounterAtRandom(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	objecttest.KillCounter(t, "vtest", rounds, 4000, func(t *testing.T, round int) objecttest.Counter {
		n, err := value.Create[int64](segName(t, "-"+strconv.Itoa(round), "-n"), 0)
		must(t, err)
		t.Cleanup(func() { n.Close() })
		return objecttest.Counter{
			Name: n.Name(),
			Total: func(ctx context.Context) int64 {
				got, err := n.Load(ctx)
				must(t, err)
				return got
			},
			// Whatever state the victim left the lock in, it works.
			After: func(ctx context.Context, t *testing.T) {
				if err := n.Update(ctx, func(x *int64) { *x++ }); err != nil && !errors.Is(err, sem.ErrOwnerDead) {
					t.Fatalf("round %d: Update after the run: %v", round, err)
				}
			},
		}
	})
}

func TestOwnerDiedInsideUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := value.Create(segName(t), pair{A: 1, B: 1})
	must(t, err)
	defer v.Close()
	c := testproc.Start(t, "die-inside", v.Name())
	c.Expect(t, "inside")
	c.Kill()
	if err := c.Wait(); !testproc.Killed(err) {
		t.Fatalf("helper: %v", err)
	}
	var seen pair
	err = v.Update(ctx, func(q *pair) { seen = *q; q.A, q.B = 2, 2 })
	if !errors.Is(err, sem.ErrOwnerDead) {
		t.Fatalf("Update after the holder died: %v, want ErrOwnerDead", err)
	}
	if seen != (pair{A: -1, B: 1}) {
		t.Fatalf("fn saw %+v, want the dead holder's half update", seen)
	}
	// The update was applied and the lock marked consistent.
	if err := v.Update(ctx, func(q *pair) { q.B++ }); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if got, _ := v.Load(ctx); got != (pair{A: 2, B: 3}) {
		t.Fatalf("value %+v", got)
	}
}

// An integer Value's update is installed by compare-and-swap: a holder
// killed inside Update leaves no trace, and lock-free Adds go on meanwhile.
func TestOwnerDiedInsideIntegerUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := value.Create[int64](segName(t), 10)
	must(t, err)
	defer v.Close()
	c := testproc.Start(t, "die-inside-int", v.Name())
	c.Expect(t, "inside")
	value.AtomicOf(v).Add(5) // lock-free: not blocked by the held lock
	c.Kill()
	if err := c.Wait(); !testproc.Killed(err) {
		t.Fatalf("helper: %v", err)
	}
	var seen int64
	err = v.Update(ctx, func(x *int64) { seen = *x; *x++ })
	if !errors.Is(err, sem.ErrOwnerDead) {
		t.Fatalf("Update after the holder died: %v, want ErrOwnerDead", err)
	}
	if seen != 15 {
		t.Fatalf("fn saw %d, want 15 (the dead update must not be installed)", seen)
	}
	if x, err := v.Load(ctx); x != 16 || err != nil {
		t.Fatalf("Load = %d, %v", x, err)
	}
	if err := v.Update(ctx, func(x *int64) { *x++ }); err != nil {
		t.Fatalf("second Update: %v", err)
	}
}

// An integer Update whose ctx ends while lock-free writers keep changing
// the value applies nothing, so its error is ctx's alone even when it took
// the lock over from a dead holder; the news of the death goes to the next
// locker, whose update is applied.
func TestOwnerDiedThenUpdateGivesUp(t *testing.T) {
	v, err := value.Create[int64](segName(t), 10)
	must(t, err)
	defer v.Close()
	c := testproc.Start(t, "die-inside-int", v.Name())
	c.Expect(t, "inside")
	c.Kill()
	if err := c.Wait(); !testproc.Killed(err) {
		t.Fatalf("helper: %v", err)
	}
	a := value.AtomicOf(v)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = v.Update(ctx, func(x *int64) {
		calls++
		a.Add(5) // a lock-free writer, always between the load and the swap
		cancel()
		*x = 1000
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, sem.ErrOwnerDead) {
		t.Fatalf("Update that gave up after a takeover: %v, want only context.Canceled", err)
	}
	if calls != 1 || a.Load() != 15 {
		t.Fatalf("%d calls, value %d; want 1 call, 15 (nothing installed)", calls, a.Load())
	}
	err = v.Update(context.Background(), func(x *int64) { *x++ })
	if !errors.Is(err, sem.ErrOwnerDead) {
		t.Fatalf("next Update: %v, want ErrOwnerDead (the death not yet reported with an applied update)", err)
	}
	if a.Load() != 16 {
		t.Fatalf("value %d, want 16", a.Load())
	}
	must(t, v.Update(context.Background(), func(x *int64) { *x++ }))
}

// A nil ctx means context.Background() everywhere, including the integer
// Update's retry loop (which checks ctx only after a failed swap).
func TestNilContext(t *testing.T) {
	var nilCtx context.Context
	v, err := value.Create[int64](segName(t), 1)
	must(t, err)
	defer v.Close()
	a := value.AtomicOf(v)
	calls := 0
	must(t, v.Update(nilCtx, func(x *int64) {
		if calls++; calls == 1 {
			a.Add(10) // forces a failed swap, hence a look at ctx
		}
		*x *= 2
	}))
	if calls != 2 || a.Load() != 22 {
		t.Fatalf("%d calls, value %d; want 2, 22", calls, a.Load())
	}
	must(t, v.Store(nilCtx, 3))
	if x, err := v.Load(nilCtx); x != 3 || err != nil {
		t.Fatalf("Load = %d, %v", x, err)
	}
	p, err := value.Create(segName(t, "-p"), pair{})
	must(t, err)
	defer p.Close()
	must(t, p.Update(nilCtx, func(q *pair) { q.A = 4 }))
	must(t, p.Store(nilCtx, pair{A: 5, B: 6}))
	if x, err := p.Load(nilCtx); x != (pair{A: 5, B: 6}) || err != nil {
		t.Fatalf("Load = %+v, %v", x, err)
	}
}

func TestOpenWithOtherType(t *testing.T) {
	v, err := value.Create[int64](segName(t), 42)
	must(t, err)
	defer v.Close()
	for _, typ := range []string{"float64", "int32", "pair"} {
		c := testproc.Start(t, "open-as", v.Name(), typ)
		line := c.Line(t)
		must(t, c.Wait())
		if !strings.HasPrefix(line, "true|") || !strings.Contains(line, "type mismatch") {
			t.Errorf("Open[%s] of a Value[int64]: %s", typ, line)
		}
		if !strings.HasPrefix(line, "true|true|") {
			t.Errorf("Open[%s] of a Value[int64]: not a *shm.MismatchError of the type: %s", typ, line)
		}
	}
	// A raw value is not a locked one, and an array is not a value.
	raw, err := value.CreateRaw[int64](segName(t, "-raw"), 1)
	must(t, err)
	defer raw.Close()
	if _, err := value.Open[int64](context.Background(), raw.Name()); !errors.Is(err, value.ErrKind) {
		t.Errorf("Open of a raw value: %v", err)
	} else {
		wantMismatch(t, err, "kind", value.ErrKind)
	}
	r2, err := value.OpenRaw[int64](context.Background(), v.Name())
	must(t, err)
	if r2.Load() != 42 {
		t.Errorf("RawValue over Value: %d", r2.Load())
	}
	must(t, r2.Close())
}

// Unsuitable types, each refused with the offending field named.
type (
	withString  struct{ S string }
	withSlice   struct{ B []byte }
	withMap     struct{ M map[int]int }
	withIface   struct{ E error }
	withChan    struct{ C chan int }
	withFunc    struct{ F func() }
	withPtr     struct{ P *int }
	withUintptr struct{ U uintptr }
	withUnsafe  struct{ U unsafe.Pointer }
	nested      struct {
		OK    int64
		Inner struct{ Names [2]string }
	}
	empty struct{}
)

func refused[T any](t *testing.T, want string) {
	t.Helper()
	ctx := context.Background()
	var zero T
	mem := make([]uint64, 64)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), 512)
	_, err1 := value.Create(segName(t), zero)
	_, err2 := value.Open[T](ctx, "nonexistent")
	_, err3 := value.Init(buf, zero)
	_, err4 := value.At[T](buf)
	_, err5 := value.CreateRaw(segName(t), zero)
	_, err6 := value.Size[T]()
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		if !errors.Is(err, value.ErrNotPlain) || !strings.Contains(err.Error(), want) {
			t.Errorf("%T: call %d: %v, want ErrNotPlain naming %q", zero, i, err, want)
		}
	}
}

func TestUnsuitableTypes(t *testing.T) {
	refused[string](t, "string: strings")
	refused[*int](t, "*int: pointers")
	refused[[]int](t, "[]int: slices")
	refused[withString](t, "value_test.withString.S: string")
	refused[withSlice](t, "value_test.withSlice.B: []uint8")
	refused[withMap](t, "value_test.withMap.M: map[int]int")
	refused[withIface](t, "value_test.withIface.E: error")
	refused[withChan](t, "value_test.withChan.C: chan int")
	refused[withFunc](t, "value_test.withFunc.F: func()")
	refused[withPtr](t, "value_test.withPtr.P: *int")
	refused[withUintptr](t, "value_test.withUintptr.U: uintptr")
	refused[withUnsafe](t, "value_test.withUnsafe.U: unsafe.Pointer")
	refused[nested](t, "value_test.nested.Inner.Names[0]: string")
	refused[[4]any](t, "[4]interface {}[0]: interface {}")
	refused[empty](t, "zero-size")
}

// wantMismatch checks that err is a *shm.MismatchError about what,
// unwrapping to sentinel, and returns it.
func wantMismatch(t *testing.T, err error, what string, sentinel error) *shm.MismatchError {
	t.Helper()
	var me *shm.MismatchError
	if !errors.As(err, &me) {
		t.Errorf("%v: not a *shm.MismatchError", err)
		return &shm.MismatchError{}
	}
	if me.What != what || me.Err != sentinel {
		t.Errorf("%v: MismatchError What %q Err %v, want %q, %v", err, me.What, me.Err, what, sentinel)
	}
	return me
}

// The offending field is a field of an exported error type, not only
// words in a message.
func TestNotPlainErrorPath(t *testing.T) {
	_, err := value.Create(segName(t), nested{})
	var npe *value.NotPlainError
	if !errors.As(err, &npe) {
		t.Fatalf("%v: not a *value.NotPlainError", err)
	}
	if npe.Path != "value_test.nested.Inner.Names[0]" || npe.Kind != "string" || npe.Type != reflect.TypeFor[nested]() {
		t.Fatalf("NotPlainError %+v", npe)
	}
	if _, err := value.Size[empty](); !errors.As(err, &npe) || npe.Path != "value_test.empty" {
		t.Fatalf("empty type: %v", err)
	}
}

func TestPlaced(t *testing.T) {
	ctx := context.Background()
	size, err := value.Size[pair]()
	must(t, err)
	if size != 128+16 {
		t.Fatalf("Size = %d", size)
	}
	// Two Values side by side in one raw segment, laid out at creation.
	seg, err := shm.Create(segName(t), 3*256, shm.WithInit(func(p []byte) error {
		if _, err := value.Init(p[:256], pair{A: 1}); err != nil {
			return err
		}
		if _, err := value.Init[int64](p[512:], 3); err != nil {
			return err
		}
		_, err := value.InitRaw[uint64](p[256:512], 9)
		return err
	}))
	must(t, err)
	defer seg.Close()
	v, err := value.At[pair](seg.Bytes()[:256])
	must(t, err)
	defer v.Close()
	if x, _ := v.Load(ctx); x.A != 1 {
		t.Fatalf("placed Load = %+v", x)
	}
	r, err := value.RawAt[uint64](seg.Bytes()[256:])
	must(t, err)
	if r.Load() != 9 {
		t.Fatalf("placed raw Load = %d", r.Load())
	}
	if _, err := value.At[uint64](seg.Bytes()[256:]); !errors.Is(err, value.ErrKind) {
		t.Fatalf("At over a raw value: %v", err)
	} else {
		wantMismatch(t, err, "kind", value.ErrKind)
	}
	if _, err := value.At[int64](seg.Bytes()[:256]); !errors.Is(err, value.ErrType) {
		t.Fatalf("At with another type: %v", err)
	} else {
		wantMismatch(t, err, "type", value.ErrType)
	}
	// float64 has int64's size and alignment: only the fingerprint tells
	// them apart.
	if _, err := value.At[float64](seg.Bytes()[512:]); !errors.Is(err, value.ErrType) {
		t.Fatalf("At[float64] over a Value[int64]: %v", err)
	} else {
		me := wantMismatch(t, err, "type", value.ErrType)
		want, ok1 := me.Want.(shm.TypeDesc)
		got, ok2 := me.Got.(shm.TypeDesc)
		if !ok1 || !ok2 || want.Size != 8 || want.Align != 8 || got.Size != 8 || got.Align != 8 || want.Fingerprint == got.Fingerprint {
			t.Fatalf("At[float64] over a Value[int64]: want %v, got %v", me.Want, me.Got)
		}
	}
	if w, err := value.At[int64](seg.Bytes()[512:]); err != nil {
		t.Fatalf("At[int64] over the Value[int64]: %v", err)
	} else if x, _ := w.Load(ctx); x != 3 {
		t.Fatalf("placed Value[int64] = %d", x)
	} else {
		must(t, w.Close())
	}
	if _, err := value.At[pair](seg.Bytes()[8:]); !errors.Is(err, value.ErrCorrupt) {
		t.Fatalf("At at a wrong offset: %v", err)
	}
	if _, err := value.At[pair](seg.Bytes()[:200:200][:100]); !errors.Is(err, value.ErrCorrupt) {
		t.Fatalf("At over short memory: %v", err)
	}
	if _, err := value.Init(make([]byte, 64), pair{}); !errors.Is(err, value.ErrBadMemory) {
		t.Fatalf("Init into short memory: %v", err)
	}
}

// Corruption of a named value's payload is reported, not trusted.
func TestCorruptPayload(t *testing.T) {
	name := segName(t)
	v, err := value.Create[int64](name, 1)
	must(t, err)
	defer v.Close()
	seg, err := shm.Open(context.Background(), name)
	must(t, err)
	defer seg.Close()
	b := seg.Bytes()
	for _, off := range []int{0, 9, 16, 32, 64 + 8} {
		b[off] ^= 0x55
		want := value.ErrCorrupt
		if off == 9 {
			want = value.ErrVersion // the version field
		}
		if _, err := value.Open[int64](context.Background(), name); !errors.Is(err, want) {
			t.Errorf("byte %d flipped: Open: %v", off, err)
		}
		b[off] ^= 0x55
	}
	w, err := value.Open[int64](context.Background(), name)
	must(t, err)
	must(t, w.Close())
}

// The lock-free paths (and, uncontended, the locked ones) do not allocate.
func TestNoAllocs(t *testing.T) {
	ctx := context.Background()
	v, err := value.Create[int64](segName(t), 0)
	must(t, err)
	defer v.Close()
	p, err := value.Create(segName(t, "-p"), pair{})
	must(t, err)
	defer p.Close()
	a := value.AtomicOf(v)
	inc := func(x *int64) { *x++ }
	incPair := func(q *pair) { q.A++ }
	for name, f := range map[string]func(){
		"Atomic.Load":    func() { _ = a.Load() },
		"Atomic.Store":   func() { a.Store(3) },
		"Atomic.Add":     func() { a.Add(1) },
		"Atomic.Swap":    func() { a.Swap(1) },
		"Atomic.CAS":     func() { a.CompareAndSwap(1, 2) },
		"Value.Load":     func() { _, _ = v.Load(ctx) },
		"Value.Store":    func() { _ = v.Store(ctx, 1) },
		"Value.Update":   func() { _ = v.Update(ctx, inc) },
		"struct Update":  func() { _ = p.Update(ctx, incPair) },
		"struct Load":    func() { _, _ = p.Load(ctx) },
		"struct Pointer": func() { p.Pointer().B++ },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

// Close waits for an Update in flight, so the lock is released, not left
// held in shared memory by this (live) process.
func TestCloseWaitsForUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := value.Create(segName(t), pair{})
	must(t, err)
	w, err := value.Open[pair](ctx, v.Name())
	must(t, err)
	defer w.Close()
	entered, release, updated := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		updated <- v.Update(ctx, func(q *pair) {
			close(entered)
			<-release
			q.A = 7
		})
	}()
	<-entered
	closed := make(chan error)
	go func() { closed <- v.Close() }()
	// Close must not return while fn runs. (A bounded negative check: the
	// passing path does not depend on its timing.)
	select {
	case err := <-closed:
		t.Fatalf("Close returned while an Update was in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	must(t, <-updated)
	must(t, <-closed)
	if err := w.Update(ctx, func(q *pair) { q.B = 1 }); err != nil {
		t.Fatalf("Update through another handle after Close: %v", err)
	}
	if got, _ := w.Load(ctx); got != (pair{A: 7, B: 1}) {
		t.Fatalf("value %+v", got)
	}
	if err := v.Close(); !errors.Is(err, value.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}
