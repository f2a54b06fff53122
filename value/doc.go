// Package value shares one fixed-size value between processes: the Go
// analogue of Python's multiprocessing.Value and RawValue, with no
// serialisation and no copy beyond the value itself.
//
// # Basics
//
// A Value[T] is a T in shared memory next to a robust lock (a sem.Mutex).
// Create makes a named one (a segment of its own, see package shm), Open
// attaches to it from any process, and Init/At place one inside memory you
// manage (a segment you laid out yourself):
//
//	v, err := value.Create[float64]("temperature", 0.0) // Value('d', 0.0)
//	...
//	err = v.Update(ctx, func(t *float64) { *t += 1.5 })
//	t, err := v.Load(ctx)
//
// T must be fixed-size and pointer-free: numbers, bool, fixed-size arrays
// and structs of those, nested to any depth. Create and Open refuse any
// other T with an error matching ErrNotPlain that names the offending
// field ("main.Config.Names[0]: string: ...", and as the Path of the
// *NotPlainError that errors.As finds in it): pointers, strings, slices,
// maps, interfaces, channels, funcs, uintptr and empty types mean nothing
// in another process. Opening a Value created with another T (a different
// size, alignment or structural fingerprint of fields, offsets and kinds)
// fails with an error matching ErrType, a *shm.MismatchError whose Want
// and Got describe both types, whether the Value is named (Open) or placed
// (At); memory that does not hold a valid Value fails with ErrCorrupt.
// Nothing read from shared memory is trusted.
//
// # Integer values
//
// For integer T (int32, uint32, int64, uint64, int, uint and named types
// of those), AtomicOf(v) gives lock-free Load, Store, Add, Swap and
// CompareAndSwap: one atomic instruction each, no system call, no
// allocation. Value.Load and Value.Store of an integer T are single atomic
// operations too and take no lock.
//
// Value.Update of an integer T still takes the lock, but installs fn's
// result with compare-and-swap: fn runs on a copy of the value, and if a
// lock-free write (Atomic, or Value.Store) from any process lands between
// the copy and the swap, fn runs again on the new value, as Java's
// AtomicLong.updateAndGet does. With no lock-free writer, fn runs exactly
// once. fn must therefore compute the new value from the old one and do
// nothing else (no counting of calls, no sending).
//
// This is the design that keeps totals exact when locked and lock-free
// updates are mixed, in any process: an Update that wrote fn's result back
// under the lock would silently erase an Atomic.Add made meanwhile
// (Atomic does not take the lock), and making Atomic take the lock would
// cost it what it is for. A re-run of a pure fn is invisible; a lost
// increment is not. A process killed inside fn cannot tear an integer:
// its swap happened or it did not.
//
// # Memory ordering
//
// Every atomic operation is sequentially consistent (package sync/atomic).
// The lock orders everything else: an Unlock (the end of Update, Load or
// Store for non-integer T) happens before the next Lock returns, in any
// process, so fn in Update sees every write made under the lock before it.
// Writes through Pointer without the lock are ordered with nothing.
//
// # Tearing
//
// A non-integer T is read and written with plain copies. Under the lock
// (Load, Store, Update, or your own Lock) copies never tear. Without it
// (Raw, Pointer), a reader concurrent with a writer may see a mixture of
// old and new bytes; on amd64 and arm64 an aligned field of 1, 2, 4 or 8
// bytes is usually copied in one access, which the hardware does not
// tear, but that is the compiler's choice and the Go memory model
// promises nothing of the kind. Integer T never tears in Value's own
// operations (Load, Store, Update, Atomic), which are atomic.
//
// # Alignment
//
// A named Value's T starts 256 bytes into a page-aligned mapping (the
// 128-byte segment header and the 128-byte object header), so it is
// 64-byte aligned. Placed Values require memory aligned to 8 bytes and to
// T's alignment (Init checks; At reports ErrCorrupt otherwise), so 64-bit
// atomics are always aligned, on 32-bit platforms too.
//
// # Anonymous Values and other processes
//
// CreateAnonymous makes a Value in a memfd segment with no name, sealed
// against resizing, gone when the last process closes it. Every Value (and
// Raw) is a shm.Shareable: give its File to a child through
// exec.Cmd.ExtraFiles and attach there with OpenFile, or send its Segment
// over a Unix socket and attach with Receive:
//
//	v, err := value.CreateAnonymous(0.0)
//	cmd.ExtraFiles = []*os.File{v.File()} // fd 3 in the child
//	// in the child:
//	v, err := value.OpenFile[float64](ctx, os.NewFile(3, ""))
//
// The element type's Go name is recorded in the segment's header, so a
// Value opened with another type fails with a *shm.MismatchError naming both
// types, and a descriptor that is not a segment at all (a forgotten
// ExtraFiles entry) with shm.ErrNotSegment. Named Values are removed with
// Unlink.
//
// Contexts: nil means context.Background(). A context bounds waiting only:
// a call that can complete without waiting (an uncontended lock, a ready
// segment) does so even with a done context; one that would wait returns
// the context's error at once.
//
// # Crashes
//
// A process may die at any moment, holding the lock. The next process to
// lock it takes it over: Update (and Load, Store of a non-integer T) then
// still applies its fn, marks the lock consistent and returns an error
// matching sem.ErrOwnerDead. That error means "done, but look": the update
// has been applied, so do not retry it; a previous update of a
// non-integer T may be half done (an integer T's cannot be: it either
// happened or did not). To repair before the lock is marked consistent,
// use Lock directly: it returns sem.ErrOwnerDead with the lock held, and
// MarkConsistent clears the state. An integer Update that takes the lock
// over and then gives up with its ctx (see Update) applies nothing and
// returns ctx's error only; it leaves the lock inconsistent, so the
// death is reported by the next operation that applies.
//
// # Closing
//
// Close releases the handle. It waits for the locked operations in flight
// on it (so that it never leaves the shared lock held by a live process);
// later Load, Store and Update calls return ErrClosed, whatever T. Pointers
// and Atomic values obtained earlier stay safe to use after Close but then
// read and write private zeroed memory (for a named Value): shm replaces a
// closed mapping instead of unmapping it, so a stray access never faults
// the process. Close does not interrupt an operation waiting for the lock:
// it waits for it, so bound such waits with their ctx.
//
// The byte layout (after shm's 128-byte segment header) is documented in
// docs/format/value-array.md.
//
// On systems other than Linux the named constructors, and Init and At of
// the locked forms, fail with an error matching shm.ErrNotSupported; the
// placed Raw forms work on any memory.
package value
