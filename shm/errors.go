package shm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Errors returned by this package. Test for them with errors.Is; the
// returned errors wrap them with the segment name and detail.
var (
	// ErrClosed is returned by methods called on a closed Segment.
	ErrClosed = fs.ErrClosed

	// ErrInvalidName is returned for a name that is empty, too long, starts
	// with '.', contains "..", or contains a byte outside [A-Za-z0-9._-].
	ErrInvalidName = errors.New("shm: invalid segment name")

	// ErrInvalidSize is returned for a payload size that is zero, negative
	// or larger than MaxSize.
	ErrInvalidSize = errors.New("shm: invalid segment size")

	// ErrCorrupt is returned when a segment's header is not a valid shmkit
	// header: wrong magic, bad checksum, impossible sizes, a truncated file.
	ErrCorrupt = errors.New("shm: corrupt segment")

	// ErrVersion is returned for a segment written in a format version (or
	// with flags) this package does not understand.
	ErrVersion = errors.New("shm: unsupported segment format version")

	// ErrKind is returned when a segment's kind differs from the one asked
	// for with WithKind. The error is a *MismatchError.
	ErrKind = errors.New("shm: segment kind mismatch")

	// ErrType is returned when a segment's type descriptor differs from the
	// one asked for with WithType. The error is a *MismatchError.
	ErrType = errors.New("shm: segment type mismatch")

	// ErrSize is returned by OpenOrCreate when an existing segment's payload
	// size differs from the size asked for. The error is a *MismatchError.
	ErrSize = errors.New("shm: segment size mismatch")

	// ErrCreatorDied is returned by Open when the segment is still being
	// initialised and the process initialising it no longer exists.
	ErrCreatorDied = errors.New("shm: segment creator died during initialisation")

	// ErrNotSegment is returned by OpenFile and Receive (and the OpenFile
	// and Receive functions of the other packages) for a descriptor that
	// is not a shmkit segment at all: a pipe, a socket, a regular file
	// without the segment magic, the Go runtime's own descriptors. It is
	// what a forgotten exec.Cmd.ExtraFiles entry looks like in the child.
	// The error is a *NotSegmentError naming the descriptor.
	ErrNotSegment = errors.New("shm: not a shmkit segment")

	// ErrNotSupported is returned on systems other than Linux.
	ErrNotSupported = errors.New("shm: not supported on this system")
)

// MismatchError reports that an existing segment is not what the caller
// asked for. errors.Is(err, ErrKind), ErrType or ErrSize match it
// according to What.
type MismatchError struct {
	Name string // segment name ("" for an anonymous segment)
	What string // "kind", "type" or "size"
	Want any    // what the caller asked for: a Kind, TypeDesc or int, or a string describing it (a value or array kind, locked or raw)
	Got  any    // what the segment holds
	Err  error  // ErrKind, ErrType or ErrSize

	// WantType and GotType name the Go types on both sides of a type
	// mismatch, where known: the type asked for and the type name the
	// creator recorded (WithTypeName). Empty when unknown.
	WantType, GotType string
}

// Error describes the mismatch.
func (e *MismatchError) Error() string {
	want, got := fmt.Sprint(e.Want), fmt.Sprint(e.Got)
	if e.WantType != "" {
		want = e.WantType + " (" + want + ")"
	}
	if e.GotType != "" {
		got = e.GotType + " (" + got + ")"
	}
	return "shm: " + e.What + " mismatch: want " + want + ", got " + got
}

// Unwrap returns the sentinel (ErrKind, ErrType or ErrSize).
func (e *MismatchError) Unwrap() error { return e.Err }

// NotSegmentError reports a descriptor that is not a shmkit segment (see
// ErrNotSegment). errors.Is(err, ErrNotSegment) matches it.
type NotSegmentError struct {
	Op   string // "open file" (OpenFile) or "receive" (Receive)
	FD   int    // the descriptor number as the caller had it (as received, for Receive)
	What string // what it is instead: "a pipe (pipe:[1234])", "a regular file without the segment magic (/tmp/x)"...
}

// Error describes the descriptor.
func (e *NotSegmentError) Error() string {
	msg := fmt.Sprintf("shm: %s: descriptor %d is not a shmkit segment: it is %s", e.Op, e.FD, e.What)
	if e.Op == "open file" {
		msg += " (in a child, ExtraFiles[i] is descriptor 3+i: check that the parent passed the object's File there)"
	}
	return msg
}

// Unwrap returns ErrNotSegment.
func (e *NotSegmentError) Unwrap() error { return ErrNotSegment }

// orBackground treats a nil context as context.Background(), so that no
// function of this package panics on one.
func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// SpaceError reports a segment that does not fit in the free space of
// its file system (a tmpfs), found by Create, OpenOrCreate and
// CreateAnonymous before anything is allocated. errors.Is(err,
// syscall.ENOSPC) matches it.
type SpaceError struct {
	Need  uint64 // bytes the segment needs, header included
	Free  uint64 // bytes free for an unprivileged user when it was checked
	Total uint64 // size of the file system
}

// Error states the sizes.
func (e *SpaceError) Error() string {
	return fmt.Sprintf("shm: segment of %d bytes does not fit: %d bytes free of %d on the shared-memory file system",
		e.Need, e.Free, e.Total)
}

// Unwrap returns syscall.ENOSPC.
func (e *SpaceError) Unwrap() error { return syscall.ENOSPC }
