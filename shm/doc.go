// Package shm creates, opens and shares memory segments between processes
// on Linux: named segments in /dev/shm and anonymous ones (memfd) passed to
// a child or over a Unix socket.
//
// It is the bottom layer of shmkit: sem, value, array and ring put their
// objects in the payload of a Segment and validate their own metadata
// there. Use those packages for locks, typed values and queues; use shm
// directly for raw bytes shared between processes.
//
// # Basics
//
// A segment is a file: a 128-byte header (HeaderSize) followed by the
// payload. The header records a magic number, the format version, the
// object kind, an element type descriptor, the payload size, the creator's
// pid and start time, two kind-specific parameters, a checksum of all of
// that, and an init-state word. docs/FORMAT.md gives it byte by byte.
//
//	s, err := shm.Create("jobs", 1<<20, shm.WithInit(func(p []byte) error {
//		copy(p, "hello")
//		return nil
//	}))
//	...
//	defer s.Close()
//	buf := s.Bytes() // the payload, shared with every process that opens "jobs"
//
// and in another process:
//
//	s, err := shm.Open(ctx, "jobs")
//
// Create publishes a segment atomically: the file is created without a
// name (O_TMPFILE), sized, mapped, its header written and the WithInit
// function run before it is linked into /dev/shm under NamePrefix+name. So
// Open never sees a half-initialised segment made by this package, and of
// processes racing in Create or OpenOrCreate exactly one creates the
// segment. Open validates the whole header before returning: wrong magic
// or checksum is ErrCorrupt, another format version ErrVersion, and a kind
// or type other than the one asked for (WithKind, WithType) a
// *MismatchError matching ErrKind or ErrType. Errors about a named
// segment are *fs.PathError values carrying its file path, so
// errors.Is(err, fs.ErrNotExist), fs.ErrExist and fs.ErrPermission work as
// for os.Open. A segment still initialising (only possible for one written
// by another tool) is waited for, bounded by the context, and
// ErrCreatorDied reports a creator that died meanwhile. An opener keeps the
// header it validated: a peer rewriting the header later changes nothing
// for it, and a file longer than its header says is mapped only as far as
// the payload goes.
//
// Anonymous segments (CreateAnonymous) have no name. Hand one to a child
// with exec.Cmd.ExtraFiles and OpenFile, or to an unrelated process with
// Send and Receive (SCM_RIGHTS over a *net.UnixConn). Their size is sealed.
//
// List and Inspect describe our segments in /dev/shm for tools such as
// cmd/shmctl. Named segments outlive their creators by design: remove them
// with Unlink.
//
// Mapping is done with golang.org/x/sys/unix directly. A wrapper such as
// edsrzf/mmap-go is not needed: it adds nothing x/sys lacks on Linux and
// drops flags such as MAP_POPULATE.
//
// # Caveats
//
// The payload is memory outside the Go heap shared with other processes.
// Everything in it may be changed by another process at any time; the Go
// race detector sees none of these accesses. Synchronise with atomics on
// the payload or with package sem, and treat what other processes wrote as
// untrusted.
//
// Mapping lifetime and Close: slices returned by Bytes point into the
// mapping. Unmapping it while a goroutine still uses such a slice would
// crash the whole process with a fault, so Close does not unmap: it
// replaces the shared mapping in place with private, zero-filled anonymous
// memory (MAP_FIXED|MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) and closes the
// file. A stale slice then reads zeros and its writes are lost, but nothing
// faults. The price is address space: the range stays reserved for the
// life of the process (it costs no memory until written; neighbouring
// retired ranges merge, so repeated Open and Close do not pile up
// mappings against vm.max_map_count). A program that opens and closes
// very large segments in a loop should keep them open instead. After
// Close, Bytes and File return nil, the other methods that can fail return
// ErrClosed, and a second Close returns ErrClosed.
//
// Sizes: the payload is 1 byte to MaxSize (1 TiB), and a segment occupies
// HeaderSize more. /dev/shm is a tmpfs, usually limited to half the RAM
// (and a container's /dev/shm often to 64 MiB). Space is allocated lazily,
// and touching a page that cannot be allocated kills the process with
// SIGBUS. So Create, OpenOrCreate and CreateAnonymous first compare the
// segment's size with the file system's free space (one fstatfs) and refuse
// one that does not fit with a *SpaceError matching syscall.ENOSPC that
// states both sizes. The check reserves nothing: other processes may take
// the space later (and the kernel's memfd file system reports no limit, so
// anonymous segments are bounded only by memory). WithPopulate reserves
// the space at creation (fallocate) and faults all pages in up front
// (MADV_POPULATE_WRITE); WithLockedPages (mlock) also keeps them in RAM but
// is limited by RLIMIT_MEMLOCK.
//
// Truncation: a process that truncates a segment's file makes every other
// process's access past the new end fault (SIGBUS). Anonymous segments made
// by CreateAnonymous are sealed against it (F_SEAL_SHRINK, F_SEAL_GROW), and
// OpenFile and Receive seal a memfd that allows it before mapping it;
// Segment.Sealed reports which. Named segments cannot be sealed: shm gives
// them mode 0600 by default, so that only their owner can truncate them, and
// a named segment shared with other users should get a mode that lets only
// trusted users write it (WithMode). Any other descriptor received from an
// untrusted process may be truncated by it.
//
// Contexts: a nil context means context.Background(). A context bounds
// waiting only, the rule of every shmkit package: a call that can complete
// without waiting does so even when its context is already done (Open and
// OpenFile of a ready segment, Receive of a message already queued on the
// socket, Create in OpenOrCreate), and one that would have to wait (for a
// segment still initialising, for a message not yet sent) returns the
// context's error at once.
//
// Descriptors: OpenFile and Receive on a descriptor that is not a shmkit
// segment at all (a pipe, a socket, a regular file without the segment
// magic, a descriptor number a child was not given) return a
// *NotSegmentError matching ErrNotSegment that names the descriptor and what
// it is, not ErrCorrupt: in a child this is the mark of a forgotten or
// misnumbered exec.Cmd.ExtraFiles entry.
//
// Names: a name is 1 to MaxNameLen bytes of [A-Za-z0-9._-], not starting
// with '.' and without "..". Open refuses to follow a symbolic link
// planted under a segment's name (O_NOFOLLOW).
//
// Processes: the creator's identity is its pid and start time, read from
// /proc. Processes sharing segments must share a pid namespace (and a
// /dev/shm) for the creator check to mean anything.
//
// On systems other than Linux every function returns ErrNotSupported.
package shm
