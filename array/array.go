package array

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
)

// Errors. Test for them with errors.Is.
var (
	// ErrNotPlain is matched when T is not fixed-size and pointer-free (or
	// is empty); the error names the offending field.
	ErrNotPlain = typeinfo.ErrNotPlain

	// ErrType is matched when the array was created with another element
	// type (size, alignment or fingerprint differ). It is shm.ErrType, and
	// the error is a *shm.MismatchError (What "type", Want and Got the
	// shm.TypeDesc of the two types), for named and placed Arrays alike.
	ErrType = shm.ErrType

	// ErrKind is matched when the memory holds another kind of object (a
	// value, or a raw array opened as a locked one). It is shm.ErrKind, and
	// the error is a *shm.MismatchError (What "kind").
	ErrKind = shm.ErrKind

	// ErrCorrupt is matched when the memory does not hold a valid array.
	// It is shm.ErrCorrupt.
	ErrCorrupt = shm.ErrCorrupt

	// ErrVersion is matched when the object header has a format version
	// this package does not know. It is shm.ErrVersion.
	ErrVersion = shm.ErrVersion

	// ErrBadMemory is matched when memory given to Init or InitRaw is too
	// short or misaligned.
	ErrBadMemory = object.ErrBadMemory

	// ErrClosed is returned by locked operations after Close. It is
	// fs.ErrClosed (and shm.ErrClosed, sem.ErrClosed).
	ErrClosed = shm.ErrClosed
)

// NotPlainError is the error that refuses an unsuitable T: errors.As
// finds it in every error matching ErrNotPlain. Its Path names the
// offending part of T ("main.Config.Names[0]", or the type itself), Kind
// what was found there ("string", "*int", "zero-size type", ...) and
// Reason why that cannot be shared; Type is the reflect.Type of T.
type NotPlainError = typeinfo.NotPlainError

// Integer is the set of element types with lock-free operations (see Atomic).
type Integer interface {
	~int32 | ~uint32 | ~int64 | ~uint64 | ~int | ~uint
}

// Array is a fixed-length sequence of T in shared memory with one lock for
// the whole array, the analogue of Python's multiprocessing.Array. See the
// package doc for the memory-ordering and tearing rules.
//
// Indexing methods panic on an index out of range, as Go slices do.
type Array[T any] struct {
	_       object.NoCopy
	obj     *object.Object
	s       []T    // the elements, in the mapping
	scratch *T     // the header's scratch word, used by Update for integer T
	asz     uint8  // 4 or 8 when T is an integer type with lock-free operations
	name    string // for errors
}

// spec is what array's objects are; rawSpec is spec without the lock.
var (
	spec    = object.Spec{Pkg: "array", Magic: object.MagicArray, Kind: shm.KindArray, Locked: true}
	rawSpec = spec.Raw()
)

// length checks a caller's element count.
func length(n int) (uint64, error) {
	if n < 0 {
		return 0, fmt.Errorf("array: negative length %d: %w", n, shm.ErrInvalidSize)
	}
	return uint64(n), nil
}

// fillFrom copies src into fresh elements; zeroElems zeroes them (memory
// given to Init may hold anything).
func fillFrom[T any](src []T) func([]byte) error {
	if len(src) == 0 {
		return nil
	}
	return func(elems []byte) error {
		object.PutSlice(elems, src)
		return nil
	}
}

func zeroElems(elems []byte) error { clear(elems); return nil }

// The constructors of Array and Raw differ only in spec and in what they
// wrap around the object.

func create[T any](s object.Spec, name string, n int, src []T, opts []shm.Option) (*object.Object, error) {
	un, err := length(n)
	if err != nil {
		return nil, err
	}
	return object.CreateOf[T](s, name, un, fillFrom(src), opts)
}

func place[T any](s object.Spec, mem []byte, n int) (*object.Object, error) {
	un, err := length(n)
	if err != nil {
		return nil, err
	}
	return object.PlaceOf[T](s, mem, un, zeroElems)
}

func newArray[T any](o *object.Object, err error) (*Array[T], error) {
	if err != nil {
		return nil, err
	}
	return &Array[T]{obj: o, s: object.Elems[T](o.Mem, int(o.H.Length)), scratch: object.Scratch[T](o.Mem),
		asz: object.AtomicSize[T](), name: o.Name()}, nil
}

// Size returns the number of bytes an Array of n T needs when placed in
// memory of one's own (Init, At), or an error matching ErrNotPlain.
func Size[T any](n int) (int, error) {
	un, err := length(n)
	if err != nil {
		return 0, err
	}
	return object.SizeOf[T](spec, un)
}

// Create creates a named shared Array of n zero elements. It fails with an
// error matching fs.ErrExist if the name is taken, and ErrNotPlain if T
// cannot be shared. opts are shm options (WithMode, WithPopulate...).
func Create[T any](name string, n int, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](create[T](spec, name, n, nil, opts))
}

// CreateFrom creates a named shared Array holding a copy of src, like
// Python's Array('i', [0, 1, 2]).
func CreateFrom[T any](name string, src []T, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](create(spec, name, len(src), src, opts))
}

// Open opens the named Array created by another process (or this one). It
// waits, bounded by ctx, for a creator still initialising it. An Array
// created with another element type gives an error matching ErrType.
func Open[T any](ctx context.Context, name string, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](object.OpenOf[T](ctx, spec, name, opts))
}

// OpenOrCreate opens the named Array, or creates it with n zero elements
// if it does not exist, and reports whether it created it. An existing
// Array of another length gives an error matching shm.ErrSize.
func OpenOrCreate[T any](ctx context.Context, name string, n int, opts ...shm.Option) (*Array[T], bool, error) {
	un, err := length(n)
	if err != nil {
		return nil, false, err
	}
	o, created, err := object.OpenOrCreateOf[T](ctx, spec, name, un, nil, opts)
	a, err := newArray[T](o, err)
	return a, created, err
}

// Init lays out an Array of n zero elements at the start of mem, which
// must be at least Size[T](n) bytes, aligned to 8 bytes (and to T's
// alignment), and not yet used by anyone: typically inside a segment's
// shm.WithInit function. The object is published last (a release store of
// its magic), so a process whose At succeeds sees the zeroed elements.
func Init[T any](mem []byte, n int) (*Array[T], error) {
	return newArray[T](place[T](spec, mem, n))
}

// At attaches to the Array that Init laid out at the start of mem,
// possibly in another process. Memory that does not hold a valid Array of
// T gives an error matching ErrCorrupt, ErrType or ErrKind; it never
// panics. (The method At reads an element.)
func At[T any](mem []byte) (*Array[T], error) {
	return newArray[T](object.AttachOf[T](spec, mem))
}

// Len returns the number of elements.
func (a *Array[T]) Len() int { return len(a.s) }

// At returns element i without taking the lock. For integer T it is an
// atomic load; otherwise a plain copy that may tear against a concurrent
// writer of the same element (see the package doc). Unlike indexing
// Python's synchronised Array, At and Set never take the lock: use Update,
// WithLock or CopyOut for a consistent non-integer element.
func (a *Array[T]) At(i int) T { return object.LoadAny(a.asz, &a.s[i]) }

// Set stores x into element i without taking the lock. For integer T it is
// an atomic store; otherwise a plain copy (see the package doc).
func (a *Array[T]) Set(i int, x T) { object.StoreAny(a.asz, &a.s[i], x) }

// Update calls fn with a pointer to element i while holding the array's
// lock. fn must not keep the pointer, block for long, or call methods of a.
// For integer T, fn works on a copy installed with compare-and-swap and
// runs again if a lock-free write (Set, Atomic, from any process) changed
// the element meanwhile, so that no such write is lost; fn must only
// compute the new value from the old one (see "Integer elements" in the
// package doc). When the previous lock holder died holding it, fn is still
// applied, the lock is marked consistent and the error matches
// sem.ErrOwnerDead: the update has been applied, do not retry it. A ctx
// error means nothing was installed (ctx ended waiting for the lock, or,
// for integer T, while lock-free writers kept changing the element); it
// is ctx's error alone even after taking over from a dead holder, whose
// death the next locked operation then reports. A nil ctx means
// context.Background(), for every method that takes one. It panics if i
// is out of range.
func (a *Array[T]) Update(ctx context.Context, i int, fn func(*T)) error {
	return object.Update(ctx, a.obj, a.asz, &a.s[i], a.scratch, fn)
}

// WithLock calls fn with the whole array while holding the lock. The
// slice must not be kept after fn returns. Owner-dead handling is that of
// Update: fn runs, the lock is marked consistent, sem.ErrOwnerDead is
// returned. Lock-free operations (At, Set and Atomic on integer arrays)
// do not take the lock and are not excluded by it.
func (a *Array[T]) WithLock(ctx context.Context, fn func(s []T)) error {
	return a.obj.Do(ctx, func() error { fn(a.s); return nil })
}

// Lock returns the lock guarding the array, like Python's get_lock(). The
// lock is not reentrant: while holding it, do not call a's locked methods
// (Update, WithLock, CopyIn, CopyOut), which would wait for it for ever (or
// until their ctx ends).
func (a *Array[T]) Lock() *sem.Mutex { return a.obj.Mu }

// Slice returns the elements as a []T aliasing shared memory, with no
// copy; its capacity is its length. Writes through it are seen by every
// process. It takes no lock: hold Lock (or use WithLock) for consistency,
// and for integer elements that others change lock-free use Atomic. After
// Close the slice stays safe to use but aliases private zeroed memory; see
// "The slice view" in the package doc for validity and tearing.
func (a *Array[T]) Slice() []T { return a.s }

// CopyOut copies elements starting at off into dst under the lock, so the
// copy is a consistent snapshot with respect to locked writers. For
// integer T each element is read with one atomic load, so no element is
// ever torn even by a concurrent lock-free write (Set, Atomic), but such
// writes, which do not take the lock, may land between two elements of
// the copy. It returns the number copied, min(len(dst), Len()-off), and
// panics if off is out of range [0, Len()].
func (a *Array[T]) CopyOut(ctx context.Context, dst []T, off int) (int, error) {
	s := a.s[off:]
	var n int
	err := a.obj.Do(ctx, func() error { n = object.CopyOut(a.asz, dst, s); return nil })
	return n, err
}

// CopyIn copies src into the elements starting at off under the lock. For
// integer T each element is written with one aligned store of its size
// (so, as for CopyOut, no element tears against lock-free operations),
// at about the speed of a plain copy. It returns the
// number copied, min(len(src), Len()-off), and panics if off is out of
// range [0, Len()].
func (a *Array[T]) CopyIn(ctx context.Context, off int, src []T) (int, error) {
	s := a.s[off:]
	var n int
	err := a.obj.Do(ctx, func() error { n = object.CopyIn(a.asz, s, src); return nil })
	return n, err
}

// Name returns the Array's segment name, or "" for a placed Array.
func (a *Array[T]) Name() string { return a.name }

// Close releases the Array: its lock handle and, for a named Array, its
// mapping. It does not remove the name (see shm.Unlink). Close first waits
// for the locked operations in flight on this handle (Update, WithLock,
// CopyIn, CopyOut), including ones still waiting for the lock, so it never
// strands the lock held; do not call it from inside their functions.
// Afterwards locked operations return ErrClosed; lock-free ones and slices
// from Slice act on private zeroed memory instead of faulting. A second
// Close returns ErrClosed.
func (a *Array[T]) Close() error { return a.obj.Close() }

// Atomic gives lock-free per-element operations on an Array of integer
// type. Get one with AtomicOf; it is a small value, cheap to copy.
//
// All operations are sequentially consistent (sync/atomic), across
// processes too, and compose with Array.Update. They do not allocate and
// make no system call. They panic if i is out of range.
type Atomic[T Integer] struct {
	s []T
}

// AtomicOf returns the lock-free operations of a. Elements are naturally
// aligned (8-byte for 64-bit types), as the atomics require.
func AtomicOf[T Integer](a *Array[T]) Atomic[T] { return Atomic[T]{s: a.s} }

// LoadAt atomically loads element i.
func (a Atomic[T]) LoadAt(i int) T { return object.Load(&a.s[i]) }

// StoreAt atomically stores x into element i.
func (a Atomic[T]) StoreAt(i int, x T) { object.Store(&a.s[i], x) }

// AddAt atomically adds delta to element i and returns the new value.
func (a Atomic[T]) AddAt(i int, delta T) T { return object.Add(&a.s[i], delta) }

// SwapAt atomically stores x into element i and returns the old value.
func (a Atomic[T]) SwapAt(i int, x T) T { return object.Swap(&a.s[i], x) }

// CompareAndSwapAt atomically stores new into element i if it holds old,
// and reports whether it did.
func (a Atomic[T]) CompareAndSwapAt(i int, old, new T) bool {
	return object.CompareAndSwap(&a.s[i], old, new)
}

// Len returns the number of elements.
func (a Atomic[T]) Len() int { return len(a.s) }
