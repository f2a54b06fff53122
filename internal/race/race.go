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

var proxies sync.Map // uintptr (shared address) -> *proxy

// Proxy returns the heap proxy for the shared-memory address addr; every
// caller with the same addr gets the same proxy.
func Proxy(addr unsafe.Pointer) unsafe.Pointer {
	key := uintptr(addr)
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
