//go:build linux

package futex

import (
	"context"
	"errors"
	"math"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux futex operations (include/uapi/linux/futex.h). FUTEX_PRIVATE_FLAG
// is deliberately absent: the waiters are in other processes.
const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Supported reports whether futexes work on this system.
const Supported = true

// calls counts futex system calls (see Calls). It is bumped next to the
// system call only, never on a caller's fast path.
var calls atomic.Uint64

// Calls returns the number of futex system calls this process has made
// through this package so far (Wait, Wake, WakeAll and WaitContext, the
// wake-up a cancellation sends included). Tests use it to prove that a
// path makes no system call; the count is process-wide, so compare two
// readings taken around code that nothing else runs beside.
func Calls() uint64 { return calls.Load() }

// Wait sleeps while *addr == val, until woken, until timeout elapses
// (timeout <= 0 means no limit), or until a signal interrupts it.
//
// It returns nil when woken, when *addr no longer held val on entry, or on
// a spurious wake-up; ErrTimeout when the timeout elapsed; and a wrapped
// syscall error for anything else (EFAULT for an unmapped address).
func Wait(addr *uint32, val uint32, timeout time.Duration) error {
	var tsp uintptr
	var ts unix.Timespec
	if timeout > 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = uintptr(unsafe.Pointer(&ts))
	}
	calls.Add(1)
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait, uintptr(val), tsp, 0, 0)
	switch errno {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	default:
		return os.NewSyscallError("futex_wait", errno)
	}
}

// Wake wakes at most n waiters sleeping on addr and returns how many it woke.
func Wake(addr *uint32, n int) (int, error) {
	if n > math.MaxInt32 {
		n = math.MaxInt32
	}
	calls.Add(1)
	r, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0, os.NewSyscallError("futex_wake", errno)
	}
	return int(r), nil
}

// WakeAll wakes every waiter sleeping on addr.
func WakeAll(addr *uint32) (int, error) { return Wake(addr, math.MaxInt32) }

// WaitContext is Wait bounded by ctx as well as by timeout.
//
// It returns ctx.Err() once ctx is done. A cancellation wakes every waiter
// on addr (the others see a spurious wake and sleep again); the timeout
// bounds the small window in which a cancellation that lands just before
// the sleep begins goes unnoticed, so callers pass a finite timeout.
//
// On the path where ctx can be cancelled it allocates (context.AfterFunc);
// it is only used after spinning failed, next to a system call.
func WaitContext(ctx context.Context, addr *uint32, val uint32, timeout time.Duration) error {
	done := ctx.Done()
	if done == nil {
		return Wait(addr, val, timeout)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	capped := false
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		if timeout <= 0 || left < timeout {
			timeout, capped = left, true
		}
	}
	stop := context.AfterFunc(ctx, func() { _, _ = WakeAll(addr) })
	err := Wait(addr, val, timeout)
	stop()
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if capped && errors.Is(err, ErrTimeout) {
		// The kernel's clock ran out before the context's timer fired.
		return context.DeadlineExceeded
	}
	return err
}

// Yield gives the CPU to another runnable thread, if any (sched_yield): a
// spinning waiter calls it so that the process it waits for, when it
// shares the CPU, gets to run.
func Yield() { _, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
