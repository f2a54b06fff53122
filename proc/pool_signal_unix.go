//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package proc

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalName names sig as C does ("SIGKILL"), or "signal N" when it has
// no name.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}
