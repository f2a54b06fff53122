package refring

import (
	"os"

	"golang.org/x/sys/unix"
)

// Anonymous creates a memfd of size bytes, maps it shared and returns the
// mapping and the file (pass it to a child in exec.Cmd.ExtraFiles).
func Anonymous(size int) ([]byte, *os.File, error) {
	fd, err := unix.MemfdCreate("shmkit-refring", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:shmkit-refring")
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, nil, os.NewSyscallError("ftruncate", err)
	}
	mem, err := MapFile(f, size)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return mem, f, nil
}

// MapFile maps size bytes of f shared, read-write.
func MapFile(f *os.File, size int) ([]byte, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return mem, nil
}

// Unmap releases a mapping made by Anonymous or MapFile.
func Unmap(mem []byte) error {
	if err := unix.Munmap(mem); err != nil {
		return os.NewSyscallError("munmap", err)
	}
	return nil
}
