//go:build !linux

package testproc

// FutexSleepers reports ok = false: only Linux shows a thread's system
// call (see the Linux version).
func FutexSleepers(pid int, addr uintptr) (n int, ok bool) { return 0, false }

// ThreadState returns 0: there is no /proc stat line to read here.
func ThreadState(stat []byte) byte { return 0 }
