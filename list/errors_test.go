package list

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/shm"
)

func segName(t *testing.T) string {
	name := fmt.Sprintf("test-list-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { _ = shm.Unlink(name) })
	return name
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	l, err := Create[uint64](name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, 1, 2, 3); err != nil {
		t.Fatal(err)
	}

	// Wrong element types, the bytes form, and options out of range.
	if _, err := Open[int32](ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("wrong element type: %v, want ErrType", err)
	}
	if _, err := Open[[8]byte](ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("other type of the same size: %v, want ErrType", err)
	}
	if _, err := OpenBytes(ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("opened as Bytes: %v, want ErrType", err)
	}
	if _, err := CreateAnonymous[*int](); !errors.Is(err, ErrNotPlain) {
		t.Errorf("pointer elements: %v, want ErrNotPlain", err)
	}
	for _, o := range []Option{WithMaxBytes(-1), WithCapacity(-1), WithMaxValue(-1), WithMaxBytes(64)} {
		if b, err := CreateAnonymousBytes(o); !errors.Is(err, shm.ErrInvalidSize) {
			if err == nil {
				b.Close()
			}
			t.Errorf("bad option: %v, want shm.ErrInvalidSize", err)
		}
	}

	// Indexes out of range.
	for _, i := range []int{-1, 3, 1 << 40} {
		if _, err := l.Get(i); !errors.Is(err, ErrIndex) {
			t.Errorf("Get(%d): %v, want ErrIndex", i, err)
		}
		if err := l.Set(ctx, i, 9); !errors.Is(err, ErrIndex) {
			t.Errorf("Set(%d): %v, want ErrIndex", i, err)
		}
	}
	for _, r := range [][2]int{{-1, 2}, {2, 1}, {0, 4}} {
		if _, err := l.Slice(r[0], r[1]); !errors.Is(err, ErrIndex) {
			t.Errorf("Slice(%d, %d): %v, want ErrIndex", r[0], r[1], err)
		}
	}
	if got, err := l.Slice(0, 3); err != nil || fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("after the refusals: %v, %v", got, err)
	}

	// An empty list's Pop.
	e, err := CreateAnonymous[uint64]()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pop(ctx); !errors.Is(err, ErrIndex) {
		t.Errorf("Pop of an empty list: %v, want ErrIndex", err)
	}
	// Closed.
	e.Close()
	if err := e.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Append(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := e.Get(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := e.Pop(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Pop after Close: %v", err)
	}

	// Oversized Bytes elements change nothing.
	b, err := CreateAnonymousBytes(WithMaxValue(8))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var se *SizeError
	if _, err := b.Append(ctx, []byte("ok"), make([]byte, 9)); !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) || se.Size != 9 {
		t.Errorf("long element: %v, want ErrTooLarge", err)
	}
	if b.Len() != 0 {
		t.Errorf("a refused Append of two appended %d", b.Len())
	}

	// A batch that does not fit appends nothing.
	f, err := CreateAnonymousBytes(WithMaxBytes(64 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kib := make([]byte, 1024)
	for f.Len() < 1000 {
		if _, err := f.Append(ctx, kib); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	n := f.Len()
	if n == 0 || n >= 64 {
		t.Fatalf("a 64 KiB list took %d KiB elements", n)
	}
	if _, err := f.Append(ctx, make([]byte, 1), make([]byte, 1), kib, kib, kib, kib); !errors.Is(err, ErrFull) {
		t.Errorf("a batch past the end: %v, want ErrFull", err)
	}
	if f.Len() != n {
		t.Errorf("a refused batch changed the length from %d to %d", n, f.Len())
	}
}

func TestCorruptLength(t *testing.T) {
	ctx := context.Background()
	l, err := CreateAnonymous[uint64]()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	// The length is the shard's count (docs/format/dict-list.md).
	mem := l.Segment().Bytes()
	const count = 256 + 80
	binary.LittleEndian.PutUint64(mem[count:], 1<<50)
	if _, err := l.Get(1 << 45); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Get under a hostile length: %v, want ErrCorrupt", err)
	}
	if err := l.Range(func(int, uint64) bool { return true }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Range under a hostile length: %v, want ErrCorrupt", err)
	}
	if _, err := l.Append(ctx, 4); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Append under a hostile length: %v, want ErrCorrupt", err)
	}
	binary.LittleEndian.PutUint64(mem[count:], 3)
	if got, err := l.Slice(0, 3); err != nil || fmt.Sprint(got) != "[1 2 3]" {
		t.Errorf("restored: %v, %v", got, err)
	}
}
