package object

import (
	"context"
	"fmt"
	"net"
	"os"
	"reflect"

	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/shm"
)

// Spec says which object a package makes: its name (for errors), magic,
// segment kind, and whether it carries a lock (Value, Array) or not (Raw).
type Spec struct {
	Pkg    string
	Magic  uint64
	Kind   shm.Kind
	Locked bool
}

// Raw returns s without the lock.
func (s Spec) Raw() Spec { s.Locked = false; return s }

// DescOf describes T for s, or refuses T with an error naming s.Pkg and
// wrapping typeinfo.ErrNotPlain.
func DescOf[T any](s Spec) (Desc, error) {
	size, align, fp, err := typeinfo.Of[T]()
	if err != nil {
		return Desc{}, fmt.Errorf("%s: %w", s.Pkg, err)
	}
	return Desc{Magic: s.Magic, Kind: s.Kind, Size: size, Align: align, FP: fp, Locked: s.Locked,
		Type: reflect.TypeFor[T]().String()}, nil
}

// SizeOf returns the bytes an object of n T needs, or an error wrapping
// ErrNotPlain or shm.ErrInvalidSize.
func SizeOf[T any](s Spec, n uint64) (int, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return 0, err
	}
	size, ok := Need(d.Size, n)
	if !ok {
		return 0, fmt.Errorf("%s: %d elements of %d bytes: %w", s.Pkg, n, d.Size, shm.ErrInvalidSize)
	}
	return size, nil
}

// The functions below are the typed entry points of value and array: each
// describes T, does the work, and wraps errors for the public sentinels
// with "<pkg>: <operation>" in front.

// CreateOf creates a named object of n T (see Create).
func CreateOf[T any](s Spec, name string, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := Create(name, d, n, fill, opts)
	return o, Wrap(s.Pkg+": create "+name, err)
}

// OpenOf opens a named object of T (see Open).
func OpenOf[T any](ctx context.Context, s Spec, name string, opts []shm.Option) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := Open(ctx, name, d, opts)
	return o, Wrap(s.Pkg+": open "+name, err)
}

// CreateAnonymousOf creates an anonymous object of n T (see
// CreateAnonymous).
func CreateAnonymousOf[T any](s Spec, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := CreateAnonymous(d, n, fill, opts)
	return o, Wrap(s.Pkg+": create anonymous", err)
}

// OpenFileOf attaches to an object of T in the segment behind f (see
// OpenFile).
func OpenFileOf[T any](ctx context.Context, s Spec, f *os.File, opts []shm.Option) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := OpenFile(ctx, f, d, opts)
	return o, Wrap(s.Pkg+": open file", err)
}

// ReceiveOf attaches to an object of T in a segment received from conn
// (see Receive).
func ReceiveOf[T any](ctx context.Context, s Spec, conn *net.UnixConn, opts []shm.Option) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := Receive(ctx, conn, d, opts)
	return o, Wrap(s.Pkg+": receive", err)
}

// OpenOrCreateOf opens a named object of T or creates it with n elements
// (see OpenOrCreate).
func OpenOrCreateOf[T any](ctx context.Context, s Spec, name string, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, bool, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, false, err
	}
	o, created, err := OpenOrCreate(ctx, name, d, n, fill, opts)
	return o, created, Wrap(s.Pkg+": open or create "+name, err)
}

// PlaceOf lays out an object of n T at the start of mem (see Place).
func PlaceOf[T any](s Spec, mem []byte, n uint64, fill func(elems []byte) error) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := Place(mem, d, n, fill)
	return o, Wrap(s.Pkg+": init", err)
}

// AttachOf attaches to an object of T at the start of mem (see Attach); a
// locked Spec requires the lock.
func AttachOf[T any](s Spec, mem []byte) (*Object, error) {
	d, err := DescOf[T](s)
	if err != nil {
		return nil, err
	}
	o, err := Attach(mem, d, s.Locked)
	return o, Wrap(s.Pkg+": attach", err)
}
