"""Robust locks in shared memory (docs/format/sem.md): Mutex, Semaphore
and Event, each 64 bytes, named (a segment of their own) or placed at an
8-byte aligned offset inside another segment."""
import os
import time
import weakref

from . import segment as _seg
from ._proc import self_id, start_time, _exists
from .errors import ClosedError, CorruptError, VersionError, NotSupportedError, OverReleaseError, OwnerDeadError

SIZE = 64
MAGIC_MUTEX, MAGIC_SEMAPHORE, MAGIC_EVENT = 0x584D4B53, 0x4D534B53, 0x56454B53
_VERSION = 1

_PID_MASK = (1 << 22) - 1
_WAITERS = 1 << 31
_RESERVED = 0xFFFFFFFF & ~(_PID_MASK | _WAITERS)
_INCONSISTENT = 1
_SLEEP_MIN, _SLEEP_MAX = 0.001, 0.064
_SPIN = 50


_mutexes = weakref.WeakSet()


def _after_fork():
    # A forked child is another process: its lock word must name it.
    for m in list(_mutexes):
        m._identify()


os.register_at_fork(after_in_child=_after_fork)


def start_tag(start):
    """The 32-bit tag of a start time kept next to the pid in a lock word."""
    t = (start & 0xFFFFFFFF) ^ (start >> 32)
    return t or 1


def _deadline(timeout):
    if timeout is None or timeout < 0:
        return None
    return time.monotonic() + timeout


def _left(deadline):
    """Seconds left before deadline (None: no limit), at least 0."""
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.0)


class _Object:
    def __init__(self, seg, off, magic, what):
        if off < 0 or off % 8 or off + SIZE > _seg.HEADER_SIZE + seg.size:
            raise CorruptError("shmkit: corrupt %s: offset %d not 8-byte aligned or past the memory" % (what, off))
        self._seg, self._mem, self._off = seg, seg.mem, off
        m = self._mem.load32(off + 8)
        if m != magic:
            raise CorruptError("shmkit: corrupt %s: bad magic %#x" % (what, m))
        v = self._mem.load32(off + 12)
        if v != _VERSION:
            raise VersionError("shmkit: %s: unknown version %d" % (what, v))
        self._closed = False
        self._owns = False

    @staticmethod
    def _init_bytes(mem, off, magic, words=()):
        for i in range(0, SIZE, 8):
            mem.store64(off + i, 0)
        for o, v, size in words:
            (mem.store64 if size == 8 else mem.store32)(off + o, v)
        mem.store32(off + 12, _VERSION)
        mem.store32(off + 8, magic)

    @classmethod
    def _own(cls, seg):
        try:
            if seg.size != SIZE:
                raise CorruptError("shmkit: corrupt %s segment: payload of %d bytes, want %d" % (cls.__name__.lower(), seg.size, SIZE))
            m = cls(seg)
        except BaseException:
            seg.close()
            raise
        m._owns = True
        return m

    def close(self):
        """Close the handle (and its segment, for a named object)."""
        if not self._closed:
            self._closed = True
            if self._owns:
                self._seg.close()

    def _check(self):
        if self._closed:
            raise ClosedError("shmkit: %s is closed" % type(self).__name__)



class Mutex(_Object):
    """A robust mutex: a lock whose owner dies is taken over by the next
    locker, which is told (OwnerDeadError, raised with the lock held).

    ``with m:`` acquires and releases; if the previous owner died, the
    ``with`` statement releases the lock again (leaving it marked
    inconsistent) and raises OwnerDeadError: repair the data with
    ``acquire`` / ``mark_consistent`` / ``release``."""

    def __init__(self, seg, off=_seg.HEADER_SIZE):
        super().__init__(seg, off, MAGIC_MUTEX, "mutex")
        f = self._mem.load32(off + 16)
        if f & ~_INCONSISTENT:
            raise CorruptError("shmkit: corrupt mutex: unknown flags %#x" % f)
        st = self._mem.load64(off) & 0xFFFFFFFF
        if st & _RESERVED:
            raise CorruptError("shmkit: corrupt mutex: bad state word %#x" % st)
        self._identify()
        _mutexes.add(self)

    def _identify(self):
        pid, start = self_id()
        if pid > _PID_MASK:
            raise NotSupportedError("shmkit: pid %d does not fit in 22 bits" % pid)
        self._me = (start_tag(start) << 32) | pid
        self._start = start

    @classmethod
    def init(cls, seg, off):
        """Initialise a Mutex at offset off of seg (nobody uses it yet)."""
        cls._init_bytes(seg.mem, off, MAGIC_MUTEX)
        return cls(seg, off)

    @classmethod
    def create(cls, name, mode=0o600):
        seg = _seg.create(name, SIZE, kind=_seg.KIND_MUTEX, mode=mode,
                          init=lambda p, mem: cls._init_bytes(mem, _seg.HEADER_SIZE, MAGIC_MUTEX))
        return cls._own(seg)

    @classmethod
    def open(cls, name):
        return cls._own(_seg.open(name, kind=_seg.KIND_MUTEX))

    def _corrupt(self, st):
        return CorruptError("shmkit: corrupt mutex: bad state word %#x" % st)

    def _owner_dead(self, w):
        owner = w & ~_WAITERS
        if owner == self._me or self._start == 0:
            return False
        pid, tag = owner & _PID_MASK, owner >> 32
        if pid == 0 or tag == 0:
            return True
        st = start_time(pid)
        if st is None:
            return not _exists(pid)  # hidden by hidepid: alive
        if st < 0:
            return True  # zombie
        if st == 0:
            return False
        return start_tag(st) != tag

    def _locked(self, dead):
        mem, off = self._mem, self._off
        prev = mem.load64(off + 24)
        if prev != self._start:
            mem.store64(off + 24, self._start)
        if dead:
            owner = dead & ~_WAITERS
            if start_tag(prev) != owner >> 32:
                prev = 0
            mem.store64(off + 32, owner)
            mem.store64(off + 40, prev)
            mem.or32(off + 16, _INCONSISTENT)
            mem.add32(off + 20, 1)
            raise self._dead_error()
        if mem.load32(off + 16) & _INCONSISTENT:
            raise self._dead_error()
        return True

    def _dead_error(self):
        w = self._mem.load64(self._off + 32)
        return OwnerDeadError(w & _PID_MASK, self._mem.load64(self._off + 40))

    def acquire(self, blocking=True, timeout=None):
        """Acquire the lock, as threading.Lock.acquire: returns True, or
        False when not blocking (or the timeout passed) and it is held.
        Raises OwnerDeadError with the lock held when a dead owner's lock
        was taken over (or the mutex is still inconsistent)."""
        self._check()
        mem, off, me = self._mem, self._off, self._me
        if mem.cas64(off, 0, me):
            return self._locked(0)
        if not blocking:
            return self._try()
        deadline = _deadline(timeout)
        for _ in range(_SPIN):
            w = mem.load64(off)
            st = w & 0xFFFFFFFF
            if st & _RESERVED:
                raise self._corrupt(st)
            if st & _PID_MASK == 0:
                if mem.cas64(off, w, me | (st & _WAITERS)):
                    return self._locked(0)
                continue
            os.sched_yield()
        sleep, slept = _SLEEP_MIN, False
        while True:
            w = mem.load64(off)
            st = w & 0xFFFFFFFF
            if st & _RESERVED:
                raise self._corrupt(st)
            if st & _PID_MASK == 0:
                if mem.cas64(off, w, me | _WAITERS):
                    return self._locked(0)
                continue
            left = _left(deadline)
            if left == 0:
                if self._owner_dead(w) and mem.cas64(off, w, me | _WAITERS):
                    return self._locked(w)
                if slept:
                    self._pass_wake()
                return False
            if st & _WAITERS == 0:
                if not mem.cas64(off, w, w | _WAITERS):
                    continue
                w |= _WAITERS
            t = sleep if left is None else min(sleep, left)
            try:
                r = mem.futex_wait(off, w & 0xFFFFFFFF, t)
            except BaseException:
                self._pass_wake()  # KeyboardInterrupt: hand on a wake-up we may have taken
                raise
            slept = True
            if r == 1:
                if self._owner_dead(w) and mem.cas64(off, w, me | _WAITERS):
                    return self._locked(w)
                sleep = min(sleep * 2, _SLEEP_MAX)

    def _try(self):
        mem, off = self._mem, self._off
        w = mem.load64(off)
        st = w & 0xFFFFFFFF
        if st & _RESERVED:
            raise self._corrupt(st)
        if st & _PID_MASK == 0:
            if mem.cas64(off, w, self._me | (st & _WAITERS)):
                return self._locked(0)
            return False
        if self._owner_dead(w) and mem.cas64(off, w, self._me | _WAITERS):
            return self._locked(w)
        return False

    def _pass_wake(self):
        mem, off = self._mem, self._off
        for _ in range(100):
            w = mem.load64(off)
            st = w & 0xFFFFFFFF
            if st & _RESERVED or st & _WAITERS:
                return
            if st & _PID_MASK == 0:
                mem.futex_wake(off, 1)
                return
            if mem.cas64(off, w, w | _WAITERS):
                return

    def release(self):
        """Release the lock; RuntimeError if this process does not hold it."""
        self._check()
        mem, off = self._mem, self._off
        for _ in range(100):
            w = mem.load64(off)
            if w & ~_WAITERS != self._me:
                raise RuntimeError("shmkit: release of a mutex this process does not hold (lock word %#x)" % w)
            if mem.cas64(off, w, 0):
                if w & _WAITERS:
                    mem.futex_wake(off, 1)
                return
        raise CorruptError("shmkit: corrupt mutex: lock word keeps changing")

    def mark_consistent(self):
        """Clear the inconsistent flag; call it holding the lock, after
        repairing what the dead owner may have left half done."""
        self._check()
        if self._mem.load64(self._off) & ~_WAITERS != self._me:
            raise RuntimeError("shmkit: mark_consistent without holding the mutex")
        mem, off = self._mem, self._off
        while True:
            f = mem.load32(off + 16)
            if mem.cas32(off + 16, f, f & ~_INCONSISTENT):
                return

    def locked(self):
        """Whether some process holds the lock."""
        return self._mem.load64(self._off) & _PID_MASK != 0

    def __enter__(self):
        try:
            self.acquire()
        except OwnerDeadError:
            self.release()
            raise
        return self

    def __exit__(self, *exc):
        self.release()


class Semaphore(_Object):
    """A counting semaphore (permits of a dead holder are not recovered)."""

    def __init__(self, seg, off=_seg.HEADER_SIZE):
        super().__init__(seg, off, MAGIC_SEMAPHORE, "semaphore")
        self._max = self._mem.load32(off + 16)
        self._count()  # a count above max is corrupt

    @classmethod
    def init(cls, seg, off, value=0, max=0):
        cls._check_init(value, max)
        cls._init_bytes(seg.mem, off, MAGIC_SEMAPHORE, ((0, value, 4), (16, max, 4)))
        return cls(seg, off)

    @staticmethod
    def _check_init(value, max):
        from .errors import InvalidSizeError
        if not 0 <= value <= 0xFFFFFFFF or not 0 <= max <= 0xFFFFFFFF or (max and value > max):
            raise InvalidSizeError("shmkit: semaphore value %d, max %d" % (value, max))

    @classmethod
    def create(cls, name, value=0, max=0, mode=0o600):
        cls._check_init(value, max)
        seg = _seg.create(name, SIZE, kind=_seg.KIND_SEMAPHORE, params=(value, max), mode=mode,
                          init=lambda p, mem: cls._init_bytes(mem, _seg.HEADER_SIZE, MAGIC_SEMAPHORE, ((0, value, 4), (16, max, 4))))
        return cls._own(seg)

    @classmethod
    def open(cls, name):
        return cls._own(_seg.open(name, kind=_seg.KIND_SEMAPHORE))

    def _count(self):
        c = self._mem.load32(self._off)
        if self._max and c > self._max:
            raise CorruptError("shmkit: corrupt semaphore: count %d above max %d" % (c, self._max))
        return c

    def acquire(self, blocking=True, timeout=None):
        """Take a permit, as threading.Semaphore.acquire."""
        self._check()
        mem, off = self._mem, self._off
        deadline = _deadline(timeout) if blocking else time.monotonic()
        slept = False
        while True:
            c = self._count()
            if c > 0:
                if mem.cas32(off, c, c - 1):
                    return True
                continue
            left = _left(deadline)
            if left == 0:
                if slept and self._count() > 0 and mem.load32(off + 4) > 0:
                    mem.futex_wake(off, 1)
                return False
            mem.add32(off + 4, 1)
            try:
                mem.futex_wait(off, 0, _SLEEP_MAX if left is None else min(left, _SLEEP_MAX))
            finally:
                while True:
                    n = mem.load32(off + 4)
                    if n == 0 or mem.cas32(off + 4, n, n - 1):
                        break
            slept = True

    def release(self, n=1):
        """Return n permits (OverReleaseError past the maximum)."""
        self._check()
        mem, off = self._mem, self._off
        for _ in range(n):
            while True:
                c = self._count()
                if self._max and c + 1 > self._max or c == 0xFFFFFFFF:
                    raise OverReleaseError("shmkit: semaphore released past its maximum %d" % (self._max or 0xFFFFFFFF))
                if mem.cas32(off, c, c + 1):
                    break
            if mem.load32(off + 4) > 0:
                mem.futex_wake(off, 1)

    def value(self):
        return self._count()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class Event(_Object):
    """An event flag, as threading.Event, shared between processes."""

    def __init__(self, seg, off=_seg.HEADER_SIZE):
        super().__init__(seg, off, MAGIC_EVENT, "event")

    @classmethod
    def init(cls, seg, off):
        cls._init_bytes(seg.mem, off, MAGIC_EVENT)
        return cls(seg, off)

    @classmethod
    def create(cls, name, mode=0o600):
        seg = _seg.create(name, SIZE, kind=_seg.KIND_EVENT, mode=mode,
                          init=lambda p, mem: cls._init_bytes(mem, _seg.HEADER_SIZE, MAGIC_EVENT))
        return cls._own(seg)

    @classmethod
    def open(cls, name):
        return cls._own(_seg.open(name, kind=_seg.KIND_EVENT))

    def is_set(self):
        return self._mem.load32(self._off) & 1 == 1

    def set(self):
        self._check()
        mem, off = self._mem, self._off
        while True:
            s = mem.load32(off)
            if s & 1:
                break
            if mem.cas32(off, s, ((s + 2) | 1) & 0xFFFFFFFF):
                break
        if mem.load32(off + 4) > 0:
            mem.futex_wake(off, 1 << 30)

    def clear(self):
        self._check()
        mem, off = self._mem, self._off
        while True:
            s = mem.load32(off)
            if s & 1 == 0 or mem.cas32(off, s, s & ~1):
                return

    def wait(self, timeout=None):
        """Block until set (True) or the timeout passes (False)."""
        self._check()
        mem, off = self._mem, self._off
        s = mem.load32(off)
        if s & 1:
            return True
        deadline = _deadline(timeout)
        mem.add32(off + 4, 1)
        try:
            while mem.load32(off) == s:
                left = _left(deadline)
                if left == 0:
                    return False
                mem.futex_wait(off, s, _SLEEP_MAX if left is None else min(left, _SLEEP_MAX))
            return True
        finally:
            while True:
                n = mem.load32(off + 4)
                if n == 0 or mem.cas32(off + 4, n, n - 1):
                    break

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

