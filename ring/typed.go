package ring

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/shm"
)

// Typed is a queue of fixed-size, pointer-free values of type T (checked
// by reflection: no pointers, strings, slices, maps, interfaces, channels
// or funcs anywhere inside). A value travels as its bytes: Put and Get
// copy it once and do not allocate. The element type is recorded in the
// queue; attaching with another T fails with ErrType.
type Typed[T any] struct {
	q    *Queue
	size int
}

// TypeOf returns the descriptor recorded for T, or an error wrapping
// typeinfo.ErrNotPlain naming the offending field.
func TypeOf[T any]() (shm.TypeDesc, error) {
	size, align, fp, err := typeinfo.Of[T]()
	if err != nil {
		return shm.TypeDesc{}, err
	}
	return shm.TypeDesc{Size: size, Align: align, Fingerprint: fp}, nil
}

// TypedConfig returns cfg set up for elements of type T (Type and
// MaxMessage filled in), for Create, CreateAnonymous or New.
func TypedConfig[T any](cfg Config) (Config, error) {
	td, err := TypeOf[T]()
	if err != nil {
		return cfg, err
	}
	cfg.Type, cfg.MaxMessage = td, int(td.Size)
	return cfg, nil
}

// CreateTyped creates a named queue of T values.
func CreateTyped[T any](name string, cfg Config, opts ...shm.Option) (*Typed[T], error) {
	cfg, err := TypedConfig[T](cfg)
	if err != nil {
		return nil, err
	}
	q, err := Create(name, cfg, opts...)
	if err != nil {
		return nil, err
	}
	return NewTyped[T](q)
}

// OpenTyped opens a named queue of T values; a queue created for another
// type fails with an error matching ErrType.
func OpenTyped[T any](ctx context.Context, name string, opts ...shm.Option) (*Typed[T], error) {
	td, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	q, err := Open(ctx, name, append(opts, shm.WithType(td))...)
	if err != nil {
		return nil, err
	}
	t, err := NewTyped[T](q)
	if err != nil {
		q.Close()
	}
	return t, err
}

// NewTyped wraps q, which must have been created for T (TypedConfig).
// Otherwise it returns a *shm.MismatchError matching ErrType.
func NewTyped[T any](q *Queue) (*Typed[T], error) {
	td, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	if q.Type() != td || q.MaxMessage() != int(td.Size) {
		var name string
		if q.seg != nil {
			name = q.seg.Name()
		}
		return nil, &shm.MismatchError{Name: name, What: "type", Want: td, Got: q.Type(), Err: ErrType}
	}
	return &Typed[T]{q: q, size: int(td.Size)}, nil
}

func bytesOf[T any](v *T, size int) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(v)), size) }

// Queue returns the underlying queue (for Stats, CloseWrite, Close...).
func (t *Typed[T]) Queue() *Queue { return t.q }

// Put appends a copy of v, waiting while the queue is full.
func (t *Typed[T]) Put(ctx context.Context, v T) error { return t.q.Put(ctx, bytesOf(&v, t.size)) }

// TryPut is Put that does not wait.
func (t *Typed[T]) TryPut(v T) (bool, error) { return t.q.TryPut(bytesOf(&v, t.size)) }

// Get takes the next value, waiting while the queue is empty; io.EOF once
// it is closed and drained.
func (t *Typed[T]) Get(ctx context.Context) (T, error) {
	var v T
	n, err := t.q.Get(ctx, bytesOf(&v, t.size))
	if err == nil && n != t.size {
		err = corrupt("typed message of %d bytes, want %d", n, t.size)
	}
	return v, err
}

// TryGet is Get that does not wait.
func (t *Typed[T]) TryGet() (v T, ok bool, err error) {
	n, ok, err := t.q.TryGet(bytesOf(&v, t.size))
	if ok && n != t.size {
		return v, false, corrupt("typed message of %d bytes, want %d", n, t.size)
	}
	return v, ok, err
}

// Close releases the handle (see Queue.Close).
func (t *Typed[T]) Close() error { return t.q.Close() }

// String describes the queue for debugging.
func (t *Typed[T]) String() string {
	return fmt.Sprintf("ring.Typed[%v]", t.q.Type())
}
