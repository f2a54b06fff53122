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

func memFile(name string, b []byte) (*os.File, error) { return nil, ErrNotSupported }

func closeOnExec(fd int) {}
