package ring

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/shmkit/shmkit/shm"
)

// Conn is one end of a duplex connection between two processes made of
// two SPSC rings in one segment: the analogue of multiprocessing.Pipe.
// It has a message API (Send, Recv) and implements io.ReadWriteCloser
// with stream semantics: Write sends p as one or more messages, and Read
// may return part of a message, keeping the rest for the next Read.
//
// End 0 (the creator) writes the first ring and reads the second; end 1
// the reverse. Each direction has one writer and one reader: Send and
// Write must not run concurrently with each other, nor Recv and Read, nor
// Close with any of them (as for a Queue in SPSC mode, there is no lock on
// the fast path).
type Conn struct {
	in, out *Queue
	seg     *shm.Segment
	end     int

	rest []byte // unread part of the message Read holds (Next)
}

// pipeLayout returns the size of each ring and the offset of the second.
func pipeLayout(cfg Config) (ring, second uint64, err error) {
	cfg.Mode = SPSC
	cfg.Type = shm.TypeDesc{}
	g, err := cfg.geometry()
	if err != nil {
		return 0, 0, err
	}
	return g.size, align64(g.size), nil
}

func pipeOptions(cfg Config, opts []shm.Option) ([]shm.Option, int, error) {
	cfg.Mode, cfg.Type = SPSC, shm.TypeDesc{}
	size, second, err := pipeLayout(cfg)
	if err != nil {
		return nil, 0, err
	}
	o := append([]shm.Option{shm.WithKind(shm.KindPipe), shm.WithParams(size, second)}, opts...)
	o = append(o, shm.WithInit(func(p []byte) error {
		if err := initMem(p[:size], cfg); err != nil {
			return err
		}
		return initMem(p[second:second+size], cfg)
	}))
	return o, int(second + size), nil
}

// CreatePipe creates a named pipe segment and returns its end 0; the
// other process calls OpenPipe. cfg.Mode and cfg.Type are ignored.
func CreatePipe(name string, cfg Config, opts ...shm.Option) (*Conn, error) {
	o, size, err := pipeOptions(cfg, opts)
	if err != nil {
		return nil, err
	}
	seg, err := shm.Create(name, size, o...)
	if err != nil {
		return nil, err
	}
	return connOf(seg, 0)
}

// OpenPipe opens end 1 of a named pipe.
func OpenPipe(ctx context.Context, name string, opts ...shm.Option) (*Conn, error) {
	seg, err := shm.Open(ctx, name, append([]shm.Option{shm.WithKind(shm.KindPipe)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return connOf(seg, 1)
}

// NewPipe creates an anonymous pipe and returns its end 0. Pass File to
// the other process (exec.Cmd.ExtraFiles, or a Unix socket with
// shm.Segment.Send), which calls OpenPipeFile.
func NewPipe(cfg Config, opts ...shm.Option) (*Conn, error) {
	o, size, err := pipeOptions(cfg, opts)
	if err != nil {
		return nil, err
	}
	seg, err := shm.CreateAnonymous(size, o...)
	if err != nil {
		return nil, err
	}
	return connOf(seg, 0)
}

// OpenPipeFile opens end 1 of the anonymous pipe behind f.
func OpenPipeFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Conn, error) {
	seg, err := shm.OpenFile(ctx, f, append([]shm.Option{shm.WithKind(shm.KindPipe)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return connOf(seg, 1)
}

// ReceivePipe opens end 1 of a pipe whose segment another process sent
// over a Unix socket (c.Segment().Send(conn)).
func ReceivePipe(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Conn, error) {
	seg, err := shm.Receive(ctx, conn, append([]shm.Option{shm.WithKind(shm.KindPipe)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return connOf(seg, 1)
}

// Pipe returns both ends of a new anonymous pipe in this process, each
// with its own mapping (for goroutines and tests; between processes use
// NewPipe and OpenPipeFile). The options apply to both mappings.
func Pipe(cfg Config, opts ...shm.Option) (a, b *Conn, err error) {
	a, err = NewPipe(cfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	b, err = OpenPipeFile(context.Background(), a.File(), opts...)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func connOf(seg *shm.Segment, end int) (*Conn, error) {
	mem := seg.Bytes()
	size, second := seg.Params()
	if size == 0 || second < size || second%64 != 0 || second > uint64(len(mem)) || size > uint64(len(mem))-second {
		seg.Close()
		return nil, corrupt("pipe layout %d/%d in %d bytes", size, second, len(mem))
	}
	r0, err0 := At(mem[:size])
	r1, err1 := At(mem[second : second+size])
	if err := errors.Join(err0, err1); err != nil {
		seg.Close()
		return nil, err
	}
	if r0.Mode() != SPSC || r1.Mode() != SPSC {
		seg.Close()
		return nil, corrupt("pipe ring not SPSC")
	}
	c := &Conn{seg: seg, end: end, out: r0, in: r1}
	if end == 1 {
		c.out, c.in = r1, r0
	}
	// Claim both roles now, so that each end can tell when the other died
	// (and a second process opening the same end fails at once).
	c.out.spsc.peerDeath, c.in.spsc.peerDeath = true, true
	if err := errors.Join(c.out.spscClaimProducer(), c.in.spscClaimConsumer()); err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			busy.Role = "pipe end"
			err = busy // one error for the end, not one per direction
		}
		c.out.Close()
		c.in.Close()
		seg.Close()
		return nil, err
	}
	return c, nil
}

// File returns the file behind the pipe's segment, for passing it to the
// other process (which attaches with OpenPipeFile). The Conn owns it.
func (c *Conn) File() *os.File { return c.seg.File() }

// Segment returns the segment holding both rings of the pipe (send it
// with Segment().Send; the other process attaches with ReceivePipe).
func (c *Conn) Segment() *shm.Segment { return c.seg }

// Send sends p as one message, waiting while the ring is full.
func (c *Conn) Send(ctx context.Context, p []byte) error { return c.out.Put(ctx, p) }

// TrySend is Send that does not wait: ok is false when the ring is full.
func (c *Conn) TrySend(p []byte) (ok bool, err error) { return c.out.TryPut(p) }

// Recv receives one message into buf (see Queue.Get); io.EOF once the
// other end closed and everything it sent was received.
func (c *Conn) Recv(ctx context.Context, buf []byte) (int, error) {
	if c.rest != nil {
		return 0, ErrPending
	}
	return c.in.Get(ctx, buf)
}

// TryRecv is Recv that does not wait: ok is false when nothing is
// queued. It returns io.EOF once the other end closed and everything it
// sent was received.
func (c *Conn) TryRecv(buf []byte) (n int, ok bool, err error) {
	if c.rest != nil {
		return 0, false, ErrPending
	}
	return c.in.TryGet(buf)
}

// MaxMessage returns the largest message Send accepts (the pipe's
// MaxMessage, both directions).
func (c *Conn) MaxMessage() int { return c.out.MaxMessage() }

// RecvAppend receives one message, appending it to buf.
func (c *Conn) RecvAppend(ctx context.Context, buf []byte) ([]byte, error) {
	if c.rest != nil {
		return buf, ErrPending
	}
	return c.in.GetAppend(ctx, buf)
}

// Read reads from the stream of incoming messages: it returns bytes of
// the current message, keeping what does not fit in p for the next Read,
// and io.EOF after the other end closed.
func (c *Conn) Read(p []byte) (int, error) { return c.ReadContext(context.Background(), p) }

// ReadContext is Read bounded by ctx (nil: no bound).
func (c *Conn) ReadContext(ctx context.Context, p []byte) (int, error) {
	n, _, err := c.read(ctx, p, true)
	return n, err
}

// TryRead is Read that does not wait: ok is false when nothing is
// queued (or when it released 64 empty messages and found no byte yet:
// call it again). It returns io.EOF once the other end closed and everything it
// sent was read.
func (c *Conn) TryRead(p []byte) (n int, ok bool, err error) { return c.read(nil, p, false) }

// read copies bytes of the current message straight from the ring into
// p (the only copy out), holding the message (Next) until it is all read.
func (c *Conn) read(ctx context.Context, p []byte, wait bool) (int, bool, error) {
	if len(p) == 0 {
		return 0, true, nil
	}
	for empty := 0; c.rest == nil; {
		var m []byte
		var err error
		ok := true
		if wait {
			m, err = c.in.Next(ctx)
		} else {
			m, ok, err = c.in.TryNext()
		}
		if err != nil || !ok {
			return 0, false, err
		}
		if len(m) == 0 {
			if err := c.in.Release(); err != nil {
				return 0, false, err
			}
			// An empty message carries no stream bytes. A peer that sends
			// nothing else, as fast as we release them, must not keep
			// this call from its caller's deadline: every 64 of them,
			// TryRead reports nothing yet and Read looks at ctx.
			if empty++; empty&63 == 0 {
				if !wait {
					return 0, false, nil
				}
				if ctx != nil && ctx.Err() != nil {
					return 0, false, ctx.Err()
				}
			}
			continue
		}
		c.rest = m
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	if len(c.rest) == 0 {
		c.rest = nil
		if err := c.in.Release(); err != nil {
			return n, true, err
		}
	}
	return n, true, nil
}

// Write sends p as messages of at most MaxMessage bytes each, waiting
// while the ring is full. It returns ErrClosed once either end closed,
// and ErrTooLarge for a pipe whose MaxMessage is 0.
func (c *Conn) Write(p []byte) (int, error) {
	max := c.out.MaxMessage()
	if max == 0 && len(p) > 0 {
		return 0, tooLarge(len(p), 0) // a pipe of empty messages carries no stream bytes
	}
	done := 0
	for done < len(p) {
		k := min(len(p)-done, max)
		if err := c.out.Put(context.Background(), p[done:done+k]); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

// CloseWrite closes the outgoing direction: the other end receives what
// was sent and then io.EOF.
func (c *Conn) CloseWrite() error { return c.out.CloseWrite() }

// Close closes both directions (the other end reads io.EOF after what was
// sent, and its Sends fail with ErrClosed) and releases this end.
func (c *Conn) Close() error {
	if c.rest != nil {
		c.rest = nil
		_ = c.in.Release()
	}
	err := errors.Join(c.out.CloseWrite(), c.in.CloseWrite(), c.out.Close(), c.in.Close())
	return errors.Join(err, c.seg.Close())
}

// SetSpin sets the spin count of both directions (see Queue.SetSpin).
func (c *Conn) SetSpin(n int) {
	c.in.SetSpin(n)
	c.out.SetSpin(n)
}

// SetSpinTime sets the spin time of both directions (see
// Queue.SetSpinTime).
func (c *Conn) SetSpinTime(d time.Duration) {
	c.in.SetSpinTime(d)
	c.out.SetSpinTime(d)
}

// SetNap sets the naps of both directions (see Queue.SetNap).
func (c *Conn) SetNap(interval, budget time.Duration) {
	c.in.SetNap(interval, budget)
	c.out.SetNap(interval, budget)
}
