package shmnet

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// handshakeWith plays a client's side of the handshake by hand with pipe
// (end 0 kept by the caller) and returns the socket.
func handshakeWith(t *testing.T, name string, pipe *ring.Conn) *net.UnixConn {
	t.Helper()
	page, err := shm.CreateAnonymous(notifySize, shm.WithKind(shm.KindRaw))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { page.Close() })
	fds := []int{rawFd(pipe.File()), rawFd(page.File())}
	for range 4 {
		f, err := newEventfd()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fds = append(fds, rawFd(f))
	}
	addr, _ := sockAddr(name)
	uc, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	if _, _, err := uc.WriteMsgUnix([]byte{'P'}, unix.UnixRights(fds...), nil); err != nil {
		t.Fatal(err)
	}
	return uc
}

// TestZeroMaxMessagePipe: a client (another implementation, or a hostile
// one) may send a pipe whose rings have MaxMessage 0, which ring.At
// accepts. A Write of bytes on it must fail, not loop sending empty
// messages until its deadline (or for ever without one).
func TestZeroMaxMessagePipe(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := ring.NewPipe(ring.Config{MaxMessage: 8, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Rewrite both rings' MaxMessage to 0 (header offset 16), checksum
	// (FNV-1a of bytes 0..55, at 56) to match.
	mem := p.Segment().Bytes()
	_, second := p.Segment().Params()
	for _, off := range []uint64{0, second} {
		h := mem[off : off+64]
		binary.LittleEndian.PutUint32(h[16:], 0)
		sum := uint64(14695981039346656037)
		for _, c := range h[:56] {
			sum ^= uint64(c)
			sum *= 1099511628211
		}
		binary.LittleEndian.PutUint64(h[56:], sum)
	}
	uc := handshakeWith(t, name, p)
	uc.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [1]byte
	if _, err := uc.Read(b[:]); err != nil || b[0] != replyOK {
		t.Logf("the listener refused the pipe: %q, %v", b, err)
		return
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client drains whatever arrives.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = p.TryRecv(buf)
		}
	}()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	start := time.Now()
	n, err := c.Write([]byte("hello"))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write of 5 bytes over a MaxMessage-0 pipe: %d, %v after %v; want a prompt error", n, err, time.Since(start))
	}
	t.Logf("Write: %d, %v", n, err)
}
