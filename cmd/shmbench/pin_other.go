//go:build !linux

package main

import (
	"errors"
	"os/exec"
	"runtime"
)

// allowedCPUs returns 0..NumCPU-1: affinity is not queried off Linux.
func allowedCPUs() []int {
	out := make([]int, runtime.NumCPU())
	for i := range out {
		out[i] = i
	}
	return out
}

// startPinned starts cmd unpinned: pinning is Linux-only.
func startPinned(cmd *exec.Cmd, cpu int) (pinErr, err error) {
	if cpu < 0 {
		return nil, cmd.Start()
	}
	return errors.New("CPU pinning is Linux-only"), cmd.Start()
}
