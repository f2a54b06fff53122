package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// streamKind says how a byte-stream transport makes its connected pairs.
type streamKind int

const (
	streamUnix streamKind = iota // socketpair(AF_UNIX, SOCK_STREAM)
	streamTCP                    // 127.0.0.1 loopback connection
	streamPipe                   // os.Pipe (one direction per pipe)
)

// streamTransport moves length-prefixed messages over a byte stream: a
// 4-byte little-endian length, then the payload. The coordinator makes the
// connected pairs and hands one end to each peer.
//
// For n producers and m consumers there are max(n, m) connections:
// connection i is written by producer i mod n and read by consumer i mod
// m, so that every process has at least one. A consumer serves each of
// its connections with a goroutine (how a stream server fans in); a
// producer with several writes to them in turn.
type streamTransport struct {
	name     string
	desc     string
	kind     streamKind
	buffered bool // bufio on both sides, flushed only when full
}

func init() {
	register(&streamTransport{name: "unix", kind: streamUnix,
		desc: "Unix domain stream socket, one write per message (length-prefixed)"})
	register(&streamTransport{name: "unix-buf", kind: streamUnix, buffered: true,
		desc: "Unix domain stream socket through bufio (64 KiB) on both sides"})
	register(&streamTransport{name: "os-pipe", kind: streamPipe,
		desc: "os.Pipe, one write per message (length-prefixed)"})
	register(&streamTransport{name: "tcp", kind: streamTCP,
		desc: "TCP over 127.0.0.1 (TCP_NODELAY), one write per message"})
}

// Spec implements Transport.
func (t *streamTransport) Spec() Spec {
	s := Spec{Name: t.name, Kind: KindIPC, Desc: t.desc,
		Patterns: []Pattern{PatThroughput, PatMPMC, PatPingPong},
		Batching: "none: one write(2) per message (length and payload), two read(2)s (length, then payload)"}
	if t.buffered {
		// A ping-pong must flush every message: that is "unix" again.
		s.Patterns = []Pattern{PatThroughput, PatMPMC, PatScaling}
		s.Batching = "64 KiB bufio buffers: a write(2) when the writer's buffer fills, a read(2) fills the reader's (many messages per system call)"
		s.Batched = true
	}
	return s
}

// Unavailable implements Transport.
func (t *streamTransport) Unavailable() string { return "" }

// pair is two connected ends: a is written by the producer (or is the
// pinger's end), b is read by the consumer (or is the ponger's end).
type pair struct{ a, b []*os.File }

func (t *streamTransport) newPair(duplex bool) (pair, error) {
	switch t.kind {
	case streamUnix:
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		if err != nil {
			return pair{}, os.NewSyscallError("socketpair", err)
		}
		// Not inherited by other children (the peers get their ends
		// through ExtraFiles); nothing forks while Setup runs.
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
		return pair{[]*os.File{os.NewFile(uintptr(fds[0]), "unix-a")}, []*os.File{os.NewFile(uintptr(fds[1]), "unix-b")}}, nil
	case streamTCP:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return pair{}, err
		}
		defer ln.Close()
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := ln.Accept(); ch <- res{c, err} }()
		ca, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return pair{}, err
		}
		r := <-ch
		if r.err != nil {
			ca.Close()
			return pair{}, r.err
		}
		fa, err1 := ca.(*net.TCPConn).File()
		fb, err2 := r.c.(*net.TCPConn).File()
		ca.Close()
		r.c.Close()
		if err1 != nil || err2 != nil {
			return pair{}, fmt.Errorf("tcp: dup: %v %v", err1, err2)
		}
		return pair{[]*os.File{fa}, []*os.File{fb}}, nil
	default:
		r1, w1, err := os.Pipe()
		if err != nil {
			return pair{}, err
		}
		if !duplex {
			return pair{[]*os.File{w1}, []*os.File{r1}}, nil
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			r1.Close()
			w1.Close()
			return pair{}, err
		}
		// a writes w1 and reads r2; b reads r1 and writes w2.
		return pair{[]*os.File{w1, r2}, []*os.File{r1, w2}}, nil
	}
}

// Setup implements Transport.
func (t *streamTransport) Setup(m *Measurement) (*Setup, error) {
	n := 1
	if isMPMC(m.Pattern) {
		n = max(m.Producers, m.Consumers, 1)
	}
	var pairs []pair
	closeAll := func() {
		for _, p := range pairs {
			for _, f := range append(p.a, p.b...) {
				f.Close()
			}
		}
	}
	for range n {
		p, err := t.newPair(m.Pattern == PatPingPong)
		if err != nil {
			closeAll()
			return nil, err
		}
		pairs = append(pairs, p)
	}
	// deal returns the ends of connections index, index+every, ...
	deal := func(index, every int, end func(pair) []*os.File) []*os.File {
		var out []*os.File
		for i := index; i < len(pairs); i += max(every, 1) {
			out = append(out, end(pairs[i])...)
		}
		return out
	}
	files := func(role string, index int) []*os.File {
		switch role {
		case roleProducer:
			return deal(index, m.Producers, func(p pair) []*os.File { return p.a })
		case rolePing:
			return pairs[0].a
		case rolePong:
			return pairs[0].b
		case roleConsumer:
			return deal(index, m.Consumers, func(p pair) []*os.File { return p.b })
		}
		return nil
	}
	return &Setup{Files: files, Cleanup: closeAll}, nil
}

// Open implements Transport.
func (t *streamTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	per := 1
	if t.kind == streamPipe && env.M.Pattern == PatPingPong {
		per = 2
	}
	if len(env.Files) == 0 || len(env.Files)%per != 0 {
		return nil, fmt.Errorf("%s: got %d files", t.name, len(env.Files))
	}
	var eps []Endpoint
	for i := 0; i < len(env.Files); i += per {
		var rw io.ReadWriteCloser
		var err error
		switch {
		case t.kind == streamPipe && per == 2:
			// The pinger's files are (w1, r2), the ponger's (r1, w2).
			a, b := env.Files[i], env.Files[i+1]
			if env.Role == rolePing {
				rw = pipeRW{r: b, w: a}
			} else {
				rw = pipeRW{r: a, w: b}
			}
		case t.kind == streamPipe:
			rw = env.Files[i]
		default:
			var c net.Conn
			c, err = net.FileConn(env.Files[i])
			env.Files[i].Close()
			rw = c
		}
		if err != nil {
			return nil, err
		}
		e := newStreamEndpoint(rw, env.M.Size, t.buffered)
		if t.buffered {
			eps = append(eps, bufStreamEndpoint{e})
		} else {
			eps = append(eps, e)
		}
	}
	return eps, nil
}

// pipeRW joins the two pipes of a duplex os.Pipe link.
type pipeRW struct{ r, w *os.File }

// Read implements io.ReadWriteCloser.
func (p pipeRW) Read(b []byte) (int, error) { return p.r.Read(b) }

// Write implements io.ReadWriteCloser.
func (p pipeRW) Write(b []byte) (int, error) { return p.w.Write(b) }

// Close implements io.ReadWriteCloser.
func (p pipeRW) Close() error { p.r.Close(); return p.w.Close() }

// streamEndpoint frames messages as a 4-byte length and the payload.
type streamEndpoint struct {
	c    io.ReadWriteCloser
	r    io.Reader     // c, or a bufio.Reader over it
	w    *bufio.Writer // nil: one Write per message
	out  []byte        // length prefix + payload, reused
	in   []byte        // payload buffer
	hdr  [4]byte
	size int
}

func newStreamEndpoint(c io.ReadWriteCloser, size int, buffered bool) *streamEndpoint {
	e := &streamEndpoint{c: c, r: c, size: size, out: make([]byte, 4+size), in: make([]byte, size)}
	binary.LittleEndian.PutUint32(e.out, uint32(size))
	for i := 4 + 8; i < len(e.out); i++ {
		e.out[i] = byte(i)
	}
	if buffered {
		e.r = bufio.NewReaderSize(c, 64<<10)
		e.w = bufio.NewWriterSize(c, 64<<10)
	}
	return e
}

// Send implements Endpoint.
func (e *streamEndpoint) Send(seq uint64) error {
	putSeq(e.out[4:], seq)
	var err error
	if e.w != nil {
		_, err = e.w.Write(e.out)
	} else {
		_, err = e.c.Write(e.out)
	}
	return err
}

// Recv implements Endpoint.
func (e *streamEndpoint) Recv() (uint64, error) {
	if _, err := io.ReadFull(e.r, e.hdr[:]); err != nil {
		return 0, err
	}
	if n := binary.LittleEndian.Uint32(e.hdr[:]); int(n) != e.size {
		return 0, fmt.Errorf("framing: got length %d, want %d", n, e.size)
	}
	if _, err := io.ReadFull(e.r, e.in); err != nil {
		return 0, err
	}
	return getSeq(e.in), nil
}

// bufStreamEndpoint is a buffered stream's side, with runs (see
// runEndpoint): the same framed writes and reads, one a message.
type bufStreamEndpoint struct{ *streamEndpoint }

// SendRun implements runEndpoint.
func (e bufStreamEndpoint) SendRun(seqs []uint64) error {
	for _, seq := range seqs {
		if err := e.Send(seq); err != nil {
			return err
		}
	}
	return nil
}

// RecvRun implements runEndpoint: one message, waiting for it, then those
// already buffered, each framed and copied out as Recv does, but taken
// from the buffer with Peek and Discard rather than two io.ReadFulls.
func (e bufStreamEndpoint) RecvRun(seqs []uint64) (int, error) {
	seq, err := e.Recv()
	if err != nil {
		return 0, err
	}
	seqs[0] = seq
	br := e.r.(*bufio.Reader)
	k := 1
	for ; k < len(seqs) && br.Buffered() >= 4+e.size; k++ {
		b, _ := br.Peek(4 + e.size)
		if n := binary.LittleEndian.Uint32(b); int(n) != e.size {
			return k, fmt.Errorf("framing: got length %d, want %d", n, e.size)
		}
		copy(e.in, b[4:])
		seqs[k] = getSeq(e.in)
		br.Discard(4 + e.size)
	}
	return k, nil
}

// Close implements Endpoint.
func (e *streamEndpoint) Close() error {
	if e.w != nil {
		e.w.Flush()
	}
	return e.c.Close()
}
