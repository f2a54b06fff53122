//go:build linux

package array_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
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

type pair struct {
	A int64
	B int32
	_ int32
}

// Test helpers shared with the other object package (objecttest).
func segName(t testing.TB, suffix ...string) string {
	return objecttest.SegName(t, "atest", suffix...)
}

func newGate(t *testing.T) *objecttest.Gate { return objecttest.NewGate(t, segName(t, "-gate")) }

var (
	must     = objecttest.Must
	waitGate = objecttest.WaitGate
)

const elems = 16

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

func init() {
	// count does M Updates and M AddAts on random elements of an
	// Array[int64] and M Updates on random elements of the first two of
	// an Array[pair], and prints what it added to each element. The
	// pair's Update counts the processes inside its fn in an Array[int32]
	// of one element and fails if it is ever not exactly one.
	testproc.Register("count", func(args []string) int {
		ctx := context.Background()
		m, _ := strconv.Atoi(args[2])
		seed, _ := strconv.Atoi(args[3])
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		n, err := array.Open[int64](ctx, args[0])
		if err != nil {
			return fail(err)
		}
		p, err := array.Open[pair](ctx, args[1])
		if err != nil {
			return fail(err)
		}
		inside, err := array.Open[int32](ctx, args[5])
		if err != nil {
			return fail(err)
		}
		in := array.AtomicOf(inside)
		overlaps := 0
		if n.Len() != elems || p.Len() != elems {
			return fail(fmt.Errorf("lengths %d, %d", n.Len(), p.Len()))
		}
		if err := waitGate(ctx, args[4]); err != nil {
			return fail(err)
		}
		at := array.AtomicOf(n)
		var added, pairs [elems]int64
		for range m {
			i, d := r.IntN(elems), int64(1+r.IntN(5))
			if err := n.Update(ctx, i, func(x *int64) { *x += d }); err != nil {
				return fail(err)
			}
			added[i] += d
			i, d = r.IntN(elems), int64(1+r.IntN(5))
			at.AddAt(i, d)
			added[i] += d
			// Two elements only, and a read, a yield and a write: a wide
			// window, so that two processes in fn at once (a missing
			// lock) collide on one element and are seen inside together.
			i = r.IntN(2)
			if err := p.Update(ctx, i, func(q *pair) {
				if in.AddAt(0, 1) != 1 {
					overlaps++
				}
				a := q.A
				runtime.Gosched()
				q.A = a + 1
				q.B--
				in.AddAt(0, -1)
			}); err != nil {
				return fail(err)
			}
			pairs[i]++
		}
		if overlaps != 0 {
			return fail(fmt.Errorf("another process was inside the pair's Update %d times", overlaps))
		}
		testproc.Printf("added %s", join(added[:]))
		testproc.Printf("pairs %s", join(pairs[:]))
		return 0
	})

	// count-ack alternates Update and AddAt of 1 on random elements of an
	// Array[int64], M of them (for ever if M is 0), and after each one
	// stores the number applied so far into its own element of a second
	// Array[int64], so that a process killed at any moment has
	// acknowledged all its updates but at most one. An Update that took
	// the lock over from a dead holder (sem.ErrOwnerDead) was applied; the
	// helper prints how many it made when done.
	testproc.Register("count-ack", func(args []string) int {
		ctx := context.Background()
		n, err := array.Open[int64](ctx, args[0])
		if err != nil {
			return fail(err)
		}
		acks, err := array.Open[int64](ctx, args[1])
		if err != nil {
			return fail(err)
		}
		id, _ := strconv.Atoi(args[2])
		m, _ := strconv.Atoi(args[3])
		r := rand.New(rand.NewPCG(uint64(id), 11))
		if err := waitGate(ctx, args[4]); err != nil {
			return fail(err)
		}
		at := array.AtomicOf(n)
		tookOver := 0
		for k := 1; m == 0 || k <= m; k++ {
			i := r.IntN(n.Len())
			if k%2 == 0 {
				at.AddAt(i, 1)
			} else if err := n.Update(ctx, i, func(x *int64) { *x++ }); errors.Is(err, sem.ErrOwnerDead) {
				tookOver++
			} else if err != nil {
				return fail(err)
			}
			acks.Set(id, int64(k))
		}
		testproc.Printf("done %d", tookOver)
		return 0
	})

	// die-inside blocks inside Update after a half-done write, to be killed.
	testproc.Register("die-inside", func(args []string) int {
		ctx := context.Background()
		a, err := array.Open[pair](ctx, args[0])
		if err != nil {
			return fail(err)
		}
		_ = a.Update(ctx, 3, func(q *pair) {
			q.A = -1
			testproc.Printf("inside")
			time.Sleep(time.Hour) // killed by the parent long before
		})
		return 1
	})

	// open-as opens an Array[int32] as another type and prints the error.
	testproc.Register("open-as", func(args []string) int {
		var err error
		ctx := context.Background()
		switch args[1] {
		case "uint32":
			_, err = array.Open[uint32](ctx, args[0])
		case "int64":
			_, err = array.Open[int64](ctx, args[0])
		case "[2]int16":
			_, err = array.Open[[2]int16](ctx, args[0])
		}
		var me *shm.MismatchError
		typed := errors.As(err, &me) && me.What == "type" && me.Err == shm.ErrType
		testproc.Printf("%v|%v|%v", errors.Is(err, array.ErrType), typed, err)
		return 0
	})
}

func join(xs []int64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, " ")
}

func parse(t *testing.T, line, prefix string) []int64 {
	t.Helper()
	f := strings.Fields(strings.TrimPrefix(line, prefix+" "))
	if !strings.HasPrefix(line, prefix+" ") || len(f) != elems {
		t.Fatalf("bad line %q", line)
	}
	out := make([]int64, len(f))
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		must(t, err)
		out[i] = v
	}
	return out
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
	n, err := array.Create[int64](segName(t, "-n"), elems)
	must(t, err)
	defer n.Close()
	p, err := array.Create[pair](segName(t, "-p"), elems)
	must(t, err)
	defer p.Close()
	inside, err := array.Create[int32](segName(t, "-in"), 1)
	must(t, err)
	defer inside.Close()
	gate := newGate(t)
	var cs []*testproc.Proc
	for i := range procs {
		cs = append(cs, testproc.Start(t, "count", n.Name(), p.Name(), strconv.Itoa(m), strconv.Itoa(i), gate.Name, inside.Name()))
	}
	gate.Open(t, cs)
	var want, wantPairs [elems]int64
	for _, c := range cs {
		for i, v := range parse(t, c.Line(t), "added") {
			want[i] += v
		}
		for i, v := range parse(t, c.Line(t), "pairs") {
			wantPairs[i] += v
		}
		must(t, c.Wait())
	}
	for i := range elems {
		if got := n.At(i); got != want[i] {
			t.Errorf("element %d = %d, want %d", i, got, want[i])
		}
		if got := p.At(i); got.A != wantPairs[i] || int64(got.B) != -wantPairs[i] {
			t.Errorf("pair %d = %+v, want A=%d B=%d", i, got, wantPairs[i], -wantPairs[i])
		}
	}
}

// One of several processes counting into random elements is killed with
// SIGKILL at a random moment (holding the lock or not): the others finish,
// and the sum of the elements is what every process acknowledged, plus at
// most the killed process's one unacknowledged update.
func TestKillCounterAtRandom(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	objecttest.KillCounter(t, "atest", rounds, 4000, func(t *testing.T, round int) objecttest.Counter {
		n, err := array.Create[int64](segName(t, "-"+strconv.Itoa(round), "-n"), 4)
		must(t, err)
		t.Cleanup(func() { n.Close() })
		return objecttest.Counter{
			Name: n.Name(),
			Total: func(ctx context.Context) int64 {
				buf := make([]int64, n.Len())
				if _, err := n.CopyOut(ctx, buf, 0); err != nil && !errors.Is(err, sem.ErrOwnerDead) {
					t.Fatalf("round %d: CopyOut: %v", round, err)
				}
				var got int64
				for _, x := range buf {
					got += x
				}
				return got
			},
		}
	})
}

func TestBasics(t *testing.T) {
	ctx := context.Background()
	a, err := array.CreateFrom(segName(t), []int32{0, 1, 2})
	must(t, err)
	defer a.Close()
	b, err := array.Open[int32](ctx, a.Name())
	must(t, err)
	defer b.Close()
	if b.Len() != 3 || b.At(2) != 2 {
		t.Fatalf("Len %d At(2) %d", b.Len(), b.At(2))
	}
	a.Set(0, 10)
	must(t, b.Update(ctx, 1, func(x *int32) { *x *= 7 }))
	if s := a.Slice(); s[0] != 10 || s[1] != 7 || len(s) != 3 {
		t.Fatalf("Slice = %v", s)
	}
	b.Slice()[2] = 5
	out := make([]int32, 5)
	n, err := a.CopyOut(ctx, out, 0)
	must(t, err)
	if n != 3 || out[0] != 10 || out[1] != 7 || out[2] != 5 {
		t.Fatalf("CopyOut = %d %v", n, out)
	}
	n, err = a.CopyIn(ctx, 1, []int32{8, 9, 10})
	must(t, err)
	if n != 2 || b.At(1) != 8 || b.At(2) != 9 {
		t.Fatalf("CopyIn = %d, %v", n, b.Slice())
	}
	must(t, a.WithLock(ctx, func(s []int32) {
		for i := range s {
			s[i] = -s[i]
		}
	}))
	at := array.AtomicOf(b)
	if at.Len() != 3 || at.LoadAt(0) != -10 || at.AddAt(0, 1) != -9 || at.SwapAt(0, 4) != -9 ||
		!at.CompareAndSwapAt(0, 4, 5) || at.CompareAndSwapAt(0, 4, 6) {
		t.Fatal("atomic sequence wrong")
	}
	at.StoreAt(2, 100)
	if a.At(2) != 100 {
		t.Fatal("StoreAt not seen")
	}

	// Index errors panic like slices.
	for _, f := range []func(){
		func() { a.At(3) }, func() { a.Set(-1, 0) }, func() { at.AddAt(3, 1) },
		func() { _ = a.Update(ctx, 5, func(*int32) {}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("out-of-range index did not panic")
				}
			}()
			f()
		}()
	}

	if _, err := array.Create[int32](segName(t, "-neg"), -1); !errors.Is(err, shm.ErrInvalidSize) {
		t.Fatalf("negative length: %v", err)
	}
	z, err := array.Create[int32](segName(t, "-zero"), 0)
	must(t, err)
	if z.Len() != 0 || len(z.Slice()) != 0 {
		t.Fatal("empty array not empty")
	}
	must(t, z.Close())

	c, created, err := array.OpenOrCreate[int32](ctx, a.Name(), 3)
	must(t, err)
	if created || c.At(0) != 5 {
		t.Fatal("OpenOrCreate did not open")
	}
	must(t, c.Close())
	if _, _, err := array.OpenOrCreate[int32](ctx, a.Name(), 4); !errors.Is(err, shm.ErrSize) {
		t.Fatalf("OpenOrCreate with another length: %v", err)
	}

	must(t, a.Close())
	if err := a.WithLock(ctx, func([]int32) {}); !errors.Is(err, array.ErrClosed) {
		t.Fatalf("WithLock after Close: %v", err)
	}
	_ = a.Slice()[0] // still safe: private zeroed memory
}

func TestOwnerDiedInsideUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := array.Create[pair](segName(t), 8)
	must(t, err)
	defer a.Close()
	c := testproc.Start(t, "die-inside", a.Name())
	c.Expect(t, "inside")
	c.Kill()
	if err := c.Wait(); !testproc.Killed(err) {
		t.Fatalf("helper: %v", err)
	}
	var seen pair
	err = a.Update(ctx, 3, func(q *pair) { seen = *q; q.A = 2 })
	if !errors.Is(err, sem.ErrOwnerDead) {
		t.Fatalf("Update after the holder died: %v, want ErrOwnerDead", err)
	}
	if seen != (pair{A: -1}) {
		t.Fatalf("fn saw %+v, want the dead holder's half update {A:-1 B:0}", seen)
	}
	if err := a.WithLock(ctx, func(s []pair) { s[3].B = 1 }); err != nil {
		t.Fatalf("WithLock after repair: %v", err)
	}
	if got := a.At(3); got.A != 2 || got.B != 1 {
		t.Fatalf("element %+v", got)
	}
}

// A nil ctx means context.Background() everywhere, including the integer
// Update's retry loop (which checks ctx only after a failed swap).
func TestNilContext(t *testing.T) {
	var nilCtx context.Context
	a, err := array.CreateFrom(segName(t), []int64{1, 2})
	must(t, err)
	defer a.Close()
	at := array.AtomicOf(a)
	calls := 0
	must(t, a.Update(nilCtx, 1, func(x *int64) {
		if calls++; calls == 1 {
			at.AddAt(1, 10) // forces a failed swap, hence a look at ctx
		}
		*x *= 2
	}))
	if calls != 2 || a.At(1) != 24 {
		t.Fatalf("%d calls, element %d; want 2, 24", calls, a.At(1))
	}
	if n, err := a.CopyIn(nilCtx, 0, []int64{7}); n != 1 || err != nil {
		t.Fatalf("CopyIn = %d, %v", n, err)
	}
	buf := make([]int64, 2)
	if n, err := a.CopyOut(nilCtx, buf, 0); n != 2 || err != nil || buf[0] != 7 || buf[1] != 24 {
		t.Fatalf("CopyOut = %d, %v, %v", n, err, buf)
	}
	must(t, a.WithLock(nilCtx, func(s []int64) { s[0]++ }))
	p, err := array.Create[pair](segName(t, "-p"), 1)
	must(t, err)
	defer p.Close()
	must(t, p.Update(nilCtx, 0, func(q *pair) { q.A = 4 }))
	if a.At(0) != 8 || p.At(0).A != 4 {
		t.Fatalf("elements %d, %+v", a.At(0), p.At(0))
	}
}

func TestOpenWithOtherType(t *testing.T) {
	a, err := array.Create[int32](segName(t), 4)
	must(t, err)
	defer a.Close()
	for _, typ := range []string{"uint32", "int64", "[2]int16"} {
		c := testproc.Start(t, "open-as", a.Name(), typ)
		line := c.Line(t)
		must(t, c.Wait())
		if !strings.HasPrefix(line, "true|") || !strings.Contains(line, "type mismatch") {
			t.Errorf("Open[%s] of an Array[int32]: %s", typ, line)
		}
		if !strings.HasPrefix(line, "true|true|") {
			t.Errorf("Open[%s] of an Array[int32]: not a *shm.MismatchError of the type: %s", typ, line)
		}
	}
	raw, err := array.CreateRaw[int32](segName(t, "-raw"), 4)
	must(t, err)
	defer raw.Close()
	if _, err := array.Open[int32](context.Background(), raw.Name()); !errors.Is(err, array.ErrKind) {
		t.Errorf("Open of a raw array: %v", err)
	} else {
		wantMismatch(t, err, "kind", array.ErrKind)
	}
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

type (
	withString struct{ S [2]string }
	withPtr    struct {
		OK    [3]float64
		Inner struct{ P *int }
	}
)

func refused[T any](t *testing.T, want string) {
	t.Helper()
	mem := make([]uint64, 64)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), 512)
	_, err1 := array.Create[T](segName(t), 1)
	_, err2 := array.Open[T](context.Background(), "nonexistent")
	_, err3 := array.Init[T](buf, 1)
	_, err4 := array.At[T](buf)
	_, err5 := array.CreateRawFrom(segName(t), []T{})
	_, err6 := array.Size[T](1)
	for i, err := range []error{err1, err2, err3, err4, err5, err6} {
		if !errors.Is(err, array.ErrNotPlain) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: call %d: %v, want ErrNotPlain naming %q", want, i, err, want)
		}
	}
}

func TestUnsuitableTypes(t *testing.T) {
	refused[string](t, "string")
	refused[withString](t, "array_test.withString.S[0]: string")
	refused[withPtr](t, "array_test.withPtr.Inner.P: *int")
	refused[map[int]int](t, "map[int]int")
	refused[chan int](t, "chan int")
	refused[func()](t, "func()")
	refused[any](t, "interface {}")
	refused[[]byte](t, "[]uint8")
	refused[uintptr](t, "uintptr")
	refused[unsafe.Pointer](t, "unsafe.Pointer")
	refused[struct{}](t, "zero-size")
}

// The offending field is a field of an exported error type, not only
// words in a message.
func TestNotPlainErrorPath(t *testing.T) {
	_, err := array.Create[withPtr](segName(t), 2)
	var npe *array.NotPlainError
	if !errors.As(err, &npe) {
		t.Fatalf("%v: not a *array.NotPlainError", err)
	}
	if npe.Path != "array_test.withPtr.Inner.P" || npe.Kind != "*int" {
		t.Fatalf("NotPlainError %+v", npe)
	}
	mem := objecttest.Aligned(make([]byte, 512))
	if _, err := array.At[[2]withString](mem); !errors.As(err, &npe) || npe.Path != "[2]array_test.withString[0].S[0]" {
		t.Fatalf("At[[2]withString]: %v", err)
	}
}

func TestPlacedAndRaw(t *testing.T) {
	size, err := array.Size[uint64](10)
	must(t, err)
	if size != 128+80 {
		t.Fatalf("Size = %d", size)
	}
	seg, err := shm.Create(segName(t), 512, shm.WithInit(func(p []byte) error {
		a, err := array.Init[uint64](p[:256], 10)
		if err != nil {
			return err
		}
		a.Set(9, 99)
		r, err := array.InitRaw[int16](p[256:], 3)
		if err != nil {
			return err
		}
		r.Set(1, -5)
		return nil
	}))
	must(t, err)
	defer seg.Close()
	a, err := array.At[uint64](seg.Bytes()[:256])
	must(t, err)
	defer a.Close()
	if a.Len() != 10 || a.At(9) != 99 {
		t.Fatalf("placed array: %v", a.Slice())
	}
	r, err := array.RawAt[int16](seg.Bytes()[256:])
	must(t, err)
	if r.Len() != 3 || r.At(1) != -5 || r.Slice()[1] != -5 {
		t.Fatal("placed raw array wrong")
	}
	r.Set(0, 1)
	if _, err := array.At[int16](seg.Bytes()[256:]); !errors.Is(err, array.ErrKind) {
		t.Fatalf("At over a raw array: %v", err)
	} else {
		wantMismatch(t, err, "kind", array.ErrKind)
	}
	// int64 has uint64's size and alignment: only the fingerprint differs.
	if _, err := array.At[int64](seg.Bytes()[:256]); !errors.Is(err, array.ErrType) {
		t.Fatalf("At[int64] over an Array[uint64]: %v", err)
	} else {
		me := wantMismatch(t, err, "type", array.ErrType)
		want, ok1 := me.Want.(shm.TypeDesc)
		got, ok2 := me.Got.(shm.TypeDesc)
		if !ok1 || !ok2 || want.Size != got.Size || want.Align != got.Align || want.Fingerprint == got.Fingerprint {
			t.Fatalf("At[int64] over an Array[uint64]: want %v, got %v", me.Want, me.Got)
		}
	}
	if _, err := value.At[uint64](seg.Bytes()[:256]); !errors.Is(err, array.ErrKind) {
		t.Fatalf("value.At over an array: %v", err)
	} else if me := wantMismatch(t, err, "kind", array.ErrKind); me.Want != shm.KindValue || me.Got != shm.KindArray {
		t.Fatalf("value.At over an array: want %v, got %v", me.Want, me.Got)
	}
	if _, err := array.At[uint64](seg.Bytes()[:200]); !errors.Is(err, array.ErrCorrupt) {
		t.Fatalf("At over truncated memory: %v", err)
	}
	// A Raw view of a locked array ignores the lock.
	ra, err := array.RawAt[uint64](seg.Bytes()[:256])
	must(t, err)
	if ra.At(9) != 99 {
		t.Fatal("raw view of array wrong")
	}

	named, err := array.CreateRawFrom(segName(t, "-named"), []float32{1, 2})
	must(t, err)
	defer named.Close()
	o, err := array.OpenRaw[float32](context.Background(), named.Name())
	must(t, err)
	if o.At(1) != 2 {
		t.Fatal("named raw array wrong")
	}
	must(t, o.Close())
}

// A corrupted header byte gives the error of the first check that reads
// it, exactly: ErrVersion (an unknown version), ErrCorrupt (bad magic, checksum, flags, alignment,
// a length that does not fit the segment, a bad lock), or ErrType for a
// self-consistent header of another element type; never another sentinel.
func TestCorruptLength(t *testing.T) {
	name := segName(t)
	a, err := array.Create[int64](name, 4)
	must(t, err)
	defer a.Close()
	seg, err := shm.Open(context.Background(), name)
	must(t, err)
	defer seg.Close()
	b := seg.Bytes()
	sentinels := []error{array.ErrCorrupt, array.ErrType, array.ErrKind, array.ErrVersion}
	check := func(off int, fixed bool, want error, detail string) {
		t.Helper()
		_, err := array.Open[int64](context.Background(), name)
		if !errors.Is(err, want) || !strings.Contains(fmt.Sprint(err), detail) {
			t.Errorf("byte %d flipped (checksum fixed: %v): %v, want %v (%s)", off, fixed, err, want, detail)
		}
		for _, other := range sentinels {
			if other != want && errors.Is(err, other) {
				t.Errorf("byte %d flipped (checksum fixed: %v): %v also matches %v", off, fixed, err, other)
			}
		}
	}
	// A flipped byte of the header fails the first check that reads it:
	// the magic, the version, else the checksum; the mutex is validated
	// by sem.
	for _, tc := range []struct {
		off    int
		detail string
	}{
		{0, "bad magic"}, {8, "unknown version"}, {12, "checksum"}, {16, "checksum"}, {20, "checksum"},
		{24, "checksum"}, {32, "checksum"}, {40, "checksum"}, {72, "mutex"},
	} {
		want := array.ErrCorrupt
		if tc.off == 8 {
			want = array.ErrVersion
		}
		b[tc.off] ^= 0x10
		check(tc.off, false, want, tc.detail)
		b[tc.off] ^= 0x10
	}
	// With the checksum recomputed, as a hostile peer would, each field
	// fails its own check (0x10 flipped: flags 0x11, size 24, align 24,
	// length 20).
	for _, tc := range []struct {
		off    int
		want   error
		detail string
	}{
		{8, array.ErrVersion, "unknown version"},
		{12, array.ErrCorrupt, "unknown flags"},
		{16, array.ErrType, "type mismatch"},
		{20, array.ErrCorrupt, "impossible element size"},
		{24, array.ErrType, "type mismatch"},
		{32, array.ErrCorrupt, "do not fit"},
	} {
		b[tc.off] ^= 0x10
		objecttest.FixChecksum(b)
		check(tc.off, true, tc.want, tc.detail)
		b[tc.off] ^= 0x10
		objecttest.FixChecksum(b)
	}
	o, err := array.Open[int64](context.Background(), name)
	must(t, err)
	must(t, o.Close())
}

// The lock-free paths (and, uncontended, the locked ones) do not allocate.
func TestNoAllocs(t *testing.T) {
	ctx := context.Background()
	a, err := array.Create[uint32](segName(t), 8)
	must(t, err)
	defer a.Close()
	p, err := array.Create[pair](segName(t, "-p"), 8)
	must(t, err)
	defer p.Close()
	at := array.AtomicOf(a)
	inc := func(x *uint32) { *x++ }
	buf := make([]pair, 8)
	for name, f := range map[string]func(){
		"At":         func() { _ = a.At(3) },
		"Set":        func() { a.Set(3, 1) },
		"AddAt":      func() { at.AddAt(2, 1) },
		"CAS":        func() { at.CompareAndSwapAt(2, 1, 2) },
		"Slice":      func() { a.Slice()[1]++ },
		"Update":     func() { _ = a.Update(ctx, 1, inc) },
		"struct At":  func() { _ = p.At(1) },
		"struct Set": func() { p.Set(1, pair{A: 1}) },
		"CopyOut":    func() { _, _ = p.CopyOut(ctx, buf, 0) },
		"WithLock":   func() { _ = p.WithLock(ctx, func(s []pair) { s[0].A++ }) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times", name, n)
		}
	}
}

// CopyIn and CopyOut of integer elements copy element by element with
// atomics; they still behave like the built-in copy, overlap included.
func TestBulkCopyOverlap(t *testing.T) {
	ctx := context.Background()
	a, err := array.CreateFrom(segName(t), []uint32{0, 1, 2, 3, 4, 5})
	must(t, err)
	defer a.Close()
	if n, err := a.CopyIn(ctx, 2, a.Slice()); n != 4 || err != nil {
		t.Fatalf("CopyIn = %d, %v", n, err)
	}
	if got := fmt.Sprint(a.Slice()); got != "[0 1 0 1 2 3]" {
		t.Fatalf("after an overlapping CopyIn: %s", got)
	}
	if n, err := a.CopyOut(ctx, a.Slice(), 1); n != 5 || err != nil {
		t.Fatalf("CopyOut = %d, %v", n, err)
	}
	if got := fmt.Sprint(a.Slice()); got != "[1 0 1 2 3 3]" {
		t.Fatalf("after an overlapping CopyOut: %s", got)
	}
}
