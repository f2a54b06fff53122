"""Segments: the 128-byte shmkit header and the payload after it
(docs/format/shm.md). A named segment is /dev/shm/shmkit.NAME; an
anonymous one is a memfd that travels as a descriptor."""
import errno
import mmap
import os
import socket
import struct
import time

from . import _native
from ._proc import alive, self_id
from .errors import (
    ClosedError,
    CorruptError,
    CreatorDiedError,
    ExistsError,
    InvalidNameError,
    InvalidSizeError,
    KindError,
    NotFoundError,
    NotSegmentError,
    PermissionDenied,
    ShmkitError,
    TypeMismatchError,
    VersionError,
)

HEADER_SIZE = 128
MAX_SIZE = 1 << 40
NAME_PREFIX = "shmkit."
MAX_NAME_LEN = 255 - len(NAME_PREFIX)
SHM_DIR = "/dev/shm"
MAGIC = b"shmkitSG"
FORMAT_VERSION = 2
FLAG_ANONYMOUS = 1

# Object kinds (header offset 12).
KIND_RAW, KIND_MUTEX, KIND_SEMAPHORE, KIND_EVENT, KIND_VALUE, KIND_ARRAY = 1, 2, 3, 4, 5, 6
KIND_QUEUE, KIND_PIPE, KIND_BARRIER, KIND_COND, KIND_DICT, KIND_LIST = 7, 8, 9, 10, 11, 12
KIND_NAMES = {1: "raw", 2: "mutex", 3: "semaphore", 4: "event", 5: "value", 6: "array", 7: "queue",
              8: "pipe", 9: "barrier", 10: "cond", 11: "dict", 12: "list"}

STATE_UNINIT, STATE_INITIALISING, STATE_READY = 0, 1, 2
_OFF_STATE = 120

_HDR = struct.Struct("<8sIIQIIIIQIIQQQ32sQ")  # bytes 0..119


def kind_name(k):
    return KIND_NAMES.get(k, "Kind(%d)" % k)


def fnv1a64(b, h=0xCBF29CE484222325):
    """FNV-1a 64 of bytes b."""
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def validate_name(name):
    if not isinstance(name, str) or name == "":
        raise InvalidNameError("shmkit: invalid segment name: empty")
    if len(name) > MAX_NAME_LEN:
        raise InvalidNameError("shmkit: invalid segment name: %d bytes long, at most %d allowed" % (len(name), MAX_NAME_LEN))
    if name[0] == ".":
        raise InvalidNameError("shmkit: invalid segment name: %r starts with '.'" % name)
    if ".." in name:
        raise InvalidNameError("shmkit: invalid segment name: %r contains '..'" % name)
    for c in name:
        if not (c.isascii() and (c.isalnum() or c in "._-")):
            raise InvalidNameError("shmkit: invalid segment name: %r contains %r (allowed: A-Z a-z 0-9 . _ -)" % (name, c))


def path(name):
    return SHM_DIR + "/" + NAME_PREFIX + name


class TypeDesc(tuple):
    """(size, align, fingerprint) of an element type; all 0 when untyped."""

    def __new__(cls, size=0, align=0, fingerprint=0):
        return tuple.__new__(cls, (size, align, fingerprint))

    size = property(lambda s: s[0])
    align = property(lambda s: s[1])
    fingerprint = property(lambda s: s[2])

    def __repr__(self):
        return "{size %d align %d fp %#016x}" % self


class Header:
    """The decoded, validated header of a segment."""

    __slots__ = ("version", "kind", "size", "offset", "flags", "type", "creator_pid", "creator_start",
                 "params", "type_name", "state")


def fit_type_name(name):
    b = bytes((c if 0x20 <= c <= 0x7E else 0x3F) for c in name.encode("ascii", "replace"))
    if len(b) > 32:
        b = b"..." + b[-29:]
    return b


def encode_header(kind, size, typ=TypeDesc(), params=(0, 0), type_name="", flags=0, pid=None, start=None):
    """The 128 header bytes for a new segment, state 0."""
    if pid is None:
        pid, start = self_id()
    b = bytearray(_HDR.pack(MAGIC, FORMAT_VERSION, kind, size, HEADER_SIZE, flags, typ[0], typ[1], typ[2],
                            pid, 0, start or 0, params[0], params[1], fit_type_name(type_name).ljust(32, b"\0"), 0))
    b[112:120] = struct.pack("<Q", fnv1a64(b[:112]))
    return bytes(b) + bytes(8)


def parse_header(b, file_size):
    """Validate the 128 header bytes b of a file of file_size bytes, as the
    Go side does (shm/header.go): CorruptError or VersionError on failure."""
    if len(b) < HEADER_SIZE or file_size < HEADER_SIZE:
        raise CorruptError("shmkit: corrupt segment: truncated header (%d bytes, file %d bytes)" % (len(b), file_size))
    b = bytes(b[:HEADER_SIZE])
    if b[:8] != MAGIC:
        raise CorruptError("shmkit: corrupt segment: bad magic %r" % b[:8])
    (_, version, kind, size, offset, flags, tsize, talign, tfp, cpid, res1, cstart, p0, p1, tname, csum) = _HDR.unpack(b[:120])
    if version != FORMAT_VERSION:
        raise VersionError("shmkit: unsupported segment format version %d, want %d" % (version, FORMAT_VERSION))
    want = fnv1a64(b[:112])
    if csum != want:
        raise CorruptError("shmkit: corrupt segment: header checksum %#016x, want %#016x" % (csum, want))
    if flags & ~FLAG_ANONYMOUS:
        raise VersionError("shmkit: unsupported segment format: unknown flags %#x" % (flags & ~FLAG_ANONYMOUS))
    if res1 != 0:
        raise CorruptError("shmkit: corrupt segment: reserved header bytes not zero")
    n = tname.find(b"\0")
    if n < 0:
        n = len(tname)
    for i in range(n):
        if not 0x20 <= tname[i] <= 0x7E:
            raise CorruptError("shmkit: corrupt segment: type name byte %#04x at offset %d is not printable ASCII" % (tname[i], 80 + i))
    if any(tname[n:]):
        raise CorruptError("shmkit: corrupt segment: type name not NUL-padded")
    if kind == 0:
        raise CorruptError("shmkit: corrupt segment: kind 0")
    if offset != HEADER_SIZE:
        raise CorruptError("shmkit: corrupt segment: payload offset %d, want %d" % (offset, HEADER_SIZE))
    if size == 0 or size > MAX_SIZE:
        raise CorruptError("shmkit: corrupt segment: payload size %d" % size)
    if offset + size > file_size:
        raise CorruptError("shmkit: corrupt segment: payload ends at %d, past the end of the file (%d bytes)" % (offset + size, file_size))
    if talign != 0 and talign & (talign - 1):
        raise CorruptError("shmkit: corrupt segment: type alignment %d is not a power of two" % talign)
    if cpid <= 0 or cpid > 0x7FFFFFFF:
        raise CorruptError("shmkit: corrupt segment: creator pid %d" % cpid)
    state = struct.unpack_from("<I", b, _OFF_STATE)[0]
    if state > STATE_READY:
        raise CorruptError("shmkit: corrupt segment: init state %d" % state)
    h = Header()
    h.version, h.kind, h.size, h.offset, h.flags = version, kind, size, offset, flags
    h.type = TypeDesc(tsize, talign, tfp)
    h.creator_pid, h.creator_start, h.params = cpid, cstart, (p0, p1)
    h.type_name, h.state = tname[:n].decode("ascii"), state
    return h


def _oserror(e, name, op):
    msg = "shmkit: %s %r: %s" % (op, name, e.strerror)
    if e.errno == errno.ENOENT:
        return NotFoundError(e.errno, msg)
    if e.errno == errno.EEXIST:
        return ExistsError(e.errno, msg)
    if e.errno in (errno.EACCES, errno.EPERM):
        return PermissionDenied(e.errno, msg)
    if e.errno == errno.ELOOP:
        return ShmkitError("shmkit: %s %r: the name is a symbolic link" % (op, name))
    return e


class Segment:
    """A mapped segment. ``payload`` is a memoryview of the payload;
    ``mem`` gives atomic access with offsets from the start of the file
    (the payload starts at ``HEADER_SIZE``)."""

    def __init__(self, fd, mm, header, name, owns_fd=True):
        self._fd, self._mm, self.header, self.name = fd, mm, header, name
        self._owns_fd = owns_fd
        self.mem = _native.Mem(mm)
        self._view = memoryview(mm)
        self.payload = self._view[HEADER_SIZE:HEADER_SIZE + header.size]
        self.closed = False

    kind = property(lambda s: s.header.kind)
    size = property(lambda s: s.header.size)
    type = property(lambda s: s.header.type)
    params = property(lambda s: s.header.params)
    type_name = property(lambda s: s.header.type_name)

    @property
    def view(self):
        """The whole mapping as a memoryview (header included)."""
        self._check()
        return self._view

    def fileno(self):
        """The segment's descriptor (to pass to another process)."""
        self._check()
        return self._fd

    def _check(self):
        if self.closed:
            raise ClosedError("shmkit: segment is closed")

    def close(self):
        """Unmap the segment and close its descriptor. Memoryviews handed
        out by objects on it must have been released first (Python's mmap
        refuses to close under exported buffers: BufferError)."""
        if self.closed:
            return
        self.payload.release()
        self._view.release()
        self.mem.release()
        try:
            self._mm.close()
        except BufferError:
            # A memoryview handed out (next, reserve, numpy) is still alive:
            # stay open and usable, and say so.
            self.mem = _native.Mem(self._mm)
            self._view = memoryview(self._mm)
            self.payload = self._view[HEADER_SIZE:HEADER_SIZE + self.header.size]
            raise BufferError("shmkit: segment still has memoryviews into it (release them first)") from None
        self.closed = True
        if self._owns_fd and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<shmkit.Segment %s kind=%s size=%d>" % (repr(self.name) if self.name else "anonymous", kind_name(self.kind), self.size)


def _check_size(size):
    if not isinstance(size, int) or size <= 0 or size > MAX_SIZE:
        raise InvalidSizeError("shmkit: invalid segment size: %r (want 1..%d)" % (size, MAX_SIZE))


def _build(fd, kind, size, typ, params, type_name, init, anonymous):
    """Size, map and initialise the new file fd; return (mm, header)."""
    total = HEADER_SIZE + size
    st = os.fstatvfs(fd)
    if st.f_blocks and total > st.f_bavail * st.f_bsize:
        raise OSError(errno.ENOSPC, "shmkit: segment of %d bytes does not fit: %d bytes free" % (total, st.f_bavail * st.f_bsize))
    os.ftruncate(fd, total)
    mm = mmap.mmap(fd, total, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    hdr = encode_header(kind, size, typ, params, type_name, FLAG_ANONYMOUS if anonymous else 0)
    mm[0:120] = hdr[:120]
    mem = _native.Mem(mm)
    try:
        mem.store32(_OFF_STATE, STATE_INITIALISING)
        if init is not None:
            with memoryview(mm) as v, v[HEADER_SIZE:total] as p:
                init(p, mem)
        mem.store32(_OFF_STATE, STATE_READY)
        mem.futex_wake(_OFF_STATE, 1 << 30)
    finally:
        mem.release()
    return mm, parse_header(mm[0:HEADER_SIZE], total)


def _link_fd(fd, dst):
    """linkat(AT_FDCWD, "/proc/self/fd/FD", AT_FDCWD, dst, AT_SYMLINK_FOLLOW).

    Python's os.link calls link(2) unless a dir_fd is given, and link(2)
    does not follow the /proc/self/fd magic link (EXDEV); a directory
    descriptor, ignored for absolute paths, makes it call linkat(2)."""
    d = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link("/proc/self/fd/%d" % fd, dst, src_dir_fd=d, follow_symlinks=True)
    finally:
        os.close(d)


def create(name, size, kind=KIND_RAW, type=TypeDesc(), params=(0, 0), type_name="", mode=0o600, init=None):
    """Create the named segment NAME with a payload of size bytes; it
    appears under its name only once ready. init(payload, mem), if given,
    initialises the zeroed payload (mem offsets are from the file start).
    ExistsError if the name is taken."""
    validate_name(name)
    _check_size(size)
    try:
        fd = os.open(SHM_DIR, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
        tmp = None
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise _oserror(e, name, "create")
        tmp = "%s/.shmkit-tmp.%d.%s" % (SHM_DIR, os.getpid(), os.urandom(6).hex())
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_RDWR | os.O_CLOEXEC, mode)
    mm = None
    try:
        os.fchmod(fd, mode)
        mm, h = _build(fd, kind, size, type, params, type_name, init, False)
        try:
            if tmp is None:
                _link_fd(fd, path(name))
            else:
                os.link(tmp, path(name))
        except OSError as e:
            raise _oserror(e, name, "create")
    except BaseException:
        if mm is not None:
            mm.close()
        os.close(fd)
        raise
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return Segment(fd, mm, h, name)


def create_anonymous(size, kind=KIND_RAW, type=TypeDesc(), params=(0, 0), type_name="", init=None):
    """Create an anonymous (memfd) segment, sealed against resizing. Pass
    seg.fileno() to another process (inheritance, socket.send_fds)."""
    _check_size(size)
    fd = os.memfd_create("shmkit.anon", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        mm, h = _build(fd, kind, size, type, params, type_name, init, True)
        import fcntl
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return Segment(fd, mm, h, "")


def _attach(fd, name, kind, type, timeout, received):
    st = os.fstat(fd)
    import stat as _stat
    if received and _stat.S_ISREG(st.st_mode) and os.pread(fd, 8, 0) != MAGIC:
        raise NotSegmentError("shmkit: descriptor %d is not a shmkit segment: a regular file without the segment magic" % fd)
    if not _stat.S_ISREG(st.st_mode):
        if received:
            raise NotSegmentError("shmkit: descriptor %d is not a shmkit segment: it is not a regular file (mode %o)" % (fd, st.st_mode))
        raise CorruptError("shmkit: corrupt segment %r: not a regular file" % name)
    if st.st_size < HEADER_SIZE or st.st_size > HEADER_SIZE + MAX_SIZE:
        if received and st.st_size < 8:
            raise NotSegmentError("shmkit: descriptor %d is not a shmkit segment: a file of %d bytes" % (fd, st.st_size))
        raise CorruptError("shmkit: corrupt segment %r: file size %d" % (name, st.st_size))
    mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        if received and mm[0:8] != MAGIC:
            raise NotSegmentError("shmkit: descriptor %d is not a shmkit segment: a regular file without the segment magic" % fd)
        mem = _native.Mem(mm)
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            began = time.monotonic()
            sleep = 0.001
            while True:
                s = mem.load32(_OFF_STATE)
                if s == STATE_READY:
                    break
                if s > STATE_READY:
                    raise CorruptError("shmkit: corrupt segment: init state %d" % s)
                cpid, cstart = struct.unpack_from("<IxxxxQ", mm, 48)
                if cpid != 0 and not alive(cpid, cstart):
                    raise CreatorDiedError("shmkit: the creator of segment %r (pid %d) died during initialisation" % (name, cpid))
                if cpid == 0 and time.monotonic() - began > 1:
                    raise CorruptError("shmkit: corrupt segment %r: never initialised, no creator recorded" % name)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError("shmkit: segment %r is still being initialised" % name)
                mem.futex_wait(_OFF_STATE, s, sleep)
                sleep = min(sleep * 2, 0.05)
        finally:
            mem.release()
        h = parse_header(mm[0:HEADER_SIZE], st.st_size)
        if kind is not None and h.kind != kind:
            raise KindError(kind_name(kind), kind_name(h.kind), name)
        if type is not None and tuple(h.type) != tuple(type):
            raise TypeMismatchError(TypeDesc(*type), "%s %r" % (h.type_name or "?", h.type), name)
    except BaseException:
        mm.close()
        raise
    return mm, h


def open(name, kind=None, type=None, timeout=None):
    """Open the named segment NAME, validating its header; kind and type,
    if given, must match (KindError, TypeMismatchError). Waits for a
    segment still being initialised (at most timeout seconds)."""
    validate_name(name)
    try:
        fd = os.open(path(name), os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise _oserror(e, name, "open")
    try:
        os.set_blocking(fd, True)
        mm, h = _attach(fd, name, kind, type, timeout, False)
    except BaseException:
        os.close(fd)
        raise
    return Segment(fd, mm, h, name)


def open_fd(fd, kind=None, type=None, timeout=None, own=False):
    """Attach to the segment behind descriptor fd (inherited or received),
    after sealing its size where it is a memfd. NotSegmentError when fd is
    not a segment at all. The descriptor is duplicated unless own is true."""
    if not own:
        fd = os.dup(fd)
    try:
        import fcntl
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        except OSError:
            pass
        mm, h = _attach(fd, "", kind, type, timeout, True)
    except BaseException:
        os.close(fd)
        raise
    return Segment(fd, mm, h, "")


def unlink(name):
    """Remove the name NAME; processes that have it open keep it."""
    validate_name(name)
    try:
        os.unlink(path(name))
    except OSError as e:
        raise _oserror(e, name, "unlink")


def send(sock, obj):
    """Send the descriptor of obj (a Segment, Queue, Value... anything with
    fileno()) over the Unix socket sock (SCM_RIGHTS)."""
    socket.send_fds(sock, [b"s"], [obj.fileno()])


def receive(sock, kind=None, type=None):
    """Receive a descriptor sent by send (or Go's shm.Send) and attach it
    as a Segment; wrap it with Queue(seg), Value(seg, code)..."""
    msg, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise NotSegmentError("shmkit: receive: no descriptor in the message")
    return open_fd(fds[0], kind, type, own=True)
