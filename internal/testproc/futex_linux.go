package testproc

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// FutexSleepers counts the threads of process pid asleep in a futex
// system call on addr (an address in pid's memory), so that a test of a
// wake-up can first wait until the sleeper really sleeps in the kernel:
// /proc/PID/task/TID/syscall shows the call and its first argument, and
// the thread's stat shows it sleeping (S), not woken and waiting to run
// (R). ok is false where the kernel does not show system calls.
func FutexSleepers(pid int, addr uintptr) (n int, ok bool) {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*")
	for _, task := range tasks {
		b, err := os.ReadFile(task + "/syscall")
		if err != nil {
			continue // the thread exited, or the kernel does not say
		}
		ok = true
		// "NR arg0 arg1 ...", or "running" / "-1 ..." outside a system call.
		f := bytes.Fields(b)
		if len(f) < 2 || string(f[0]) != strconv.Itoa(unix.SYS_FUTEX) {
			continue
		}
		if a, err := strconv.ParseUint(string(f[1]), 0, 64); err != nil || uintptr(a) != addr {
			continue
		}
		if st, err := os.ReadFile(task + "/stat"); err == nil && ThreadState(st) == 'S' {
			n++
		}
	}
	return n, ok
}

// ThreadState returns field 3 of a /proc stat line (the state letter,
// after the command name, which may contain spaces and parentheses), or 0.
func ThreadState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}
