package proc

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/shmkit/shmkit/shm"
)

// Errors returned by this package. Test for them with errors.Is.
var (
	// ErrNotRegistered is returned by Start for a Func registered after
	// Main ran (the re-executed binary would not know it), and by Wait
	// (inside an *ExitError) when the child did not know the function's
	// name: the analogue of Python's "Can't pickle local object".
	ErrNotRegistered = errors.New("proc: function not registered before Main")

	// ErrNoMain is returned by Start in a binary whose main (or TestMain)
	// never called Main: the child would run main all over again instead
	// of the worker.
	ErrNoMain = errors.New("proc: Main was not called at the top of main")

	// ErrEncode is wrapped by Start when an argument can be neither passed
	// as a shmkit object nor encoded (a channel, a function, a closed
	// object). The error is an *EncodeError; nothing was started.
	ErrEncode = errors.New("proc: cannot pass argument")

	// ErrWorkerFailed is matched by every *ExitError: the worker exited
	// with a status other than 0, or was killed by a signal.
	ErrWorkerFailed = errors.New("proc: worker failed")

	// ErrNotSupported is returned by Start on systems other than Linux. It
	// is shm.ErrNotSupported.
	ErrNotSupported = shm.ErrNotSupported
)

// EncodeError reports an argument of Start that cannot be passed to a
// worker. It matches ErrEncode.
type EncodeError struct {
	Index int    // the argument's position in Start's args
	Type  string // its Go type, as %T prints it
	Err   error  // gob's error, or what is wrong with the object
}

// Error says which argument cannot be passed, and why.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("proc: cannot pass argument %d (%s): %v", e.Index, e.Type, e.Err)
}

// Unwrap returns ErrEncode and the underlying error.
func (e *EncodeError) Unwrap() []error { return []error{ErrEncode, e.Err} }

// Exit statuses a worker process uses besides the function's own: 0 when
// the function returned nil, 1 when it returned an error, 2 when it
// panicked (the Go runtime's own status for an unrecovered panic). A
// worker exits with os.Exit's code when the function calls os.Exit.
const (
	exitError         = 1   // the function returned an error
	exitPanic         = 2   // the function panicked
	exitNotRegistered = 120 // the child does not know the function's name
	exitBadStart      = 121 // the child could not read its manifest or open its rings
	exitOrphan        = 122 // the parent was gone before the worker started
)

// ExitError reports a worker that did not exit with status 0. It matches
// ErrWorkerFailed, and ErrNotRegistered when the child did not know the
// function, and the start context's error when cancelling it killed the
// worker.
//
// Exit codes: 1 when the function returned an error (Err holds its
// message), 2 when it panicked (Panic holds the value and the stack),
// what the function gave os.Exit otherwise; Code is -1 and Signal is set
// when a signal killed the worker.
type ExitError struct {
	Pid    int            // the worker's process id
	Name   string         // the worker's name (Config.Name, default the Func's)
	Code   int            // exit code, -1 when killed by a signal
	Signal syscall.Signal // the signal that killed it, 0 if it exited
	Err    string         // the message of the error the function returned, "" if none
	Panic  string         // the panic value and the goroutine's stack, "" if none

	notRegistered bool
	ctxErr        error // the start context's error, when it killed the worker
}

// Error names the worker and says how it ended: killed by a signal,
// panicked (the panic value's first line), failed (the error), or the
// exit code.
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proc: worker %s (pid %d) ", e.Name, e.Pid)
	switch {
	case e.notRegistered:
		fmt.Fprintf(&b, "does not know function %q: not registered before Main in the child", e.Name)
	case e.Signal != 0:
		fmt.Fprintf(&b, "killed by signal %v", e.Signal)
		if e.ctxErr != nil {
			fmt.Fprintf(&b, " (start context: %v)", e.ctxErr)
		}
	case e.Panic != "":
		p, _, _ := strings.Cut(e.Panic, "\n")
		fmt.Fprintf(&b, "panicked: %s", p)
	case e.Err != "":
		fmt.Fprintf(&b, "failed: %s", e.Err)
	default:
		fmt.Fprintf(&b, "exited with code %d", e.Code)
	}
	return b.String()
}

// Unwrap returns ErrWorkerFailed, plus ErrNotRegistered or the start
// context's error where they apply.
func (e *ExitError) Unwrap() []error {
	errs := []error{ErrWorkerFailed}
	if e.notRegistered {
		errs = append(errs, ErrNotRegistered)
	}
	if e.ctxErr != nil {
		errs = append(errs, e.ctxErr)
	}
	return errs
}
