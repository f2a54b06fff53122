package shmnet

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// Errors. Each matches with errors.Is.
var (
	// ErrPeerDied is returned by Read and Write when the process at the
	// other end died without closing the connection (what it sent before
	// dying is read first). It matches ring.ErrPeerDied and
	// syscall.ECONNRESET.
	ErrPeerDied error = peerDiedError{}

	// ErrRefused is returned by Dial when nobody listens on the name, or
	// the listener refused the connection (another user's, by default).
	// It matches syscall.ECONNREFUSED.
	ErrRefused error = refusedError{}
)

type peerDiedError struct{}

func (peerDiedError) Error() string { return "shmnet: peer process died" }
func (peerDiedError) Is(target error) bool {
	return target == ring.ErrPeerDied || target == syscall.ECONNRESET
}

type refusedError struct{}

func (refusedError) Error() string { return "shmnet: connection refused" }
func (refusedError) Is(target error) bool {
	return target == syscall.ECONNREFUSED
}

// errTimeout is a deadline's reason: os.ErrDeadlineExceeded, a net.Error
// whose Timeout is true.
var errTimeout = os.ErrDeadlineExceeded

// Addr is the address of one end of a shmnet connection or listener.
type Addr struct {
	Name string // the listener's name
	Pid  int    // the process at this end (0 for a listener)
}

// Network returns "shmkit".
func (a Addr) Network() string { return "shmkit" }

// String returns the name, with the pid of the process at that end.
func (a Addr) String() string {
	if a.Pid == 0 {
		return a.Name
	}
	return a.Name + " (pid " + itoa(a.Pid) + ")"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Conn is a net.Conn over shared memory: a stream of bytes each way
// through a ring, set up over a Unix socket that stays open so that the
// death of the other process is noticed at once. It is safe for
// concurrent use as net.Conn requires: one Read and one Write may run at
// a time each, from different goroutines, with Close and the deadline
// setters from any goroutine.
type Conn struct {
	pipe          *ring.Conn
	note          *notifier
	sock          *net.UnixConn // the rendezvous; EOF on it without a goodbye: the peer died
	local, remote Addr
	maxMsg        int

	rd, wd *deadline
	rmu    sync.Mutex   // one Read at a time
	wmu    sync.Mutex   // one Write at a time
	life   sync.RWMutex // CloseWrite (read) against the end of Close (write)

	spin      time.Duration // how long a blocked Read polls before it parks
	closed    atomic.Bool
	peerDead  atomic.Bool
	closeOnce sync.Once
	closeErr  error
	watchDone chan struct{}
}

// goodbye is the byte a closing end writes on the socket: EOF after it is
// a close, EOF without it the death of the process.
const goodbye = 'B'

func newConn(pipe *ring.Conn, note *notifier, sock *net.UnixConn, local, remote Addr, spin time.Duration) *Conn {
	c := &Conn{pipe: pipe, note: note, sock: sock, local: local, remote: remote, maxMsg: pipe.MaxMessage(),
		watchDone: make(chan struct{}), spin: spin}
	// A read epoch that finishes (its deadline, Close, the peer's death)
	// sets a past read deadline on our eventfd's file, so that a parked
	// Read looks again whatever the other process did to the descriptor.
	c.rd, c.wd = newDeadline(note.self), newDeadline(note.selfWriter)
	if spin >= 0 {
		pipe.SetSpinTime(spin)
	}
	go c.watch()
	return c
}

// watch reads the socket until it ends: a goodbye means the peer closed
// (the ring tells the rest); EOF or an error without one means the peer
// process died, and the calls blocked on it fail at once.
func (c *Conn) watch() {
	defer close(c.watchDone)
	var b [1]byte
	for {
		n, err := c.sock.Read(b[:])
		if n == 1 && b[0] == goodbye {
			return
		}
		if err != nil {
			if !c.closed.Load() {
				c.peerDead.Store(true)
				c.rd.end(ErrPeerDied) // wakes a parked Read
				c.wd.end(ErrPeerDied)
			}
			return
		}
	}
}

// Read reads from the incoming stream, straight from the ring into p. It
// returns io.EOF after the other end closed (or CloseWrite) once
// everything it sent is read.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	ctx := c.rd.ctx()
	if err := ctx.Err(); err != nil {
		return c.readDead(p, err)
	}
	n, err := c.recv(ctx, p)
	if err != nil {
		return c.readErr(p, err)
	}
	c.note.wakeWriter() // we may have freed room for a writer asleep on it
	return n, nil
}

// recv reads into buf: it polls the ring for c.spin, then parks in the
// netpoller on this end's eventfd (see notifier) until the other end
// writes, the deadline passes, or the connection ends.
func (c *Conn) recv(ctx *epoch, buf []byte) (int, error) {
	var end time.Time
	for i := 0; ; i++ {
		n, ok, err := c.pipe.TryRead(buf)
		if ok || err != nil {
			return n, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if i&63 != 63 {
			continue
		}
		now := time.Now()
		if end.IsZero() {
			end = now.Add(c.spin)
		}
		if !now.Before(end) {
			break
		}
		runtime.Gosched()
	}
	for {
		atomic.StoreUint32(c.note.inAsleep, 1) // seq-cst: before our last look at the ring
		n, ok, err := c.pipe.TryRead(buf)
		if ok || err != nil {
			atomic.StoreUint32(c.note.inAsleep, 0)
			return n, err
		}
		if err := ctx.Err(); err != nil {
			atomic.StoreUint32(c.note.inAsleep, 0)
			return 0, err
		}
		// TryRead may have released empty messages (Write(nil)) without
		// returning bytes: a writer parked on the full ring must hear of
		// the room, or both ends sleep for good.
		c.note.wakeWriter()
		// Woken by the writer, or by our own epoch finishing (the
		// deadline, Close, the peer's death: deadline.onFinish); either
		// way the loop looks at the ring, then at the epoch.
		err = c.note.inPark.sleep(ctx)
		atomic.StoreUint32(c.note.inAsleep, 0)
		if err != nil {
			return 0, err
		}
	}
}

// readDead is Read once the read deadline has passed or the peer died:
// a dead peer's last messages are still read, then io.EOF if it had
// half-closed (CloseWrite) before it died.
func (c *Conn) readDead(p []byte, why error) (int, error) {
	if why == ErrPeerDied {
		n, ok, err := c.pipe.TryRead(p)
		switch {
		case ok && err == nil:
			return n, nil
		case errors.Is(err, io.EOF):
			// It half-closed before it died: its stream ended cleanly.
			return 0, io.EOF
		}
	}
	return 0, c.opErr("read", why)
}

func (c *Conn) readErr(p []byte, err error) (int, error) {
	switch {
	case errors.Is(err, io.EOF):
		return 0, io.EOF
	case c.closed.Load():
		return 0, c.opErr("read", net.ErrClosed)
	case errors.Is(err, ring.ErrPeerDied):
		return c.readDead(p, ErrPeerDied)
	}
	if e := c.rd.ctx().Err(); e != nil {
		return c.readDead(p, e)
	}
	return 0, c.opErr("read", err)
}

// Write writes p to the outgoing stream, in messages of at most the
// ring's MaxMessage bytes, waiting while the ring is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if c.maxMsg < 1 && len(p) > 0 {
		return 0, c.opErr("write", ring.ErrTooLarge) // no stream byte fits in a message
	}
	done := 0
	for done < len(p) || len(p) == 0 {
		ctx := c.wd.ctx()
		if err := ctx.Err(); err != nil {
			return done, c.opErr("write", err)
		}
		end := min(len(p), done+c.maxMsg)
		if err := c.send(ctx, p[done:end]); err != nil {
			return done, c.writeErr(err)
		}
		c.note.wake()
		done = end
		if len(p) == 0 {
			break
		}
	}
	return done, nil
}

// send puts one message into the ring: when it is full it polls for
// c.spin, then parks in the netpoller on this end's space eventfd until
// the reader takes a message (it looks at our writer's asleep word after
// each), the deadline passes or the connection ends, as recv does.
func (c *Conn) send(ctx *epoch, m []byte) error {
	var start time.Time
	for i := 0; ; i++ {
		ok, err := c.pipe.TrySend(m)
		if ok || err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if i&63 != 63 {
			continue
		}
		now := time.Now()
		if start.IsZero() {
			start = now
		}
		if now.Sub(start) >= c.spin {
			break
		}
		runtime.Gosched()
	}
	for {
		atomic.StoreUint32(c.note.wAsleep, 1) // seq-cst: before our last look at the ring
		ok, err := c.pipe.TrySend(m)
		if ok || err != nil {
			atomic.StoreUint32(c.note.wAsleep, 0)
			return err
		}
		if err := ctx.Err(); err != nil {
			atomic.StoreUint32(c.note.wAsleep, 0)
			return err
		}
		err = c.note.spacePark.sleep(ctx)
		atomic.StoreUint32(c.note.wAsleep, 0)
		if err != nil {
			return err
		}
	}
}

func (c *Conn) writeErr(err error) error {
	switch {
	case c.closed.Load():
		return c.opErr("write", net.ErrClosed)
	case c.peerDead.Load() || errors.Is(err, ring.ErrPeerDied):
		return c.opErr("write", ErrPeerDied)
	case errors.Is(err, ring.ErrClosed):
		return c.opErr("write", syscall.EPIPE) // the other end closed, or CloseWrite
	}
	if e := c.wd.ctx().Err(); e != nil {
		return c.opErr("write", e)
	}
	return c.opErr("write", err)
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "shmkit", Source: c.local, Addr: c.remote, Err: err}
}

// CloseWrite closes the outgoing direction: the other end reads what was
// written and then io.EOF; this end can still read.
func (c *Conn) CloseWrite() error {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if err := c.pipe.CloseWrite(); err != nil && !errors.Is(err, ring.ErrClosed) {
		return c.opErr("close", err)
	}
	c.note.poke()       // a parked Read at the other end looks again, and sees io.EOF
	c.note.selfWriter() // a Write of ours parked on a full ring fails now
	return nil
}

// Close closes the connection: blocked Reads and Writes return
// net.ErrClosed at once, the other end reads what was written and then
// io.EOF, and its Writes fail.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closed.Store(true)
		c.rd.end(net.ErrClosed) // wakes our parked Read
		c.wd.end(net.ErrClosed)
		_ = c.pipe.CloseWrite() // the peer's reads end after our data
		c.note.poke()
		// Blocked calls are leaving (their contexts are done); the ring
		// handle may be closed once they have.
		c.rmu.Lock()
		c.wmu.Lock()
		c.life.Lock()         // no CloseWrite in flight on the ring or the eventfds
		err := c.pipe.Close() // both directions: the peer's Writes fail too
		c.note.pokeWriter()   // the peer's Write parked on a full ring looks again
		c.wmu.Unlock()
		c.rmu.Unlock()
		_, _ = c.sock.Write([]byte{goodbye})
		if cerr := c.sock.Close(); err == nil {
			err = cerr
		}
		<-c.watchDone
		c.note.close()
		c.life.Unlock()
		c.closeErr = err
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return c.closeErr
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other end's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline of pending and future Reads: past it
// they fail with an error that matches os.ErrDeadlineExceeded (a net.Error
// whose Timeout is true). Zero means none.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of pending and future Writes, as
// SetReadDeadline does for Reads.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set deadline", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

var _ net.Conn = (*Conn)(nil)
