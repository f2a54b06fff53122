// Package proc identifies processes by pid and start time, so that a pid
// the kernel has handed to a new process is not mistaken for the process
// that used to have it.
//
// shmkit records the identity of a lock owner, a segment creator or a queue
// participant in shared memory and later asks whether that process is still
// alive. Linux robust futex lists cannot be used for this: they are per
// thread, and the Go runtime moves goroutines between threads.
//
// All participants must share one pid namespace (the usual case: one host
// or one container).
package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// ID names one process for its whole life: its pid and its start time in
// clock ticks after boot (field 22 of /proc/PID/stat).
type ID struct {
	Pid   int32
	Start uint64
}

// ErrNoProcess is returned when a pid names no live process.
var ErrNoProcess = errors.New("proc: no such process")

// ErrHidden is returned when a process exists but /proc does not show it
// (/proc mounted with hidepid and the process belongs to another user).
var ErrHidden = errors.New("proc: process hidden by /proc's hidepid")

var self struct {
	once sync.Once
	id   ID
}

// Self returns the identity of the calling process. It is computed once.
func Self() ID {
	self.once.Do(func() {
		pid := os.Getpid()
		st, err := StartTime(pid)
		if err != nil {
			// /proc is not mounted: fall back to the pid alone.
			st = 0
		}
		self.id = ID{Pid: int32(pid), Start: st}
	})
	return self.id
}

// StartTime returns the start time of process pid, in clock ticks after
// boot. A missing, zombie or dead process gives ErrNoProcess.
func StartTime(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, ErrNoProcess
	}
	b, err := readStat("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, ErrNoProcess // it exited between the open and the read
		}
		if errors.Is(err, os.ErrNotExist) {
			if exists(pid) {
				// /proc is mounted with hidepid: the process runs but its
				// entry is invisible to us. Never take it for dead.
				return 0, ErrHidden
			}
			return 0, ErrNoProcess
		}
		return 0, err
	}
	return parseStat(b)
}

// parseStat extracts the start time from the contents of /proc/PID/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so parsing starts after the last ')'.
func parseStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("proc: malformed stat")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
	if len(fields) < 20 {
		return 0, errors.New("proc: malformed stat")
	}
	switch fields[0][0] {
	case 'Z', 'X', 'x':
		// Zombie or dead: it will never unlock anything again.
		return 0, ErrNoProcess
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// Alive reports whether id still names a running process. A start time of
// zero matches any process with that pid. Errors other than "no such
// process" (for example /proc unreadable) count as alive: it is never safe
// to take over from a process that might still run.
func Alive(id ID) bool {
	st, err := StartTime(int(id.Pid))
	if errors.Is(err, ErrNoProcess) {
		return false
	}
	if err != nil {
		return true
	}
	return id.Start == 0 || st == id.Start
}
