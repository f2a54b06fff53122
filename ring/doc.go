// Package ring moves messages between processes through a lock-free ring
// buffer in shared memory: the analogue of Python's multiprocessing.Queue
// and Pipe, without pickling, without a feeder thread and without copying a
// message more than once.
//
// # Basics
//
// A Queue lives in a shm segment (named, or anonymous and passed by file
// descriptor) or in memory the caller provides (New, At). Its mode is fixed
// at creation:
//
//   - MPMC, the default (a zero Config.Mode): any number of producers and
//     consumers in any number of processes (up to Config.Participants
//     handles at a time), as with Python's multiprocessing.Queue.
//     Fixed-size slots with per-slot sequence numbers (Vyukov's bounded
//     MPMC queue) plus a participant table that makes the queue survive
//     SIGKILL.
//
//   - SPSC, the fast path to ask for (Mode: SPSC): one producer and one
//     consumer at a time. Variable-length records in a byte ring; Put and
//     Get make no system call and no allocation unless they must sleep.
//     The roles are claimed by the first Put-side and Get-side call and
//     recorded with the owner's pid and start time; a second live handle
//     asking for a taken role gets a *BusyError (ErrBusy) naming the
//     holder's pid and saying to use MPMC, and a role whose owner died is
//     taken over.
//
//   - Slots (Mode: Slots), SPSC for typed queues (CreateTyped): every
//     message a value of the element type, in an array of slots with no
//     header. Typed's Put and Get copy the value straight into and out
//     of its slot, PutBatch and GetBatch move a run with one copy and one
//     atomic store, and a consumer takes everything queued after one read
//     of the producer's position: the fastest mode for batches of small
//     values (1.3-2.4x SPSC's batches at 8 bytes across processes; single
//     Put and Get about as fast as SPSC's; BENCHMARKS.md). Roles and
//     takeover are SPSC's.
//
// For example:
//
//	q, err := ring.Create("jobs", ring.Config{MaxMessage: 256, Capacity: 1024})
//	err = q.Put(ctx, []byte("hello"))    // in one process
//	n, err := q.Get(ctx, buf)           // in another, after ring.Open(ctx, "jobs")
//
// Every object of the package (Queue, Conn, Typed, Encoded) is a
// shm.Shareable: an anonymous one (CreateAnonymous, CreateAnonymousTyped,
// NewPipe) reaches another process as its File() in exec.Cmd.ExtraFiles
// (attach with OpenFile, OpenFileTyped, OpenPipeFile) or over a Unix
// socket with Segment().Send (attach with Receive, ReceiveTyped,
// ReceivePipe); a named one also by name (Open, OpenTyped, OpenPipe).
//
// Copying calls: Put, TryPut, PutBatch, Get, GetAppend, TryGet, GetBatch.
// Zero-copy calls: Reserve + Commit for producers, Next (TryNext) + Release
// for consumers. Typed[T] carries fixed-size, pointer-free values;
// Encoded[T] carries any value through a Codec (Gob, JSON). NewPipe,
// CreatePipe, OpenPipe, OpenPipeFile and Pipe make a duplex Conn (message
// API and io.ReadWriteCloser) out of two SPSC rings.
//
// # Promises
//
// Ordering: the messages of one producer handle are received in the order
// its Puts returned. With several consumers each consumer still receives
// any one producer's messages in order (positions are claimed in order),
// but which consumer gets which message is not defined.
//
// Memory: everything a producer wrote into a message before Put (or Commit)
// returned is visible to the consumer that receives it. Within a process
// and across processes alike, a Put (PutBatch, Commit, Send, Write)
// happens before the Get (GetBatch, Next, Recv, Read...) that receives
// its message returns, and CloseWrite happens before the io.EOF (or
// ErrClosed) it causes. The race detector is told so (see Caveats).
//
// Contexts: every call that can block takes a context. A nil context is
// context.Background(). A context that is already done is no reason to
// fail a call that can complete at once: such a call (a Put with room, a
// Get with a message queued, an Open of a ready segment, a Receive of a
// descriptor already sent) succeeds, as sem's calls do; a call that would
// have to wait returns ctx.Err() at once instead, having taken and
// published nothing. Conn's Read and Write take no context and wait
// without bound (until the peer sends, closes or dies).
//
// Blocking: Put waits while the queue is full and Get while it is empty,
// polling for a while (DefaultSpinTime, 50 µs, for SPSC queues and pipes;
// DefaultSpinTimeMPMC, 10 µs, for MPMC; see SetSpinTime and SetSpin) and
// then sleeping on a futex; the other side makes a wake-up system call
// only when the queue's waiter count says someone sleeps. SetNap adds a
// phase between the two, for a handle in a process busy with other
// goroutines (a consumer of a network stream, say): the call looks again
// every interval with its goroutine parked on a timer, asking nobody to
// wake it and holding no OS thread, before it sleeps on the futex. Every
// blocking call takes a context and returns its error when it is done;
// Try variants never block.
//
// Fairness: none is promised between the consumers (or the producers) of
// an MPMC queue. A Put wakes one sleeping consumer, but a consumer that is
// polling may claim the message first, and the woken one sleeps again; a
// consumer can so wait while others take thousands of messages (measured
// in the kill tests: one consumer of three got none of the last ~3,000).
// An application that needs each worker to get its share should give
// each worker an SPSC queue of its own, or hand work out by message
// content rather than by who asks first.
//
// Close: CloseWrite closes the queue for writing, for every process: later
// Puts return ErrClosed; consumers receive what was put before and then
// io.EOF. A Put that returned nil before CloseWrite is always delivered; a
// Put racing with CloseWrite either succeeds (and is delivered) or returns
// ErrClosed (and, in SPSC mode, its message may still reach a consumer
// that had not yet seen io.EOF). Close releases this process's handle (and
// its role or participant entry) and closes the segment; it is not
// CloseWrite, so a process may detach without ending the queue.
//
// Crash behaviour (MPMC): a participant may be killed at any instant.
// Survivors never hang on it. A slot claimed by a producer that died before
// publishing it is skipped once a consumer finds the producer dead (counted
// in Stats.Skipped; its Put never returned, so nothing promised is lost). A
// message held by a consumer that died before releasing it (between
// claiming the slot and Release, or inside Get before it returned) is
// recovered by the producer that needs its slot and counted in Stats.Lost
// together with that consumer's identity (Stats.LastLost). In MPMC mode
// PutBatch and GetBatch claim runs of up to a quarter of the slots (at
// most 64) with one atomic operation each: a producer killed inside
// PutBatch leaves the run's unpublished slots skipped; a consumer killed
// inside GetBatch, before it released its run, loses the whole run (each
// message counted in Stats.Lost). Queue.SetLostHandler reports each lost
// message, with its bytes and its producer, to the process that recovers
// it, so that an application can put again exactly what was lost. Every message
// whose Put returned nil is delivered exactly once to a live consumer or
// counted as lost; nothing else is lost. Blocked calls and runs of
// failing Try calls alike check for dead participants every few
// milliseconds, so neither is stuck behind one. Deaths are detected by
// pid and process start time (internal/proc), so all participants must
// share a pid namespace.
//
// Crash behaviour (SPSC): a producer that dies leaves no trace (its
// unpublished records are invisible and overwritten by the next producer,
// which takes the role over once the old owner is found dead). A consumer
// that dies while holding messages from Next that it had not released, or
// inside Get, leaves them in the queue: the next consumer receives them
// (they were never delivered to a live consumer). Stats.Lost stays zero.
// A Conn (pipe) claims both its roles when opened, and a call blocked on
// a peer that died returns ErrPeerDied (after what the peer had sent).
//
// Zero-copy validity: the slice Reserve returns may be written until
// Commit; the slices Next returns may be read until Release (Close
// refuses with ErrPending while any is held).
// They alias shared memory: do not keep them afterwards, since the space is
// reused by later messages.
//
// # Caveats
//
// An SPSC queue has no internal locking: the Put-side calls (Put, TryPut,
// PutBatch, Reserve, Commit, CloseWrite aside) must not run concurrently on
// one handle, nor the Get-side calls. MPMC handles serialise their own
// calls, unless SetExclusive declared them used by one goroutine per side,
// which spares the lock. Close must not run concurrently with other calls
// on the handle.
//
// Everything read from shared memory is validated: a corrupted ring yields
// ErrCorrupt, never a panic, an out-of-bounds access, a huge allocation or
// an endless spin.
//
// The Go race detector does not see the shared memory, nor the atomics
// on it; correctness of the rings is established by the package's
// cross-process counting tests. The happens-before edges the queue
// provides to Go heap data (see Memory) are reported to it, in -race
// builds only (internal/race; they compile to nothing otherwise): a
// producer releases on a proxy of the ring right before the atomic store
// that publishes, and a consumer acquires it once it has found a message
// or the close. The proxy is keyed by the ring's file and offset, not
// its address, so two handles in one process on two mappings of the same
// segment (two Opens, or OpenFile of a queue's own File) agree on it,
// while the two rings of a pipe have one each. One proxy per ring means
// that every Get also acquires what earlier Puts of other producers
// released: -race may miss a race between two producers, never report a
// false one through the queue.
//
// Errors carry detail as typed errors that match the sentinels with
// errors.Is: *ConfigError (ErrConfig: the field, its value, why),
// *TooLargeError (ErrTooLarge: the size and the limit), *BusyError
// (ErrBusy: the role and the pid holding it), *SizeError (ErrType: a
// message of the wrong size for a typed queue, refused at Put whichever
// handle puts it) and *shm.MismatchError (ErrType: opening a typed queue
// as another T, with both Go type names). ErrClosed also matches
// net.ErrClosed and fs.ErrClosed. A typed Get that fails returns T's zero
// value.
//
// The byte layout is documented in docs/format/ring.md.
package ring
