package object

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// HeaderSize is the size of the object header; the elements start at this
// offset from the object's first byte.
const HeaderSize = 128

// Offsets inside the header.
const (
	OffMagic       = 0  // uint64: MagicValue or MagicArray, stored last (release)
	OffVersion     = 8  // uint32: Version
	OffFlags       = 12 // uint32: FlagLocked, other bits zero
	OffSize        = 16 // uint32: element size
	OffAlign       = 20 // uint32: element alignment
	OffFingerprint = 24 // uint64: element type fingerprint
	OffLength      = 32 // uint64: number of elements (1 for a Value)
	OffChecksum    = 40 // uint64: FNV-1a 64 of bytes [8, 40)
	OffScratch     = 48 // 8 bytes: update scratch for integer elements, used only under the lock
	OffMutex       = 64 // 64 bytes: sem.Mutex when FlagLocked, else zero
	MutexSize      = 64 // bytes reserved for the mutex (sem.MutexSize)
)

// Magic numbers: "SHMKVALU" and "SHMKARRY" as little-endian uint64s ('S'
// is the lowest byte).
const (
	MagicValue uint64 = 0x554c41564b4d4853
	MagicArray uint64 = 0x595252414b4d4853
)

// Version is the header format version.
const Version = 1

// FlagLocked says that a sem.Mutex lives at OffMutex.
const FlagLocked = 1

// Header is the decoded immutable part of an object header.
type Header struct {
	Magic       uint64
	Flags       uint32
	Size, Align uint32
	Fingerprint uint64
	Length      uint64
}

// Errors returned by Read. Value and array wrap ErrCorrupt and ErrBadAlign
// into shm.ErrCorrupt (Wrap). ErrType and ErrKind are shm's own: a type or
// kind mismatch is a *shm.MismatchError whose Err is one of them, as for a
// named segment opened with another type.
var (
	ErrCorrupt  = errors.New("corrupt object header")
	ErrType     = shm.ErrType
	ErrKind     = shm.ErrKind
	ErrBadAlign = errors.New("memory not suitably aligned")
)

func checksum(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b[OffVersion:OffChecksum] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Need returns the bytes an object of n elements of size bytes needs, or
// false when that overflows int.
func Need(size uint32, n uint64) (int, bool) {
	if size == 0 {
		return 0, false
	}
	if n > (math.MaxInt-HeaderSize)/uint64(size) {
		return 0, false
	}
	return HeaderSize + int(n)*int(size), true
}

// CheckBase reports whether mem starts at an address suitable for an
// object whose elements have the given alignment: 8 bytes at least (the
// mutex and 64-bit atomics need it), more when the elements do.
func CheckBase(mem []byte, align uint32) error {
	a := uintptr(max(align, 8))
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); p%a != 0 {
		return fmt.Errorf("%w: address %#x, need a multiple of %d", ErrBadAlign, p, a)
	}
	return nil
}

// Write writes h into mem (fresh memory nobody else reads yet), zeroes the
// rest of the header and publishes the magic last with an atomic store, so
// that a peer whose Read sees the magic also sees the other fields.
// The mutex, if any, must be initialised by the caller before Write.
func Write(mem []byte, h Header) {
	b := mem[:HeaderSize]
	clear(b[:OffMutex])
	le := binary.LittleEndian
	le.PutUint32(b[OffVersion:], Version)
	le.PutUint32(b[OffFlags:], h.Flags)
	le.PutUint32(b[OffSize:], h.Size)
	le.PutUint32(b[OffAlign:], h.Align)
	le.PutUint64(b[OffFingerprint:], h.Fingerprint)
	le.PutUint64(b[OffLength:], h.Length)
	le.PutUint64(b[OffChecksum:], checksum(b))
	// Release store: orders every write above (and the caller's payload
	// initialisation) before the magic a reader checks first.
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&b[OffMagic])), h.Magic)
}

// Read validates the header at the start of mem against what the caller
// expects (magic and element type) and returns it. Whatever mem holds, it
// returns an error wrapping ErrCorrupt or ErrBadAlign, a
// *shm.MismatchError (What "kind" or "type", matching ErrKind or ErrType),
// or a header whose elements lie inside mem. mem must be 8-byte aligned
// (checked).
func Read(mem []byte, magic uint64, size, align uint32, fp uint64) (Header, error) {
	var h Header
	if len(mem) < HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(mem), HeaderSize)
	}
	if err := CheckBase(mem, 8); err != nil {
		return h, err
	}
	b := mem[:HeaderSize]
	// Acquire load, pairs with Write's release store of the magic.
	h.Magic = atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[OffMagic])))
	if h.Magic != magic {
		if h.Magic == MagicValue || h.Magic == MagicArray {
			return h, &shm.MismatchError{What: "kind", Want: magicKind(magic), Got: magicKind(h.Magic), Err: ErrKind}
		}
		return h, fmt.Errorf("%w: bad magic %#016x", ErrCorrupt, h.Magic)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[OffVersion:]); v != Version {
		return h, fmt.Errorf("%w: unknown version %d", shm.ErrVersion, v)
	}
	if sum, want := le.Uint64(b[OffChecksum:]), checksum(b); sum != want {
		return h, fmt.Errorf("%w: header checksum %#016x, want %#016x", ErrCorrupt, sum, want)
	}
	h.Flags = le.Uint32(b[OffFlags:])
	h.Size = le.Uint32(b[OffSize:])
	h.Align = le.Uint32(b[OffAlign:])
	h.Fingerprint = le.Uint64(b[OffFingerprint:])
	h.Length = le.Uint64(b[OffLength:])
	if h.Flags&^FlagLocked != 0 {
		return h, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, h.Flags)
	}
	if h.Size == 0 || h.Align == 0 || h.Align&(h.Align-1) != 0 || h.Align > 64 || h.Size%h.Align != 0 {
		return h, fmt.Errorf("%w: impossible element size %d / alignment %d", ErrCorrupt, h.Size, h.Align)
	}
	if h.Size != size || h.Align != align || h.Fingerprint != fp {
		return h, &shm.MismatchError{What: "type", Err: ErrType,
			Want: shm.TypeDesc{Size: size, Align: align, Fingerprint: fp},
			Got:  shm.TypeDesc{Size: h.Size, Align: h.Align, Fingerprint: h.Fingerprint}}
	}
	if magic == MagicValue && h.Length != 1 {
		return h, fmt.Errorf("%w: value with length %d", ErrCorrupt, h.Length)
	}
	need, ok := Need(h.Size, h.Length)
	if !ok || need > len(mem) {
		return h, fmt.Errorf("%w: %d elements of %d bytes do not fit in %d bytes", ErrCorrupt, h.Length, h.Size, len(mem))
	}
	if err := CheckBase(mem, h.Align); err != nil {
		return h, err
	}
	return h, nil
}

// magicKind returns the segment kind of the object a magic number names.
func magicKind(m uint64) shm.Kind {
	if m == MagicArray {
		return shm.KindArray
	}
	return shm.KindValue
}

// Mutex returns the 64 bytes reserved for the mutex.
func Mutex(mem []byte) []byte { return mem[OffMutex : OffMutex+MutexSize : OffMutex+MutexSize] }

// Elems returns a []T view of n elements starting at HeaderSize. The caller
// has validated size, alignment and bounds (Read).
func Elems[T any](mem []byte, n int) []T {
	if n == 0 {
		return []T{}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&mem[HeaderSize])), n)
}

// Scratch returns the scratch word as a *T when T is an integer type with
// lock-free operations (AtomicSize[T]() != 0), the only case that uses it,
// and nil otherwise: a larger T would overlap the mutex.
func Scratch[T any](mem []byte) *T {
	if AtomicSize[T]() == 0 {
		return nil
	}
	return (*T)(unsafe.Pointer(&mem[OffScratch]))
}

// AtomicSize returns 4 or 8 when T is an integer type that the lock-free
// operations support (int32, uint32, int64, uint64, int, uint and named
// types of those), and 0 otherwise.
func AtomicSize[T any]() uint8 {
	t := reflect.TypeFor[T]()
	switch t.Kind() {
	case reflect.Int32, reflect.Uint32, reflect.Int64, reflect.Uint64, reflect.Int, reflect.Uint:
		return uint8(t.Size())
	}
	return 0
}

// Integer is the set of element types with lock-free operations.
type Integer interface {
	~int32 | ~uint32 | ~int64 | ~uint64 | ~int | ~uint
}

// The atomic helpers below dispatch on the size of T; sync/atomic gives
// sequentially consistent operations, which is what the packages promise.

// Load atomically loads *p.
func Load[T Integer](p *T) T {
	if unsafe.Sizeof(*p) == 8 {
		return T(atomic.LoadUint64((*uint64)(unsafe.Pointer(p))))
	}
	return T(atomic.LoadUint32((*uint32)(unsafe.Pointer(p))))
}

// Store atomically stores x into *p.
func Store[T Integer](p *T, x T) {
	if unsafe.Sizeof(*p) == 8 {
		atomic.StoreUint64((*uint64)(unsafe.Pointer(p)), uint64(x))
		return
	}
	atomic.StoreUint32((*uint32)(unsafe.Pointer(p)), uint32(x))
}

// Add atomically adds d to *p (wrapping) and returns the new value.
func Add[T Integer](p *T, d T) T {
	if unsafe.Sizeof(*p) == 8 {
		return T(atomic.AddUint64((*uint64)(unsafe.Pointer(p)), uint64(d)))
	}
	return T(atomic.AddUint32((*uint32)(unsafe.Pointer(p)), uint32(d)))
}

// Swap atomically stores x into *p and returns the old value.
func Swap[T Integer](p *T, x T) T {
	if unsafe.Sizeof(*p) == 8 {
		return T(atomic.SwapUint64((*uint64)(unsafe.Pointer(p)), uint64(x)))
	}
	return T(atomic.SwapUint32((*uint32)(unsafe.Pointer(p)), uint32(x)))
}

// CompareAndSwap atomically replaces *p by n if it holds o.
func CompareAndSwap[T Integer](p *T, o, n T) bool {
	if unsafe.Sizeof(*p) == 8 {
		return atomic.CompareAndSwapUint64((*uint64)(unsafe.Pointer(p)), uint64(o), uint64(n))
	}
	return atomic.CompareAndSwapUint32((*uint32)(unsafe.Pointer(p)), uint32(o), uint32(n))
}

// updateWord applies fn to an integer element of size sz (4 or 8) at p
// without tearing against concurrent lock-free operations: it copies the
// element into scratch, runs fn there and installs the result with
// compare-and-swap, retrying fn if a lock-free operation changed the
// element meanwhile. Callers hold the object's lock, so scratch (in the
// shared header) is theirs alone and no other locked update interleaves.
// Every failed swap means another writer made progress; if they never
// stop (a hostile peer storing in a loop), updateWord gives up with ctx's
// error once ctx ends, without installing anything.
func updateWord[T any](ctx context.Context, sz uint8, p, scratch *T, fn func(*T)) error {
	if sz == 8 {
		w, s := (*uint64)(unsafe.Pointer(p)), (*uint64)(unsafe.Pointer(scratch))
		for {
			// Atomic load and swap: lock-free writers do not take the lock.
			old := atomic.LoadUint64(w)
			*s = old
			fn(scratch)
			if atomic.CompareAndSwapUint64(w, old, *s) {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	w, s := (*uint32)(unsafe.Pointer(p)), (*uint32)(unsafe.Pointer(scratch))
	for {
		old := atomic.LoadUint32(w)
		*s = old
		fn(scratch)
		if atomic.CompareAndSwapUint32(w, old, *s) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// LoadAny loads *p atomically when sz is 4 or 8 (integer elements may be
// changed concurrently by lock-free operations, so a plain load would be a
// data race), with a plain copy otherwise.
func LoadAny[T any](sz uint8, p *T) T {
	var x T
	switch sz {
	case 8:
		*(*uint64)(unsafe.Pointer(&x)) = atomic.LoadUint64((*uint64)(unsafe.Pointer(p)))
	case 4:
		*(*uint32)(unsafe.Pointer(&x)) = atomic.LoadUint32((*uint32)(unsafe.Pointer(p)))
	default:
		x = *p
	}
	return x
}

// StoreAny stores x into *p atomically when sz is 4 or 8 (for the same
// reason as LoadAny), with a plain copy otherwise.
func StoreAny[T any](sz uint8, p *T, x T) {
	switch sz {
	case 8:
		atomic.StoreUint64((*uint64)(unsafe.Pointer(p)), *(*uint64)(unsafe.Pointer(&x)))
	case 4:
		atomic.StoreUint32((*uint32)(unsafe.Pointer(p)), *(*uint32)(unsafe.Pointer(&x)))
	default:
		*p = x
	}
}

// CopyOut copies min(len(dst), len(src)) elements from src, elements of
// an object, to dst, as the built-in copy does (overlap included), and
// returns the number copied. When sz is 4 or 8 (integer elements, which
// lock-free operations may change at any moment) each element of src is
// read with one atomic load, so that none is torn or a data race; dst,
// the caller's memory, is written plainly. Otherwise it is copy.
func CopyOut[T any](sz uint8, dst, src []T) int {
	n := min(len(dst), len(src))
	if sz == 0 || n == 0 {
		return copy(dst, src)
	}
	d, s := unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0])
	// Copying backwards when dst starts above src keeps an overlapping
	// copy correct, as memmove does.
	back := uintptr(d) > uintptr(s)
	if sz == 8 {
		dw, sw := unsafe.Slice((*uint64)(d), n), unsafe.Slice((*uint64)(s), n)
		if back {
			for i := n - 1; i >= 0; i-- {
				dw[i] = atomic.LoadUint64(&sw[i])
			}
		} else {
			for i := range dw {
				dw[i] = atomic.LoadUint64(&sw[i])
			}
		}
		return n
	}
	dw, sw := unsafe.Slice((*uint32)(d), n), unsafe.Slice((*uint32)(s), n)
	if back {
		for i := n - 1; i >= 0; i-- {
			dw[i] = atomic.LoadUint32(&sw[i])
		}
	} else {
		for i := range dw {
			dw[i] = atomic.LoadUint32(&sw[i])
		}
	}
	return n
}

// CopyIn copies min(len(dst), len(src)) elements from src, the caller's
// memory, to dst, elements of an object, as the built-in copy does
// (overlap included), and returns the number copied. When sz is 4 or 8
// (integer elements, which lock-free operations may read or change at any
// moment) each element of dst is written with one aligned store of its
// own size, never split and never merged into a wider copy as memmove's
// may be: a word-sized access is not torn (the Go memory model's rule for
// racing accesses of at most a machine word, and the single-copy atomicity
// of aligned stores on amd64 and arm64), so a concurrent LoadAt or AddAt
// sees the old element or the new one. (An atomic store would cost a
// locked instruction per element, 100 times the copy; the caller holds
// the object's lock, whose release publishes the stores to other lockers.)
// Otherwise it is copy.
func CopyIn[T any](sz uint8, dst, src []T) int {
	n := min(len(dst), len(src))
	if sz == 0 || n == 0 {
		return copy(dst, src)
	}
	d, s := unsafe.Pointer(&dst[0]), unsafe.Pointer(&src[0])
	back := uintptr(d) > uintptr(s) // as in CopyOut
	if sz == 8 {
		storeWords(unsafe.Slice((*uint64)(d), n), unsafe.Slice((*uint64)(s), n), back)
	} else {
		storeWords(unsafe.Slice((*uint32)(d), n), unsafe.Slice((*uint32)(s), n), back)
	}
	return n
}

// storeWords copies src to dst one word at a time (backwards when back),
// each with one plain store.
//
//go:noinline
func storeWords[W uint32 | uint64](dst, src []W, back bool) {
	if back {
		for i := len(dst) - 1; i >= 0; i-- {
			dst[i] = src[i]
		}
		return
	}
	for i := range dst {
		dst[i] = src[i]
	}
}

// Put stores x as the first element of elems (memory of at least
// sizeof(T) bytes at an address aligned for T, not yet shared). The bytes
// are cleared first so that padding bytes are zero, not whatever memory
// given to Init held.
func Put[T any](elems []byte, x T) {
	clear(elems[:unsafe.Sizeof(x)])
	*(*T)(unsafe.Pointer(&elems[0])) = x
}

// PutSlice copies src to the start of elems (same conditions as Put),
// padding bytes cleared.
func PutSlice[T any](elems []byte, src []T) {
	if len(src) == 0 {
		return
	}
	var zero T
	clear(elems[:uintptr(len(src))*unsafe.Sizeof(zero)])
	copy(unsafe.Slice((*T)(unsafe.Pointer(&elems[0])), len(src)), src)
}
