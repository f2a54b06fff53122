package shm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
)

// useTmpfile selects O_TMPFILE publication; tests turn it off to exercise
// the fallback (a uniquely named temporary file, link(2), unlink(2)).
var useTmpfile = true

// errSymlink explains ELOOP from an O_NOFOLLOW open.
var errSymlink = fmt.Errorf("is a symbolic link, refusing to follow it: %w", unix.ELOOP)

func pathError(op, p string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		err = errSymlink
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// Create creates the named segment with a payload of size bytes and maps
// it. It fails with an error matching fs.ErrExist if the segment exists.
//
// The segment is published atomically: the file is created unnamed
// (O_TMPFILE), sized, mapped, its header written, the WithInit function
// run on the payload, the state set to ready, and only then is it linked
// into /dev/shm. No process can open a half-initialised segment, and of
// processes racing to create one name exactly one succeeds.
func Create(name string, size int, opts ...Option) (s *Segment, err error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if err := validateSize(size); err != nil {
		return nil, err
	}
	o := collect(opts)
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", name, err)
	}
	p := path(name)
	fd, tmp, err := createUnlinked(o.mode)
	if err != nil {
		return nil, pathError("create", p, err)
	}
	if tmp != "" {
		// publish removes the temporary name; this covers failures
		// before it, a panicking init function included.
		defer func() {
			if s == nil {
				_ = unix.Unlink(tmp)
			}
		}()
	}
	s, err = initSegment(fd, name, size, &o, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: p, Err: err}
	}
	if err := publish(fd, tmp, p); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// createUnlinked returns a new file in /dev/shm that nobody can open by
// name: an O_TMPFILE file, or, where the file system lacks O_TMPFILE, a
// uniquely named temporary file whose path is returned in tmp.
func createUnlinked(mode os.FileMode) (fd int, tmp string, err error) {
	perm := uint32(mode.Perm())
	if useTmpfile {
		fd, err = unix.Open(shmDir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, perm)
		switch {
		case err == nil:
			// The umask applied at open; set the exact mode asked for.
			if err := unix.Fchmod(fd, perm); err != nil {
				_ = unix.Close(fd)
				return -1, "", os.NewSyscallError("fchmod", err)
			}
			return fd, "", nil
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EINVAL):
			// No O_TMPFILE support: fall back below.
		default:
			return -1, "", os.NewSyscallError("open", err)
		}
	}
	var rnd [8]byte
	for range 100 {
		_, _ = rand.Read(rnd[:])
		tmp = shmDir + "/.shmkit-tmp." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(rnd[:])
		fd, err = unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return -1, "", os.NewSyscallError("open", err)
		}
		if err := unix.Fchmod(fd, perm); err != nil {
			_ = unix.Close(fd)
			_ = unix.Unlink(tmp)
			return -1, "", os.NewSyscallError("fchmod", err)
		}
		return fd, tmp, nil
	}
	return -1, "", os.NewSyscallError("open", unix.EEXIST)
}

// publish gives the ready file its final name. link(2) never replaces an
// existing name, so EEXIST means somebody else's segment won.
func publish(fd int, tmp, p string) error {
	var err error
	if tmp == "" {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, p, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) {
			// /proc is not mounted; AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH.
			if err2 := unix.Linkat(fd, "", unix.AT_FDCWD, p, unix.AT_EMPTY_PATH); err2 == nil || !errors.Is(err2, unix.ENOENT) {
				err = err2
			}
		}
	} else {
		err = unix.Link(tmp, p)
		_ = unix.Unlink(tmp)
	}
	if err != nil {
		return pathError("create", p, err)
	}
	return nil
}

// initSegment sizes and maps a fresh file, writes the header, runs the
// init function and marks the segment ready. It takes ownership of fd.
func initSegment(fd int, name string, size int, o *options, flags uint32) (s *Segment, err error) {
	total := HeaderSize + size
	if err := checkSpace(fd, total); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	if err := unix.Ftruncate(fd, int64(total)); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("ftruncate", err)
	}
	if o.populate {
		// Reserve the space now, so that a full /dev/shm is ENOSPC here
		// rather than SIGBUS at the first touch of a page.
		if err := unix.Fallocate(fd, 0, 0, int64(total)); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			_ = unix.Close(fd)
			return nil, os.NewSyscallError("fallocate", err)
		}
	}
	mem, err := mapShared(fd, total, o.populate)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	ok := false
	defer func() {
		if !ok { // also when init panics
			unmap(mem)
			_ = unix.Close(fd)
		}
	}()
	self := proc.Self()
	h := header{
		version:      formatVersion,
		kind:         o.kind,
		size:         uint64(size),
		offset:       HeaderSize,
		flags:        flags,
		typ:          o.typ,
		creatorPid:   self.Pid,
		creatorStart: self.Start,
		p0:           o.p0,
		p1:           o.p1,
		typeName:     fitTypeName(o.typeName),
	}
	if h.kind == 0 {
		h.kind = KindRaw
	}
	// Nobody can open the file under its final name yet; the states are
	// still recorded in the documented order (header, initialising, init,
	// ready) so that a crash leaves a diagnosable file behind.
	encodeHeader(mem, &h)
	state := stateWord(mem)
	atomic.StoreUint32(state, uint32(StateInitialising))
	payload := mem[HeaderSize:total:total]
	if o.init != nil {
		if err := o.init(payload); err != nil {
			return nil, err
		}
	}
	// Release: the header and payload writes above happen before any
	// process that loads StateReady (Go atomics are sequentially consistent).
	atomic.StoreUint32(state, uint32(StateReady))
	_, _ = futex.WakeAll(state)
	h.state = StateReady
	if o.lock {
		if err := unix.Mlock(mem); err != nil {
			return nil, os.NewSyscallError("mlock", err)
		}
	}
	ok = true
	return newSegment(fd, name, mem, h), nil
}

// checkSpace refuses a segment larger than the free space of the file
// system holding fd (a tmpfs: /dev/shm, or the kernel's internal one for a
// memfd). tmpfs allocates pages only when they are first touched, so
// without this check a segment larger than the space left is created fine
// and the process dies of SIGBUS later. It is one fstatfs and no
// reservation: other processes may still fill the space meanwhile
// (WithPopulate reserves it). A file system that reports no block limit
// (an unlimited tmpfs) is not checked.
func checkSpace(fd, total int) error {
	var sf unix.Statfs_t
	if err := unix.Fstatfs(fd, &sf); err != nil || sf.Blocks == 0 || sf.Bsize <= 0 {
		return nil // nothing known: let ftruncate and the first touch decide
	}
	free := sf.Bavail * uint64(sf.Bsize)
	if uint64(total) > free {
		return &SpaceError{Need: uint64(total), Free: free, Total: sf.Blocks * uint64(sf.Bsize)}
	}
	return nil
}

func newSegment(fd int, name string, mem []byte, h header) *Segment {
	end := HeaderSize + int(h.size)
	return &Segment{
		name:    name,
		fd:      fd,
		file:    os.NewFile(uintptr(fd), fileName(name)),
		mem:     mem,
		payload: mem[HeaderSize:end:end],
		hdr:     h,
	}
}

func fileName(name string) string {
	if name == "" {
		return "memfd:" + NamePrefix + "anon"
	}
	return path(name)
}

// Open maps the existing named segment after validating its header.
//
// A missing segment gives an error matching fs.ErrNotExist, an unreadable
// one fs.ErrPermission, a symbolic link in its place an error wrapping
// ELOOP, a damaged header ErrCorrupt or ErrVersion, and a kind or type
// other than the one asked for with WithKind or WithType a *MismatchError.
// If the segment is still being initialised (possible only for segments
// written by other tools), Open waits until it is ready, until ctx is done,
// or until it finds the creator dead (ErrCreatorDied).
func Open(ctx context.Context, name string, opts ...Option) (*Segment, error) {
	ctx = orBackground(ctx)
	if err := validateName(name); err != nil {
		return nil, err
	}
	o := collect(opts)
	p := path(name)
	// A done ctx is no reason to fail an open that needs no waiting (the
	// package's context rule); waitReady honours it if waiting is needed.
	// O_NONBLOCK: a FIFO or device planted under the name must not block
	// the open (attach's fstat rejects it). It is cleared at once, so the
	// descriptor (File, Send) is an ordinary blocking one.
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathError("open", p, err)
	}
	_ = unix.SetNonblock(fd, false)
	return attach(ctx, fd, name, &o, -1)
}

// attach maps an open segment file, waits for it to be ready and validates
// it. It takes ownership of fd. src is the descriptor number the caller
// handed in (OpenFile's f, a descriptor received by Receive), or -1 for a
// named segment; a descriptor that is not a shmkit segment at all gives a
// *NotSegmentError naming it.
func attach(ctx context.Context, fd int, name string, o *options, src int) (*Segment, error) {
	label := fileName(name)
	fail := func(err error) (*Segment, error) {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: label, Err: err}
	}
	notSegment := func(what string) (*Segment, error) {
		op := "open file"
		if o.received {
			op = "receive"
		}
		err := &NotSegmentError{Op: op, FD: src, What: what}
		_ = unix.Close(fd)
		return nil, err
	}
	if name == "" {
		// A descriptor from another process: where it is a memfd that
		// allows sealing, seal its size before looking at it, so that the
		// sender cannot shrink it under our mapping (SIGBUS) later. Best
		// effort: named files and sealed memfds refuse, harmlessly.
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		if src >= 0 {
			return notSegment(describeFD(fd, st.Mode))
		}
		return fail(fmt.Errorf("%w: not a regular file (mode %#o)", ErrCorrupt, st.Mode))
	}
	if src >= 0 && !hasMagic(fd) {
		return notSegment(describeFD(fd, st.Mode))
	}
	if st.Size < HeaderSize {
		return fail(fmt.Errorf("%w: truncated: file is %d bytes, header needs %d", ErrCorrupt, st.Size, HeaderSize))
	}
	if uint64(st.Size) > HeaderSize+MaxSize || st.Size > math.MaxInt {
		return fail(fmt.Errorf("%w: file is %d bytes, larger than the largest segment", ErrCorrupt, st.Size))
	}
	mem, err := mapShared(fd, int(st.Size), o.populate)
	if err != nil {
		return fail(err)
	}
	h, err := waitReady(ctx, mem, st.Size)
	if err == nil {
		err = checkWant(name, &h, o)
	}
	if err == nil {
		// A peer may have grown the file far past the payload: keep only
		// what the header describes mapped (and locked; Close keeps the
		// range reserved).
		mem = trimMapping(mem, HeaderSize+int(h.size))
		if o.lock {
			if lerr := unix.Mlock(mem); lerr != nil {
				err = os.NewSyscallError("mlock", lerr)
			}
		}
	}
	if err != nil {
		unmap(mem)
		return fail(err)
	}
	seg := newSegment(fd, name, mem, h)
	seg.sealed = sizeSealed(fd)
	return seg, nil
}

// sizeSealed reports whether fd's size can no longer change.
func sizeSealed(fd int) bool {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	const want = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	return err == nil && seals&want == want
}

// hasMagic reports whether the file behind fd starts with the segment
// magic. A regular file without it is some other file handed over by
// mistake, not a damaged segment.
func hasMagic(fd int) bool {
	var b [len(magic)]byte
	n, err := unix.Pread(fd, b[:], 0)
	return err == nil && n == len(b) && b == magic
}

// describeFD says what the file behind fd is, for a NotSegmentError: the
// file type and what /proc/self/fd shows for it (a path, "pipe:[123]",
// "anon_inode:[eventpoll]"...).
func describeFD(fd int, mode uint32) string {
	var kind string
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		kind = "a regular file without the segment magic"
	case unix.S_IFIFO:
		kind = "a pipe"
	case unix.S_IFSOCK:
		kind = "a socket"
	case unix.S_IFCHR:
		kind = "a character device"
	case unix.S_IFBLK:
		kind = "a block device"
	case unix.S_IFDIR:
		kind = "a directory"
	case 0:
		kind = "an anonymous inode"
	default:
		kind = fmt.Sprintf("a file of mode %#o", mode)
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		kind += " (" + target + ")"
	}
	return kind
}

// waitReady waits until the segment's state word says ready and returns
// the validated header.
func waitReady(ctx context.Context, mem []byte, fileSize int64) (header, error) {
	state := stateWord(mem)
	delay := time.Millisecond
	var grace time.Time
	for {
		// Acquire: pairs with the creator's store of StateReady, so the
		// header and payload it wrote before are visible below.
		s := State(atomic.LoadUint32(state))
		if s == StateReady {
			// Validate a private copy: a peer cannot change it under us.
			var hb [HeaderSize]byte
			copy(hb[:], mem)
			h, err := parseHeader(hb[:], fileSize)
			h.state = StateReady
			return h, err
		}
		if s > StateReady {
			return header{}, fmt.Errorf("%w: init state %d", ErrCorrupt, uint32(s))
		}
		pid, start := creatorOf(mem)
		if pid > 0 {
			if !proc.Alive(proc.ID{Pid: pid, Start: start}) {
				return header{}, fmt.Errorf("%w (pid %d, state %v)", ErrCreatorDied, pid, s)
			}
		} else {
			// Nobody has even recorded a creator: allow a short grace
			// period for a writer that is just starting, then give up.
			if grace.IsZero() {
				grace = time.Now().Add(time.Second)
			} else if time.Now().After(grace) {
				return header{}, fmt.Errorf("%w: never initialised (state %v, no creator recorded)", ErrCorrupt, s)
			}
		}
		err := futex.WaitContext(ctx, state, uint32(s), delay)
		if cerr := ctx.Err(); cerr != nil || errors.Is(err, context.DeadlineExceeded) {
			if cerr == nil {
				cerr = context.DeadlineExceeded // the deadline passed before ctx's timer fired
			}
			return header{}, fmt.Errorf("segment still %v (creator pid %d): %w", s, pid, cerr)
		}
		if err != nil && !errors.Is(err, futex.ErrTimeout) {
			return header{}, err
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// checkWant compares the header with what the caller asked for.
func checkWant(name string, h *header, o *options) error {
	if o.kind != 0 && h.kind != o.kind {
		return &MismatchError{Name: name, What: "kind", Want: o.kind, Got: h.kind, Err: ErrKind}
	}
	if o.typed && h.typ != o.typ {
		return &MismatchError{Name: name, What: "type", Want: o.typ, Got: h.typ, Err: ErrType,
			WantType: o.typeName, GotType: h.typeName}
	}
	return nil
}

// OpenOrCreate opens the named segment, or creates it if it does not
// exist; created reports which. Among processes racing to open-or-create
// one name, exactly one creates it and every other one opens the fully
// initialised segment. An existing segment whose payload size is not size
// gives a *MismatchError matching ErrSize.
func OpenOrCreate(ctx context.Context, name string, size int, opts ...Option) (s *Segment, created bool, err error) {
	ctx = orBackground(ctx)
	if err := validateName(name); err != nil {
		return nil, false, err
	}
	if err := validateSize(size); err != nil {
		return nil, false, err
	}
	for i := range 16 {
		if err := ctx.Err(); err != nil && i > 0 {
			// Retrying is waiting: a done ctx ends it.
			return nil, false, &fs.PathError{Op: "open", Path: path(name), Err: err}
		}
		s, err = Create(name, size, opts...)
		if err == nil {
			return s, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		s, err = Open(ctx, name, opts...)
		if errors.Is(err, fs.ErrNotExist) {
			continue // unlinked between our Create and Open: try again
		}
		if err != nil {
			return nil, false, err
		}
		if s.Size() != size {
			got := s.Size()
			_ = s.Close()
			return nil, false, &fs.PathError{Op: "open", Path: path(name),
				Err: &MismatchError{Name: name, What: "size", Want: size, Got: got, Err: ErrSize}}
		}
		return s, false, nil
	}
	return nil, false, fmt.Errorf("shm: open or create %s: segment keeps appearing and disappearing: %w",
		name, fs.ErrNotExist)
}

// Unlink removes the named segment from /dev/shm. Processes that have it
// mapped keep using it; the memory is freed when the last one closes it.
// A missing segment gives an error matching fs.ErrNotExist.
func Unlink(name string) error {
	if err := validateName(name); err != nil {
		return err
	}
	p := path(name)
	if err := unix.Unlink(p); err != nil {
		return pathError("unlink", p, err)
	}
	return nil
}

// Unlink removes the segment's name (see the function Unlink). It does
// nothing for an anonymous segment, and returns ErrClosed after Close.
// Whatever file has the name at the time is removed, even if another
// process replaced the segment since this one was opened.
func (s *Segment) Unlink() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("shm: unlink %s: %w", s.name, ErrClosed)
	}
	if s.name == "" {
		return nil
	}
	return Unlink(s.name)
}

// Close unmaps the segment and closes its file. It does not unlink it.
//
// Slices returned by Bytes stay addressable: the shared mapping is
// replaced in place with private zero-filled memory, so a goroutine still
// using a view reads zeros instead of crashing the process, and its writes
// go nowhere. The address range stays reserved for the life of the
// process. A second Close returns ErrClosed.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("shm: close %s: %w", s.name, ErrClosed)
	}
	s.closed.Store(true)
	err := retire(s.mem)
	return errors.Join(err, s.file.Close())
}

// CreateAnonymous creates a segment with no name (memfd_create). Share it
// with a child through exec.Cmd.ExtraFiles (pass File()) and OpenFile, or
// with any process over a Unix socket with Send and Receive. Its size is
// sealed (F_SEAL_SHRINK, F_SEAL_GROW), so a receiver cannot truncate it
// under the other mappings.
func CreateAnonymous(size int, opts ...Option) (*Segment, error) {
	if err := validateSize(size); err != nil {
		return nil, err
	}
	o := collect(opts)
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("shm: create anonymous: %w", err)
	}
	fd, err := unix.MemfdCreate(NamePrefix+"anon", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("shm: create anonymous: %w", os.NewSyscallError("memfd_create", err))
	}
	s, err := initSegment(fd, "", size, &o, flagAnonymous)
	if err != nil {
		return nil, fmt.Errorf("shm: create anonymous: %w", err)
	}
	// Best effort: older kernels or file systems may refuse seals.
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL)
	s.sealed = sizeSealed(fd)
	return s, nil
}

// OpenFile maps the segment behind f, typically an anonymous segment
// inherited through exec.Cmd.ExtraFiles (os.NewFile(3, "") in the child).
// f is duplicated: the caller keeps ownership of f and may close it.
// Validation and waiting are as for Open. If f is a memfd that allows
// sealing, its size is sealed first (F_SEAL_SHRINK, F_SEAL_GROW), so that
// whoever else holds it cannot shrink it under the mapping.
func OpenFile(ctx context.Context, f *os.File, opts ...Option) (*Segment, error) {
	ctx = orBackground(ctx)
	if f == nil {
		return nil, fmt.Errorf("shm: open file: %w", fs.ErrInvalid)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("shm: open file: %w", err)
	}
	nfd, src := -1, -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		src = int(fd)
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("shm: open file: %w", err)
	}
	if errors.Is(derr, unix.EBADF) {
		// Typically a child given no ExtraFiles opening descriptor 3.
		return nil, &NotSegmentError{Op: "open file", FD: src, What: "not an open descriptor (EBADF)"}
	}
	if derr != nil {
		return nil, fmt.Errorf("shm: open file: %w", os.NewSyscallError("fcntl", derr))
	}
	o := collect(opts)
	return attach(ctx, nfd, "", &o, src)
}

// Send passes the segment's file descriptor over conn (SCM_RIGHTS) with a
// one-byte message. The receiver calls Receive. Send on a named segment
// passes it too; the receiver sees it as anonymous (Name() == "").
func (s *Segment) Send(conn *net.UnixConn) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("shm: send: %w", ErrClosed)
	}
	if _, _, err := conn.WriteMsgUnix([]byte{'S'}, unix.UnixRights(s.fd), nil); err != nil {
		return fmt.Errorf("shm: send: %w", err)
	}
	return nil
}

// maxRecvFDs bounds the descriptors accepted in one control message; any
// beyond the single expected one are closed.
const maxRecvFDs = 16

// Receive reads one message sent by Send from conn and maps the segment
// whose descriptor it carries. It honours ctx by setting conn's read
// deadline (and clears it before returning). A message carrying no
// descriptor or more than one is an error; extra descriptors are closed.
// The descriptor is sealed and validated as by OpenFile.
func Receive(ctx context.Context, conn *net.UnixConn, opts ...Option) (*Segment, error) {
	ctx = orBackground(ctx)
	var buf [1]byte
	oob := make([]byte, unix.CmsgSpace(4*maxRecvFDs))
	var n, oobn, flags int
	var err error
	if ctx.Err() != nil {
		// A done ctx still takes a message that is already queued (the
		// package's context rule): one non-blocking read.
		n, oobn, flags, err = recvNow(conn, buf[:], oob)
		if errors.Is(err, unix.EAGAIN) {
			return nil, fmt.Errorf("shm: receive: %w", ctx.Err())
		}
	} else {
		n, oobn, flags, err = recvWait(ctx, conn, buf[:], oob)
	}
	// Collect descriptors first, so none leaks on any error path below.
	fds, perr := parseRights(oob[:oobn])
	closeAll := func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	if err != nil {
		closeAll()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("shm: receive: %w", cerr)
		}
		if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			// The conn deadline fired before ctx's own timer did.
			return nil, fmt.Errorf("shm: receive: %w", context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("shm: receive: %w", err)
	}
	switch {
	case perr != nil:
		closeAll()
		return nil, fmt.Errorf("shm: receive: %w: %w", ErrCorrupt, perr)
	case n == 0 && oobn == 0:
		return nil, fmt.Errorf("shm: receive: %w", io.EOF)
	case flags&unix.MSG_CTRUNC != 0:
		closeAll()
		return nil, fmt.Errorf("shm: receive: control message truncated (too many descriptors)")
	case len(fds) != 1:
		closeAll()
		return nil, fmt.Errorf("shm: receive: message carries %d descriptors, want 1", len(fds))
	}
	o := collect(opts)
	o.received = true
	return attach(ctx, fds[0], "", &o, fds[0])
}

// recvWait reads one message from conn, bounded by ctx through conn's
// read deadline, which it clears before returning.
func recvWait(ctx context.Context, conn *net.UnixConn, buf, oob []byte) (n, oobn, flags int, err error) {
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetReadDeadline(dl); err != nil {
			return 0, 0, 0, err
		}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0)) // in the past: wakes the read
		close(fired)
	})
	n, oobn, flags, _, err = conn.ReadMsgUnix(buf, oob)
	if !stop() {
		<-fired // let it finish before the deadline is cleared below
	}
	_ = conn.SetReadDeadline(time.Time{})
	return n, oobn, flags, err
}

// recvNow reads one message from conn if one is queued, without waiting:
// EAGAIN when none is.
func recvNow(conn *net.UnixConn, buf, oob []byte) (n, oobn, flags int, err error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		return true // one attempt, whatever it gave
	}); err != nil {
		return 0, 0, 0, err
	}
	if rerr != nil {
		return 0, 0, 0, os.NewSyscallError("recvmsg", rerr)
	}
	return n, oobn, flags, nil
}

// parseRights returns every descriptor passed in a control-message buffer.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	var firstErr error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		r, err := unix.ParseUnixRights(&msgs[i])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		fds = append(fds, r...)
	}
	return fds, firstErr
}

// Inspect reads the header of the named segment without mapping it or
// waiting for it. For a segment with an invalid header it returns the Info
// it could fill (Err set) together with the error.
func Inspect(name string) (Info, error) {
	info := Info{Name: name, Path: shmDir + "/" + NamePrefix + name}
	if err := validateName(name); err != nil {
		info.Err = err
		return info, err
	}
	fd, err := unix.Open(info.Path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		info.Err = pathError("open", info.Path, err)
		return info, info.Err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		info.Err = pathError("fstat", info.Path, err)
		return info, info.Err
	}
	info.Mode = os.FileMode(st.Mode & 0o777)
	info.Inode = st.Ino
	info.FileSize = st.Size
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		info.Err = pathError("inspect", info.Path, fmt.Errorf("%w: not a regular file", ErrCorrupt))
		return info, info.Err
	}
	var hb [HeaderSize]byte
	n, err := unix.Pread(fd, hb[:], 0)
	if err != nil {
		info.Err = pathError("read", info.Path, err)
		return info, info.Err
	}
	h, err := parseHeader(hb[:max(n, 0)], st.Size)
	if err != nil {
		info.Err = pathError("inspect", info.Path, err)
		return info, info.Err
	}
	info.Size = int(h.size)
	info.Kind = h.kind
	info.Type = h.typ
	info.TypeName = h.typeName
	info.Params = [2]uint64{h.p0, h.p1}
	info.State = h.state
	info.CreatorPid = int(h.creatorPid)
	info.CreatorStart = h.creatorStart
	info.CreatorAlive = proc.Alive(proc.ID{Pid: h.creatorPid, Start: h.creatorStart})
	return info, nil
}

// List describes every file in /dev/shm whose name starts with NamePrefix,
// sorted by name. A file that is not a valid segment is listed with Err
// set; only failing to read the directory fails List.
func List() ([]Info, error) {
	entries, err := os.ReadDir(shmDir)
	if err != nil {
		return nil, fmt.Errorf("shm: list: %w", err)
	}
	var infos []Info
	for _, e := range entries {
		name, ok := cutPrefix(e.Name())
		if !ok {
			continue
		}
		info, _ := Inspect(name) // per-entry errors are in info.Err
		infos = append(infos, info)
	}
	return infos, nil
}
