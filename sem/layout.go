package sem

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
)

// Sizes of the objects in shared memory: one cache line each. The memory
// handed to an Init or At function must be at least this long and 8-byte
// aligned (64-byte alignment avoids false sharing and is recommended).
const (
	MutexSize     = 64
	SemaphoreSize = 64
	EventSize     = 64
	CondSize      = 64
)

// Magic numbers at byte offset 8 of each object: "SKMX", "SKSM", "SKEV",
// "SKBR", "SKCV" read as little-endian uint32 ('S' is the lowest byte).
const (
	magicMutex     = 0x584d4b53
	magicSemaphore = 0x4d534b53
	magicEvent     = 0x56454b53
	magicBarrier   = 0x52424b53
	magicCond      = 0x56434b53
	formatVersion  = 1
)

// Common header words (byte offsets). Words 0..7 are kind-specific.
const (
	offMagic   = 8
	offVersion = 12
)

// littleEndian is true on every platform shmkit is used on today (amd64,
// arm64, riscv64, ppc64le, loong64); the futex half of the Mutex's 64-bit
// lock word depends on it.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// object is the validated base address of a 64-byte object.
type object struct{ base unsafe.Pointer }

// checkMem validates length and alignment of caller-supplied memory.
func checkMem(mem []byte, size int) (object, error) {
	if !futex.Supported {
		return object{}, ErrNotSupported
	}
	if len(mem) < size {
		return object{}, fmt.Errorf("%w: %d bytes, need %d", ErrBadMemory, len(mem), size)
	}
	p := unsafe.Pointer(unsafe.SliceData(mem))
	if uintptr(p)%8 != 0 {
		return object{}, fmt.Errorf("%w: address %#x", ErrBadMemory, uintptr(p))
	}
	return object{p}, nil
}

func (o object) u32(off uintptr) *uint32 { return (*uint32)(unsafe.Add(o.base, off)) }
func (o object) u64(off uintptr) *uint64 { return (*uint64)(unsafe.Add(o.base, off)) }

// freshObject validates memory handed to an Init function and zeroes the
// object with plain stores: nobody else uses the memory yet.
func freshObject(mem []byte, size int) (object, error) {
	o, err := checkMem(mem, size)
	if err != nil {
		return object{}, err
	}
	clear(unsafe.Slice((*byte)(o.base), size))
	return o, nil
}

// objectAt validates memory handed to an At function and the magic and
// version of the object in it.
func objectAt(mem []byte, size int, magic uint32, kind string) (object, error) {
	o, err := checkMem(mem, size)
	if err != nil {
		return object{}, err
	}
	if err := o.check(magic, kind); err != nil {
		return object{}, err
	}
	return o, nil
}

// publish writes version and then magic. The magic is stored last and
// atomically (a release store) so that a peer whose At sees the magic also
// sees every word Init wrote before it.
func (o object) publish(magic uint32) {
	atomic.StoreUint32(o.u32(offVersion), formatVersion)
	atomic.StoreUint32(o.u32(offMagic), magic)
}

// check validates magic and version; atomic loads because a creator may be
// publishing concurrently.
func (o object) check(magic uint32, kind string) error {
	if m := atomic.LoadUint32(o.u32(offMagic)); m != magic {
		return fmt.Errorf("%w: %s: bad magic %#x", ErrCorrupt, kind, m)
	}
	if v := atomic.LoadUint32(o.u32(offVersion)); v != formatVersion {
		return fmt.Errorf("%w: %s: unknown version %d", ErrVersion, kind, v)
	}
	return nil
}
