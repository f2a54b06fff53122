package shmnet

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPeerStealsWakeups: a hostile peer shares the eventfd our Read
// parks on (it created it), makes it blocking and reads away every
// wake-up written to it. A Read past its deadline must still return, and
// Close too: before parked calls stopped reading their eventfd and woke
// themselves with a read deadline, the Read stayed parked (its own
// wake-up, written to the eventfd, was read away) and Close waited for it.
func TestPeerStealsWakeups(t *testing.T) {
	c1, c2, stop, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	d, l := c1.(*Conn), c2.(*Conn)
	fd := d.note.outFd // the dialer's copy of the eventfd the listener's reader parks on
	var quit atomic.Bool
	thief := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(thief)
		_ = unix.SetNonblock(fd, false)
		var b [8]byte
		for !quit.Load() {
			_, _ = unix.Read(fd, b[:]) // blocks until anyone writes
		}
	}()
	defer func() {
		quit.Store(true)
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		for {
			_, _ = unix.Write(fd, one) // ends the thief's read
			select {
			case <-thief:
				_ = unix.SetNonblock(fd, true)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // the thief is in its read
	for i := range 3 {
		_ = l.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		done := make(chan error, 1)
		go func() {
			var b [16]byte
			_, err := l.Read(b[:])
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read %d: %v, want a timeout", i, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("Read %d stayed parked past its deadline: the peer stole its wake-up", i)
		}
	}
	_ = l.SetReadDeadline(time.Time{})
	parked := make(chan error, 1)
	go func() {
		var b [16]byte
		_, err := l.Read(b[:])
		parked <- err
	}()
	time.Sleep(50 * time.Millisecond) // parked
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hung behind a parked Read")
	}
	select {
	case err := <-parked:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("parked Read after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a parked Read stayed parked after Close")
	}
}
