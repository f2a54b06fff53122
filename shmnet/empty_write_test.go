package shmnet

import (
	"testing"
	"time"
)

// TestEmptyWritesWakeWriter: a Write parked on a ring full of empty
// messages (Write(nil)) must be woken when the reader drains them, though
// the reader gets no bytes from them.
func TestEmptyWritesWakeWriter(t *testing.T) {
	c1, c2, stop, err := pipe(t, WithMaxMessage(8), WithRingSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	werr := make(chan error, 1)
	go func() {
		for range 64 { // far more than the ring holds
			if _, err := c1.Write(nil); err != nil {
				werr <- err
				return
			}
		}
		_, err := c1.Write([]byte("x"))
		werr <- err
	}()
	time.Sleep(100 * time.Millisecond) // the writer parks on the full ring
	c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 8)
	n, err := c2.Read(buf)
	if err != nil || n != 1 || buf[0] != 'x' {
		t.Fatalf("Read after the peer's empty writes: %d %q, %v", n, buf[:n], err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}
