package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// Errors of pools. Test for them with errors.Is.
var (
	// ErrClosed is returned for work given to a pool after Close or
	// Terminate, and wrapped by the errors of tasks that Terminate ended.
	// It is fs.ErrClosed, as shm.ErrClosed is, so one check covers both.
	ErrClosed = fs.ErrClosed

	// ErrWorkerDied is matched by every *WorkerDiedError.
	ErrWorkerDied = errors.New("proc: pool worker died")

	// ErrPanic is matched by every *PanicError.
	ErrPanic = errors.New("proc: task panicked")
)

// TaskError is the error of one task of a Map (or Imap, MapUnordered):
// Index is the input's position and Err what went wrong: a
// *WorkerDiedError, a *PanicError, an error wrapping ErrEncode (the input
// or the result could not be encoded), ErrClosed (Terminate), or the
// error the function returned (carried as its message: the error value
// itself lived in the worker).
type TaskError struct {
	Index int
	Err   error
}

// The "proc: " of an error of this package is not repeated ("proc: task
// 5: worker pid 42 killed by SIGKILL ...").
func (e *TaskError) Error() string {
	return fmt.Sprintf("proc: task %d: %s", e.Index, strings.TrimPrefix(fmt.Sprint(e.Err), "proc: "))
}

// Unwrap returns Err.
func (e *TaskError) Unwrap() error { return e.Err }

// WorkerDiedError reports a task whose worker process died while holding
// it: killed by a signal (SIGKILL, the OOM killer), an os.Exit, a crash
// outside the task's recover (a fatal runtime error, a panic in another
// goroutine). Only the tasks the worker held end with it; the pool
// replaces the worker and goes on. It matches ErrWorkerDied.
//
// With BeforeStart set, the task never ran: workers kept dying before
// they took their first task (a crash in an init function, a worker that
// cannot start), and rather than replace them for ever while every task
// waits, the pool failed pending tasks with the last one's death.
type WorkerDiedError struct {
	Pid         int            // the worker's process id
	Code        int            // its exit code, -1 when a signal killed it
	Signal      syscall.Signal // the signal that killed it, 0 if it exited
	Index       int            // the task's index in its Map (0 for Submit)
	Attempts    int            // how many times the task was started (1 + retries)
	BeforeStart bool           // the worker died before it took any task: this one never ran
}

func (e *WorkerDiedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proc: worker pid %d ", e.Pid)
	if e.Signal != 0 {
		fmt.Fprintf(&b, "killed by %s", signalName(e.Signal))
	} else {
		fmt.Fprintf(&b, "exited with code %d", e.Code)
	}
	if e.BeforeStart {
		fmt.Fprintf(&b, " before it took a task (workers keep dying at start); task %d never ran", e.Index)
		return b.String()
	}
	fmt.Fprintf(&b, " while holding task %d", e.Index)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (attempt %d)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns ErrWorkerDied.
func (e *WorkerDiedError) Unwrap() error { return ErrWorkerDied }

// PanicError reports a task whose function panicked. The worker recovered
// and lives on. It matches ErrPanic.
type PanicError struct {
	Value string // the panic value, as fmt.Sprint (or Error) prints it
	Stack string // the panicking goroutine's stack in the worker
}

func (e *PanicError) Error() string { return "proc: task panicked: " + e.Value }

// Unwrap returns ErrPanic.
func (e *PanicError) Unwrap() error { return ErrPanic }

// remoteError is the error a task's function returned, as its message.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return e.msg }

// TaskErrors returns the *TaskError values of err, the error of Map (an
// errors.Join of one per failed task), in index order, so that a caller
// need not unwrap the join:
//
//	out, err := pool.Map(ctx, in)
//	for _, te := range proc.TaskErrors(err) {
//		log.Printf("input %d: %v", te.Index, te.Err)
//	}
//
// It is nil when err is nil or holds no *TaskError (the context's error
// of a canceled Map, ErrClosed). err may also be a single *TaskError, or
// wrap Map's error (fmt.Errorf with %w); the values are listed in the
// order err holds them, which for Map's error is index order.
func TaskErrors(err error) []*TaskError {
	var tes []*TaskError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *TaskError:
			tes = append(tes, e)
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return tes
}
