// Package sem provides locks that live in shared memory and work across
// processes: Mutex, Semaphore and Event, built on Linux futexes. They are
// the analogues of Python's multiprocessing Lock, (Bounded)Semaphore and
// Event, without a manager process.
//
// # Basics
//
// Each object occupies 64 bytes (one cache line) of shared memory. It can
// live at any 8-byte-aligned offset inside a segment, next to the data it
// guards: the creator calls InitMutex (InitSemaphore, InitEvent) once on
// fresh memory, typically inside shm.WithInit so that nobody sees it half
// made, and every user, in any process, attaches with MutexAt
// (SemaphoreAt, EventAt). Or it can stand alone as a named segment:
// CreateMutex in one process, OpenMutex(ctx, name) in the others. The
// bytes are described in docs/FORMAT.md (docs/format/sem.md).
//
// A handle (*Mutex, *Semaphore, *Event) may be used by many goroutines at
// once; Close it when done. Close waits for calls in flight on that handle
// (waking any that sleep, which return ErrClosed) before it unmaps a named
// object; every call after Close returns ErrClosed. Closing does not
// unlock or release anything.
//
// Every call that can block takes a context.Context and returns ctx.Err()
// when it ends first, holding nothing. A call that can succeed without
// blocking succeeds even if ctx is already done.
//
// # Memory model
//
// Across processes as within one: Unlock happens before a later Lock
// returns; a Release happens before the Acquire that takes its permit
// returns; a Set happens before the Wait it ends returns (and before an
// IsSet that reports it). Writes to the shared segment made while holding
// a Mutex are therefore visible to the next holder in any process. The
// lock words are read and written only with sync/atomic operations, which
// are sequentially consistent in Go; each use has its reason in a comment.
//
// The race detector cannot see the lock words (they are outside the Go
// heap), so these edges are also reported to it on a heap proxy
// (internal/race): a Mutex guarding ordinary Go data causes no false race
// reports under -race (two mappings of one object in a process, such as
// two OpenMutex calls, count as one lock). Accesses to the shared segment
// itself are invisible to the race detector; test them across processes by
// counting.
//
// # Speed
//
// An uncontended Lock, Unlock, TryLock that succeeds, Acquire, Release,
// Set, Clear and IsSet make no system call and allocate nothing: a lock is
// taken with one compare-and-swap. A blocked Lock spins briefly, then
// sleeps on the futex; waiters are recorded (a bit in the Mutex, a count
// in Semaphore and Event), so that Unlock, Release and Set make a wake-up
// system call only when someone sleeps. Besides the compare-and-swap,
// each call counts itself in and out of its handle (two atomic adds on
// memory private to the process), which is what lets Close wait for calls
// in flight. A TryLock that finds the lock held reads the owner's /proc
// entry to check that it lives.
//
// # Robustness: ErrOwnerDead
//
// A Mutex records its owner as the owner's pid together with a 32-bit tag
// of its start time, written by the same compare-and-swap that takes the
// lock. Sleepers wake periodically (after 1 ms, backing off to 64 ms) and
// check the owner in /proc: if that pid no longer exists, is a zombie, or
// now names a process with another start time (the pid was reused), the
// owner is dead. One sleeper takes the lock over (a compare-and-swap from
// the dead owner's word, so only one succeeds) and its Lock returns
// ErrOwnerDead with the lock held, as POSIX robust mutexes return
// EOWNERDEAD. TryLock does the same check when the lock is held. Because
// the pid and the start tag are written by one 64-bit compare-and-swap,
// there is no moment when a live owner's pid sits next to a stale start
// time, so a mismatch is conclusive at once; a stopped or descheduled
// owner (SIGSTOP, a loaded machine) is never mistaken for a dead one.
//
// ErrOwnerDead means what the lock guards may be half-updated. The holder
// should repair it and call MarkConsistent. Until someone does, the Mutex
// stays inconsistent and every Lock, in every process, returns
// ErrOwnerDead (with the lock held), so nobody silently works on broken
// data. This is gentler than POSIX, where unlocking without
// pthread_mutex_consistent makes the mutex unusable for ever
// (ENOTRECOVERABLE), but it keeps the signal.
//
// A Mutex is owned by a process, not a goroutine: any goroutine of the
// owning process may Unlock it (as with sync.Mutex), and if a goroutine
// holding it exits, the lock stays held until the process dies. Unlock
// from another process returns ErrNotOwner.
//
// Semaphore permits held by a process that dies are not given back (as
// with POSIX semaphores: a semaphore has no owner to check). A waiter that
// dies while asleep leaves a waiter count behind; the only effect is that
// later Releases and Sets make a wake-up system call they could have
// skipped.
//
// # Why not the kernel's robust futex lists
//
// Linux can mark a futex FUTEX_OWNER_DIED when its owner thread exits
// (set_robust_list, PI futexes), but the list is per thread, and the Go
// runtime moves goroutines between threads and lets threads exit: a lock
// taken by one thread may be released by another, and a thread that
// exits while the process lives would hand the lock away. So liveness is
// checked per process, by pid and start time, in user space.
//
// # Caveats
//
//   - All processes using an object must share one pid namespace (one
//     host or one container) and see the same /proc. Across pid
//     namespaces a pid means different processes and locks may be taken
//     over wrongly. When /proc cannot be read at all, owners are never
//     judged dead: a dead owner then blocks others until their contexts
//     end. An owner hidden by a /proc mounted with hidepid (another user's
//     process) counts as alive while kill(pid, 0) finds it; its start time
//     cannot be checked, so its death is noticed only once its pid is free.
//   - Pids must fit in 22 bits (Linux's PID_MAX_LIMIT is 1<<22).
//   - A Mutex is not reentrant: locking it twice from one process waits
//     for itself until ctx ends.
//   - Everything read from shared memory is validated: MutexAt,
//     SemaphoreAt and EventAt return ErrCorrupt for memory that does not
//     hold a valid object, and an impossible lock word seen later gives
//     ErrCorrupt (or, for a bogus owner, is taken over as a dead owner);
//     nothing panics or loops for ever. A malicious peer that shares the
//     memory can still deny service, as it could by holding the lock.
//   - On systems other than Linux the package compiles, and every
//     constructor returns ErrNotSupported.
package sem
