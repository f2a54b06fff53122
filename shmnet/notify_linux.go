package shmnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// A blocked Read parks its goroutine in Go's netpoller instead of a
// futex system call, so that an idle connection holds no OS thread and
// many connections share few CPUs: each end sleeps on an eventfd of its
// own after raising its "asleep" word in a small shared page, and a
// writer that sees the word raised after it published writes the
// sleeper's eventfd. The word and the ring's publication are sequentially
// consistent on both sides (a store, then a load), so either the writer
// sees the sleeper or the sleeper's last look at the ring sees the data.
//
// A Write blocked on a full ring parks the same way, on a second eventfd
// of its end, with a second asleep word that the reader looks at after it
// takes a message.
//
// A parked end never reads its eventfd: it waits in the netpoller for the
// next write to it (the poller is edge-triggered: every write is an
// event, whatever the counter holds), and its own wake-ups (a deadline,
// Close, the peer's death) are a read deadline on its *os.File, which the
// poller honours without a system call. The other process shares the
// eventfd's file description and may read its counter away or clear
// O_NONBLOCK on it; neither can keep a parked call from its deadline or
// its Close, nor make it block a thread in read. What it can take away is
// only its own wake-ups of us.
//
// Page layout (an anonymous shm segment, kind raw, 256 bytes), one word
// (uint32) per cache line: the listener's reader asleep at 0, the
// dialer's reader at 64, the listener's writer at 128, the dialer's
// writer at 192.
const (
	notifySize            = 256
	offServerAsleep       = 0
	offClientAsleep       = 64
	offServerWriterAsleep = 128
	offClientWriterAsleep = 192
)

// noDeadline clears a descriptor's deadline.
var noDeadline time.Time

// notifier is one end's half of that scheme.
type notifier struct {
	page     *shm.Segment
	inAsleep *uint32  // ours: raised while our reader sleeps on in
	peerWord *uint32  // the other end's reader's
	in       *os.File // our reader's eventfd, waited on (in the netpoller) to sleep
	out      *os.File // the other end's reader's, written to wake it
	outFd    int      // out's descriptor, for the raw writes

	wAsleep   *uint32  // ours: raised while our writer sleeps on space
	peerWWord *uint32  // the other end's writer's
	space     *os.File // our writer's eventfd
	peerSpace *os.File // the other end's writer's
	peerSpFd  int

	inPark, spacePark parker // our reader's and our writer's waits
}

// parker waits on one of our eventfds in the netpoller without reading
// it (see above). One goroutine at a time uses it (Read's and Write's
// locks); it allocates nothing per wait.
type parker struct {
	f     *os.File
	rc    syscall.RawConn
	fn    func(uintptr) bool // p.ready, bound once
	word  *uint32            // our asleep word for this wait
	armed bool
}

func (p *parker) init(f *os.File, word *uint32) {
	p.f, p.word = f, word
	if rc, err := f.SyscallConn(); err == nil {
		p.rc = rc
	}
	p.fn = p.ready
}

// ready is the RawConn.Read callback, called once the poller has
// forgotten the events before it: the first time it waits for the next
// event unless a wake-up was already sent, which lowered our asleep word
// before writing the eventfd (wake, poke); after an event it is done.
func (p *parker) ready(uintptr) bool {
	if p.armed {
		p.armed = false
		return atomic.LoadUint32(p.word) == 0 // seq-cst
	}
	return true
}

// sleep parks the goroutine until the next write to p's eventfd (or one
// that came since the last sleep), or until our own epoch ends (self, a
// read deadline), and says whether to look at the ring again (nil) or
// give up (ctx's error, or the poller's).
func (p *parker) sleep(ctx *epoch) error {
	if p.rc == nil {
		return errors.New("shmnet: eventfd not pollable")
	}
	p.armed = true
	err := p.rc.Read(p.fn)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		// An earlier epoch's self-wake. An epoch that ends from now on
		// sets the deadline again after it is done, and the caller looks
		// at its epoch before it sleeps again.
		_ = p.f.SetReadDeadline(noDeadline)
		return nil
	}
	return err
}

// newNotifier completes n's descriptors.
func newNotifier(n *notifier) *notifier {
	n.outFd, n.peerSpFd = rawFd(n.out), rawFd(n.peerSpace)
	n.inPark.init(n.in, n.inAsleep)
	n.spacePark.init(n.space, n.wAsleep)
	return n
}

// newEventfd returns a non-blocking eventfd as an *os.File, which Go's
// netpoller waits on.
func newEventfd() (*os.File, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return os.NewFile(uintptr(fd), "eventfd"), nil
}

// wake wakes the other end if it sleeps: the first writer to see its
// asleep word raised lowers it and writes its eventfd, so that one
// wake-up costs one system call, not one per message until it runs.
func (n *notifier) wake() {
	// Seq-cst load and CAS, after our publication.
	if atomic.LoadUint32(n.peerWord) != 0 && atomic.CompareAndSwapUint32(n.peerWord, 1, 0) {
		signal(n.outFd)
	}
}

// poke wakes the other end's reader unconditionally (a close, a
// half-close: it must look at the ring again). Its asleep word goes to 0
// first, as wake's does, for a reader about to park (parker.ready).
func (n *notifier) poke() {
	atomic.StoreUint32(n.peerWord, 0)
	signal(n.outFd)
}

// pastDeadline is a read deadline that has passed: set on one of our
// eventfds' files, it wakes the goroutine parked on it.
var pastDeadline = time.Unix(1, 0)

// self wakes our own parked Read (a deadline passed, the connection
// ended), with a past read deadline: nothing the other process does to
// the eventfd can keep it from the parked goroutine.
func (n *notifier) self() { _ = n.in.SetReadDeadline(pastDeadline) }

// selfWriter wakes our own parked Write, likewise.
func (n *notifier) selfWriter() { _ = n.space.SetReadDeadline(pastDeadline) }

// pokeWriter wakes the other end's writer unconditionally (we closed:
// its Write must fail now), lowering its asleep word first.
func (n *notifier) pokeWriter() {
	atomic.StoreUint32(n.peerWWord, 0)
	signal(n.peerSpFd)
}

// wakeWriter wakes the other end's writer if it sleeps for room: called
// after we took a message (freeing ring space).
func (n *notifier) wakeWriter() {
	if atomic.LoadUint32(n.peerWWord) != 0 && atomic.CompareAndSwapUint32(n.peerWWord, 1, 0) {
		signal(n.peerSpFd)
	}
}

// signal adds 1 to the eventfd fd with a raw, non-blocking write. A
// sleeper never drains its counter (parker), so a full one (EAGAIN) was
// filled on purpose by the process that sleeps on it, which has thereby
// given up our wake-ups: the write is dropped, and must not make us wait
// in the poller.
//
// O_NONBLOCK is a flag of the file description, which the other process
// shares and may clear; with the counter full, a plain write would then
// block this thread (and Close, and Write past its deadline) until that
// process reads. So the write happens only when poll says it would not
// block (eventfd refuses RWF_NOWAIT). A peer that fills the counter
// between the poll and the write still can; it must race for that.
func signal(fd int) {
	one := [8]byte{1}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	for err == unix.EINTR { // a lost wake-up would leave the sleeper asleep
		n, err = unix.Poll(pfd, 0)
	}
	if err != nil || n != 1 || pfd[0].Revents&unix.POLLOUT == 0 {
		return // full (its sleeper filled it) or broken: nothing to do
	}
	for {
		if _, err := unix.Write(fd, one[:]); err != unix.EINTR {
			return
		}
	}
}

func (n *notifier) close() {
	n.in.Close()
	n.out.Close()
	n.space.Close()
	n.peerSpace.Close()
	n.page.Close()
}

// dialerSide creates the pipe, the page and both eventfds, and sends the
// listener its four descriptors in one message.
func dialerSide(uc *net.UnixConn, cfg ring.Config) (*ring.Conn, *notifier, error) {
	pipe, err := ring.NewPipe(cfg)
	if err != nil {
		return nil, nil, err
	}
	page, err := shm.CreateAnonymous(notifySize, shm.WithKind(shm.KindRaw))
	if err != nil {
		pipe.Close()
		return nil, nil, err
	}
	var evs [4]*os.File // listener reader, dialer reader, listener writer, dialer writer
	for i := range evs {
		if evs[i], err = newEventfd(); err != nil {
			pipe.Close()
			page.Close()
			for _, f := range evs[:i] {
				f.Close()
			}
			return nil, nil, err
		}
	}
	n := newNotifier(&notifier{page: page, in: evs[1], out: evs[0], space: evs[3], peerSpace: evs[2],
		inAsleep: word(page, offClientAsleep), peerWord: word(page, offServerAsleep),
		wAsleep: word(page, offClientWriterAsleep), peerWWord: word(page, offServerWriterAsleep)})
	rights := unix.UnixRights(rawFd(pipe.File()), rawFd(page.File()), rawFd(evs[0]), rawFd(evs[1]), rawFd(evs[2]), rawFd(evs[3]))
	if _, _, err := uc.WriteMsgUnix([]byte{'P'}, rights, nil); err != nil {
		pipe.Close()
		n.close()
		return nil, nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return pipe, n, nil
}

// listenerSide receives what dialerSide sent and attaches to it,
// validating each descriptor (a hostile client may send anything).
func listenerSide(ctx context.Context, uc *net.UnixConn) (*ring.Conn, *notifier, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetReadDeadline(dl)
		defer uc.SetReadDeadline(noDeadline)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(6*4))
	n, oobn, flags, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range cmsgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, got...)
			}
		}
	}
	closeFds := func(fds []int) {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if n != 1 || buf[0] != 'P' || len(fds) != 6 || flags&unix.MSG_CTRUNC != 0 {
		closeFds(fds)
		return nil, nil, fmt.Errorf("shmnet: bad handshake from the client (%d bytes, %d descriptors)", n, len(fds))
	}
	// The eventfds first: they must be eventfds, and non-blocking, for
	// the netpoller (O_NONBLOCK is the client's too: the same file).
	for _, fd := range fds[2:] {
		link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil || link != "anon_inode:[eventfd]" {
			closeFds(fds)
			return nil, nil, errors.New("shmnet: the client's wake-up descriptors are not eventfds")
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			closeFds(fds)
			return nil, nil, err
		}
	}
	pf, gf := os.NewFile(uintptr(fds[0]), "pipe"), os.NewFile(uintptr(fds[1]), "page")
	defer pf.Close() // the segments keep their own
	defer gf.Close()
	pipe, err := ring.OpenPipeFile(ctx, pf)
	if err != nil {
		closeFds(fds[2:])
		return nil, nil, err
	}
	if !pipe.Segment().Sealed() {
		// A segment the client may still shrink would fault us (SIGBUS)
		// when it does.
		pipe.Close()
		closeFds(fds[2:])
		return nil, nil, errors.New("shmnet: the client's pipe segment is not size-sealed")
	}
	if pipe.MaxMessage() < 1 {
		// Valid for a ring, but no stream byte fits in a message: our
		// Write would send empty messages for ever.
		pipe.Close()
		closeFds(fds[2:])
		return nil, nil, fmt.Errorf("%w: the client's pipe has MaxMessage 0", shm.ErrCorrupt)
	}
	page, err := shm.OpenFile(ctx, gf, shm.WithKind(shm.KindRaw))
	if err == nil && (page.Size() < notifySize || !page.Sealed()) {
		page.Close()
		err = fmt.Errorf("%w: notification page of %d bytes (sealed: a must)", shm.ErrCorrupt, page.Size())
	}
	if err != nil {
		pipe.Close()
		closeFds(fds[2:])
		return nil, nil, err
	}
	ev := func(i int) *os.File { return os.NewFile(uintptr(fds[i]), "eventfd") }
	return pipe, newNotifier(&notifier{page: page, in: ev(2), out: ev(3), space: ev(4), peerSpace: ev(5),
		inAsleep: word(page, offServerAsleep), peerWord: word(page, offClientAsleep),
		wAsleep: word(page, offServerWriterAsleep), peerWWord: word(page, offClientWriterAsleep)}), nil
}

// rawFd returns f's descriptor without f.Fd's side effect of making it
// blocking (which, on a shared file description, the other process would
// see too).
func rawFd(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

func word(page *shm.Segment, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&page.Bytes()[off]))
}
