package shmnet

import (
	"context"
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
