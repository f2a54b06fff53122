//go:build unix

package proc

import (
	"errors"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// exists reports whether pid names a process, zombie or not, by sending it
// the null signal: EPERM means it exists but belongs to someone else.
func exists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}

// readStat returns the contents of a small /proc file, read with bare
// system calls: os.ReadFile would try (and fail) to register the file with
// the runtime's poller, five system calls more per read, and in a process
// that has opened no file yet (a worker just started) create the poller.
func readStat(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	const limit = 64 << 10
	b := make([]byte, 0, 512)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, cap(b))
		}
		room := b[len(b):min(cap(b), limit+1)] // one byte more than the limit tells it is exceeded
		n, err := unix.Read(fd, room)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) > limit {
			return nil, &os.PathError{Op: "read", Path: path, Err: errors.New("longer than 64 KiB")}
		}
	}
}
