package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	// share-put KIND N: attach to the queue of KIND ("queue" or "typed")
	// on fd 3 and put the numbers 0..N-1.
	testproc.Register("share-put", func(args []string) int {
		ctx := context.Background()
		n := atoi(args[1])
		f := os.NewFile(3, "queue")
		var put func(i int) error
		var closer func() error
		switch args[0] {
		case "queue":
			q, err := OpenFile(ctx, f)
			if err != nil {
				return fail("open: %v", err)
			}
			put = func(i int) error { return q.Put(ctx, binary.LittleEndian.AppendUint64(nil, uint64(i))) }
			closer = q.Close
		case "typed":
			q, err := OpenFileTyped[int64](ctx, f)
			if err != nil {
				return fail("open: %v", err)
			}
			put = func(i int) error { return q.Put(ctx, int64(i)) }
			closer = q.Close
		}
		for i := range n {
			if err := put(i); err != nil {
				return fail("put %d: %v", i, err)
			}
		}
		if err := closer(); err != nil {
			return fail("close: %v", err)
		}
		testproc.Printf("done")
		return 0
	})
	// share-get KIND PATH: dial the Unix socket at PATH, receive the
	// queue of KIND over it, take numbers until EOF and print how many
	// and their sum.
	testproc.Register("share-get", func(args []string) int {
		ctx := context.Background()
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: args[1], Net: "unix"})
		if err != nil {
			return fail("dial: %v", err)
		}
		defer c.Close()
		var get func() (int64, error)
		switch args[0] {
		case "queue":
			q, err := Receive(ctx, c)
			if err != nil {
				return fail("receive: %v", err)
			}
			defer q.Close()
			buf := make([]byte, 8)
			get = func() (int64, error) {
				n, err := q.Get(ctx, buf)
				if err == nil && n != 8 {
					err = fmt.Errorf("message of %d bytes", n)
				}
				return int64(binary.LittleEndian.Uint64(buf)), err
			}
		case "typed":
			q, err := ReceiveTyped[int64](ctx, c)
			if err != nil {
				return fail("receive: %v", err)
			}
			defer q.Close()
			get = func() (int64, error) { return q.Get(ctx) }
		}
		testproc.Printf("ready")
		count, sum := 0, int64(0)
		for {
			v, err := get()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("get after %d: %v", count, err)
			}
			count++
			sum += v
		}
		testproc.Printf("got %d %d", count, sum)
		return 0
	})
}

// An anonymous queue (plain and typed) created here, filled by a child
// that got it through exec.Cmd.ExtraFiles and drained by an unrelated
// process that got it over a Unix socket, with exact counts.
func TestShareAnonymous(t *testing.T) {
	const n = 5000
	for _, kind := range []string{"queue", "typed"} {
		t.Run(kind, func(t *testing.T) {
			var obj shm.Shareable
			var q *Queue
			switch kind {
			case "queue":
				qq, err := CreateAnonymous(Config{MaxMessage: 8, Capacity: 64})
				if err != nil {
					t.Fatal(err)
				}
				obj, q = qq, qq
			case "typed":
				tq, err := CreateAnonymousTyped[int64](Config{Capacity: 64})
				if err != nil {
					t.Fatal(err)
				}
				obj, q = tq, tq.Queue()
			}
			defer q.Close()
			path := filepath.Join(t.TempDir(), "sock")
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cons := testproc.Start(t, "share-get", kind, path)
			c, err := ln.AcceptUnix()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := obj.Segment().Send(c); err != nil {
				t.Fatal(err)
			}
			cons.Expect(t, "ready")
			cmd := testproc.Command(t, "share-put", kind, itoa(n))
			cmd.ExtraFiles = []*os.File{obj.File()}
			prod := testproc.StartCmd(t, "share-put", cmd)
			prod.Expect(t, "done")
			if err := prod.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := q.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			cons.Expect(t, fmt.Sprintf("got %d %d", n, n*(n-1)/2))
			if err := cons.Wait(); err != nil {
				t.Fatal(err)
			}
			if s := q.Stats(); s.Puts != n || s.Gets != n || s.Len != 0 || s.Lost != 0 {
				t.Fatalf("stats %+v", s)
			}
			if _, err := q.Get(context.Background(), make([]byte, 8)); !errors.Is(err, io.EOF) {
				t.Fatalf("Get after the drain: %v", err)
			}
		})
	}
}

func TestNamed(t *testing.T) {
	name := "ring-test-named-" + itoa(os.Getpid())
	ctx := context.Background()
	if _, err := Open(ctx, name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing queue = %v", err)
	}
	q, created, err := OpenOrCreate(ctx, name, Config{Mode: MPMC, MaxMessage: 32})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	defer Unlink(name)
	defer q.Close()
	q2, created, err := OpenOrCreate(ctx, name, Config{})
	if err != nil || created {
		t.Fatal(created, err)
	}
	defer q2.Close()
	if q2.Mode() != MPMC || q2.MaxMessage() != 32 || q2.Segment() == nil {
		t.Fatalf("reopened as %v/%d", q2.Mode(), q2.MaxMessage())
	}
	if _, err := Create(name, Config{}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create of an existing queue = %v", err)
	}
	if err := q.Put(ctx, []byte("named")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	if n, err := q2.Get(ctx, buf); err != nil || string(buf[:n]) != "named" {
		t.Fatal(n, err)
	}
}

func TestReceive(t *testing.T) {
	q := newQueue(t, Config{MaxMessage: 16})
	fds, err := unixSocketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer a.Close()
	defer b.Close()
	if err := q.Segment().Send(a); err != nil {
		t.Fatal(err)
	}
	q2, err := Receive(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q.Put(context.Background(), []byte("fd")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := q2.Get(context.Background(), buf); err != nil || string(buf[:n]) != "fd" {
		t.Fatal(n, err)
	}
}
