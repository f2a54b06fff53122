package shmnet

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignalNeverBlocks: the peer shares our eventfds' file descriptions
// and may clear O_NONBLOCK on the one we write to wake it, and fill its
// counter. Our wake-ups must still not block: here the accepted end's
// Close (which pokes the peer's eventfd) must return.
func TestSignalNeverBlocks(t *testing.T) {
	c1, c2, stop, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	d := c1.(*Conn)                                                        // the "hostile" dialer: it holds all four eventfds
	fd := rawFd(d.note.in)                                                 // the eventfd the listener's end writes to wake d's reader
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, 0); err != nil { // blocking, for both processes
		t.Fatal(err)
	}
	var max [8]byte
	binary.LittleEndian.PutUint64(max[:], 0xffff_ffff_ffff_fffe)
	if _, err := unix.Write(fd, max[:]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c2.Close() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		var b [8]byte
		unix.Read(fd, b[:]) // let the stuck write through
		<-done
		t.Fatal("Close blocked in a wake-up write on the peer's eventfd")
	}
	unix.SetNonblock(fd, true)
}
