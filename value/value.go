package value

import (
	"context"

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

	// ErrType is matched when the shared object was created with another
	// element type (size, alignment or fingerprint differ). It is
	// shm.ErrType, and the error is a *shm.MismatchError (What "type",
	// Want and Got the shm.TypeDesc of the two types), for named and
	// placed Values alike.
	ErrType = shm.ErrType

	// ErrKind is matched when the memory holds another kind of object (an
	// array, or a raw value opened as a locked one). It is shm.ErrKind, and
	// the error is a *shm.MismatchError (What "kind").
	ErrKind = shm.ErrKind

	// ErrCorrupt is matched when the memory does not hold a valid object.
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

// Integer is the set of types with lock-free operations (see Atomic).
type Integer interface {
	~int32 | ~uint32 | ~int64 | ~uint64 | ~int | ~uint
}

// Value is a T in shared memory guarded by a lock that lives next to it,
// the analogue of Python's multiprocessing.Value. See the package doc for
// the memory-ordering and tearing rules.
type Value[T any] struct {
	_       object.NoCopy
	obj     *object.Object
	p       *T     // the value, in the mapping
	scratch *T     // the header's scratch word, used by Update for integer T
	asz     uint8  // 4 or 8 when T is an integer type with lock-free operations
	name    string // for errors
}

// spec is what value's objects are; rawSpec is spec without the lock.
var (
	spec    = object.Spec{Pkg: "value", Magic: object.MagicValue, Kind: shm.KindValue, Locked: true}
	rawSpec = spec.Raw()
)

func fillWith[T any](x T) func([]byte) error {
	return func(elems []byte) error {
		object.Put(elems, x)
		return nil
	}
}

func newValue[T any](o *object.Object, err error) (*Value[T], error) {
	if err != nil {
		return nil, err
	}
	es := object.Elems[T](o.Mem, 1)
	return &Value[T]{obj: o, p: &es[0], scratch: object.Scratch[T](o.Mem), asz: object.AtomicSize[T](), name: o.Name()}, nil
}

// Size returns the number of bytes a Value[T] needs when placed in memory
// of one's own (Init, At), or an error matching ErrNotPlain.
func Size[T any]() (int, error) { return object.SizeOf[T](spec, 1) }

// Create creates a named shared Value holding initial. It fails with an
// error matching fs.ErrExist if the name is taken, and ErrNotPlain if T
// cannot be shared. opts are shm options (WithMode, WithPopulate...).
func Create[T any](name string, initial T, opts ...shm.Option) (*Value[T], error) {
	return newValue[T](object.CreateOf[T](spec, name, 1, fillWith(initial), opts))
}

// Open opens the named Value created by another process (or this one). It
// waits, bounded by ctx, for a creator still initialising it. A Value
// created with another element type gives an error matching ErrType.
func Open[T any](ctx context.Context, name string, opts ...shm.Option) (*Value[T], error) {
	return newValue[T](object.OpenOf[T](ctx, spec, name, opts))
}

// OpenOrCreate opens the named Value, or creates it holding initial if it
// does not exist, and reports whether it created it.
func OpenOrCreate[T any](ctx context.Context, name string, initial T, opts ...shm.Option) (*Value[T], bool, error) {
	o, created, err := object.OpenOrCreateOf[T](ctx, spec, name, 1, fillWith(initial), opts)
	v, err := newValue[T](o, err)
	return v, created, err
}

// Init lays out a Value holding initial at the start of mem, which must be
// at least Size[T]() bytes, aligned to 8 bytes (and to T's alignment), and
// not yet used by anyone: typically inside a segment's shm.WithInit
// function. The object is published last (a release store of its magic),
// so a process whose At succeeds sees initial.
func Init[T any](mem []byte, initial T) (*Value[T], error) {
	return newValue[T](object.PlaceOf[T](spec, mem, 1, fillWith(initial)))
}

// At attaches to the Value that Init laid out at the start of mem,
// possibly in another process. Memory that does not hold a valid Value[T]
// gives an error matching ErrCorrupt, ErrType or ErrKind; it never panics.
func At[T any](mem []byte) (*Value[T], error) {
	return newValue[T](object.AttachOf[T](spec, mem))
}

// Load returns the value. For integer T it is one atomic load and takes
// no lock; otherwise it copies the value under the lock. Errors are those
// of Update (a sem.ErrOwnerDead result still returns the value read);
// after Close it returns ErrClosed for every T.
func (v *Value[T]) Load(ctx context.Context) (T, error) {
	if v.asz != 0 {
		if v.obj.Closed() {
			var zero T
			return zero, ErrClosed
		}
		return object.LoadAny(v.asz, v.p), nil
	}
	var x T
	err := v.obj.Do(ctx, func() error { x = *v.p; return nil })
	return x, err
}

// Store sets the value. For integer T it is one atomic store and takes no
// lock; otherwise it writes under the lock. Errors are those of Update;
// after Close it returns ErrClosed for every T.
func (v *Value[T]) Store(ctx context.Context, x T) error {
	if v.asz != 0 {
		if v.obj.Closed() {
			return ErrClosed
		}
		object.StoreAny(v.asz, v.p, x)
		return nil
	}
	return v.obj.Do(ctx, func() error { *v.p = x; return nil })
}

// Update calls fn with a pointer to the value while holding the lock, so
// that read-modify-write sequences of all processes are serialised. fn
// must not keep the pointer, block for long, or call methods of v.
//
// For integer T, fn works on a copy that is installed with
// compare-and-swap, so that Update composes with lock-free writes (Atomic,
// Store) of any process without losing them: if one lands while fn runs,
// fn is called again on the new value. fn must therefore only compute the
// new value from the old one. Without lock-free writers it runs once. See
// "Integer values" in the package doc for why.
//
// If the previous holder of the lock died while holding it (killed inside
// its Update, say), Update still takes the lock, applies fn, marks the
// lock consistent, releases it and returns an error matching
// sem.ErrOwnerDead. The update has been applied: do not retry it. The dead
// process may have left a partial update of a non-integer T behind, which
// fn saw. Use Lock directly to repair before marking consistent instead.
//
// Update returns ctx's error if ctx ends while waiting for the lock, and
// ErrClosed after Close; fn has not run then. For an integer T it also
// returns ctx's error if ctx ends while lock-free writers keep changing
// the value under fn (each retry means one of them made progress); fn's
// result has not been installed then, and the error is ctx's alone even
// if the previous holder had died: the lock is left marked inconsistent,
// so the next locked operation, which applies, reports sem.ErrOwnerDead.
// A nil ctx means context.Background(). If fn panics, the lock is
// released and the panic continues.
func (v *Value[T]) Update(ctx context.Context, fn func(*T)) error {
	return object.Update(ctx, v.obj, v.asz, v.p, v.scratch, fn)
}

// Lock returns the lock guarding the value, like Python's get_lock(). Hold
// it to read or write through Pointer consistently, or to group several
// operations. Lock-free Atomic operations do not take it. The lock is not
// reentrant: while holding it, do not call v's locked methods (Update, and
// Load or Store of a non-integer T), which would wait for it for ever (or
// until their ctx ends).
func (v *Value[T]) Lock() *sem.Mutex { return v.obj.Mu }

// Pointer returns a pointer to the value in shared memory, for access under
// Lock (or unsynchronised, with the tearing rules of the package doc). For
// an integer T that others change with Atomic operations, use AtomicOf
// instead: a plain access through the pointer is a data race that the race
// detector cannot see in shared memory. It stays valid to dereference
// after Close but then points at private zeros.
func (v *Value[T]) Pointer() *T { return v.p }

// Name returns the Value's segment name, or "" for a placed Value.
func (v *Value[T]) Name() string { return v.name }

// Close releases the Value: its lock handle and, for a named Value, its
// mapping. It does not remove the name (see shm.Unlink) and does not
// release the lock if this process holds it through Lock. Close first
// waits for the locked operations in flight on this handle (Load, Store,
// Update), including ones still waiting for the lock, so it never strands
// the lock held; do not call it from inside Update's fn. Afterwards Load,
// Store and Update return ErrClosed, and pointers and Atomic values taken
// earlier act, for a named Value, on private zeroed memory instead of
// faulting (for a placed Value, on the caller's memory). A second Close
// returns ErrClosed.
func (v *Value[T]) Close() error { return v.obj.Close() }

// Atomic gives lock-free operations on a Value of integer type. Get one
// with AtomicOf; it is a small value, cheap to copy and keep.
//
// All operations are sequentially consistent (sync/atomic), across
// processes too, and they compose with Value.Update (which uses
// compare-and-swap for integer types). They do not allocate and make no
// system call.
type Atomic[T Integer] struct {
	p *T
}

// AtomicOf returns the lock-free operations of v. The value in shared
// memory is 8-byte aligned, as 64-bit atomics require on every platform.
func AtomicOf[T Integer](v *Value[T]) Atomic[T] { return Atomic[T]{p: v.p} }

// Load atomically loads the value.
func (a Atomic[T]) Load() T { return object.Load(a.p) }

// Store atomically stores x.
func (a Atomic[T]) Store(x T) { object.Store(a.p, x) }

// Add atomically adds delta (wrapping on overflow) and returns the new value.
func (a Atomic[T]) Add(delta T) T { return object.Add(a.p, delta) }

// Swap atomically stores x and returns the previous value.
func (a Atomic[T]) Swap(x T) T { return object.Swap(a.p, x) }

// CompareAndSwap atomically stores new if the value is old, and reports
// whether it did.
func (a Atomic[T]) CompareAndSwap(old, new T) bool { return object.CompareAndSwap(a.p, old, new) }
