// Package proc starts and supervises worker processes and pools of them:
// the process half of Python's multiprocessing (Process, Pool, map,
// starmap, imap_unordered, apply_async, close/join/terminate), built on
// shmkit's own rings and handing any shmkit object to a worker.
//
// # Basics
//
// Go cannot fork a running program or pickle a closure, so a worker is the
// same binary re-executed, dispatching at the top of main to a function
// registered by name:
//
//	var square = proc.RegisterTask("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		proc.Main() // runs the worker and exits when started as one; returns otherwise
//		pool, err := proc.NewPool(ctx, square, proc.PoolConfig{Workers: 4})
//		...
//		out, err := pool.Map(ctx, []int{0, 1, 2, 3}) // [0 1 4 9]
//	}
//
// Register (for Process) and RegisterTask (for Pool) must run at package
// level or in init, so that the re-executed binary registers the same
// functions before Main dispatches; a function registered later is refused
// at Start with ErrNotRegistered, the analogue of Python's "Can't pickle
// local object". Main must be called first thing in main, and in TestMain
// for tests that start workers; starting a worker from a binary that never
// called Main is refused with ErrNoMain, since the child would run main
// all over again. It works the same from go run, a built binary and a test
// binary.
//
// A Process gets its arguments as given to Start: a shmkit object (any
// shm.Shareable: a segment, sem lock, value, array, queue, pipe end)
// travels as its descriptor in exec.Cmd.ExtraFiles, listed in a manifest the
// child reads (no fd number is ever guessed), and is attached in the worker
// with Object and the object's package's OpenFile function; any other value
// is encoded (gob), and a value that cannot be is an error at Start, before
// anything runs.
//
// # Failure
//
// A worker's death is an event, not a broken pool. When a pool worker is
// killed (SIGKILL, the OOM killer), panics outside a task, or calls
// os.Exit, exactly the tasks it held end with a *WorkerDiedError naming
// the worker and the task, the worker is replaced (at a bounded restart
// rate), and every other task goes on (a worker that dies before it took a
// task costs none; but once 2*Workers have died so in a row, each further
// one fails a chunk of the pending tasks, not retried, so that workers that
// cannot start fail tasks instead of leaving them waiting for ever, and
// one not ready within PoolConfig.StartTimeout is killed as such); with
// PoolConfig.Retries, tasks of idempotent functions are retried on another
// worker instead. A task that
// panics ends with a *PanicError carrying the value and the stack, and the
// worker lives on. Cancelling a Map's context stops it promptly and kills
// what must be killed. Children never outlive their parent, even a parent
// that is SIGKILLed (PR_SET_PDEATHSIG, set from a thread that lives as long
// as the process, plus a parent check at Main for the race at start), and
// pools keep their rings in anonymous segments, so nothing is left in
// /dev/shm either. Python's Pool, by contrast, hangs for ever when a
// worker is killed (cpython #96062), and ProcessPoolExecutor becomes
// unusable for good (BrokenProcessPool).
//
// # When to use processes instead of goroutines
//
// Goroutines are the right tool for concurrency and parallelism in Go: they
// cost a few kilobytes and a context switch of nanoseconds, share memory
// directly and are scheduled across every core already. A process pool
// does not make Go code faster. Use one when separate processes are the
// point:
//
//   - isolating code that can crash or corrupt the process: a cgo library
//     that segfaults or leaks, untrusted or plug-in code, a parser fed
//     hostile input; a crash then costs one task, not the server;
//   - separate heaps: a worker's garbage collector pauses and memory
//     growth stay its own, and MaxTasksPerWorker recycles a worker that
//     leaks;
//   - per-process limits and identity: rlimits, cgroups, seccomp, another
//     user, a separate address space for secrets;
//   - a prefork server or sidecar, where processes exist anyway and must
//     share queues, locks and counters (package ring, sem, value).
//
// Do not use a pool to parallelise ordinary Go code: a task crosses two
// rings and an encoding, which costs far more than a goroutine, and only
// chunked work (PoolConfig.ChunkSize, automatic by default) comes close to
// an in-process goroutine pool. BENCHMARKS.md has the figures.
//
// # Logging and output
//
// A worker's slog.Default() sends its records through a ring to the
// parent, which handles them with its own Logger, adding the worker's pid
// and name as attributes (the analogue of multiprocessing's log_to_stderr).
// A worker's standard output and error are passed through line by line,
// prefixed with its name and pid, or captured with Config.Stdout and
// Config.Stderr.
//
// Start-up: a worker costs an exec of the program's own binary, its Go
// runtime and package initialisation, so a bigger program starts slower,
// and one built with cgo (the default where a C compiler is installed) is
// linked dynamically and loads libc at every start. Built with
// CGO_ENABLED=0 (or with -tags netgo,osusergo if cgo is needed for other
// packages) the binary is static: on the 2-vCPU machine of BENCHMARKS.md
// an exec of shmbench's binary took 3.1 ms static against 4.0 ms
// dynamic, and Start to Wait of one worker 3.7 against 4.3-4.8 ms.
// A pool starts its workers in parallel and gives a worker tasks only
// once it has said it is ready, so a new pool's first results come from
// whichever worker is up first, not from one still starting.
//
// On systems other than Linux, starting a worker fails with an error
// matching shm.ErrNotSupported.
package proc
