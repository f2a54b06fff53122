//go:build linux

package main

import (
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// allowedCPUs returns the CPUs this process may run on.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			out = append(out, i)
		}
	}
	return out
}

// startPinned starts cmd with its CPU affinity set to cpu (when cpu >= 0).
// The mask is set on the locked OS thread that forks the child, which
// inherits it with every thread it will ever make; the thread's own mask
// is restored afterwards. When the mask cannot be set, cmd is started
// unpinned and pinErr says why.
//
// It runs on a fresh goroutine so that, should the mask fail to be
// restored, the thread dies with that goroutine instead of serving others.
func startPinned(cmd *exec.Cmd, cpu int) (pinErr, err error) {
	if cpu < 0 {
		return nil, cmd.Start()
	}
	type result struct{ pinErr, err error }
	ch := make(chan result, 1)
	go func() {
		p, e := startPinnedLocked(cmd, cpu)
		ch <- result{p, e}
	}()
	r := <-ch
	return r.pinErr, r.err
}

func startPinnedLocked(cmd *exec.Cmd, cpu int) (pinErr, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return os.NewSyscallError("sched_getaffinity", err), cmd.Start()
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return os.NewSyscallError("sched_setaffinity", err), cmd.Start()
	}
	err = cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil {
		// Locked twice, unlocked once: the thread, which keeps the
		// narrow mask, exits with this goroutine.
		runtime.LockOSThread()
	}
	return nil, err
}
