//go:build unix

package proc

import "golang.org/x/sys/unix"

// exists reports whether pid names a process, zombie or not, by sending it
// the null signal: EPERM means it exists but belongs to someone else.
func exists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
