package proc

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const supported = true

// sysProcAttr makes the child receive SIGKILL when its parent dies.
// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits,
// not the process (golang/go#27505), which is why startProcess forks from
// one locked thread that lives as long as the process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

var starter struct {
	once sync.Once
	reqs chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd from a goroutine locked, for the life of the
// process, to its OS thread: the Go runtime may otherwise end the thread
// that forked a child, which would kill the child at once through its
// parent-death signal.
func startProcess(cmd *exec.Cmd) error {
	starter.once.Do(func() {
		starter.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range starter.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	starter.reqs <- startReq{cmd, done}
	return <-done
}

// memFile returns a memfd holding b, for the child to read.
func memFile(name string, b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// closeOnExec keeps an inherited descriptor from leaking into processes
// the worker starts.
func closeOnExec(fd int) { syscall.CloseOnExec(fd) }
