package shmnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func init() {
	// relay NAME: dial NAME twice and copy each connection's stream into
	// the other, passing a half-close on, until both are done: the
	// cross-process half of TestNettestCrossProcess.
	testproc.Register("relay", func(args []string) int {
		ctx := context.Background()
		a, err := Dial(ctx, args[0])
		if err != nil {
			return fail("dial a: %v", err)
		}
		b, err := Dial(ctx, args[0])
		if err != nil {
			return fail("dial b: %v", err)
		}
		testproc.Printf("ready")
		var wg sync.WaitGroup
		pass := func(dst, src *Conn) {
			defer wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.CloseWrite()
		}
		wg.Add(2)
		go pass(a, b)
		go pass(b, a)
		wg.Wait()
		a.Close()
		b.Close()
		return 0
	})

	// send-and-die NAME N: dial NAME, write N bytes, say so, and wait to
	// be killed.
	testproc.Register("send-and-die", func(args []string) int {
		c, err := Dial(context.Background(), args[0])
		if err != nil {
			return fail("dial: %v", err)
		}
		var n int
		fmt.Sscan(args[1], &n)
		if _, err := c.Write(make([]byte, n)); err != nil {
			return fail("write: %v", err)
		}
		if len(args) > 2 && args[2] == "closewrite" {
			if err := c.CloseWrite(); err != nil {
				return fail("closewrite: %v", err)
			}
		}
		testproc.Printf("sent")
		select {}
	})

	// listen-and-die NAME: listen on NAME, say so, and wait to be killed.
	testproc.Register("listen-and-die", func(args []string) int {
		if _, err := Listen(args[0]); err != nil {
			return fail("listen: %v", err)
		}
		testproc.Printf("listening")
		select {}
	})
}

func fail(format string, args ...any) int {
	testproc.Printf("error: "+format, args...)
	return 1
}

// crossPipe is a nettest.MakePipe whose two ends are in this process but
// whose bytes go through a relay process: c1 -> relay -> c2 and back, so
// every byte crosses two process boundaries. The suite's cases are local
// to each end (deadlines, Close unblocking its own calls) or end to end
// (data, half-close, EOF), and both kinds hold through the relay.
func crossPipe(t *testing.T) (net.Conn, net.Conn, func(), error) {
	name := fmt.Sprintf("%s-%d", testName(t), time.Now().UnixNano())
	ln, err := Listen(name)
	if err != nil {
		return nil, nil, nil, err
	}
	defer ln.Close()
	p := testproc.Start(t, "relay", name)
	c1, err := ln.Accept()
	if err != nil {
		return nil, nil, nil, err
	}
	c2, err := ln.Accept()
	if err != nil {
		c1.Close()
		return nil, nil, nil, err
	}
	p.Expect(t, "ready")
	return c1, c2, func() {
		c1.Close()
		c2.Close()
		if err := p.Wait(); err != nil {
			t.Errorf("relay: %v\n%s", err, p.Stderr())
		}
	}, nil
}

// TestNettestCrossProcess runs the conformance suite with the bytes
// crossing processes.
func TestNettestCrossProcess(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) { return crossPipe(t) })
}

// TestPeerDies kills the process at the other end while this end is
// blocked in Read, and again with a Write blocked on a full ring: both
// fail promptly with ErrPeerDied, after the bytes the dead process had
// sent are read.
func TestPeerDies(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name, WithRingSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const sent = 100 << 10
	p := testproc.Start(t, "send-and-die", name, fmt.Sprint(sent))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Expect(t, "sent")
	got, err := io.ReadFull(c, make([]byte, sent))
	if err != nil || got != sent {
		t.Fatalf("read %d of %d: %v", got, sent, err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Read block
	start := time.Now()
	p.Kill()
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrPeerDied) || !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Read after the peer died: %v", err)
		}
		t.Logf("Read failed %v after the kill: %v", time.Since(start).Round(time.Microsecond), err)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Read took %v to notice", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked 5 s after the peer died")
	}
	// Writes too, even into a ring with room.
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrPeerDied) {
		t.Errorf("Write after the peer died: %v", err)
	}
}

// TestPeerDiesAfterCloseWrite: a peer that half-closed and then died
// ended its stream cleanly: what it sent is read, then io.EOF, not
// ErrPeerDied.
func TestPeerDiesAfterCloseWrite(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name, WithRingSize(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const sent = 100 << 10
	p := testproc.Start(t, "send-and-die", name, fmt.Sprint(sent), "closewrite")
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Expect(t, "sent")
	p.Kill()
	if err := p.Wait(); !testproc.Killed(err) {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the connection has seen the death
	if got, err := io.ReadFull(c, make([]byte, sent)); err != nil || got != sent {
		t.Fatalf("read %d of %d: %v", got, sent, err)
	}
	if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the half-closed peer's data: %d, %v; want io.EOF", n, err)
	}
}

// TestBadInput: a name nobody listens on, an invalid name, a name taken,
// a listener's name after its process died, calls on a closed Conn.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	name := testName(t)
	start := time.Now()
	if _, err := Dial(ctx, name+"-nobody"); !errors.Is(err, ErrRefused) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial of a name nobody listens on: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the refusal took %v", d)
	}
	for _, bad := range []string{"", "a\x00b", string(make([]byte, 100))} {
		if _, err := Listen(bad); err == nil {
			t.Errorf("Listen(%q): no error", bad)
		}
		if _, err := Dial(ctx, bad); err == nil {
			t.Errorf("Dial(%q): no error", bad)
		}
	}
	if _, err := Listen(name, WithMaxMessage(0)); err == nil {
		t.Error("WithMaxMessage(0): no error")
	}

	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(name); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a second Listen on %s: %v, want EADDRINUSE", name, err)
	}
	ln.Close()
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := Dial(ctx, name); !errors.Is(err, ErrRefused) {
		t.Errorf("Dial after the listener closed: %v", err)
	}

	// A listener's process dies: its name is free at once (an abstract
	// socket leaves no file behind).
	dead := name + "-dead"
	p := testproc.Start(t, "listen-and-die", dead)
	p.Expect(t, "listening")
	if _, err := Listen(dead); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen on a live listener's name: %v", err)
	}
	p.Kill()
	ln2, err := Listen(dead)
	if err != nil {
		t.Fatalf("Listen after the listener died: %v", err)
	}
	ln2.Close()

	// A closed Conn.
	c1, c2, stop, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c1.Close()
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := c1.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := c1.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read at the other end after Close: %v, want io.EOF", err)
	}
	if _, err := c2.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write at the other end after Close: %v, want EPIPE", err)
	}
}

// TestOtherUserRefused connects from a process of another user: refused
// by default, accepted when both sides say AllowAnyUser.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to start a client as another user")
	}
	// The test binary lives in a directory only we may enter: a copy
	// that user nobody can run.
	exe := worldExecutable(t)
	for _, any := range []bool{false, true} {
		name := fmt.Sprintf("%s-%v", testName(t), any)
		var opts []Option
		if any {
			opts = append(opts, AllowAnyUser())
		}
		ln, err := Listen(name, opts...)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		cmd := testproc.Command(t, "dial-as-nobody", name, fmt.Sprint(any))
		cmd.Path = exe
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		ln.Close()
		want := "refused"
		if any {
			want = "connected"
		}
		if err != nil || !containsLine(string(out), want) {
			t.Errorf("AllowAnyUser %v: %v, output %q, want %q", any, err, out, want)
		}
	}
}

func init() {
	testproc.Register("dial-as-nobody", func(args []string) int {
		var opts []Option
		if args[1] == "true" {
			opts = append(opts, AllowAnyUser()) // the listener is root's
		}
		c, err := Dial(context.Background(), args[0], opts...)
		switch {
		case errors.Is(err, ErrRefused):
			testproc.Printf("refused")
		case err != nil:
			testproc.Printf("error: %v", err)
		default:
			testproc.Printf("connected")
			c.Close()
		}
		return 0
	})
}

// worldExecutable copies this test binary where any user can run it.
func worldExecutable(t *testing.T) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "shmnet-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := dir + "/shmnet.test"
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func containsLine(out, line string) bool {
	for len(out) > 0 {
		i := 0
		for i < len(out) && out[i] != '\n' {
			i++
		}
		if out[:i] == line {
			return true
		}
		if i == len(out) {
			break
		}
		out = out[i+1:]
	}
	return false
}

func init() {
	// scribble NAME: dial NAME, write a message, then overwrite every
	// byte of the pipe's rings past their headers with garbage and wait
	// to be killed: a hostile peer.
	testproc.Register("scribble", func(args []string) int {
		c, err := Dial(context.Background(), args[0])
		if err != nil {
			return fail("dial: %v", err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			return fail("write: %v", err)
		}
		mem := c.pipe.Segment().Bytes()
		for i := range mem {
			if i%4096 >= 256 { // leave the ring headers, spoil the records
				mem[i] = byte(i*131 + 7)
			}
		}
		testproc.Printf("scribbled")
		select {}
	})
}

// TestGarbage: a peer that writes garbage into the shared rings makes
// this end's calls fail with an error, never a panic or a hang.
func TestGarbage(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name, WithRingSize(16<<10), WithMaxMessage(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := testproc.Start(t, "scribble", name)
	defer p.Kill()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.Expect(t, "scribbled")
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	var rerr error
	for range 100 {
		if _, rerr = c.Read(buf); rerr != nil {
			break
		}
	}
	if rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("reads over a scribbled ring: %v, want an error other than a timeout", rerr)
	}
	t.Logf("read: %v", rerr)
	var werr error
	for range 100 {
		if _, werr = c.Write(make([]byte, 4096)); werr != nil {
			break
		}
	}
	t.Logf("write: %v", werr)
}

// TestDialOtherUsersListener: a listener of another user (anyone may
// bind an abstract name) is refused by Dial unless it says AllowAnyUser.
func TestDialOtherUsersListener(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to start a listener as another user")
	}
	name := testName(t)
	cmd := testproc.Command(t, "listen-and-die", name)
	cmd.Path = worldExecutable(t)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p := testproc.StartCmd(t, "listen-and-die", cmd)
	defer p.Kill()
	p.Expect(t, "listening")
	ctx := context.Background()
	if _, err := Dial(ctx, name); !errors.Is(err, ErrRefused) {
		t.Errorf("Dial of another user's listener: %v, want ErrRefused", err)
	}
}
