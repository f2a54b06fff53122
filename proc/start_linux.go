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

// maxStarters bounds the threads startProcess starts children from: a
// pool's workers are started in parallel (the kernel lets several vforks
// wait for their execs at once), and each such thread is kept for the
// life of the process.
const maxStarters = 4

var starter struct {
	mu      sync.Mutex
	threads int // started, at most maxStarters
	idle    int // of them, waiting for a request (a hint for when to add one)
	reqs    chan startReq
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess starts cmd from a goroutine locked, for the life of the
// process, to its OS thread: the Go runtime may otherwise end the thread
// that forked a child, which would kill the child at once through its
// parent-death signal. Up to maxStarters such threads start children at
// once; a start waits for one to be free.
func startProcess(cmd *exec.Cmd) error {
	starter.mu.Lock()
	if starter.reqs == nil {
		starter.reqs = make(chan startReq)
	}
	if starter.idle > 0 {
		starter.idle--
	} else if starter.threads < maxStarters {
		starter.threads++
		go startLoop(starter.reqs)
	}
	starter.mu.Unlock()
	done := make(chan error, 1)
	starter.reqs <- startReq{cmd, done}
	return <-done
}

// starterThreads reports how many starter threads (and goroutines) exist.
func starterThreads() int {
	starter.mu.Lock()
	defer starter.mu.Unlock()
	return starter.threads
}

// startLoop is a starter thread's goroutine.
func startLoop(reqs <-chan startReq) {
	runtime.LockOSThread() // never unlocked: the thread lives as long as the process
	for r := range reqs {
		r.done <- r.cmd.Start()
		starter.mu.Lock()
		starter.idle++
		starter.mu.Unlock()
	}
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
