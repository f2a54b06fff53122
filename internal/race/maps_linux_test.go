//go:build race && linux

package race

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Two mappings of one memfd share proxies offset by offset; private
// memory does not.
func TestProxyTwoMappings(t *testing.T) {
	fd, err := unix.MemfdCreate("race-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 8192); err != nil {
		t.Fatal(err)
	}
	var maps [2][]byte
	for i := range maps {
		maps[i], err = unix.Mmap(fd, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(maps[i])
	}
	at := func(i, off int) unsafe.Pointer { return unsafe.Pointer(&maps[i][off]) }
	if Proxy(at(0, 64)) != Proxy(at(1, 64)) || Proxy(at(0, 4096+8)) != Proxy(at(1, 4096+8)) {
		t.Fatal("two mappings of one byte have different proxies")
	}
	if Proxy(at(0, 64)) == Proxy(at(1, 128)) {
		t.Fatal("different offsets share a proxy")
	}
	priv, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(priv)
	if _, ok := mappedKey(uintptr(unsafe.Pointer(&priv[0]))); ok {
		t.Fatal("private mapping keyed by file")
	}
}
