// Package sem provides synchronisation objects that live in shared memory
// and work across processes: Mutex, Semaphore, Event, Cond and Barrier,
// built on Linux futexes. They are the analogues of Python's
// multiprocessing Lock, (Bounded)Semaphore, Event, Condition and Barrier,
// without a manager process.
//
// # Basics
//
// Mutex, Semaphore, Event and Cond occupy 64 bytes (one cache line) of
// shared memory, a Barrier BarrierSize(parties) bytes. An object can live
// at any 8-byte-aligned offset inside a segment, next to the data it
// guards: the creator calls InitMutex (InitSemaphore, InitEvent, InitCond,
// InitBarrier) once on fresh memory, typically inside shm.WithInit so that
// nobody sees it half made, and every user, in any process, attaches with
// MutexAt (SemaphoreAt, EventAt, CondAt, BarrierAt). A Cond is bound to a
// Mutex given to InitCond and CondAt.
//
// Or an object can stand alone in a segment of its own, named or
// anonymous: CreateMutex(name) in one process and OpenMutex(ctx, name) in
// the others, or CreateAnonymousMutex, handed to a child through
// exec.Cmd.ExtraFiles (pass File(); OpenMutexFile in the child) or to any
// process over a Unix socket (Segment().Send; ReceiveMutex there). Every
// kind has the same seven functions (CreateX, CreateAnonymousX, OpenX,
// OpenXFile, ReceiveX, and InitX, XAt), and Unlink removes a named object.
// A named or anonymous Cond holds its own Mutex next to it (Cond.Mutex).
// Every handle satisfies shm.Shareable: File and Segment return its
// segment's file and segment, or nil for an object placed with InitX or
// XAt (hand over the segment that holds that memory instead) and for the
// Mutex of a Cond segment (hand over the Cond). The bytes are described in
// docs/FORMAT.md (docs/format/sem.md).
//
// A handle may be used by many goroutines at once; Close it when done.
// Close waits for calls in flight on that handle (waking any that sleep,
// which return ErrClosed) before it unmaps a named or anonymous object;
// every call after Close returns ErrClosed. Closing does not unlock,
// release or break anything.
//
// # Contexts
//
// Every call that can block takes a context.Context; nil means
// context.Background(), everywhere. The rule, for every blocking call and
// every open: a call that can complete without waiting completes even if
// ctx is already done (a free Mutex is locked, an available permit taken,
// a set Event waited for, the last party of a Barrier round released, a
// ready object opened, a descriptor already queued on the socket
// received); a call that would have to wait returns an error matching
// ctx.Err() at once, having changed nothing, except for what its contract
// says a context's end does: Barrier.Wait breaks the barrier (as a timeout
// does in Python), and Cond.Wait, which always waits, returns at once
// still holding the Mutex. When ctx ends during the wait, the same
// results come back. This is package shm's rule too.
//
// # Errors
//
// Errors carry detail in typed errors that match the sentinels with
// errors.Is: *OwnerDeadError (ErrOwnerDead) names the dead owner's pid and
// start time, *NotOwnerError (ErrNotOwner) the holder's pid, and
// *BrokenBarrierError (ErrBrokenBarrier) why the barrier broke and which
// process broke it.
//
// # Memory model
//
// Across processes as within one: Unlock happens before a later Lock
// returns; a Release happens before the Acquire that takes its permit
// returns; a Set happens before the Wait it ends returns (and before an
// IsSet that reports it); a Signal or Broadcast happens before the
// Cond.Wait it ends returns; everything a party did before Barrier.Wait
// happens before every Wait of the same round returns. Writes to the shared segment made while holding
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
// ErrOwnerDead (an *OwnerDeadError naming the dead owner) with the lock
// held, as POSIX robust mutexes return EOWNERDEAD. A Cond.Wait, whose
// relock is a Lock, returns it the same way. TryLock does the same check when the lock is held. Because
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
// A Barrier records every party waiting in the current round (pid and a
// start tag, in a slot per arrival index). Sleeping parties check one
// another on their periodic timeouts (each the one that arrived just
// before it), so a party that dies while it waits, or while it is
// arriving, breaks the barrier for every other party within about one
// sleep period (at most 64 ms, plus a /proc read): their Waits return a
// *BrokenBarrierError with Reason BrokenDied and the dead pid, instead of
// hanging. The barrier stays broken until Reset.
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
//   - A Barrier round completes or breaks; a Reset while parties may
//     still arrive for the old round makes them join the new one (as in
//     Python). Generations are told apart by 16 bits in the slots: only
//     65536 Resets in a row with no completed round between them could
//     confuse a stale slot with a live one.
//   - Cond.Wait may return without a Signal (spuriously): wait in a loop
//     on the condition. Its relock is not bounded by ctx.
//   - Everything read from shared memory is validated: the At functions
//     return ErrCorrupt for memory that does not
//     hold a valid object, and an impossible lock word seen later gives
//     ErrCorrupt (or, for a bogus owner, is taken over as a dead owner);
//     nothing panics or loops for ever. A malicious peer that shares the
//     memory can still deny service, as it could by holding the lock.
//   - On systems other than Linux the package compiles, and every
//     constructor returns ErrNotSupported.
package sem
