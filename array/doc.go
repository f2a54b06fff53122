// Package array shares a fixed-length array of fixed-size values between
// processes: the Go analogue of Python's multiprocessing.Array and
// RawArray, with zero-copy []T views over the shared memory.
//
// # Basics
//
// An Array[T] is n elements of T in shared memory with one robust lock
// (a sem.Mutex) for the whole array. Create and CreateFrom make a named
// one (a segment of its own, see package shm), Open attaches to it from any
// process, and Init/At place one inside memory you manage:
//
//	a, err := array.CreateFrom("squares", []int32{0, 1, 2}) // Array('i', [0, 1, 2])
//	...
//	a.Set(2, 4)
//	err = a.Update(ctx, 1, func(x *int32) { *x *= 10 })
//	s := a.Slice() // []int32 over the shared memory, no copy
//
// T must be fixed-size and pointer-free: numbers, bool, fixed-size arrays
// and structs of those. Any other T is refused with an error matching
// ErrNotPlain that names the offending field (the Path of the
// *NotPlainError that errors.As finds in it). Opening an Array created with
// another T fails with an error matching ErrType, a *shm.MismatchError
// whose Want and Got describe both types (named or placed); memory that
// does not hold a valid Array (a length that does not fit the segment,
// bad alignment, a bad lock) fails with ErrCorrupt, never a panic.
//
// Indexing methods (At, Set, Update, and Atomic's ...At methods) panic on
// an index out of range, exactly like indexing a Go slice: an index is a
// programming error, not a condition to handle.
//
// # Integer elements
//
// For integer T (int32, uint32, int64, uint64, int, uint and named types
// of those), At and Set are atomic loads and stores, and AtomicOf(a) gives
// lock-free LoadAt, StoreAt, AddAt, SwapAt and CompareAndSwapAt on each
// element: one atomic instruction, no system call, no allocation.
//
// Every access an Array makes to an integer element is one untorn 4- or
// 8-byte access, so no element ever tears: At, Set, Atomic and Update
// use atomic operations; CopyOut copies under the lock with an atomic
// load per element, and CopyIn with one aligned store of the element's
// size per element (never a wider memmove: a machine-word store is not
// torn, by the Go memory model and by amd64 and arm64 alike, and the
// lock's release publishes it). Only the slice view and Raw access integer
// elements with plain loads and stores that the compiler may merge or
// split.
//
// Array.Update of an integer element takes the lock but installs fn's
// result with compare-and-swap: if a lock-free write (Set, Atomic) from
// any process lands while fn runs, fn runs again on the new value, so no
// such write is lost and totals stay exact when locked and lock-free
// updates are mixed. With no lock-free writer fn runs exactly once; it
// must compute the new value from the old one and do nothing else. (The
// alternative, writing fn's result back under the lock, would silently
// erase lock-free writes made meanwhile; see package value for the full
// argument.)
//
// # Memory ordering
//
// Atomic operations are sequentially consistent (sync/atomic). The lock
// orders everything else: an Unlock happens before the next Lock returns,
// in any process. Update, WithLock, CopyIn and CopyOut run under the lock;
// At and Set of non-integer T, Slice and Raw do not and are ordered with
// nothing (use the lock, or an Event or queue message, to publish writes).
//
// # Tearing
//
// Non-integer elements are copied with plain loads and stores. A reader
// racing a writer on the same element, without the lock, may see a
// mixture of old and new bytes (no guarantee from the Go memory model; on
// amd64 and arm64 an aligned 1, 2, 4 or 8-byte field is usually copied in
// one access, which the hardware does not tear, but that is the
// compiler's choice). Elements never tear into their neighbours. CopyOut under the
// lock is a consistent snapshot only with respect to writers that also
// use the lock: a lock-free write (Set, Atomic) may land between two
// elements of the copy, though never inside an integer element.
//
// # The slice view
//
// Slice returns a []T that aliases the shared memory (length and capacity
// Len). It is valid for as long as the Array is open; after Close it stays
// safe to use (no fault) but aliases private zeroed memory, because shm
// replaces a closed mapping instead of unmapping it. An append to it
// always copies to the Go heap, and the copy is no longer shared.
//
// Accesses through the slice are plain loads and stores, ordered with
// nothing: hold the lock (WithLock, or Lock) to read or write a
// consistent view. Without the lock, the tearing rules above apply to
// every element, integer elements included as far as the Go memory model
// is concerned (an aligned 4- or 8-byte access is not torn by amd64 or
// arm64 hardware, but it is a data race with concurrent Atomic operations
// that the race detector cannot see in shared memory): use Atomic for
// integer elements that others change lock-free.
//
// # Alignment
//
// Elements start 256 bytes into a page-aligned mapping (segment header
// then object header) and are naturally aligned; placed Arrays require
// memory aligned to 8 bytes and to T's alignment (Init checks; At reports
// ErrCorrupt otherwise). The object start, the 128-byte header and the
// element size are all multiples of the element alignment, and the start
// is 8-byte aligned, so a 64-bit integer element is always 8-byte aligned,
// as sync/atomic requires on arm64 and on 32-bit platforms.
//
// # Anonymous Arrays and other processes
//
// CreateAnonymous makes a Array in a memfd segment with no name, sealed
// against resizing, gone when the last process closes it. Every Array (and
// Raw) is a shm.Shareable: give its File to a child through
// exec.Cmd.ExtraFiles and attach there with OpenFile, or send its Segment
// over a Unix socket and attach with Receive:
//
//	a, err := array.CreateAnonymous[float64](1024)
//	cmd.ExtraFiles = []*os.File{a.File()} // fd 3 in the child
//	// in the child:
//	a, err := array.OpenFile[float64](ctx, os.NewFile(3, ""))
//
// The element type's Go name is recorded in the segment's header, so a
// Array opened with another type fails with a *shm.MismatchError naming both
// types, and a descriptor that is not a segment at all (a forgotten
// ExtraFiles entry) with shm.ErrNotSegment. Named Arrays are removed with
// Unlink.
//
// Contexts: nil means context.Background(). A context bounds waiting only:
// a call that can complete without waiting (an uncontended lock, a ready
// segment) does so even with a done context; one that would wait returns
// the context's error at once.
//
// # Crashes
//
// A process that dies holding the lock is detected by the next locker:
// Update, WithLock, CopyIn and CopyOut still run, mark the lock consistent
// and return an error matching sem.ErrOwnerDead. That error means "done,
// but look": the operation has been applied (do not retry it), and a
// non-integer element may hold the dead process's partial write. Use Lock
// directly to repair before marking it consistent. An integer Update that
// takes the lock over and then gives up with its ctx applies nothing and
// returns ctx's error only, leaving the lock inconsistent for the next
// operation, which applies, to report.
//
// The byte layout is documented in docs/format/value-array.md. The
// benchmarks of Array (BenchmarkArrayAt, BenchmarkArraySet,
// BenchmarkArraySum) live in package value's bench_test.go, beside those
// of Value and of the Go heap and sync.Mutex equivalents, so that one run
// (go test -run '^$' -bench . -benchmem ./value/) shows them all.
//
// On systems other than Linux the named constructors, and Init and At of
// the locked forms, fail with an error matching shm.ErrNotSupported; the
// placed Raw forms work on any memory.
package array
