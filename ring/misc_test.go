package ring

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/shmkit/shmkit/shm"
)

type osFile = os.File

func osNewFile(fd uintptr) *os.File { return os.NewFile(fd, "fd") }

func fmtSscanf(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }

var errVersionForFuzz = shmErrVersion
var shmErrVersion = shm.ErrVersion

func unixSocketpair() ([2]*net.UnixConn, error) {
	var out [2]*net.UnixConn
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return out, err
	}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socket")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return out, err
		}
		out[i] = c.(*net.UnixConn)
	}
	return out, nil
}
