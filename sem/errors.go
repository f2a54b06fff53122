package sem

import (
	"errors"
	"io/fs"

	"github.com/shmkit/shmkit/shm"
)

var (
	// ErrOwnerDead is returned by Lock and TryLock together with the lock:
	// the caller holds the Mutex, but a previous owner died while holding
	// it, so what it guards may be half-updated. Repair it, then call
	// MarkConsistent. Until then every Lock returns ErrOwnerDead.
	ErrOwnerDead = errors.New("sem: previous owner died holding the lock")

	// ErrNotOwner is returned by Unlock and MarkConsistent when the calling
	// process does not hold the Mutex.
	ErrNotOwner = errors.New("sem: mutex not held by this process")

	// ErrOverRelease is returned by Release when the count would pass the
	// Semaphore's maximum (or the 32-bit limit of an unbounded one).
	ErrOverRelease = errors.New("sem: semaphore released too many times")

	// ErrCorrupt reports shared memory that does not hold a valid object:
	// wrong magic or version, unknown flag bits, an impossible state word.
	// It is shm.ErrCorrupt.
	ErrCorrupt = shm.ErrCorrupt

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
