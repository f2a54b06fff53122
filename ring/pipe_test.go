package ring

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestPipeInProcess(t *testing.T) {
	a, b, err := Pipe(Config{MaxMessage: 32, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := a.Send(ctx, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	if n, err := b.Recv(ctx, buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatal(n, err)
	}
	if _, err := b.Write([]byte("hello, world")); err != nil {
		t.Fatal(err)
	}
	small := make([]byte, 5)
	var got []byte
	for len(got) < 12 {
		n, err := a.Read(small)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, small[:n]...)
	}
	if string(got) != "hello, world" {
		t.Fatalf("%q", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(small); err != io.EOF {
		t.Fatalf("Read after peer Close = %v", err)
	}
	if err := b.Send(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after peer Close = %v", err)
	}
}

func init() {
	// pipe-echo: end 1 of the pipe on fd 3; echo every message until EOF.
	testproc.Register("pipe-echo", func(args []string) int {
		c, err := OpenPipeFile(context.Background(), osNewFile(3))
		if err != nil {
			return fail("open: %v", err)
		}
		testproc.Printf("ready")
		ctx := context.Background()
		buf := make([]byte, 0, 64)
		for {
			m, err := c.RecvAppend(ctx, buf[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				return fail("recv: %v", err)
			}
			if err := c.Send(ctx, m); err != nil {
				return fail("send: %v", err)
			}
			buf = m
		}
		if err := c.Close(); err != nil {
			return fail("close: %v", err)
		}
		return 0
	})
}

func TestPipeCrossProcess(t *testing.T) {
	c, err := NewPipe(Config{MaxMessage: 100, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := testproc.Command(t, "pipe-echo")
	cmd.ExtraFiles = []*osFile{c.File()}
	p := testproc.StartCmd(t, "pipe-echo", cmd)
	p.Expect(t, "ready")
	ctx := context.Background()
	// Message API: every size, in lockstep.
	buf := make([]byte, 100)
	for i := 0; i <= 100; i++ {
		m := bytes.Repeat([]byte{byte(i)}, i)
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
		n, err := c.Recv(ctx, buf)
		if err != nil || !bytes.Equal(buf[:n], m) {
			t.Fatal(i, n, err)
		}
	}
	// Stream API: 200 KiB written in one go (split into messages) while
	// reading the echo with odd-sized reads.
	src := make([]byte, 200<<10)
	for i := range src {
		src[i] = byte(i * 7)
	}
	var werr atomic.Value
	go func() {
		if _, err := c.Write(src); err != nil {
			werr.Store(err)
		}
		c.CloseWrite()
	}()
	var got bytes.Buffer
	small := make([]byte, 37)
	for {
		n, err := c.Read(small)
		got.Write(small[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if werr.Load() != nil {
		t.Fatal(werr.Load())
	}
	if !bytes.Equal(got.Bytes(), src) {
		t.Fatalf("stream: got %d bytes, want %d (equal prefix %v)", got.Len(), len(src), strings.HasPrefix(got.String(), string(src[:min(got.Len(), len(src))])))
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	var _ io.ReadWriteCloser = c
}

func init() {
	// pipe-die: end 1 on fd 3; send last words and wait to be killed.
	testproc.Register("pipe-die", func(args []string) int {
		c, err := OpenPipeFile(context.Background(), osNewFile(3))
		if err != nil {
			return fail("open: %v", err)
		}
		if err := c.Send(context.Background(), []byte("last words")); err != nil {
			return fail("send: %v", err)
		}
		testproc.Printf("ready")
		select {}
	})
}

func TestPipePeerDied(t *testing.T) {
	c, err := NewPipe(Config{MaxMessage: 16, Capacity: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := testproc.Command(t, "pipe-die")
	cmd.ExtraFiles = []*osFile{c.File()}
	p := testproc.StartCmd(t, "pipe-die", cmd)
	p.Expect(t, "ready")
	p.Kill()
	ctx := context.Background()
	buf := make([]byte, 16)
	if n, err := c.Recv(ctx, buf); err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("Recv = %q, %v", buf[:n], err)
	}
	if _, err := c.Recv(ctx, buf); !errors.Is(err, ErrPeerDied) {
		t.Fatalf("Recv from a dead peer = %v", err)
	}
	var serr error
	for serr == nil {
		serr = c.Send(ctx, buf)
	}
	if !errors.Is(serr, ErrPeerDied) {
		t.Fatalf("Send to a dead peer = %v", serr)
	}
}

// TestPipeEmptyMessagesBounded: a stream of empty messages (a peer that
// sends nothing else) cannot hold a TryRead or a ReadContext past its
// caller's chance to look at the clock: TryRead reports nothing yet every
// 64 of them, and ReadContext returns its context's error.
func TestPipeEmptyMessagesBounded(t *testing.T) {
	a, b, err := Pipe(Config{MaxMessage: 8, Capacity: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	for range 300 {
		if err := a.Send(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	calls := 0
	for {
		calls++
		n, ok, err := b.TryRead(buf)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if n != 1 || buf[0] != 'x' {
				t.Fatalf("TryRead: %q", buf[:n])
			}
			break
		}
		if calls > 10 {
			t.Fatalf("%d TryReads for 300 empty messages and one byte", calls)
		}
	}
	if calls != 5 { // 64, 128, 192, 256, then the rest and the byte
		t.Errorf("%d TryReads, want 5", calls)
	}
	for range 100 {
		if err := a.Send(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.ReadContext(cctx, buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadContext over empty messages with a done context: %v", err)
	}
}
