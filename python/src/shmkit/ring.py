"""Ring queues (docs/format/ring.md): Queue in SPSC, MPMC and Slots mode (a Slots queue, of fixed-size values, is created by Go and attached here), and
Pipe, the duplex pair of SPSC rings. Byte-compatible with Go's
ring.Queue and ring.Conn: either side may be Go or Python.

Blocking calls take ``block`` and ``timeout`` as queue.Queue does; a get
that times out raises ``queue.Empty``, a put ``queue.Full``; a get on a
queue closed for writing and drained raises ``EOFError``; a put on a
closed queue ``ClosedError``."""
import os
import queue as _queue
import struct
import time
import weakref

from . import _native
from . import segment as _seg
from ._proc import owner_alive, owner_word, self_id
from .errors import BusyError, ClosedError, CorruptError, InvalidSizeError, PeerDiedError, TooLargeError, VersionError

SPSC, MPMC, SLOTS = 1, 2, 3
_MAGIC = 0x31474E526B6D6873
_VERSION = 3
HEADER = 384
DEFAULT_MAX_MESSAGE, DEFAULT_CAPACITY, DEFAULT_PARTICIPANTS = 4096, 64, 64
_MAX_MESSAGE, _MAX_CAPACITY, _MAX_PARTS = 1 << 30, 1 << 40, 4096

# Header offsets (from the ring's start).
O_TAIL, O_PUTS, O_PUTWAITS, O_PRODOWNER, O_PRODSTART = 64, 80, 88, 96, 104
O_HEAD, O_GETS, O_GETWAITS, O_CONSOWNER, O_CONSSTART = 128, 144, 152, 160, 168
O_SKIPPED, O_LOST, O_LOSTOWNER, O_LOSTSTART, O_LOSTPOS, O_CLOSED = 192, 200, 208, 216, 224, 232
# The sleepers' words, on lines 4 and 5 of their own (format version 3).
O_DATASEQ, O_GETWAITERS, O_SPACESEQ, O_PUTWAITERS = 256, 260, 320, 324

_SPIN_SPSC, _SPIN_MPMC = 50e-6, 10e-6
_SLEEP_SPSC, _SLEEP_MPMC = 0.2, 0.02

_LINE0 = struct.Struct("<QIIIIQIIQIIQ")

# Live SPSC handles, so that a forked child does not use its parent's roles
# (the role words name the parent; the private positions are the parent's).
_handles = weakref.WeakSet()


def _after_fork():
    for q in list(_handles):
        q._prod = q._cons = False


os.register_at_fork(after_in_child=_after_fork)


def _timeout(t):
    if t is not None and t < 0:
        raise ValueError("'timeout' must be a non-negative number")
    return t


def _pow2(n):
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _a8(n):
    return (n + 7) & ~7


def _a64(n):
    return (n + 63) & ~63


def geometry(mode, max_message, capacity, participants):
    """(capacity field, slot size, parts, data offset, total bytes) of a ring,
    as the Go side computes it (ring/layout.go)."""
    if not 0 <= max_message <= _MAX_MESSAGE:
        raise InvalidSizeError("shmkit: max_message %d out of range (0..%d)" % (max_message, _MAX_MESSAGE))
    if not 0 < capacity <= _MAX_CAPACITY:
        raise InvalidSizeError("shmkit: capacity %d out of range" % capacity)
    if mode == SPSC:
        rec = 8 + _a8(max_message)
        cap = _pow2(max((capacity + 1) * rec, 64))
        return cap, 0, 0, HEADER, HEADER + cap
    if mode == MPMC:
        if not 0 < participants <= _MAX_PARTS:
            raise InvalidSizeError("shmkit: participants %d out of range (1..%d)" % (participants, _MAX_PARTS))
        cap = _pow2(max(capacity, 2))
        slot = _a64(16 + max_message)
        off = HEADER + participants * 64
        return cap, slot, participants, off, off + cap * slot
    raise InvalidSizeError("shmkit: mode %r (want 'spsc' or 'mpmc')" % mode)


def _mode(mode):
    if mode in (SPSC, "spsc", "SPSC"):
        return SPSC
    if mode in (MPMC, "mpmc", "MPMC", None):
        return MPMC
    raise InvalidSizeError("shmkit: mode %r (want 'spsc' or 'mpmc')" % (mode,))


def init_ring(seg, base, mode, max_message, capacity, participants, type=_seg.TypeDesc()):
    """Write a fresh ring header (and MPMC slot sequences) at base."""
    cap, slot, parts, data_off, size = geometry(mode, max_message, capacity, participants)
    v = seg.view if hasattr(seg, "view") else seg
    v[base:base + data_off] = bytes(data_off)
    line = bytearray(_LINE0.pack(_MAGIC, _VERSION, mode, max_message, slot, cap, type[0], type[1], type[2], parts, 0, 0))
    line[56:64] = struct.pack("<Q", _seg.fnv1a64(line[:56]))
    v[base:base + 64] = line
    if mode == MPMC:
        for i in range(cap):
            struct.pack_into("<Q", v, base + data_off + i * slot, i)
    return size


class _Geom:
    pass


def parse_ring(view, base, avail):
    """Validate the ring header at base (avail bytes of memory), as Go's At."""
    if avail < HEADER or base % 64:
        raise CorruptError("shmkit: corrupt ring: memory of %d bytes cannot hold a ring" % avail)
    magic, version, mode, maxmsg, slot, cap, tsize, talign, tfp, parts, flags, csum = _LINE0.unpack_from(view, base)
    if magic != _MAGIC:
        raise CorruptError("shmkit: corrupt ring: bad magic")
    if version != _VERSION:
        raise VersionError("shmkit: ring: unsupported version %d" % version)
    if csum != _seg.fnv1a64(bytes(view[base:base + 56])):
        raise CorruptError("shmkit: corrupt ring: header checksum mismatch")
    bad = CorruptError("shmkit: corrupt ring: impossible geometry")
    if cap == 0 or cap & (cap - 1) or cap > _MAX_CAPACITY or parts > _MAX_PARTS or maxmsg > _MAX_MESSAGE or flags:
        raise bad
    g = _Geom()
    g.mode, g.max_message, g.capacity, g.slot, g.parts, g.type = mode, maxmsg, cap, 0, 0, _seg.TypeDesc(tsize, talign, tfp)
    if mode == SPSC:
        if parts or slot or cap < 2 * (8 + _a8(maxmsg)) or cap < 64:
            raise bad
        g.data_off = HEADER
        g.size = HEADER + cap
    elif mode == MPMC:
        if parts == 0 or cap < 2 or slot != _a64(16 + maxmsg) or cap > _MAX_CAPACITY // slot:
            raise bad
        g.slot, g.parts = slot, parts
        g.data_off = HEADER + parts * 64
        g.size = g.data_off + cap * slot
    elif mode == SLOTS:
        # SPSC over fixed-size slots of the element type (ring.md, "Slots
        # data area"); Go creates them (ring.CreateTyped, Mode Slots).
        if parts or cap < 2 or maxmsg == 0 or tsize != maxmsg or slot != maxmsg or cap > _MAX_CAPACITY // maxmsg:
            raise bad
        g.slot = slot
        g.data_off = HEADER
        g.size = HEADER + cap * slot
    else:
        raise bad
    if g.size > avail:
        raise CorruptError("shmkit: corrupt ring: ring of %d bytes in %d bytes of memory" % (g.size, avail))
    return g


class Queue:
    """A ring queue shared with Go's ring.Queue. Create or open one with the
    class methods; one handle may both put and get. In SPSC mode the first
    put claims the producer role and the first get the consumer role
    (BusyError while a live process holds it); a dead holder's role is
    taken over."""

    def __init__(self, seg, base=_seg.HEADER_SIZE, owns=True, sleep=None, size=None):
        self._seg, self._mem, self._base, self._owns = seg, seg.mem, base, owns
        self._view = seg.view
        if size is None:  # the payload from base on; never the mapping's excess
            size = _seg.HEADER_SIZE + seg.size - base
        g = parse_ring(self._view, base, size)
        if base == _seg.HEADER_SIZE and seg.kind == _seg.KIND_QUEUE and tuple(g.type) != tuple(seg.type):
            raise CorruptError("shmkit: corrupt queue: ring type %r, segment header type %r" % (g.type, seg.type))
        self.mode, self.max_message, self._g = g.mode, g.max_message, g
        self._type_size = g.type[0]
        self._closed = False
        self._peer_death = False
        self._prod = self._cons = False
        self._pid, self._start = self_id()
        self._me = owner_word(self._pid, self._start)
        self._spin = _SPIN_MPMC if g.mode == MPMC else _SPIN_SPSC
        self._sleep = sleep or (_SLEEP_MPMC if g.mode == MPMC else _SLEEP_SPSC)
        if g.mode == SPSC:
            self._sp = _native.Spsc(self._mem, base, size, g.capacity, g.max_message, g.type[0], CorruptError)
            _handles.add(self)
        elif g.mode == SLOTS:
            from ._slots import Slots
            self._mp = Slots(self)  # the calls MPMC forwards, forwarded the same way
        else:
            from ._mpmc import Mpmc
            self._mp = Mpmc(self)

    # ---- constructors

    @classmethod
    def create(cls, name, mode="mpmc", capacity=DEFAULT_CAPACITY, max_message=DEFAULT_MAX_MESSAGE,
               participants=DEFAULT_PARTICIPANTS, mode_bits=0o600):
        """Create the named queue (Go: ring.Create with the same Config)."""
        return cls._make(name, _mode(mode), capacity, max_message, participants, mode_bits)

    @classmethod
    def create_anonymous(cls, mode="mpmc", capacity=DEFAULT_CAPACITY, max_message=DEFAULT_MAX_MESSAGE,
                         participants=DEFAULT_PARTICIPANTS):
        """Create an anonymous (memfd) queue; pass fileno() to a child."""
        return cls._make(None, _mode(mode), capacity, max_message, participants, 0)

    @classmethod
    def _make(cls, name, mode, capacity, max_message, participants, bits):
        size = geometry(mode, max_message, capacity, participants)[4]

        def init(payload, mem):
            init_ring(payload, 0, mode, max_message, capacity, participants)

        kw = dict(kind=_seg.KIND_QUEUE, params=(mode, max_message), init=init)
        seg = _seg.create_anonymous(size, **kw) if name is None else _seg.create(name, size, mode=bits, **kw)
        return cls._wrap(seg)

    @classmethod
    def _wrap(cls, seg):
        try:
            return cls(seg)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def open(cls, name, timeout=None):
        """Open the named queue."""
        return cls._wrap(_seg.open(name, kind=_seg.KIND_QUEUE, timeout=timeout))

    @classmethod
    def open_fd(cls, fd):
        """Attach to a queue whose descriptor was inherited or received."""
        return cls._wrap(_seg.open_fd(fd, kind=_seg.KIND_QUEUE))

    def fileno(self):
        return self._seg.fileno()

    # ---- SPSC roles

    def _claim(self, owner_off, start_off, role):
        mem, p = self._mem, self._base + owner_off
        w = 0
        for _ in range(16):
            w = mem.load64(p)
            if w != 0 and owner_alive(w):
                break
            pid, start = self_id()  # not self._me: that is the parent's after a fork
            if mem.cas64(p, w, owner_word(pid, start)):
                mem.store64(self._base + start_off, start)
                return
        raise BusyError(role, w >> 32)

    def _producer(self):
        if self._prod:
            return
        self._check()
        self._claim(O_PRODOWNER, O_PRODSTART, "producer")
        mem, b, cap = self._mem, self._base, self._g.capacity
        h, t = mem.load64(b + O_HEAD), mem.load64(b + O_TAIL)
        if h > t and h - t <= cap:
            t = h
        i = 0
        while True:
            if h > t or t - h > cap or t & 7 or h & 7 or i > cap // 8:
                mem.store64(b + O_PRODOWNER, 0)
                raise CorruptError("shmkit: corrupt ring: head %d, tail %d, capacity %d" % (h, t, cap))
            w = mem.load64(b + HEADER + (t & (cap - 1)))
            if w == 0:
                break
            n, span = w & 0xFFFFFFFF, w >> 32
            off = t & (cap - 1)
            if n == 0xFFFFFFFF:
                if off == 0:
                    mem.store64(b + O_PRODOWNER, 0)
                    raise CorruptError("shmkit: corrupt ring: pad record at offset 0")
                span = cap - off
            elif n > self.max_message or span < 8 + _a8(n) or span > 8 + _a8(self.max_message) or span & 7 or off + span > cap:
                mem.store64(b + O_PRODOWNER, 0)
                raise CorruptError("shmkit: corrupt ring: record length %d span %d at offset %d" % (n, span, off))
            t += span
            i += 1
        self._sp.p_init(t, h, mem.load64(b + O_PUTS))
        self._prod = True

    def _consumer(self):
        if self._cons:
            return
        self._check()
        self._claim(O_CONSOWNER, O_CONSSTART, "consumer")
        h = self._mem.load64(self._base + O_HEAD)
        if h & 7:
            self._mem.store64(self._base + O_CONSOWNER, 0)
            raise CorruptError("shmkit: corrupt ring: head %d" % h)
        self._sp.c_init(h, self._mem.load64(self._base + O_GETS))
        self._cons = True

    def _peer_gone(self, owner_off):
        if not self._peer_death:
            return False
        w = self._mem.load64(self._base + owner_off)
        return w != 0 and not owner_alive(w)

    def _check(self):
        if self._closed:
            raise ClosedError("shmkit: queue handle is closed")

    # ---- blocking

    def _block(self, try_, seq_off, waiters_off, waits_off, block, timeout, empty_exc):
        """Run try_(slow) until it returns something other than None: poll
        for the spin time, then sleep on the futex (docs/format/ring.md,
        "Sleeping and waking")."""
        r = try_(False)
        if r is not None:
            return r
        if not block:
            raise empty_exc
        now = time.monotonic()
        deadline = None if timeout is None else now + _timeout(timeout)
        spin_end = now + self._spin
        mem, b = self._mem, self._base
        while time.monotonic() < spin_end:
            r = try_(False)
            if r is not None:
                return r
        slow, slept = False, False
        try:
            while True:
                self._check()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    r = try_(True)
                    if r is not None:
                        return r
                    raise empty_exc
                s = mem.load32(b + seq_off)
                mem.add32(b + waiters_off, 1)
                try:
                    r = try_(slow)
                    if r is not None:
                        return r
                    mem.add64(b + waits_off, 1)
                    t = self._sleep if left is None else min(self._sleep, left)
                    mem.futex_wait(b + seq_off, s, t)
                    slept = True
                finally:
                    mem.add32(b + waiters_off, -1)
                slow = True
        except BaseException:
            if slept:
                self._wake(seq_off, waiters_off, 1)
            raise

    def _wake(self, seq_off, waiters_off, n):
        mem, b = self._mem, self._base
        if mem.load32(b + waiters_off):
            mem.add32(b + seq_off, 1)
            mem.futex_wake(b + seq_off, n)

    def _size_error(self, n):
        if self._type_size:
            from .errors import TypeMismatchError
            return TypeMismatchError("messages of %d bytes" % self._type_size, "%d bytes" % n)
        return TooLargeError("shmkit: message of %d bytes, the queue's max_message is %d" % (n, self.max_message))

    # ---- put side

    def put(self, data, block=True, timeout=None):
        """Put one message (bytes-like). queue.Full when not blocking or
        past the timeout; ClosedError once closed for writing."""
        if self.mode != SPSC:
            return self._mp.put(data, block, timeout)
        if not self._prod:
            n = len(memoryview(data))
            if n > self.max_message or (self._type_size and n != self._type_size):
                raise self._size_error(n)
            self._producer()
        st = self._sp.put(data)
        if st == 0:
            return
        if st == 1:
            def try_(slow):
                if self._mem.load32(self._base + O_CLOSED):
                    raise ClosedError("shmkit: queue closed for writing")
                r = self._sp.put(data)
                if r == 1:
                    if slow and self._peer_gone(O_CONSOWNER):
                        raise PeerDiedError("shmkit: the peer process died")
                    return None
                return r
            st = self._block(try_, O_SPACESEQ, O_PUTWAITERS, O_PUTWAITS, block, timeout, _queue.Full())
            if st == 0:
                return
        if st in (2, 3):
            raise ClosedError("shmkit: queue closed for writing")
        raise self._size_error(len(memoryview(data)))

    def put_nowait(self, data):
        return self.put(data, False)

    def put_batch(self, msgs, block=True, timeout=None):
        """Put every message of the sequence msgs, publishing as many
        together as fit; returns the number put (all of them, unless the
        queue was closed)."""
        if self.mode != SPSC:
            return self._mp.put_batch(msgs, block, timeout)
        self._producer()
        msgs = msgs if isinstance(msgs, (list, tuple)) else list(msgs)
        done, total = 0, len(msgs)
        deadline = None if timeout is None else time.monotonic() + _timeout(timeout)
        try:
            while done < total:
                k, st = self._sp.put_batch(msgs, done)
                done += k
                if st == 1:
                    left = None if deadline is None else max(deadline - time.monotonic(), 0)
                    self.put(msgs[done], block, left)
                    done += 1
                elif st in (2, 3):
                    raise ClosedError("shmkit: queue closed for writing")
                elif st == 4:
                    raise self._size_error(len(memoryview(msgs[done])))
        except Exception as e:
            e.done = done  # how many of msgs were put before the failure
            raise
        return done

    def reserve(self, n, block=True, timeout=None):
        """Zero-copy put: a writable memoryview of n bytes in the ring; fill
        it, then commit(k) with k <= n. Release the view before closing."""
        if self.mode != SPSC:
            return self._mp.reserve(n, block, timeout)
        self._producer()

        def try_(slow):
            if self._mem.load32(self._base + O_CLOSED):
                raise ClosedError("shmkit: queue closed for writing")
            off = self._sp.reserve(n)
            if off == -4:
                raise self._size_error(n)
            return None if off == -1 else off
        off = self._block(try_, O_SPACESEQ, O_PUTWAITERS, O_PUTWAITS, block, timeout, _queue.Full())
        return self._view[off:off + n]

    def commit(self, n):
        """Publish the reserved message with its first n bytes."""
        if self.mode != SPSC:
            return self._mp.commit(n)
        st = self._sp.commit(n)
        if st in (2, 3):
            raise ClosedError("shmkit: queue closed for writing")

    def close_write(self):
        """Close the queue for writing, for every process: consumers get
        EOFError after the messages already in it; puts fail. Wakes every
        sleeper on both futexes."""
        self._check()
        mem, b = self._mem, self._base
        mem.store32(b + O_CLOSED, 1)
        if self.mode == MPMC:
            mem.or64(b + O_TAIL, 1 << 63)
        mem.add32(b + O_DATASEQ, 1)
        mem.add32(b + O_SPACESEQ, 1)
        mem.futex_wake(b + O_DATASEQ, 1 << 30)
        mem.futex_wake(b + O_SPACESEQ, 1 << 30)

    # ---- get side

    def _get_try(self, fn):
        def try_(slow):
            r = fn()
            if r == 0:
                if slow and self._peer_gone(O_PRODOWNER):
                    r = fn()
                    if r == 0:
                        raise PeerDiedError("shmkit: the peer process died")
                    return r
                return None
            return r
        return try_

    def get(self, block=True, timeout=None):
        """Take one message, as bytes. queue.Empty when not blocking or past
        the timeout; EOFError once closed for writing and drained."""
        if self.mode != SPSC:
            return self._mp.get(block, timeout)
        self._consumer()
        r = self._sp.get()
        if r.__class__ is bytes:
            return r
        if r == 0:
            r = self._block(self._get_try(self._sp.get), O_DATASEQ, O_GETWAITERS, O_GETWAITS, block, timeout, _queue.Empty())
            if r.__class__ is bytes:
                return r
        raise EOFError("shmkit: queue closed for writing and drained")

    def get_nowait(self):
        return self.get(False)

    def get_batch(self, max_n=64, block=True, timeout=None):
        """Take up to max_n messages (at least one), as a list of bytes."""
        if self.mode != SPSC:
            return self._mp.get_batch(max_n, block, timeout)
        self._consumer()
        fn = lambda: self._sp.get_batch(max_n)  # noqa: E731
        r = fn()
        if r.__class__ is list:
            return r
        if r == 0:
            r = self._block(self._get_try(fn), O_DATASEQ, O_GETWAITERS, O_GETWAITS, block, timeout, _queue.Empty())
            if r.__class__ is list:
                return r
        raise EOFError("shmkit: queue closed for writing and drained")

    def next(self, block=True, timeout=None):
        """Zero-copy get: a read-only memoryview of the next message, in the
        ring, valid until release(). Several may be held; release() gives
        all of them back. Release the views before closing."""
        if self.mode != SPSC:
            return self._mp.next(block, timeout)
        self._consumer()
        r = self._sp.next()
        if r.__class__ is not tuple:
            if r == 0:
                r = self._block(self._get_try(self._sp.next), O_DATASEQ, O_GETWAITERS, O_GETWAITS, block, timeout, _queue.Empty())
            if r.__class__ is not tuple:
                raise EOFError("shmkit: queue closed for writing and drained")
        off, n = r
        return self._view[off:off + n].toreadonly()

    def release(self):
        """Give back the messages held by next(); returns how many."""
        if self.mode != SPSC:
            return self._mp.release()
        return self._sp.release()

    def __iter__(self):
        """Iterate over messages until the queue is closed and drained."""
        while True:
            try:
                yield self.get()
            except EOFError:
                return

    # ---- state

    def stats(self):
        """Counters from the header: puts, gets, put_waits, get_waits,
        skipped, lost; in MPMC mode also last_lost (pid, start and position
        of the last message lost with a dead consumer, or None)."""
        self._check()
        mem, b = self._mem, self._base
        d = dict(put_waits=mem.load64(b + O_PUTWAITS), get_waits=mem.load64(b + O_GETWAITS),
                 skipped=mem.load64(b + O_SKIPPED), lost=mem.load64(b + O_LOST))
        if self.mode == SPSC:
            d.update(puts=mem.load64(b + O_PUTS), gets=mem.load64(b + O_GETS))
        elif self.mode == SLOTS:
            d.update(self._mp.counts())
        else:
            d.update(self._mp.counts())
            w = mem.load64(b + O_LOSTOWNER)
            d["last_lost"] = dict(pid=w >> 32, start=mem.load64(b + O_LOSTSTART),
                                  position=mem.load64(b + O_LOSTPOS)) if w else None
        return d

    def set_lost_handler(self, fn):
        """MPMC: call fn(dict(position, consumer_pid, consumer_start,
        producer_pid, message)) for each message this handle recovers from
        a dead consumer (Go: Queue.SetLostHandler)."""
        if self.mode == MPMC:
            self._mp.lost_handler = fn

    def closed_for_write(self):
        return self._mem.load32(self._base + O_CLOSED) != 0

    def close(self):
        """Give back this handle's roles (or participant entry) and unmap."""
        if self._closed:
            return
        mem, b = self._mem, self._base
        if self.mode == SPSC:
            st = self._sp.state()
            if (self._cons and st["held"]) or (self._prod and st["reserved"]):
                raise RuntimeError("shmkit: messages held by next() or a reservation pending: release() or commit() first")
            if self._prod:
                mem.store64(b + O_PRODOWNER, 0)
            if self._cons:
                mem.store64(b + O_CONSOWNER, 0)
        else:
            self._mp.close()
        self._closed = True
        self._prod = self._cons = False  # the next call claims again, and _check refuses
        if self._owns:
            self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A handle dropped without close() gives its roles back, as close()
        # would, so that another handle of this process can take them.
        try:
            if not getattr(self, "_closed", True) and self._owns:
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def __repr__(self):
        return "<shmkit.Queue %s %s max_message=%d>" % (self._seg.name or "anonymous", {SPSC: "spsc", MPMC: "mpmc", SLOTS: "slots"}.get(self.mode, "?"), self.max_message)


class Pipe:
    """One end of a duplex pipe (Go: ring.Conn): send/recv messages; the
    other end may be Go or Python. End 0 sends on the first ring."""

    def __init__(self, seg, end):
        self._seg = seg
        size, second = seg.params
        n = seg.size
        if size == 0 or second < size or second % 64 or second > n or size > n - second:
            raise CorruptError("shmkit: corrupt pipe: layout %d/%d in %d bytes" % (size, second, n))
        r0 = Queue(seg, _seg.HEADER_SIZE, owns=False, size=size)
        r1 = Queue(seg, _seg.HEADER_SIZE + second, owns=False, size=size)
        if r0.mode != SPSC or r1.mode != SPSC:
            raise CorruptError("shmkit: corrupt pipe: ring not SPSC")
        self._out, self._in = (r0, r1) if end == 0 else (r1, r0)
        self._out._peer_death = self._in._peer_death = True
        self.end = end
        try:
            self._out._producer()
            self._in._consumer()
        except BusyError as e:
            self._out.close()
            self._in.close()
            raise BusyError("pipe end", e.pid) from None

    @classmethod
    def create(cls, name, capacity=DEFAULT_CAPACITY, max_message=DEFAULT_MAX_MESSAGE, mode_bits=0o600):
        """Create a named pipe; returns end 0 (the peer opens end 1)."""
        return cls._make(name, capacity, max_message, mode_bits)

    @classmethod
    def create_anonymous(cls, capacity=DEFAULT_CAPACITY, max_message=DEFAULT_MAX_MESSAGE):
        return cls._make(None, capacity, max_message, 0)

    @classmethod
    def _make(cls, name, capacity, max_message, bits):
        size = geometry(SPSC, max_message, capacity, 0)[4]
        second = _a64(size)

        def init(payload, mem):
            init_ring(payload, 0, SPSC, max_message, capacity, 0)
            init_ring(payload, second, SPSC, max_message, capacity, 0)

        kw = dict(kind=_seg.KIND_PIPE, params=(size, second), init=init)
        seg = _seg.create_anonymous(second + size, **kw) if name is None else _seg.create(name, second + size, mode=bits, **kw)
        return cls._wrap(seg, 0)

    @classmethod
    def _wrap(cls, seg, end):
        try:
            return cls(seg, end)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def open(cls, name, end=1):
        return cls._wrap(_seg.open(name, kind=_seg.KIND_PIPE), end)

    @classmethod
    def open_fd(cls, fd, end=1):
        return cls._wrap(_seg.open_fd(fd, kind=_seg.KIND_PIPE), end)

    def fileno(self):
        return self._seg.fileno()

    def send(self, data, timeout=None):
        """Send one message (bytes-like)."""
        self._out.put(data, True, timeout)

    def send_bytes(self, data):
        self._out.put(data)

    def recv(self, timeout=None):
        """Receive one message as bytes; EOFError after the peer closed
        (PeerDiedError, also an EOFError, when it died)."""
        return self._in.get(True, timeout)

    recv_bytes = recv

    def poll(self, timeout=0.0):
        """Whether a message is waiting (as multiprocessing's poll)."""
        q = self._in

        def try_(slow):
            r = q._sp.ready()
            if r == 0 and slow and q._peer_gone(O_PRODOWNER):
                r = q._sp.ready() or 2
            return r or None  # 1 waiting, 2 EOF or a dead peer: recv will say which
        block = timeout is None or timeout > 0
        try:
            return q._block(try_, O_DATASEQ, O_GETWAITERS, O_GETWAITS, block, timeout, _queue.Empty()) is not None
        except _queue.Empty:
            return False

    def close(self):
        """Close both directions for the peer and release this end."""
        if self._out._closed:
            return
        for q in (self._out, self._in):
            q.close_write()
        self._out.close()
        self._in.close()
        self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
