"""Slots mode (docs/format/ring.md, "Slots data area"): an SPSC ring of
fixed-size slots, the element type's size, with no header. tail and head
count messages; the producer publishes by storing tail, the consumer
releases by storing head (both sequentially consistent), each reading the
other's word only when its cached copy says full or empty. The roles,
sleeping and waking are the SPSC byte ring's (ring.py)."""
import queue as _queue

from .errors import ClosedError, CorruptError

_M64 = (1 << 64) - 1


class Slots:
    """The Slots side of a ring.Queue; Queue forwards its calls here."""

    def __init__(self, q):
        from . import ring as r
        self.r, self.q = r, q
        g = q._g
        self.cap, self.size, self.data = g.capacity, g.slot, q._base + g.data_off
        self.tail = self.cached_head = 0  # producer
        self.head = self.view = self.cached_tail = 0  # consumer
        self.held = 0
        self.reserved = False
        self.eof = False

    # ---- roles

    def _producer(self):
        if not self.q._prod:
            h, self.tail = self._claim(self.r.O_PRODOWNER, self.r.O_PRODSTART, "producer")
            self.cached_head, self.reserved = h, False
            self.q._prod = True

    def _consumer(self):
        if not self.q._cons:
            self.head, self.cached_tail = self._claim(self.r.O_CONSOWNER, self.r.O_CONSSTART, "consumer")
            self.view, self.held, self.eof = self.head, 0, False
            self.q._cons = True

    def _claim(self, owner_off, start_off, role):
        """Take the role; return the head and tail to start from, giving
        the role back when no peer could have stored them."""
        q, r = self.q, self.r
        q._check()
        q._claim(owner_off, start_off, role)
        h, t = q._mem.load64(q._base + r.O_HEAD), q._mem.load64(q._base + r.O_TAIL)
        if (t - h) & _M64 > self.cap:
            q._mem.store64(q._base + owner_off, 0)
            raise CorruptError("shmkit: corrupt ring: head %d, tail %d, capacity %d" % (h, t, self.cap))
        return h, t

    def _off(self, pos):
        return self.data + (pos % self.cap) * self.size

    def _closed(self):
        return self.q._mem.load32(self.q._base + self.r.O_CLOSED) != 0

    # ---- put side

    def _room(self, slow=False):
        """Free slots for the producer, reading head again when none."""
        free = self.cap - ((self.tail - self.cached_head) & _M64)
        if free > 0:
            return free
        h = self.q._mem.load64(self.q._base + self.r.O_HEAD)
        if (self.tail - h) & _M64 > self.cap:
            raise CorruptError("shmkit: corrupt ring: head %d with tail %d" % (h, self.tail))
        self.cached_head = h
        return self.cap - ((self.tail - h) & _M64)

    def _wait_room(self, block, timeout):
        q, r = self.q, self.r
        free = self._room()
        if free:
            return free
        if self._closed():
            raise ClosedError("shmkit: queue closed for writing")

        def try_(slow):
            if self._closed():
                raise ClosedError("shmkit: queue closed for writing")
            return self._room() or None
        return q._block(try_, r.O_SPACESEQ, r.O_PUTWAITERS, r.O_PUTWAITS, block, timeout, _queue.Full())

    def _publish(self, k):
        q, r = self.q, self.r
        if self._closed():
            raise ClosedError("shmkit: queue closed for writing")  # abandoned, never visible
        self.tail = (self.tail + k) & _M64
        q._mem.store64(q._base + r.O_TAIL, self.tail)  # seq-cst: the publication
        q._wake(r.O_DATASEQ, r.O_GETWAITERS, 1)
        if self._closed():
            raise ClosedError("shmkit: queue closed for writing")  # visible, not promised

    def _check_size(self, data):
        n = len(memoryview(data))
        if n != self.size:
            raise self.q._size_error(n)

    def put(self, data, block=True, timeout=None):
        self._check_size(data)
        self._producer()
        if self.reserved:
            raise RuntimeError("shmkit: a reservation is pending: commit() first")
        self._wait_room(block, timeout)
        off = self._off(self.tail)
        self.q._view[off:off + self.size] = data
        self._publish(1)

    def put_batch(self, msgs, block=True, timeout=None):
        msgs = msgs if isinstance(msgs, (list, tuple)) else list(msgs)
        self._producer()
        done = 0
        try:
            while done < len(msgs):
                self._check_size(msgs[done])
                free = self._wait_room(block, timeout)
                k = 0
                while k < min(free, max(self.cap // 4, 1), len(msgs) - done):
                    m = msgs[done + k]
                    if len(memoryview(m)) != self.size:
                        break
                    off = self._off(self.tail + k)
                    self.q._view[off:off + self.size] = m
                    k += 1
                self._publish(k)
                done += k
        except Exception as e:
            e.done = done
            raise
        return done

    def reserve(self, n, block=True, timeout=None):
        if n != self.size:
            raise self.q._size_error(n)
        self._producer()
        if self.reserved:
            raise RuntimeError("shmkit: a reservation is pending: commit() first")
        if self._closed():
            raise ClosedError("shmkit: queue closed for writing")
        self._wait_room(block, timeout)
        self.reserved = True
        off = self._off(self.tail)
        return self.q._view[off:off + n]

    def commit(self, n):
        if not self.reserved:
            raise RuntimeError("shmkit: nothing reserved")
        if n != self.size:
            raise self.q._size_error(n)
        self.reserved = False
        self._publish(1)

    # ---- get side

    def _queued(self):
        """Messages queued past the read position, reading tail again when
        the cached one shows none."""
        n = (self.cached_tail - self.view) & _M64
        if n:
            return n
        t = self.q._mem.load64(self.q._base + self.r.O_TAIL)
        d = (t - self.head) & _M64
        if d > self.cap or d < ((self.view - self.head) & _M64):
            raise CorruptError("shmkit: corrupt ring: tail %d with head %d and read position %d" % (t, self.head, self.view))
        self.cached_tail = t
        return (t - self.view) & _M64

    def _peek(self):
        """Queued messages, 0 when none, or EOFError at the end."""
        if self.eof:
            raise EOFError("shmkit: queue closed for writing and drained")
        n = self._queued()
        if n or not self._closed():
            return n
        n = self._queued()  # a Put before the close stored tail before it read the flag
        if n:
            return n
        self.eof = True
        raise EOFError("shmkit: queue closed for writing and drained")

    def _wait(self, block, timeout):
        q, r = self.q, self.r
        n = self._peek()
        if n:
            return n
        return q._block(lambda slow: self._peek() or None, r.O_DATASEQ, r.O_GETWAITERS, r.O_GETWAITS,
                        block, timeout, _queue.Empty())

    def _release(self):
        q, r = self.q, self.r
        self.head = self.view
        q._mem.store64(q._base + r.O_HEAD, self.view)  # seq-cst: the release
        q._wake(r.O_SPACESEQ, r.O_PUTWAITERS, 1)

    def _take(self):
        self._consumer()
        if self.held:
            raise RuntimeError("shmkit: messages held by next(): release() first")

    def get(self, block=True, timeout=None):
        self._take()
        self._wait(block, timeout)
        off = self._off(self.view)
        m = bytes(self.q._view[off:off + self.size])
        self.view = (self.view + 1) & _M64
        self._release()
        return m

    def get_batch(self, max_n=64, block=True, timeout=None):
        self._take()
        n = self._wait(block, timeout)
        out, view, size = [], self.q._view, self.size
        for _ in range(min(n, max_n)):
            off = self._off(self.view)
            out.append(bytes(view[off:off + size]))
            self.view = (self.view + 1) & _M64
        self._release()
        return out

    def next(self, block=True, timeout=None):
        self._consumer()
        self._wait(block, timeout)
        off = self._off(self.view)
        self.view = (self.view + 1) & _M64
        self.held += 1
        return self.q._view[off:off + self.size].toreadonly()

    def release(self):
        k, self.held = self.held, 0
        if k:
            self._release()
        return k

    # ---- state

    def counts(self):
        mem, b = self.q._mem, self.q._base
        return dict(puts=mem.load64(b + self.r.O_TAIL), gets=mem.load64(b + self.r.O_HEAD))

    def close(self):
        q, r = self.q, self.r
        if (q._cons and self.held) or (q._prod and self.reserved):
            raise RuntimeError("shmkit: messages held by next() or a reservation pending: release() or commit() first")
        if q._prod:
            q._mem.store64(q._base + r.O_PRODOWNER, 0)
        if q._cons:
            q._mem.store64(q._base + r.O_CONSOWNER, 0)
