package object

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
)

// Desc is what an object records about its elements.
type Desc struct {
	Magic  uint64   // MagicValue or MagicArray
	Kind   shm.Kind // the segment kind of a named object
	Size   uint32   // element size
	Align  uint32   // element alignment
	FP     uint64   // element type fingerprint (typeinfo)
	Locked bool     // a sem.Mutex lives in the header
	Type   string   // the Go type's name, recorded in a segment's header for errors and tools
}

// TypeDesc returns the shm type descriptor of the elements.
func (d Desc) TypeDesc() shm.TypeDesc {
	return shm.TypeDesc{Size: d.Size, Align: d.Align, Fingerprint: d.FP}
}

// Object is an attached Value or Array: the memory, its header and its
// lock (nil when the object is raw or attached without its lock).
type Object struct {
	Seg *shm.Segment // nil when placed in a caller's memory
	Mem []byte       // the object: header then elements
	H   Header       // the header as validated when attaching; never re-read
	Mu  *sem.Mutex   // nil for a raw object

	// life makes Close wait for locked operations in flight: they hold it
	// shared, Close exclusively. Without it, Close could close the mutex
	// handle between another goroutine's Lock and Unlock, leaving the lock
	// held in shared memory by a live process for ever.
	life   sync.RWMutex
	closed bool // under life

	// shut mirrors closed for lock-free methods that report ErrClosed
	// without taking life. Atomic: read without life.
	shut atomic.Bool
}

// Closed reports whether Close has been called. A lock-free operation that
// checks it may still race a concurrent Close, harmlessly: the memory stays
// mapped (shm replaces a closed mapping with private zeros).
func (o *Object) Closed() bool { return o.shut.Load() }

// ErrBadMemory is returned when memory given to Init is too short or
// misaligned for the object.
var ErrBadMemory = errors.New("memory too short or misaligned for the object")

// Wrap turns an error of this package into one that matches the public
// sentinels (ErrCorrupt and ErrBadAlign become shm.ErrCorrupt; a
// *shm.MismatchError already matches shm.ErrType or shm.ErrKind), with
// prefix ("value: open NAME") in front. An error that already says what
// was done (an *fs.PathError: "open /dev/shm/shmkit.NAME: ...") gets only
// the package name, and one from package shm has its "shm: " replaced by
// the package name, so that no message says "open ... open".
func Wrap(prefix string, err error) error {
	if err == nil {
		return nil
	}
	pkg, _, _ := strings.Cut(prefix, ":")
	msg := err.Error()
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		msg = pkg + ": " + msg
	case strings.HasPrefix(msg, "shm: "):
		msg = pkg + ": " + strings.TrimPrefix(msg, "shm: ")
	default:
		msg = prefix + ": " + msg
	}
	w := &wrapped{msg: msg, errs: []error{err}}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadAlign) {
		if !errors.Is(err, shm.ErrCorrupt) {
			w.errs = append(w.errs, shm.ErrCorrupt)
		}
	}
	return w
}

// wrapped is Wrap's error: its own message, matching every error of errs.
type wrapped struct {
	msg  string
	errs []error
}

func (w *wrapped) Error() string   { return w.msg }
func (w *wrapped) Unwrap() []error { return w.errs }

// Place lays out an object of n elements at the start of mem: the mutex
// (when d.Locked), then fill (which writes the elements, may be nil), then
// the header, published last. mem must be fresh memory nobody reads yet.
func Place(mem []byte, d Desc, n uint64, fill func(elems []byte) error) (*Object, error) {
	need, ok := Need(d.Size, n)
	if !ok || need > len(mem) {
		return nil, fmt.Errorf("%w: %d bytes, need %d", ErrBadMemory, len(mem), need)
	}
	if err := CheckBase(mem, d.Align); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMemory, err)
	}
	mem = mem[:need:need]
	o := &Object{Mem: mem}
	if d.Locked {
		mu, err := sem.InitMutex(Mutex(mem))
		if err != nil {
			return nil, err
		}
		o.Mu = mu
	} else {
		clear(Mutex(mem))
	}
	if fill != nil {
		if err := fill(mem[HeaderSize:]); err != nil {
			if o.Mu != nil {
				_ = o.Mu.Close()
			}
			return nil, err
		}
	}
	o.H = Header{Magic: d.Magic, Size: d.Size, Align: d.Align, Fingerprint: d.FP, Length: n}
	if d.Locked {
		o.H.Flags = FlagLocked
	}
	Write(mem, o.H)
	return o, nil
}

// Attach validates the object at the start of mem. needLock requires a
// mutex (a locked Value or Array); otherwise a mutex, if present, is
// ignored. The returned Object's Mem is trimmed to the object.
func Attach(mem []byte, d Desc, needLock bool) (*Object, error) {
	h, err := Read(mem, d.Magic, d.Size, d.Align, d.FP)
	if err != nil {
		return nil, err
	}
	if needLock && h.Flags&FlagLocked == 0 {
		// A kind mismatch that shm.Kind cannot express (raw and locked
		// objects share a segment kind), so Want and Got are words.
		return nil, &shm.MismatchError{What: "kind", Want: lockName(true, h.Magic), Got: lockName(false, h.Magic), Err: ErrKind}
	}
	need, _ := Need(h.Size, h.Length) // Read checked it fits
	o := &Object{Mem: mem[:need:need], H: h}
	if needLock {
		mu, err := sem.MutexAt(Mutex(o.Mem))
		if err != nil {
			return nil, err
		}
		o.Mu = mu
	}
	return o, nil
}

// lockName names a locked or raw object of the kind magic names, for a
// MismatchError.
func lockName(locked bool, magic uint64) string {
	k := "value"
	if magic == MagicArray {
		k = "array"
	}
	if locked {
		return "locked " + k
	}
	return "raw " + k + " (created without a lock)"
}

// createOpts returns the shm options that create a segment holding an
// object of n elements (opts first, so that ours win), the payload size,
// and a function that releases the lock handle Place made during
// initialisation, if it ran: the creator then reattaches through
// FromSegment like every other process, so both paths are the same.
func createOpts(d Desc, n uint64, fill func(elems []byte) error, opts []shm.Option) ([]shm.Option, int, func(), error) {
	size, ok := Need(d.Size, n)
	if !ok {
		return nil, 0, nil, fmt.Errorf("%w: %d elements of %d bytes", shm.ErrInvalidSize, n, d.Size)
	}
	var placed *Object
	all := make([]shm.Option, 0, len(opts)+4)
	all = append(all, opts...)
	all = append(all, shm.WithKind(d.Kind), shm.WithType(d.TypeDesc()), shm.WithTypeName(d.Type), shm.WithParams(n, 0),
		shm.WithInit(func(payload []byte) error {
			o, err := Place(payload, d, n, fill)
			placed = o
			return err
		}))
	release := func() {
		if placed != nil && placed.Mu != nil {
			_ = placed.Mu.Close()
		}
	}
	return all, size, release, nil
}

// attachSegment attaches to the object in a freshly opened or created
// segment, closing the segment if that fails.
func attachSegment(seg *shm.Segment, d Desc) (*Object, error) {
	o, err := FromSegment(seg, d)
	if err != nil {
		_ = seg.Close()
		return nil, err
	}
	return o, nil
}

// Create creates a named segment holding one object of n elements.
func Create(name string, d Desc, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, error) {
	all, size, release, err := createOpts(d, n, fill, opts)
	if err != nil {
		return nil, err
	}
	seg, err := shm.Create(name, size, all...)
	release()
	if err != nil {
		return nil, err
	}
	return attachSegment(seg, d)
}

// CreateAnonymous creates an anonymous (memfd) segment holding one object
// of n elements.
func CreateAnonymous(d Desc, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, error) {
	all, size, release, err := createOpts(d, n, fill, opts)
	if err != nil {
		return nil, err
	}
	seg, err := shm.CreateAnonymous(size, all...)
	release()
	if err != nil {
		return nil, err
	}
	return attachSegment(seg, d)
}

// openOpts returns opts followed by the checks of an object described by d.
func openOpts(d Desc, opts []shm.Option) []shm.Option {
	return append(append([]shm.Option(nil), opts...), shm.WithKind(d.Kind), shm.WithType(d.TypeDesc()), shm.WithTypeName(d.Type))
}

// Open opens a named segment holding an object and validates it.
func Open(ctx context.Context, name string, d Desc, opts []shm.Option) (*Object, error) {
	seg, err := shm.Open(ctx, name, openOpts(d, opts)...)
	if err != nil {
		return nil, err
	}
	return attachSegment(seg, d)
}

// OpenFile attaches to the object in the segment behind f (see
// shm.OpenFile).
func OpenFile(ctx context.Context, f *os.File, d Desc, opts []shm.Option) (*Object, error) {
	seg, err := shm.OpenFile(ctx, f, openOpts(d, opts)...)
	if err != nil {
		return nil, err
	}
	return attachSegment(seg, d)
}

// Receive attaches to the object in a segment received from conn (see
// shm.Receive).
func Receive(ctx context.Context, conn *net.UnixConn, d Desc, opts []shm.Option) (*Object, error) {
	seg, err := shm.Receive(ctx, conn, openOpts(d, opts)...)
	if err != nil {
		return nil, err
	}
	return attachSegment(seg, d)
}

// OpenOrCreate opens the named object, or creates it with n elements.
func OpenOrCreate(ctx context.Context, name string, d Desc, n uint64, fill func(elems []byte) error, opts []shm.Option) (*Object, bool, error) {
	all, size, release, err := createOpts(d, n, fill, opts)
	if err != nil {
		return nil, false, err
	}
	seg, created, err := shm.OpenOrCreate(ctx, name, size, all...)
	release()
	if err != nil {
		return nil, false, err
	}
	o, err := attachSegment(seg, d)
	return o, created, err
}

// FromSegment validates the object in seg's payload against seg's header
// (kind, type, length parameter) and attaches it.
func FromSegment(seg *shm.Segment, d Desc) (*Object, error) {
	if k := seg.Kind(); k != d.Kind {
		return nil, &shm.MismatchError{Name: seg.Name(), What: "kind", Want: d.Kind, Got: k, Err: ErrKind}
	}
	if t := seg.Type(); t != d.TypeDesc() {
		return nil, &shm.MismatchError{Name: seg.Name(), What: "type", Want: d.TypeDesc(), Got: t, Err: ErrType,
			WantType: d.Type, GotType: seg.TypeName()}
	}
	o, err := Attach(seg.Bytes(), d, d.Locked)
	if err != nil {
		return nil, err
	}
	if p0, _ := seg.Params(); p0 != o.H.Length {
		return nil, fmt.Errorf("%w: segment records %d elements, object header %d", ErrCorrupt, p0, o.H.Length)
	}
	if need, _ := Need(o.H.Size, o.H.Length); need != seg.Size() {
		return nil, fmt.Errorf("%w: segment payload is %d bytes, object needs %d", ErrCorrupt, seg.Size(), need)
	}
	o.Seg = seg
	return o, nil
}

// Close releases the lock handle and the segment, if any, after waiting
// for locked operations in flight (Do). A second Close returns
// shm.ErrClosed.
func (o *Object) Close() error {
	o.life.Lock()
	defer o.life.Unlock()
	if o.closed {
		return shm.ErrClosed
	}
	o.closed = true
	o.shut.Store(true)
	var errs []error
	if o.Mu != nil {
		if err := o.Mu.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Seg != nil {
		if err := o.Seg.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Do runs fn holding the object's lock, with Locked's owner-dead policy,
// or returns shm.ErrClosed after Close.
func (o *Object) Do(ctx context.Context, fn func() error) error {
	o.life.RLock()
	defer o.life.RUnlock()
	if o.closed {
		return shm.ErrClosed
	}
	return Locked(ctx, o.Mu, fn)
}

// Locked runs fn holding mu. fn returns nil when it applied its operation
// and an error when it applied nothing (integer Update giving up with
// ctx).
//
// When a previous owner died holding the lock and fn applied its
// operation, the lock is marked consistent afterwards and the result
// matches sem.ErrOwnerDead ("applied, but look"). When fn applied
// nothing, the result is fn's error alone, which does not match
// sem.ErrOwnerDead, and the lock is released still inconsistent, so that
// the next locker, which will apply its operation, is the one told of the
// death. If fn panics the lock is released (marked consistent first) and
// the panic goes on.
func Locked(ctx context.Context, mu *sem.Mutex, fn func() error) (err error) {
	lerr := mu.Lock(ctx)
	if lerr != nil && !errors.Is(lerr, sem.ErrOwnerDead) {
		return lerr
	}
	var ferr error
	defer func() {
		var errs []error
		switch {
		case ferr != nil:
			errs = append(errs, ferr)
		case lerr != nil:
			errs = append(errs, lerr)
			if merr := mu.MarkConsistent(); merr != nil {
				errs = append(errs, merr)
			}
		}
		if uerr := mu.Unlock(); uerr != nil {
			errs = append(errs, uerr)
		}
		err = errors.Join(errs...)
	}()
	ferr = fn()
	return nil
}

// Segment returns the object's segment, or nil for a placed object.
func (o *Object) Segment() *shm.Segment { return o.Seg }

// File returns the segment's file (nil for a placed object, or after
// Close).
func (o *Object) File() *os.File {
	if o.Seg == nil {
		return nil
	}
	return o.Seg.File()
}

// Name returns the segment's name, or "" for a placed object.
func (o *Object) Name() string {
	if o.Seg == nil {
		return ""
	}
	return o.Seg.Name()
}

// NoCopy, embedded as a blank field, makes go vet's copylocks check flag
// copies of the handle that holds it.
type NoCopy struct{}

// Lock is a no-op, for go vet.
func (*NoCopy) Lock() {}

// Unlock is a no-op, for go vet.
func (*NoCopy) Unlock() {}

// Update runs fn on the element at p under o's lock (Do). For an integer
// element (asz, from AtomicSize, is 4 or 8) fn runs on the scratch word and
// its result is installed with compare-and-swap, fn running again when a
// lock-free write landed meanwhile (see updateWord); scratch is
// Scratch[T](o.Mem). Otherwise fn runs on *p in place. A nil ctx means
// context.Background(), as for sem.Mutex.Lock.
//
// When updateWord gives up (ctx ended), the result is ctx's error alone,
// even if a previous owner had died: nothing was applied (see Locked).
func Update[T any](ctx context.Context, o *Object, asz uint8, p, scratch *T, fn func(*T)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if asz == 0 {
		return o.Do(ctx, func() error { fn(p); return nil })
	}
	return o.Do(ctx, func() error { return updateWord(ctx, asz, p, scratch, fn) })
}
