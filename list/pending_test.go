package list

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/internal/testproc"
)

// A list reader that loaded the length before a Pop may find the popped
// slot rewritten by the next Append before that Append's commit. These
// tests put a Pop and an uncommitted Append exactly between a reader's
// length load and its copy (kv.Hook's reader points) and check that the
// reader never returns the uncommitted element.

func tenElements(t *testing.T, l *Bytes) [][]byte {
	t.Helper()
	var want [][]byte
	for i := range 10 {
		v := fmt.Appendf(nil, "e%d", i)
		if _, err := l.Append(context.Background(), v); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	return want
}

// read returns what a reader sees of the list: all elements (Range), or
// element 9 alone (Get).
func read(l *Bytes, how string) ([][]byte, error) {
	if how == "get" {
		v, err := l.AppendGet(make([]byte, 0, 64), 9) // one copy: room for it
		if err != nil {
			return nil, err
		}
		return [][]byte{v}, nil
	}
	var got [][]byte
	err := l.Range(func(_ int, v []byte) bool {
		got = append(got, v)
		return true
	})
	return got, err
}

func TestReadSkipsUncommittedAppend(t *testing.T) {
	for _, how := range []string{"range", "get"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			l, err := CreateAnonymousBytes()
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			want := tenElements(t, l)
			atSlot, release := make(chan struct{}), make(chan struct{})
			writer := make(chan error, 1)
			var fired atomic.Bool
			kv.Hook = func(p string) {
				switch p {
				case "read-length":
					if !fired.CompareAndSwap(false, true) {
						return
					}
					go func() {
						if _, err := l.Pop(ctx); err != nil {
							writer <- err
							close(atSlot)
							return
						}
						_, err := l.Append(ctx, []byte("pending"))
						writer <- err
					}()
					<-atSlot
				case "append-slot":
					close(atSlot)
					<-release
				}
			}
			got, err := read(l, how)
			close(release)
			werr := <-writer
			kv.Hook = nil
			if werr != nil {
				t.Fatal(werr)
			}
			switch how {
			case "range":
				if err != nil || !slices.EqualFunc(got, want[:9], slices.Equal) {
					t.Fatalf("range during an uncommitted append: %q, %v; want %q", got, err, want[:9])
				}
			case "get":
				if !errors.Is(err, ErrIndex) {
					t.Fatalf("get(9) during an uncommitted append: %q, %v; want ErrIndex", got, err)
				}
			}
			got, err = read(l, "range")
			if want := append(want[:9], []byte("pending")); err != nil || !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("after the append: %q, %v; want %q", got, err, want)
			}
		})
	}
}

func init() {
	testproc.Register("list-append-die", func(args []string) int {
		ctx := context.Background()
		l, err := OpenBytes(ctx, args[0])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		kv.Hook = func(p string) {
			if p == "append-slot" {
				testproc.Printf("at %s", p)
				select {}
			}
		}
		if _, err := l.Pop(ctx); err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		_, err = l.Append(ctx, []byte("never"))
		testproc.Printf("append returned %v", err)
		return 1
	})
}

// TestReadSkipsDeadAppend: the element a killed writer stored past the
// length is copied by a reader, and the next writer appends another in
// its slot before the reader checks the length again. The length covers
// the slot by then, but the record copied was never committed: the
// repair's new descriptor generation must send the reader round again.
func TestReadSkipsDeadAppend(t *testing.T) {
	for _, how := range []string{"range", "get"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("test-list-dead-append-%d", os.Getpid())
			l, err := CreateBytes(name)
			if err != nil {
				t.Fatal(err)
			}
			defer Unlink(name)
			defer l.Close()
			want := append(tenElements(t, l)[:9], []byte("later"))
			r0 := kv.Repairs.Load()
			var steps atomic.Int32
			var herr error
			kv.Hook = func(p string) {
				switch {
				case p == "read-length" && steps.CompareAndSwap(0, 1):
					w := testproc.Start(t, "list-append-die", name)
					if line := w.Line(t); line != "at append-slot" {
						herr = fmt.Errorf("writer: %s", line)
					}
					w.Kill()
					if err := w.Wait(); !testproc.Killed(err) {
						herr = fmt.Errorf("writer: %v", err)
					}
				case p == "read-copied" && steps.CompareAndSwap(1, 2):
					if _, err := l.Append(ctx, []byte("later")); err != nil {
						herr = err
					}
				}
			}
			got, err := read(l, how)
			kv.Hook = nil
			if herr != nil {
				t.Fatal(herr)
			}
			if steps.Load() != 2 {
				t.Fatalf("the reader's hooks ran to step %d, want 2", steps.Load())
			}
			if r := kv.Repairs.Load() - r0; r != 1 {
				t.Fatalf("%d repairs, want 1", r)
			}
			if how == "get" {
				want = want[9:]
			}
			if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("%s: %q, %v; want %q (never: the dead writer's uncommitted element)", how, got, err, want)
			}
		})
	}
}

// TestRangeUnderSteadyPops: a long Range while a writer pops and appends
// the last element without pause ends (a Pop does not send the reader
// round again) and returns every untouched element as it was.
func TestRangeUnderSteadyPops(t *testing.T) {
	ctx := context.Background()
	l, err := CreateAnonymousBytes()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 20000
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = fmt.Appendf(nil, "e%d", i)
	}
	if _, err := l.Append(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	writer := make(chan error, 1)
	go func() {
		for k := 0; ; k++ {
			select {
			case <-stop:
				writer <- nil
				return
			default:
			}
			if _, err := l.Pop(ctx); err != nil {
				writer <- err
				return
			}
			if _, err := l.Append(ctx, fmt.Appendf(nil, "w%d", k)); err != nil {
				writer <- err
				return
			}
		}
	}()
	for range 5 {
		got, err := read(l, "range")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < n-1 || len(got) > n {
			t.Fatalf("%d elements, want %d or %d", len(got), n-1, n)
		}
		for i := range n - 1 {
			if !slices.Equal(got[i], batch[i]) {
				t.Fatalf("element %d: %q, want %q", i, got[i], batch[i])
			}
		}
	}
	close(stop)
	if err := <-writer; err != nil {
		t.Fatal(err)
	}
}
