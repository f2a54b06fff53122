package ring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/shm"
)

type point struct {
	X, Y int64
	Tag  [4]byte
	W    float64
}

type other struct {
	X, Y int64
	Tag  [4]byte
	V    float64 // same layout, another field name
}

func init() {
	// typed-consumer: sum the points of a Typed[point] on fd 3 until EOF.
	testproc.Register("typed-consumer", func(args []string) int {
		q, err := OpenFile(context.Background(), os.NewFile(3, "queue"))
		if err != nil {
			return fail("open: %v", err)
		}
		if _, err := NewTyped[other](q); !errors.Is(err, ErrType) {
			return fail("NewTyped[other] = %v", err)
		}
		tq, err := NewTyped[point](q)
		if err != nil {
			return fail("NewTyped: %v", err)
		}
		testproc.Printf("ready")
		var sx, sy int64
		for i := 0; ; i++ {
			p, err := tq.Get(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("get: %v", err)
			}
			if p.X != int64(i) || p.Y != -int64(i) || p.Tag != [4]byte{'p', 't', byte(i), 0} || p.W != float64(i)/2 {
				return fail("point %d = %+v", i, p)
			}
			sx, sy = sx+p.X, sy+p.Y
		}
		testproc.Printf("sum %d %d", sx, sy)
		return 0
	})
}

func TestTypedCrossProcess(t *testing.T) {
	cfg, err := TypedConfig[point](Config{Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, cfg)
	tq, err := NewTyped[point](q)
	if err != nil {
		t.Fatal(err)
	}
	cmd := testproc.Command(t, "typed-consumer")
	cmd.ExtraFiles = []*os.File{q.File()}
	p := testproc.StartCmd(t, "typed-consumer", cmd)
	p.Expect(t, "ready")
	const n = 1000
	for i := range n {
		if err := tq.Put(context.Background(), point{X: int64(i), Y: -int64(i), Tag: [4]byte{'p', 't', byte(i), 0}, W: float64(i) / 2}); err != nil {
			t.Fatal(err)
		}
	}
	q.CloseWrite()
	p.Expect(t, fmt.Sprintf("sum %d %d", n*(n-1)/2, -n*(n-1)/2))
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestTypedErrors(t *testing.T) {
	if _, err := TypedConfig[struct{ S string }](Config{}); !errors.Is(err, typeinfo.ErrNotPlain) {
		t.Fatalf("TypedConfig with a string = %v", err)
	}
	q := newQueue(t, Config{MaxMessage: 8})
	_, err := NewTyped[int64](q)
	var me *shm.MismatchError
	if !errors.Is(err, ErrType) || !errors.As(err, &me) {
		t.Fatalf("NewTyped on an untyped queue = %v", err)
	}
	// Named: OpenTyped with another type.
	name := fmt.Sprintf("ring-test-typed-%d", os.Getpid())
	tq, err := CreateTyped[point](name, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer tq.Close()
	if _, err := OpenTyped[other](context.Background(), name); !errors.Is(err, ErrType) {
		t.Fatalf("OpenTyped[other] = %v", err)
	}
	tq2, err := OpenTyped[point](context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer tq2.Close()
	if ok, err := tq.TryPut(point{X: 7}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v, ok, err := tq2.TryGet(); !ok || err != nil || v.X != 7 {
		t.Fatal(v, ok, err)
	}
}

type job struct {
	Name string
	Args []int
	Meta map[string]string
}

func TestCodecs(t *testing.T) {
	for _, c := range []struct {
		name  string
		codec Codec
	}{{"gob", Gob}, {"json", JSON}} {
		t.Run(c.name, func(t *testing.T) {
			q := newQueue(t, Config{Mode: MPMC, MaxMessage: 512, Capacity: 4})
			e := NewEncoded[job](q, c.codec)
			ctx := context.Background()
			in := job{Name: "resize", Args: []int{1, 2, 3}, Meta: map[string]string{"k": "v"}}
			if err := e.Put(ctx, in); err != nil {
				t.Fatal(err)
			}
			out, err := e.Get(ctx)
			if err != nil || out.Name != in.Name || len(out.Args) != 3 || out.Meta["k"] != "v" {
				t.Fatal(out, err)
			}
			bad := NewEncoded[chan int](q, c.codec)
			if err := bad.Put(ctx, make(chan int)); !errors.Is(err, ErrEncode) {
				t.Fatalf("Put of an unencodable value = %v", err)
			}
			if err := e.Put(ctx, job{Name: string(make([]byte, 600))}); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Put of a too large value = %v", err)
			}
			if q.Len() != 0 {
				t.Fatalf("failed Puts queued %d messages", q.Len())
			}
			if err := q.Put(ctx, []byte("\xff not an encoding")); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Get(ctx); !errors.Is(err, ErrDecode) {
				t.Fatalf("Get of garbage = %v", err)
			}
		})
	}
}
