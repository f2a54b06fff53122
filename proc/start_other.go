//go:build !linux

package proc

import (
	"os"
	"os/exec"
	"syscall"
)

const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func startProcess(cmd *exec.Cmd) error { return ErrNotSupported }

func starterThreads() int { return 0 }

func memFile(name string, b []byte) (*os.File, error) { return nil, ErrNotSupported }

func closeOnExec(fd int) {}
