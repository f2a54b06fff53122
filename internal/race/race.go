//go:build race

package race

import (
	"runtime"
	"sync"
	"unsafe"
)

// Enabled reports whether the race detector is on.
const Enabled = true

// proxy is the heap object whose address the race detector tracks. It must
// not be zero-sized: zero-sized allocations share one address.
type proxy struct{ _ [8]byte }

var proxies sync.Map // key (uintptr address or caller's comparable key) -> *proxy

// Proxy returns the heap proxy for the shared-memory address addr. Where
// the address lies in a shared file mapping (a /dev/shm segment, a memfd,
// shared anonymous memory), the key is the file and offset, so every
// mapping of the same bytes in this process gets the same proxy; otherwise
// it is the address.
func Proxy(addr unsafe.Pointer) unsafe.Pointer {
	if k, ok := mappedKey(uintptr(addr)); ok {
		return ProxyKey(k)
	}
	return ProxyKey(uintptr(addr))
}

// ProxyKey returns the heap proxy for an arbitrary comparable key, such as
// the identity of a file and an offset in it, so that two mappings of one
// object share a proxy. Keys of different types never collide.
func ProxyKey(key any) unsafe.Pointer {
	if p, ok := proxies.Load(key); ok {
		return unsafe.Pointer(p.(*proxy))
	}
	p, _ := proxies.LoadOrStore(key, new(proxy))
	return unsafe.Pointer(p.(*proxy))
}

// Acquire records that the caller has acquired p (after a Lock, Acquire or
// Wait returns): everything released on p happens before what follows.
func Acquire(p unsafe.Pointer) {
	if p != nil {
		runtime.RaceAcquire(p)
	}
}

// ReleaseMerge records a release on p (before Unlock, Release or Set) that
// adds to, rather than replaces, earlier releases on p.
func ReleaseMerge(p unsafe.Pointer) {
	if p != nil {
		runtime.RaceReleaseMerge(p)
	}
}
