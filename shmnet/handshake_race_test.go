package shmnet

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// readEnd reads c until it fails and returns that error, within 5 s.
func readEnd(t *testing.T, c net.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [64]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return err
		}
	}
}

// TestListenerCloseAfterYes: a listener closed after it said yes to a
// dialer but before an Accept took the connection closes it as a
// connection (the dialer reads io.EOF), instead of dropping the socket,
// which the dialer would take for the listener's death (ErrPeerDied).
func TestListenerCloseAfterYes(t *testing.T) {
	name := testName(t)
	reached, release := make(chan struct{}), make(chan struct{})
	testHookReplied = func() { close(reached); <-release }
	defer func() { testHookReplied = nil }()
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *Conn
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		c, err := Dial(context.Background(), name)
		dialed <- result{c, err}
	}()
	<-reached
	closed := make(chan struct{})
	go func() { ln.Close(); close(closed) }()
	time.Sleep(100 * time.Millisecond) // Close drops the handshakes it holds
	r := <-dialed                      // it has its yes
	if r.err != nil {
		close(release)
		t.Fatalf("Dial after the listener's yes: %v", r.err)
	}
	defer r.c.Close()
	readErr := make(chan error, 1)
	go func() { readErr <- readEnd(t, r.c) }()
	time.Sleep(100 * time.Millisecond) // a Read in the window fails at once if it fails
	close(release)
	<-closed
	if err := <-readErr; err != io.EOF {
		t.Errorf("dialer's Read while the listener closed without accepting: %v, want io.EOF", err)
	}
}

// TestDialCancelledAfterYes: a Dial whose context ends after the listener
// said yes, but before the dialer read it, fails, and the connection the
// listener queued reads io.EOF at Accept's end, not ErrPeerDied.
func TestDialCancelledAfterYes(t *testing.T) {
	name := testName(t)
	yes := make(chan struct{})
	testHookReplied = func() { close(yes) }
	defer func() { testHookReplied = nil }()
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	testHookReply = func() {
		<-yes
		cancel()
		time.Sleep(50 * time.Millisecond) // the context's deadline reaches the socket
	}
	defer func() { testHookReply = nil }()
	dialErr := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, name)
		if c != nil {
			c.Close()
		}
		dialErr <- err
	}()
	if err := <-dialErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial cancelled before it read the yes: %v, want context.Canceled", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("Accept: %v", err)
		}
		accepted <- c
	}()
	var c net.Conn
	select {
	case c = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection the listener said yes to never reached Accept")
	}
	if c == nil {
		return
	}
	defer c.Close()
	if err := readEnd(t, c); err != io.EOF {
		t.Errorf("accepted connection of a cancelled Dial reads %v, want io.EOF", err)
	}
	time.Sleep(50 * time.Millisecond) // the socket's end has been seen
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("accepted connection of a cancelled Dial writes with %v, want EPIPE (the dialer closed; it did not die)", err)
	}
}
