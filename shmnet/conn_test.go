package shmnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// testName is a name unique to this test and process.
func testName(t testing.TB) string {
	return fmt.Sprintf("test-%d-%s", os.Getpid(), t.Name())
}

// pipe returns a connected pair in this process: the dialled end and the
// accepted one.
func pipe(t testing.TB, opts ...Option) (c1, c2 net.Conn, stop func(), err error) {
	name := fmt.Sprintf("%s-%d", testName(t), time.Now().UnixNano())
	ln, err := Listen(name, opts...)
	if err != nil {
		return nil, nil, nil, err
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := Dial(ctx, name, opts...)
	if err != nil {
		ln.Close()
		return nil, nil, nil, err
	}
	r := <-ch
	ln.Close()
	if r.err != nil {
		d.Close()
		return nil, nil, nil, r.err
	}
	return d, r.c, func() { d.Close(); r.c.Close() }, nil
}

func TestEcho(t *testing.T) {
	c1, c2, stop, err := pipe(t)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	go io.Copy(c2, c2)
	msg := make([]byte, 200<<10) // several ring messages
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go func() { c1.Write(msg) }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c1, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatal("echo differs")
	}
	if a := c2.RemoteAddr().String(); a == "" || c1.LocalAddr().Network() != "shmkit" {
		t.Fatalf("addresses %q %q", a, c1.LocalAddr())
	}
}

// TestNettest runs x/net's net.Conn conformance suite with both ends in
// this process.
func TestNettest(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) { return pipe(t) })
}

// TestBlockedWrite: a Write parked on a full ring goes on when the reader
// reads, fails at its deadline, and fails when the other end closes.
func TestBlockedWrite(t *testing.T) {
	c1, c2, stop, err := pipe(t, WithRingSize(8<<10), WithMaxMessage(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	big := make([]byte, 1<<20)
	done := make(chan error, 1)
	go func() { _, err := c1.Write(big); done <- err }()
	time.Sleep(20 * time.Millisecond) // the ring fills; the Write parks
	if _, err := io.ReadFull(c2, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write once read: %v", err)
	}

	c1.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	_, err = c1.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the deadline took %v", d)
	}
	c1.SetWriteDeadline(time.Time{})

	go func() { _, err := c1.Write(big); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c2.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Write to a closed end succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still parked 5 s after the other end closed")
	}
}
