package ring

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// napper parks a goroutine for a short, precise time without holding an
// OS thread: a timerfd, armed for the nap and read through Go's netpoller.
// A futex sleep (or nanosleep) blocks the calling thread in a system call,
// and the Go runtime then has to hand that thread's P to another thread
// (sysmon's retake and a thread wake-up) for the process's other
// goroutines to run; in a process that is busy with other work, that
// costs more than the sleep. time.Sleep parks the goroutine, but an idle
// Go program rounds a sleep under a millisecond up to about one.
type napper struct {
	f    *os.File    // the timerfd, pollable (non-blocking)
	busy atomic.Bool // a nap is in progress: the timer is armed for it
}

// errNapBusy is nap's error when another goroutine naps on the napper: a
// second arming would take the first one's expiry, and one of the two
// would then wait for a timer that never fires. Only a handle used
// against its contract (two goroutines on one side at once) gets it; its
// call then sleeps on the futex as without naps.
var errNapBusy = errors.New("ring: napper in use")

func newNapper() (*napper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	return &napper{f: os.NewFile(uintptr(fd), "ring-nap")}, nil
}

// nap parks the calling goroutine for d (at least 1 ns). It fails once
// the napper is closed, also when that happens during the nap.
func (n *napper) nap(d time.Duration) error {
	if !n.busy.CompareAndSwap(false, true) {
		return errNapBusy
	}
	defer n.busy.Store(false)
	rc, err := n.f.SyscallConn()
	if err != nil {
		return err
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}
	var serr error
	// Control holds the descriptor open for the call: a concurrent close
	// cannot hand its number to another file meanwhile.
	if err := rc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("timerfd_settime", serr)
	}
	var expirations [8]byte
	_, err = n.f.Read(expirations[:]) // parks in the netpoller until the timer fires
	return err
}

func (n *napper) close() error { return n.f.Close() }
