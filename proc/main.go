package proc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/shmkit/shmkit/ring"
)

// Environment variables with which Start tells a re-executed binary that
// it is a worker. Start removes inherited ones, so a worker may start
// workers of its own.
const (
	envWorker   = "SHMKIT_PROC_WORKER"   // the registered name of the function to run
	envManifest = "SHMKIT_PROC_MANIFEST" // the descriptor number of the manifest
	envParent   = "SHMKIT_PROC_PARENT"   // the parent's pid, for the check at start
	envPrefix   = "SHMKIT_PROC_"
)

// Main runs the registered worker function and exits when this process
// was started as a worker by Start; otherwise it records that it ran and
// returns at once. Call it first thing in main, before flags are parsed
// or anything else is started:
//
//	func main() {
//		proc.Main()
//		...
//	}
//
// and in the TestMain of tests that start workers:
//
//	func TestMain(m *testing.M) { proc.Main(); os.Exit(m.Run()) }
//
// In a worker, Main reads the manifest Start left it, checks that its
// parent is still the process that started it (if not, the parent died
// before PR_SET_PDEATHSIG was in force, and the worker exits at once with
// status 122), sets slog.Default to send records to the parent, runs the
// function with a background context and exits: with status 0 when it
// returned nil, 1 when it returned an error, 2 when it panicked (the error
// and the panic reach the parent's ExitError), and 120 when no function
// of that name is registered.
//
// slog.SetDefault also sends the standard log package's output to the
// parent as records. Records logged after the function returned (by
// goroutines it left running) are dropped.
func Main() {
	markMain()
	name, ok := os.LookupEnv(envWorker)
	if !ok {
		return
	}
	os.Exit(runWorker(name))
}

// runWorker is the worker side of Main; it returns the exit status.
func runWorker(name string) int {
	if p, err := strconv.Atoi(os.Getenv(envParent)); err != nil || os.Getppid() != p {
		// The parent died before the kernel could tie us to it: nobody
		// waits for us.
		return exitOrphan
	}
	m, err := readManifest()
	if err != nil {
		fmt.Fprintf(os.Stderr, "proc: worker %s: %v\n", name, err)
		return exitBadStart
	}
	// Our descriptors must not leak into processes this worker starts.
	closeOnExec(3 + m.Events)
	for _, a := range m.Args {
		if a.File >= 0 {
			closeOnExec(3 + a.File)
		}
	}
	events, err := ring.OpenFile(context.Background(), os.NewFile(uintptr(3+m.Events), "proc-events"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "proc: worker %s: open event ring: %v\n", name, err)
		return exitBadStart
	}
	w := &logWriter{q: events}
	slog.SetDefault(slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: m.Level})))

	f := lookup(name)
	if f == nil {
		w.sendStatus(status{NotRegistered: true})
		return exitNotRegistered
	}
	st, code := callFunc(f, &Args{entries: m.Args})
	w.sendStatus(st)
	return code
}

// callFunc calls f's function under recover.
func callFunc(f *Func, args *Args) (st status, code int) {
	defer func() {
		if v := recover(); v != nil {
			st = status{Panic: fmt.Sprintf("%v\n\n%s", v, debug.Stack())}
			code = exitPanic
		}
	}()
	if err := f.fn(context.Background(), args); err != nil {
		return status{Err: err.Error()}, exitError
	}
	return status{}, 0
}

func readManifest() (*manifest, error) {
	fd, err := strconv.Atoi(os.Getenv(envManifest))
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad %s=%q", envManifest, os.Getenv(envManifest))
	}
	f := os.NewFile(uintptr(fd), "proc-manifest")
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("read manifest: longer than %d bytes", maxManifest)
	}
	m, err := unmarshalManifest(b)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if m.Events < 0 {
		return nil, fmt.Errorf("manifest names no event ring")
	}
	return m, nil
}
