package array

import (
	"context"

	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/shm"
)

// Raw is a fixed-length sequence of T in shared memory with no lock, the
// analogue of Python's multiprocessing.RawArray. At and Set are plain
// copies: concurrent access to one element from several processes may
// tear (see the package doc); synchronise by other means.
//
// A Raw may attach to an Array's memory (the lock is then ignored), but an
// Array cannot attach to a Raw's, which has no lock.
type Raw[T any] struct {
	_    object.NoCopy
	obj  *object.Object
	s    []T
	name string
}

func newRaw[T any](o *object.Object, err error) (*Raw[T], error) {
	if err != nil {
		return nil, err
	}
	return &Raw[T]{obj: o, s: object.Elems[T](o.Mem, int(o.H.Length)), name: o.Name()}, nil
}

// CreateRaw creates a named Raw array of n zero elements.
func CreateRaw[T any](name string, n int, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](create[T](rawSpec, name, n, nil, opts))
}

// CreateRawFrom creates a named Raw array holding a copy of src.
func CreateRawFrom[T any](name string, src []T, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](create(rawSpec, name, len(src), src, opts))
}

// OpenRaw opens a named Raw array (or a named Array, ignoring its lock).
func OpenRaw[T any](ctx context.Context, name string, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.OpenOf[T](ctx, rawSpec, name, opts))
}

// InitRaw lays out a Raw array of n zero elements at the start of mem,
// like Init (same size: the lock's bytes stay reserved and zero).
func InitRaw[T any](mem []byte, n int) (*Raw[T], error) {
	return newRaw[T](place[T](rawSpec, mem, n))
}

// RawAt attaches to a Raw array (or an Array, ignoring its lock) laid out
// at the start of mem.
func RawAt[T any](mem []byte) (*Raw[T], error) {
	return newRaw[T](object.AttachOf[T](rawSpec, mem))
}

// Len returns the number of elements.
func (r *Raw[T]) Len() int { return len(r.s) }

// At returns a plain copy of element i. It panics if i is out of range.
func (r *Raw[T]) At(i int) T { return r.s[i] }

// Set stores a plain copy of x into element i. It panics if i is out of range.
func (r *Raw[T]) Set(i int, x T) { r.s[i] = x }

// Slice returns the elements as a []T aliasing shared memory.
func (r *Raw[T]) Slice() []T { return r.s }

// Name returns the segment name, or "" for a placed Raw.
func (r *Raw[T]) Name() string { return r.name }

// Close releases the mapping of a named Raw. Afterwards the methods and
// earlier slices act on private zeroed memory instead of faulting.
func (r *Raw[T]) Close() error { return r.obj.Close() }
