package race

import (
	"testing"
	"unsafe"
)

func TestProxy(t *testing.T) {
	var a, b [2]uint64 // stand-ins for shared-memory addresses
	pa, pb := Proxy(unsafe.Pointer(&a)), Proxy(unsafe.Pointer(&b))
	if !Enabled {
		if pa != nil || pb != nil {
			t.Fatal("Proxy without the race detector is not nil")
		}
		return
	}
	if pa == nil || pa != Proxy(unsafe.Pointer(&a)) {
		t.Fatal("Proxy of one address is not stable")
	}
	if pa == pb {
		t.Fatal("two addresses share a proxy")
	}
	ReleaseMerge(pa)
	Acquire(pa)
	Acquire(nil)
	ReleaseMerge(nil)
}
