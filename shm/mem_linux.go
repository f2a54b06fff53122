package shm

// This file holds the package's unsafe code: creating slices over mappings
// and pointing at the header's state word.

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapShared maps length bytes of fd, shared and writable. MmapPtr is used
// instead of unix.Mmap so that no mapping is registered in x/sys's table:
// Close replaces the mapping rather than unmapping it.
//
// populate pre-faults the pages writable with MADV_POPULATE_WRITE (Linux
// 5.14): MAP_POPULATE faults a shared mapping's pages in for reading only
// (mm/gup.c, populate_vma_page_range), so that each page's first write
// still takes a write-protect fault. Older kernels (EINVAL) get
// MAP_POPULATE.
func mapShared(fd int, length int, populate bool) ([]byte, error) {
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	mem := unsafe.Slice((*byte)(p), length)
	if populate {
		if err := unix.Madvise(mem, unix.MADV_POPULATE_WRITE); err != nil {
			unmap(mem)
			if err != unix.EINVAL {
				return nil, os.NewSyscallError("madvise", err)
			}
			p, err = unix.MmapPtr(fd, 0, nil, uintptr(length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
			if err != nil {
				return nil, os.NewSyscallError("mmap", err)
			}
			mem = unsafe.Slice((*byte)(p), length)
		}
		touch(mem)
	}
	return mem, nil
}

// touch reads one byte of every page of mem. On some virtual machines the
// first access to each page of a new mapping costs microseconds even
// after the page tables are populated (measured on a 2-vCPU Firecracker
// guest: 26 ms for the first read of one byte per page of 16 MiB after
// MADV_POPULATE_WRITE, 0.1 ms for the second), which a pre-faulted
// mapping should not leave to its first messages. Reads change nothing a
// peer could see.
func touch(mem []byte) {
	var sum byte
	for i := 0; i < len(mem); i += pageSize {
		sum += mem[i]
	}
	touchSink = sum
}

var (
	pageSize  = os.Getpagesize()
	touchSink byte // keeps touch's loads from being optimised away
)

// unmap removes a mapping nobody else has seen (error paths of Create and
// Open).
func unmap(mem []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem)))
}

// trimMapping unmaps the whole pages of mem past end (a file longer than
// its header says: only the header and payload stay mapped) and returns
// what remains mapped.
func trimMapping(mem []byte, end int) []byte {
	page := os.Getpagesize()
	keep := (end + page - 1) / page * page
	if keep >= len(mem) {
		return mem
	}
	if err := unix.MunmapPtr(unsafe.Pointer(&mem[keep]), uintptr(len(mem)-keep)); err != nil {
		return mem // still mapped in full: harmless, merely larger
	}
	return mem[:keep:keep]
}

// retire replaces a shared mapping in place with private, zero-filled,
// unreserved anonymous memory. Views still held by other goroutines keep
// pointing at valid memory (reading zeros, writes stay private), so a
// stray access after Close cannot fault the process. The address range
// stays reserved for the life of the process.
func retire(mem []byte) error {
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem)),
		unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_FIXED|unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	return nil
}

// stateWord points at the header's init-state word: 4-byte aligned, since
// mappings are page aligned and offState is a multiple of 4.
func stateWord(mem []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[offState]))
}
