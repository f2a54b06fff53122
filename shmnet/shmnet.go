package shmnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// Defaults.
const (
	// DefaultMaxMessage is the largest ring message: a Write of more is
	// split, and a Read buffer this large receives a message without a
	// second copy.
	DefaultMaxMessage = 64 << 10
	// DefaultRingSize is the bytes of ring each direction has (16
	// messages of DefaultMaxMessage).
	DefaultRingSize = 1 << 20
	// DefaultSpinTime is how long a blocked Read or Write polls before it
	// sleeps (ring.DefaultSpinTime).
	DefaultSpinTime = ring.DefaultSpinTime
	// handshakeTimeout bounds a connection's set-up on the listener's
	// side, so that a client that connects and says nothing costs
	// nothing.
	handshakeTimeout = 5 * time.Second
)

// Option configures Listen and Dial.
type Option func(*options)

type options struct {
	maxMsg, ringSize int
	spin             time.Duration
	anyUser          bool
	err              error
}

// WithMaxMessage sets the largest message of the rings a Dial creates
// (default DefaultMaxMessage); a Write is split into messages of this
// size. Small values suit small RPCs, large ones large bodies.
func WithMaxMessage(n int) Option {
	return func(o *options) {
		if n <= 0 || n > 1<<30 {
			o.err = fmt.Errorf("shmnet: WithMaxMessage(%d): want 1 byte to 1 GiB", n)
		}
		o.maxMsg = n
	}
}

// WithRingSize sets the bytes of ring a Dial creates for each direction
// (default DefaultRingSize, at least two messages): how much a writer may
// run ahead of its reader.
func WithRingSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			o.err = fmt.Errorf("shmnet: WithRingSize(%d): want a positive size", n)
		}
		o.ringSize = n
	}
}

// WithSpinTime sets how long a blocked Read or Write polls the ring
// before it sleeps on a futex (default DefaultSpinTime; 0 sleeps at once).
func WithSpinTime(d time.Duration) Option { return func(o *options) { o.spin = max(d, 0) } }

// AllowAnyUser lets processes of other users connect to a listener, and
// a Dial connect to another user's listener (default: only the same
// user, both ways; the peer's credentials are checked with SO_PEERCRED,
// since anyone may bind an abstract socket name).
func AllowAnyUser() Option { return func(o *options) { o.anyUser = true } }

func collect(opts []Option) (options, error) {
	o := options{maxMsg: DefaultMaxMessage, ringSize: DefaultRingSize, spin: DefaultSpinTime}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o, o.err
}

// sockAddr is the abstract Unix socket a name listens on: nothing in the
// file system, so a dead listener leaves no stale file behind.
func sockAddr(name string) (*net.UnixAddr, error) {
	if name == "" || len(name) > 90 || strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("shmnet: invalid name %q: want 1 to 90 bytes without NUL", name)
	}
	return &net.UnixAddr{Name: "@shmkit/" + name, Net: "unix"}, nil
}

// Test hooks: testHookReplied runs in the listener after it said yes to
// a dialer, before the connection is queued for Accept; testHookReply
// runs in the dialer before it reads the listener's reply.
var testHookReplied, testHookReply func()

// Reply bytes of the handshake.
const (
	replyOK      = 'O'
	replyRefused = 'R'
)

// Listener accepts shmnet connections on a name. It implements
// net.Listener.
type Listener struct {
	name  string
	ln    *net.UnixListener
	opts  options
	conns chan *Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	shake map[*net.UnixConn]bool // connections in their handshake, closed by Close
	ctx   context.Context        // cancelled by Close: ends handshakes waiting on a client's segment
	stop  context.CancelFunc
}

// Listen listens on name (any string of 1 to 90 bytes without NUL; one
// listener per name on the machine, in this network namespace). Clients
// connect with Dial(ctx, name).
func Listen(name string, opts ...Option) (*Listener, error) {
	o, err := collect(opts)
	if err != nil {
		return nil, err
	}
	addr, err := sockAddr(name)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("shmnet: listen %s: %w", name, err)
	}
	l := &Listener{name: name, ln: ln, opts: o, conns: make(chan *Conn), done: make(chan struct{}),
		shake: map[*net.UnixConn]bool{}}
	l.ctx, l.stop = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		uc, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond): // EMFILE and the like: try again
			}
			continue
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			uc.Close()
			return
		default:
		}
		l.shake[uc] = true
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c, err := l.handshake(uc)
			if err != nil {
				l.mu.Lock()
				delete(l.shake, uc)
				l.mu.Unlock()
				uc.Close()
				return
			}
			select {
			case l.conns <- c:
			case <-l.done:
				// Dialed but never accepted: closed as a connection is
				// (the dialer reads io.EOF), not dropped as a dead one.
				c.Close()
			}
		}()
	}
}

// handshake checks the client's credentials, receives its pipe and says
// yes.
func (l *Listener) handshake(uc *net.UnixConn) (*Conn, error) {
	cred, err := peerCred(uc)
	if err != nil {
		return nil, err
	}
	if !l.opts.anyUser && cred.uid != os.Getuid() {
		_, _ = uc.Write([]byte{replyRefused})
		return nil, fmt.Errorf("shmnet: a process of user %d refused", cred.uid)
	}
	ctx, cancel := context.WithTimeout(l.ctx, handshakeTimeout)
	defer cancel()
	pipe, note, err := listenerSide(ctx, uc)
	if err != nil {
		return nil, err
	}
	// From the yes on, the socket belongs to a connection, which Close
	// must end with a goodbye rather than drop (the dialer would take a
	// dropped socket for our death): it leaves the handshakes Close
	// drops before the yes is sent, and no yes follows a Close.
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		pipe.Close()
		note.close()
		return nil, net.ErrClosed
	default:
	}
	delete(l.shake, uc)
	l.mu.Unlock()
	if _, err := uc.Write([]byte{replyOK}); err != nil {
		pipe.Close()
		note.close()
		return nil, err
	}
	if testHookReplied != nil {
		testHookReplied()
	}
	return newConn(pipe, note, uc, Addr{Name: l.name, Pid: os.Getpid()}, Addr{Name: l.name, Pid: cred.pid}, l.opts.spin), nil
}

// Accept waits for the next connection. After Close it returns an error
// that matches net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "shmkit", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops listening: Accept returns, dials fail with ErrRefused, and
// connections being set up are dropped at once (a handshake waiting for a
// client's segment included). Connections it said yes to that no Accept
// took are closed as connections are: their dialers read io.EOF.
// Accepted connections stay open.
func (l *Listener) Close() error {
	err := error(&net.OpError{Op: "close", Net: "shmkit", Addr: l.Addr(), Err: net.ErrClosed})
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		l.stop() // a handshake waiting for the client's segment to be ready
		for uc := range l.shake {
			uc.Close() // its handshake fails at once
		}
		l.mu.Unlock()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

// Addr returns the listener's address: its name.
func (l *Listener) Addr() net.Addr { return Addr{Name: l.name} }

var _ net.Listener = (*Listener)(nil)

// Dial connects to the listener on name. ctx bounds the connection's
// set-up (nil: no bound); once connected, its end no longer matters. It
// fails at once with an error matching ErrRefused when nobody listens
// there. A Dial that fails after the listener said yes (ctx ended first)
// closes its end, so the connection Accept returns reads io.EOF.
func Dial(ctx context.Context, name string, opts ...Option) (*Conn, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	o, err := collect(opts)
	if err != nil {
		return nil, err
	}
	addr, err := sockAddr(name)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", addr.String())
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			err = ErrRefused
		}
		return nil, &net.OpError{Op: "dial", Net: "shmkit", Addr: Addr{Name: name}, Err: err}
	}
	uc := nc.(*net.UnixConn)
	c, err := dialOver(ctx, uc, name, o)
	if err != nil {
		uc.Close()
		return nil, &net.OpError{Op: "dial", Net: "shmkit", Addr: Addr{Name: name}, Err: err}
	}
	return c, nil
}

func dialOver(ctx context.Context, uc *net.UnixConn, name string, o options) (*Conn, error) {
	cfg := ring.Config{MaxMessage: o.maxMsg, Capacity: max(2, o.ringSize/max(o.maxMsg, 1))}
	cred, err := peerCred(uc)
	if err != nil {
		return nil, err
	}
	// Anyone may bind an abstract name: the listener must be our own
	// user's, unless told otherwise, or it would read our traffic.
	if !o.anyUser && cred.uid != os.Getuid() {
		return nil, fmt.Errorf("%w: the listener on %s is user %d's", ErrRefused, name, cred.uid)
	}
	// A listener that refused us may have closed already; either way
	// it did not take the pipe (dialerSide says ErrRefused).
	pipe, note, err := dialerSide(uc, cfg)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = uc.SetReadDeadline(time.Unix(1, 0)) })
	if testHookReply != nil {
		testHookReply()
	}
	var b [1]byte
	_, err = uc.Read(b[:])
	stop()
	_ = uc.SetReadDeadline(time.Time{})
	switch {
	case err == nil && b[0] == replyOK:
		// Connected: a context that ends now no longer matters (as
		// with net.Dialer).
	case err == nil:
		err = ErrRefused
	case ctx.Err() != nil:
		err = ctx.Err()
	default:
		err = fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if err != nil {
		// The listener may have said yes meanwhile and queued the
		// connection for Accept: close it as a connection is (its
		// reads end with io.EOF), not as a death.
		_ = pipe.CloseWrite()
		pipe.Close()
		note.poke()
		note.close()
		_, _ = uc.Write([]byte{goodbye})
		return nil, err
	}
	return newConn(pipe, note, uc, Addr{Name: name, Pid: os.Getpid()}, Addr{Name: name, Pid: cred.pid}, o.spin), nil
}

// Dialer returns a function of the shape http.Transport.DialContext
// wants, which dials name whatever address it is given (so that
// net/http's host names do not matter).
func Dialer(name string, opts ...Option) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) { return Dial(ctx, name, opts...) }
}

// ContextDialer returns a function of the shape grpc.WithContextDialer
// wants, which dials name whatever address it is given.
func ContextDialer(name string, opts ...Option) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) { return Dial(ctx, name, opts...) }
}
