//go:build linux

package main

import (
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
// is restored afterwards.
//
// It runs on a fresh goroutine so that, should the mask fail to be
// restored, the thread dies with that goroutine instead of serving others.
func startPinned(cmd *exec.Cmd, cpu int) error {
	if cpu < 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() { errc <- startPinnedLocked(cmd, cpu) }()
	return <-errc
}

func startPinnedLocked(cmd *exec.Cmd, cpu int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return cmd.Start()
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return cmd.Start()
	}
	err := cmd.Start()
	if rerr := unix.SchedSetaffinity(0, &old); rerr != nil {
		// Locked twice, unlocked once: the thread, which keeps the
		// narrow mask, exits with this goroutine.
		runtime.LockOSThread()
	}
	return err
}
