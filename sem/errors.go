package sem

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/shmkit/shmkit/shm"
)

var (
	// ErrOwnerDead is returned by Lock and TryLock together with the lock:
	// the caller holds the Mutex, but a previous owner died while holding
	// it, so what it guards may be half-updated. Repair it, then call
	// MarkConsistent. Until then every Lock returns ErrOwnerDead.
	//
	// The error actually returned is an *OwnerDeadError naming the dead
	// owner; errors.Is(err, ErrOwnerDead) matches it.
	ErrOwnerDead = errors.New("sem: previous owner died holding the lock")

	// ErrNotOwner is returned by Unlock and MarkConsistent when the calling
	// process does not hold the Mutex. The error actually returned is an
	// *NotOwnerError naming the holder; errors.Is(err, ErrNotOwner)
	// matches it.
	ErrNotOwner = errors.New("sem: mutex not held by this process")

	// ErrOverRelease is returned by Release when the count would pass the
	// Semaphore's maximum (or the 32-bit limit of an unbounded one).
	ErrOverRelease = errors.New("sem: semaphore released too many times")

	// ErrBrokenBarrier is returned by Barrier.Wait when the barrier is
	// broken (as Python's threading.BrokenBarrierError): Abort was called,
	// a party's context ended while it waited, a party died while it
	// waited, or Reset was called while parties waited. The error
	// actually returned is a *BrokenBarrierError saying which.
	ErrBrokenBarrier = errors.New("sem: barrier is broken")

	// ErrCorrupt reports shared memory that does not hold a valid object:
	// wrong magic, unknown flag bits, an impossible state word.
	// It is shm.ErrCorrupt.
	ErrCorrupt = shm.ErrCorrupt

	// ErrVersion reports an object with the right magic and a format
	// version this package does not know (written by a newer peer). It is
	// shm.ErrVersion: every layer reports an unknown version this way.
	ErrVersion = shm.ErrVersion

	// ErrBadMemory is returned when the memory given to an Init or At
	// function is shorter than the object or not 8-byte aligned.
	ErrBadMemory = errors.New("sem: memory too short or not 8-byte aligned")

	// ErrNotSupported is returned on systems without futexes (anything but
	// Linux).
	// It is shm.ErrNotSupported.
	ErrNotSupported = shm.ErrNotSupported

	// ErrClosed is returned by every method after Close. It is fs.ErrClosed.
	ErrClosed = fs.ErrClosed
)

// OwnerDeadError is the ErrOwnerDead result of Lock and TryLock (and of
// Cond.Wait, whose relock is a Lock): it names the owner whose death left
// the Mutex inconsistent. errors.Is(err, ErrOwnerDead) is true for it.
type OwnerDeadError struct {
	// Pid is the dead owner's process id, 0 if unknown (a Mutex
	// made inconsistent by a version of shmkit that did not record it).
	Pid int
	// Start is the dead owner's start time (clock ticks after boot, field
	// 22 of /proc/PID/stat), 0 if it never recorded it (it died right
	// after acquiring) or is unknown.
	Start uint64
}

// Error names the dead owner.
func (e *OwnerDeadError) Error() string {
	if e.Pid == 0 {
		return ErrOwnerDead.Error()
	}
	if e.Start == 0 {
		return fmt.Sprintf("sem: previous owner (pid %d) died holding the lock", e.Pid)
	}
	return fmt.Sprintf("sem: previous owner (pid %d, start time %d) died holding the lock", e.Pid, e.Start)
}

// Is reports whether target is ErrOwnerDead.
func (e *OwnerDeadError) Is(target error) bool { return target == ErrOwnerDead }

// NotOwnerError is the ErrNotOwner result of Unlock and MarkConsistent:
// it names the process that holds the Mutex (0 when it is unlocked).
// errors.Is(err, ErrNotOwner) is true for it.
type NotOwnerError struct {
	// Owner is the pid of the process holding the Mutex when the call
	// looked, or 0 if it was unlocked.
	Owner int
}

// Error names the holder.
func (e *NotOwnerError) Error() string {
	if e.Owner == 0 {
		return "sem: mutex not held by this process (it is unlocked)"
	}
	return fmt.Sprintf("sem: mutex not held by this process (held by pid %d)", e.Owner)
}

// Is reports whether target is ErrNotOwner.
func (e *NotOwnerError) Is(target error) bool { return target == ErrNotOwner }

// BrokenReason says why a Barrier broke.
type BrokenReason uint8

// Reasons a Barrier breaks, as recorded in the barrier and reported by
// BrokenBarrierError.
const (
	BrokenUnknown BrokenReason = iota // not recorded (a peer wrote no reason)
	BrokenAborted                     // Abort was called
	BrokenTimeout                     // a waiting party's context ended
	BrokenDied                        // a waiting party died
	BrokenReset                       // Reset was called while parties waited
)

var reasonNames = [...]string{
	BrokenUnknown: "broken",
	BrokenAborted: "aborted",
	BrokenTimeout: "a party's context ended",
	BrokenDied:    "a party died while waiting",
	BrokenReset:   "reset while parties waited",
}

// String describes the reason.
func (r BrokenReason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("BrokenReason(%d)", uint8(r))
}

// BrokenBarrierError is the ErrBrokenBarrier result of Barrier.Wait.
// errors.Is(err, ErrBrokenBarrier) is true for it; when this party's own
// context ended, errors.Is(err, ctx.Err()) is true as well.
type BrokenBarrierError struct {
	// Reason says why the barrier broke.
	Reason BrokenReason
	// Pid is the process that broke it: the one that died, aborted, reset
	// it or whose context ended (0 if unknown). For BrokenDied it is the
	// dead party; the barrier records the first reason only.
	Pid int
	// Err is this party's own context error when that is what broke the
	// barrier for it, otherwise nil.
	Err error
}

// Error describes why the barrier is broken.
func (e *BrokenBarrierError) Error() string {
	msg := "sem: barrier is broken: " + e.Reason.String()
	if e.Pid != 0 {
		msg += fmt.Sprintf(" (pid %d)", e.Pid)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrBrokenBarrier.
func (e *BrokenBarrierError) Is(target error) bool { return target == ErrBrokenBarrier }

// Unwrap returns the context error, if any.
func (e *BrokenBarrierError) Unwrap() error { return e.Err }

// orBackground treats a nil context as context.Background(), so that no
// function of this package panics on one.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
