package ring

import (
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/shm"
)

// Errors returned by this package. Test for them with errors.Is.
var (
	// ErrClosed is returned by Put-side calls once the queue was closed
	// for writing (CloseWrite), and by every call on a closed handle.
	ErrClosed = errors.New("ring: queue closed")

	// ErrCorrupt is returned when a value read from shared memory (an
	// index, a length, a slot state, a header field) is impossible. It is
	// shm.ErrCorrupt, so one test catches both layers.
	ErrCorrupt = shm.ErrCorrupt

	// ErrTooLarge is returned by Put-side calls for a message longer than
	// the queue's MaxMessage.
	ErrTooLarge = errors.New("ring: message larger than MaxMessage")

	// ErrBusy is returned when an SPSC role (producer or consumer) is held
	// by another live handle, or when an MPMC participant table is full.
	ErrBusy = errors.New("ring: role or participant table taken")

	// ErrPending is returned when a call needs a reservation (Reserve) or
	// held messages (Next) to be finished first, or when Commit or Release
	// finds nothing to finish.
	ErrPending = errors.New("ring: reservation or held message pending")

	// ErrConfig is returned for an invalid Config.
	ErrConfig = errors.New("ring: invalid configuration")

	// ErrType is returned when a typed queue is opened with another element
	// type than it was created with. It is shm.ErrType.
	ErrType = shm.ErrType

	// ErrEncode is wrapped by Encoded.Put when the codec cannot encode a
	// value; nothing is queued.
	ErrEncode = errors.New("ring: cannot encode value")

	// ErrDecode is wrapped by Encoded.Get when the codec cannot decode a
	// message; the message is consumed.
	ErrDecode = errors.New("ring: cannot decode message")

	// ErrPeerDied is returned by a blocked Conn call (Send, Recv, Read,
	// Write) when the process at the other end of the pipe died without
	// closing it. What it sent before dying is still received first.
	ErrPeerDied = errors.New("ring: pipe peer died")

	// ErrNotSupported is returned on systems other than Linux.
	ErrNotSupported = shm.ErrNotSupported
)

// corrupt wraps ErrCorrupt with what was found.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("ring: %w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
