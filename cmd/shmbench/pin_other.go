//go:build !linux

package main

import (
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

// startPinned starts cmd; pinning is Linux-only.
func startPinned(cmd *exec.Cmd, cpu int) error { return cmd.Start() }
