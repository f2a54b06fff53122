package value

import (
	"context"

	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/shm"
)

// Raw is a T in shared memory with no lock, the analogue of Python's
// multiprocessing.RawValue. Load and Store are plain copies: a Load
// concurrent with a Store (in any process) may see a torn mixture of old
// and new bytes, except that an aligned T of 1, 2, 4 or 8 bytes is
// usually copied in one machine access on amd64 and arm64 (the compiler's
// choice, not a Go memory-model promise; use Value and Atomic when it
// matters). Synchronise by other
// means (a sem.Mutex, a ring message, process exit).
//
// A Raw may attach to a Value's memory (the lock is then ignored), but a
// Value cannot attach to a Raw's, which has no lock.
type Raw[T any] struct {
	_    object.NoCopy
	obj  *object.Object
	p    *T
	name string
}

func newRaw[T any](o *object.Object, err error) (*Raw[T], error) {
	if err != nil {
		return nil, err
	}
	es := object.Elems[T](o.Mem, 1)
	return &Raw[T]{obj: o, p: &es[0], name: o.Name()}, nil
}

// CreateRaw creates a named Raw value holding initial.
func CreateRaw[T any](name string, initial T, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.CreateOf[T](rawSpec, name, 1, fillWith(initial), opts))
}

// OpenRaw opens a named Raw value (or a named Value, ignoring its lock).
func OpenRaw[T any](ctx context.Context, name string, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.OpenOf[T](ctx, rawSpec, name, opts))
}

// InitRaw lays out a Raw value holding initial at the start of mem, like
// Init (same size: the lock's bytes stay reserved and zero).
func InitRaw[T any](mem []byte, initial T) (*Raw[T], error) {
	return newRaw[T](object.PlaceOf[T](rawSpec, mem, 1, fillWith(initial)))
}

// RawAt attaches to a Raw value (or a Value, ignoring its lock) laid out
// at the start of mem.
func RawAt[T any](mem []byte) (*Raw[T], error) {
	return newRaw[T](object.AttachOf[T](rawSpec, mem))
}

// Load copies the value out, without synchronisation.
func (r *Raw[T]) Load() T { return *r.p }

// Store copies x in, without synchronisation.
func (r *Raw[T]) Store(x T) { *r.p = x }

// Pointer returns a pointer to the value in shared memory. sync/atomic
// functions may be used on it: it is 8-byte aligned.
func (r *Raw[T]) Pointer() *T { return r.p }

// Name returns the segment name, or "" for a placed Raw.
func (r *Raw[T]) Name() string { return r.name }

// Close releases the mapping of a named Raw (placed ones have nothing to
// release). Afterwards Load, Store and Pointer act on private zeroed
// memory instead of faulting.
func (r *Raw[T]) Close() error { return r.obj.Close() }
