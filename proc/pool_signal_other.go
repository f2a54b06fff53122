//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package proc

import (
	"strconv"
	"syscall"
)

// signalName names sig as "signal N" (pools need Linux anyway).
func signalName(sig syscall.Signal) string {
	return "signal " + strconv.Itoa(int(sig))
}
