package sem

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// hiddenProcess reports whether pid names a process that exists although
// /proc/PID cannot be seen (/proc mounted with hidepid). A zombie is not
// hidden: its /proc entry is visible.
func hiddenProcess(pid int) bool {
	if err := unix.Kill(pid, 0); err != nil && err != unix.EPERM {
		return false // ESRCH: no such process
	}
	var st unix.Stat_t
	return unix.Stat("/proc/"+strconv.Itoa(pid), &st) == unix.ENOENT
}
