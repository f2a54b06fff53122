// Package shmnet runs unchanged Go network code between processes over
// shared memory: Listen returns a net.Listener, Dial a net.Conn, so that
// net/http, gRPC and anything else written against package net talk
// through shmkit rings instead of a socket.
//
//	ln, err := shmnet.Listen("api")
//	go http.Serve(ln, handler)
//
//	// in another process:
//	client := &http.Client{Transport: &http.Transport{DialContext: shmnet.Dialer("api")}}
//	resp, err := client.Get("http://api/hello") // the host is not looked at
//
//	// gRPC:
//	conn, err := grpc.NewClient("passthrough:///api",
//		grpc.WithContextDialer(shmnet.ContextDialer("api")),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//
// A name is an abstract Unix socket (@shmkit/NAME: nothing in the file
// system, so a listener that dies leaves nothing stale behind). Dial
// creates an anonymous pipe segment (two SPSC rings, one each way) and
// passes it to the listener over that socket (SCM_RIGHTS); the listener
// checks the client's credentials (SO_PEERCRED: the same user, unless
// AllowAnyUser) and says yes. From then on the data moves through the
// rings, and the socket stays open only so that each end learns at once
// when the other process dies: its blocked and later Reads and Writes
// then fail with ErrPeerDied (after reading what the dead process had
// sent) instead of waiting for a deadline; the kernel closes a dead
// process's socket as it reaps it, and the tests measure the survivor's
// error within a millisecond of the SIGKILL (they allow 500 ms).
//
// A blocked Read polls its ring for WithSpinTime (50 µs by default) and
// then parks its goroutine in Go's netpoller on an eventfd, which the
// writer signals when it sees the reader asleep (docs/format/shmnet.md):
// an idle connection holds no OS thread, and many connections share the
// CPUs as sockets do.
//
// Conn has net.Conn's semantics: deadlines (SetDeadline and friends; past
// them calls fail with an error that matches os.ErrDeadlineExceeded and is
// a net.Error whose Timeout is true, and a deadline moved while a call is
// blocked applies to it), Close (unblocks both ends' pending calls),
// CloseWrite (the other end reads io.EOF after the data), and concurrent
// Read, Write and Close from different goroutines. It is a byte stream:
// a Write is split into ring messages of at most WithMaxMessage bytes, and
// message boundaries do not show in Read. The only copies are the one
// into the ring and the one out of it (a Read buffer of at least
// WithMaxMessage bytes receives a message directly).
//
// Linux only, as the rest of shmkit's shared memory.
package shmnet
