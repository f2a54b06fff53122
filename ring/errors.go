package ring

import (
	"errors"
	"fmt"
	"io/fs"
	"net"

	"github.com/shmkit/shmkit/shm"
)

// Errors returned by this package. Test for them with errors.Is.
var (
	// ErrClosed is returned by Put-side calls once the queue was closed
	// for writing (CloseWrite), and by every call on a closed handle.
	// errors.Is(err, net.ErrClosed) and errors.Is(err, fs.ErrClosed)
	// match it too, so one check covers rings, segments (shm.ErrClosed
	// is fs.ErrClosed) and network connections alike.
	ErrClosed error = closedError{}

	// ErrCorrupt is returned when a value read from shared memory (an
	// index, a length, a slot state, a header field) is impossible. It is
	// shm.ErrCorrupt, so one test catches both layers.
	ErrCorrupt = shm.ErrCorrupt

	// ErrTooLarge is returned by Put-side calls for a message longer than
	// the queue's MaxMessage. The error is a *TooLargeError.
	ErrTooLarge = errors.New("ring: message larger than MaxMessage")

	// ErrBusy is returned when an SPSC role (producer or consumer) is held
	// by another live handle, or when an MPMC participant table is full.
	// The error is a *BusyError.
	ErrBusy = errors.New("ring: role or participant table taken")

	// ErrPending is returned when a call needs a reservation (Reserve) or
	// held messages (Next) to be finished first, or when Commit or Release
	// finds nothing to finish.
	ErrPending = errors.New("ring: reservation or held message pending")

	// ErrMode is returned by a call that only one mode supports
	// (WritePosition is SPSC only).
	ErrMode = errors.New("ring: not supported in this queue's mode")

	// ErrConfig is returned for an invalid Config. The error is a
	// *ConfigError naming the field.
	ErrConfig = errors.New("ring: invalid configuration")

	// ErrType is returned when a typed queue is opened with another element
	// type than it was created with (a *shm.MismatchError), or when a
	// message whose size is not the element size is put into a typed
	// queue (a *SizeError). It is shm.ErrType.
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

// closedError is ErrClosed: its own message, and a match for the
// standard library's "closed" sentinels.
type closedError struct{}

func (closedError) Error() string { return "ring: queue closed" }

// Is reports whether target is net.ErrClosed or fs.ErrClosed.
func (closedError) Is(target error) bool { return target == net.ErrClosed || target == fs.ErrClosed }

// ConfigError reports an invalid Config field (or invalid memory given to
// New). It matches ErrConfig.
type ConfigError struct {
	Field  string // the Config field ("MaxMessage", "Capacity", "Participants", "Mode"), or "memory" for New
	Value  any    // the value given
	Reason string // what is wrong with it
}

// Error describes the field, its value and the reason.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("ring: invalid configuration: %s %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// TooLargeError reports a message longer than the queue accepts. It
// matches ErrTooLarge.
type TooLargeError struct {
	Size int // bytes of the message (for Commit, the length committed; for Reserve, the size asked for)
	Max  int // the most the call accepts: MaxMessage, or for Commit the size reserved

	commit bool // Max is a reservation's size
}

// Error gives both sizes.
func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("ring: message size %d is negative", e.Size)
	}
	if e.commit {
		return fmt.Sprintf("ring: commit of %d bytes larger than the %d reserved", e.Size, e.Max)
	}
	return fmt.Sprintf("ring: message of %d bytes larger than MaxMessage %d", e.Size, e.Max)
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

func tooLarge(size int, max uint64) error { return &TooLargeError{Size: size, Max: int(max)} }

// BusyError reports that a role is taken. It matches ErrBusy.
type BusyError struct {
	// Role is "producer" or "consumer" (an SPSC queue's roles), "pipe
	// end" (a Conn end already open), or "participant" (every MPMC
	// participant entry is taken).
	Role string
	// Pid is the process holding the role (0 for "participant").
	Pid int
	// Participants is the size of the full participant table
	// ("participant" only).
	Participants int
}

// Error names the holder and the way out.
func (e *BusyError) Error() string {
	switch e.Role {
	case "participant":
		return fmt.Sprintf("ring: all %d participant entries of the MPMC queue are taken by live handles (raise Config.Participants)", e.Participants)
	case "pipe end":
		return fmt.Sprintf("ring: the pipe end is already open in process %d", e.Pid)
	}
	return fmt.Sprintf("ring: the SPSC queue's %s role is held by process %d (an SPSC queue has one producer and one consumer at a time; create it with Mode: MPMC for several)", e.Role, e.Pid)
}

// Unwrap returns ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }

// SizeError reports a message put into a typed queue (one whose header
// records an element type, as CreateTyped's do) whose size is not the
// element size. It matches ErrType.
type SizeError struct {
	Size     int    // bytes of the message
	Want     int    // the element size
	TypeName string // the element's Go type, where the creator recorded it
}

// Error gives both sizes and the element type.
func (e *SizeError) Error() string {
	elem := "elements"
	if e.TypeName != "" {
		elem = e.TypeName
	}
	return fmt.Sprintf("ring: message of %d bytes put into a typed queue of %s (%d bytes each)", e.Size, elem, e.Want)
}

// Unwrap returns ErrType.
func (e *SizeError) Unwrap() error { return ErrType }

// corruptError is ErrCorrupt with what was found, without repeating the
// sentinel's "shm:" prefix after ours.
type corruptError struct{ what string }

func (e *corruptError) Error() string { return "ring: corrupt queue: " + e.what }
func (e *corruptError) Unwrap() error { return ErrCorrupt }

// corrupt wraps ErrCorrupt with what was found.
func corrupt(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}
