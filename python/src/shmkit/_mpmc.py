"""The MPMC mode of the ring queue (docs/format/ring.md, "MPMC"), byte- and
protocol-compatible with Go's ring/mpmc.go and ring/mpmc_batch.go, so
that Go and Python processes share one queue and any of them may be
killed at any point.

Vyukov's bounded MPMC queue over fixed slots, each with a sequence word,
plus a participant table: before a handle claims a position (by CAS on
the tail or the head) it stores the position (+1) as its intent, so that
whoever is stuck behind a slot that is claimed but unpublished (or
published but unreleased) finds the claimer and, if that process is dead,
skips the slot (or releases it and counts the message lost).

Queue (ring.py) creates one Mpmc per handle and delegates to it. A handle
may be used by several threads (a lock per side, held across a wait, as
Go's putMu/getMu); after os.fork the child's copy of a handle forgets the
parent's participant entry, reservation and held message and claims an
entry of its own on first use.

Everything read from shared memory is untrusted: every loop is bounded,
lengths and sequences are validated, and an inconsistency that no
participant explains is a CorruptError, not a hang.

An exception raised asynchronously (KeyboardInterrupt from a signal
handler) between a claim and its publication or release would leave a
live process holding a slot, which nobody recovers. So each side records
its last claim (one attribute store) and, when an exception escapes, a
producer marks the positions it claimed and did not publish skipped (as
for a dead producer: the message was not put), and a consumer copies the
messages it claimed and did not release into a per-handle stash before
releasing them, so that the next get-side call returns them (exactly
once). The few bytecodes between a claiming CAS and the record of it
remain a window that pure Python cannot close.
"""
import os
import queue as _queue
import struct
import threading
import time
import weakref

from ._proc import owner_alive, owner_word, self_id
from .errors import BusyError, ClosedError, CorruptError

# Ring header offsets, from the ring's start (docs/format/ring.md), as
# ring.py defines them (ring.py imports this module lazily, so no cycle).
from .ring import (HEADER as _TABLE, O_DATASEQ as _DATASEQ, O_GETWAITERS as _GETWAITERS, O_GETWAITS as _GETWAITS,
                   O_HEAD as _HEAD, O_LOST as _LOST, O_LOSTOWNER as _LOSTOWNER, O_LOSTPOS as _LOSTPOS,
                   O_LOSTSTART as _LOSTSTART, O_PUTWAITERS as _PUTWAITERS, O_PUTWAITS as _PUTWAITS,
                   O_SKIPPED as _SKIPPED, O_SPACESEQ as _SPACESEQ, O_TAIL as _TAIL)  # _TABLE: the participant table

# Participant entry fields (64 bytes each).
_E_OWNER, _E_START, _E_PINT, _E_CINT, _E_PUTS, _E_GETS, _E_PCNT, _E_CCNT = 0, 8, 16, 24, 32, 40, 48, 56
_ENTRY = 64

# Slot fields: seq (u64), length (u32), pid (u32), payload.
_S_LEN, _S_DATA = 8, 16
_LENPID = struct.Struct("<II")

_BIT63 = 1 << 63  # tail: closed for writing; slot seq: skipped
_LOW63 = _BIT63 - 1
_M64 = (1 << 64) - 1

_TRIES = 64          # attempts of one claim before it reports "not yet"
_STUCK_CHECKS = 4    # consecutive unexplained slow checks before CorruptError
_SLOW_PERIOD = 0.002  # slow checks every 2 ms of a spinning wait / of failing Try calls
_MAX_RUN = 1024

_PENDING_RESV = "shmkit: a reservation is pending (commit it first)"
_PENDING_HELD = "shmkit: a message is held by next() (release it first)"
_CLOSED_WRITE = "shmkit: queue closed for writing"
_CLOSED_HANDLE = "shmkit: queue handle is closed"
_EOF = "shmkit: queue closed for writing and drained"

# Tests set _hook to a function called at the crash points, as Go's
# testHook: "put-intent", "put-claimed", "putrun-intent", "putrun-claimed",
# "putrun-partial" (after the first publication of a run), "get-intent",
# "get-claimed", "getrun-intent", "getrun-claimed", "getrun-copied" (after
# each copy of a run) and "getrun-releasing" (after the first release).
_hook = None

_live = weakref.WeakSet()


def _after_fork():
    for m in list(_live):
        m._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _corrupt(msg):
    return CorruptError("shmkit: corrupt ring: " + msg)


def _buf(data):
    """(object to copy from, its size in bytes) for a bytes-like object;
    a non-contiguous buffer is copied first (before anything is claimed)."""
    m = memoryview(data)
    if not m.c_contiguous:
        b = m.tobytes()
        return b, len(b)
    return data, m.nbytes


class _Stall:
    """When a run of failing non-blocking calls runs the slow checks (Go:
    tryStall): by the clock, every _SLOW_PERIOD, read every 256 failures."""
    __slots__ = ("fails", "since")

    def __init__(self):
        self.fails, self.since = 0, None

    def failed(self):
        self.fails += 1
        if self.fails & 255:
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
            return False
        if now - self.since < _SLOW_PERIOD:
            return False
        self.since = now
        return True


class Mpmc:
    """The MPMC side of one Queue handle (see the module docstring)."""

    __slots__ = (
        "_q", "_mem", "_mm", "_view", "_ld", "_ld32", "_st", "_cas", "_b", "_n", "_mask", "_ssz", "_parts",
        "_d", "_e0", "_maxm", "_tsize", "_run", "_tail", "_head", "_gw", "_pw", "_ds", "_ss",
        "_plock", "_glock", "_eoff", "_ent", "_pid", "_me", "_pc", "_cc", "_puts", "_gets",
        "_resv", "_held", "_eof", "_gerr", "_gslow", "_stash", "_pclaim", "_gclaim",
        "_stuck_put", "_stuck_get", "_tryput", "_tryget", "_closed", "lost_handler", "__weakref__",
    )

    def __init__(self, q):
        g = q._g
        self._q = q
        mem = self._mem = q._mem
        self._view = q._view
        self._mm = getattr(q._seg, "_mm", None)
        if self._mm is None:  # pragma: no cover - a Queue is always on a Segment
            self._mm = q._view
        self._ld, self._ld32, self._st, self._cas = mem.load64, mem.load32, mem.store64, mem.cas64
        b = self._b = q._base
        self._n = g.capacity
        self._mask = g.capacity - 1
        self._ssz = g.slot
        self._parts = g.parts
        self._d = b + g.data_off
        self._e0 = b + _TABLE
        self._maxm = g.max_message
        self._tsize = g.type[0]
        self._run = min(max(g.capacity // 4, 1), _MAX_RUN)
        self._tail, self._head = b + _TAIL, b + _HEAD
        self._gw, self._pw = b + _GETWAITERS, b + _PUTWAITERS
        self._ds, self._ss = b + _DATASEQ, b + _SPACESEQ
        self._closed = False
        self._eof = False
        # lost_handler, if set, is called with a dict (position,
        # consumer_pid, consumer_start, producer_pid, message) for each
        # message this handle recovers from a dead consumer (Go:
        # SetLostHandler). It must not call the queue.
        self.lost_handler = None
        self._forked()
        _live.add(self)

    def _forked(self):
        """Reset the per-process state (at creation, and in a forked child:
        the parent's entry, reservation, held and stashed messages stay the
        parent's)."""
        self._plock, self._glock = threading.Lock(), threading.Lock()
        self._eoff, self._ent = 0, -1
        self._pid = self._me = 0
        self._pc = self._cc = 0
        self._puts = self._gets = 0
        self._resv = None    # (position, reserved bytes)
        self._held = None    # position held by next(); -1: a stashed message
        self._gerr = None    # an error to report on the next get-side call
        self._stash = []     # messages taken from the ring, not yet returned
        self._pclaim = None  # (position, count) of the last put-side claim
        self._gclaim = None  # likewise get-side
        self._gslow = self._eof or self._closed
        self._stuck_put = [0, 0, 0]
        self._stuck_get = [0, 0, 0]
        self._tryput, self._tryget = _Stall(), _Stall()

    def _gupdate(self):
        self._gslow = (self._held is not None or self._eof or self._gerr is not None
                       or bool(self._stash) or self._closed)

    def _slot(self, pos):
        return self._d + (pos & self._mask) * self._ssz

    # ---- participant entry

    def _attach(self):
        """Claim a participant entry: a free one, else one whose owner is
        dead and whose intents are stale. Returns its offset."""
        if self._closed:
            raise ClosedError(_CLOSED_HANDLE)
        ld, st, cas = self._ld, self._st, self._cas
        pid, start = self_id()
        me = owner_word(pid, start)
        for second in (False, True):
            e = self._e0
            for i in range(self._parts):
                w = ld(e + _E_OWNER)
                if not second:
                    ok = w == 0
                else:
                    ok = w != 0 and not owner_alive(w) and self._entry_stale(e)
                if ok and cas(e + _E_OWNER, w, me):
                    st(e + _E_START, start)
                    st(e + _E_PINT, 0)
                    st(e + _E_CINT, 0)
                    st(e + _E_PCNT, 0)
                    st(e + _E_CCNT, 0)
                    self._pc = self._cc = 0
                    self._puts, self._gets = ld(e + _E_PUTS), ld(e + _E_GETS)
                    self._pid, self._me, self._ent, self._eoff = pid & 0xFFFFFFFF, me, i, e
                    return e
                e += _ENTRY
        err = BusyError("participant", 0)
        err.args = ("shmkit: all %d participant entries of the queue are held by live processes" % self._parts,)
        raise err

    def _count(self, off):
        """An intent's count at off, read as 1..maxRun (a hostile count
        cannot make a scan long)."""
        n = self._ld(off)
        return 1 if n <= 1 else min(n, self._run)

    def _entry_stale(self, e):
        """Whether the intents of the (dead) entry at e name no slot that
        still needs recovering, so that the entry may be reused."""
        ld, slot = self._ld, self._slot
        v = ld(e + _E_PINT)
        if v:
            tail = ld(self._tail) & _LOW63
            for k in range(self._count(e + _E_PCNT)):
                p = v - 1 + k
                if tail > p and ld(slot(p)) == p:
                    return False  # claimed (maybe by this entry) and never published
        v = ld(e + _E_CINT)
        if v:
            head = ld(self._head)
            for k in range(self._count(e + _E_CCNT)):
                c = v - 1 + k
                if head > c and ld(slot(c)) & _LOW63 == c + 1:
                    return False  # claimed (maybe by this entry) and never released
        return True

    def _find_intent(self, fi, fc, pos):
        """(alive, dead): whether a live participant's intent (field fi,
        count fc) names pos; else the offset of a dead one naming it, or 0."""
        ld = self._ld
        dead = 0
        e = self._e0
        for _ in range(self._parts):
            v = ld(e + fi)
            if v and pos >= v - 1 and pos - (v - 1) < self._count(e + fc):
                w = ld(e + _E_OWNER)
                # w == 0: closed cleanly; Close gives back what it held,
                # so the intent is stale.
                if w:
                    if owner_alive(w):
                        return True, 0
                    dead = e
            e += _ENTRY
        return False, dead

    def _stuck(self, st, pos, seq):
        """Record an unexplained stall at (pos, seq); CorruptError once the
        same one was seen in _STUCK_CHECKS slow checks in a row."""
        if st[0] == pos and st[1] == seq and st[2]:
            st[2] += 1
            if st[2] >= _STUCK_CHECKS:
                st[2] = 0
                raise _corrupt("slot of position %d stuck at sequence %d with no participant holding it" % (pos, seq))
        else:
            st[0], st[1], st[2] = pos, seq, 1

    # ---- recovery

    def _recover_held(self, c, seq, st):
        """Free slot c (published as seq, claimed by a consumer, never
        released) if that consumer is dead, counting the message lost
        (unless skipped), and the rest of the dead consumer's run. Returns
        whether the slot changed."""
        ld = self._ld
        if ld(self._head) <= c:
            return False  # nobody claimed it: the queue is just full
        alive, dead = self._find_intent(_E_CINT, _E_CCNT, c)
        if alive:
            return False
        if not dead:
            if ld(self._slot(c)) != seq:
                return True  # released meanwhile
            self._stuck(st, c, seq)
            return False
        self._release_dead(dead, c, seq)
        # The rest of the dead consumer's run, in the same pass.
        v = ld(dead + _E_CINT)
        if v:
            head = ld(self._head)
            for k in range(self._count(dead + _E_CCNT)):
                x = v - 1 + k
                if x == c or head <= x:
                    continue
                s = ld(self._slot(x))
                if s & _LOW63 != x + 1:
                    continue  # released, or not this round's
                alive, d = self._find_intent(_E_CINT, _E_CCNT, x)
                if not alive and d:
                    self._release_dead(d, x, s)
        return True

    def _release_dead(self, dead, c, seq):
        """Free slot c (seen as seq), held by the dead entry at offset dead;
        count the message lost (unless it was a skipped slot)."""
        ld, st = self._ld, self._st
        w, start = ld(dead + _E_OWNER), ld(dead + _E_START)
        so = self._slot(c)
        lost = None
        fn = self.lost_handler
        if fn is not None and not seq & _BIT63:
            # Copy the message before the CAS frees the slot for a producer.
            n = self._ld32(so + _S_LEN)
            lost = dict(position=c, consumer_pid=w >> 32, consumer_start=start,
                        producer_pid=self._ld32(so + _S_LEN + 4),
                        message=self._mm[so + _S_DATA:so + _S_DATA + n] if n <= self._maxm else b"")
        if not self._cas(so, seq, (c + self._n) & _M64):
            return
        if not seq & _BIT63:
            self._mem.add64(self._b + _LOST, 1)
            st(self._b + _LOSTOWNER, w)
            st(self._b + _LOSTSTART, start)
            st(self._b + _LOSTPOS, c & _M64)
        # Clear the dead entry's intent only if it still names c alone.
        if self._count(dead + _E_CCNT) == 1:
            self._cas(dead + _E_CINT, (c + 1) & _M64, 0)
        self._wake(self._ss, self._pw, 1)
        if lost is not None:
            fn(lost)

    def _skip_dead(self, p):
        """Mark position p (claimed, never published) skipped if its
        producer is dead, and the rest of the dead producer's run. Returns
        whether the slot changed."""
        ld = self._ld
        alive, dead = self._find_intent(_E_PINT, _E_PCNT, p)
        if alive:
            return False
        if not dead:
            if ld(self._slot(p)) != p:
                return True  # published meanwhile
            self._stuck(self._stuck_get, p, p)
            return False
        self._skip_slot(dead, p)
        v = ld(dead + _E_PINT)
        if v:
            tail = ld(self._tail) & _LOW63
            for k in range(self._count(dead + _E_PCNT)):
                x = v - 1 + k
                if x == p or tail <= x or ld(self._slot(x)) != x:
                    continue
                alive, d = self._find_intent(_E_PINT, _E_PCNT, x)
                if not alive and d:
                    self._skip_slot(d, x)
        return True

    def _skip_slot(self, dead, p):
        if self._cas(self._slot(p), p, ((p + 1) | _BIT63) & _M64):
            if self._count(dead + _E_PCNT) == 1:
                self._cas(dead + _E_PINT, (p + 1) & _M64, 0)

    def _recover_all(self):
        """At EOF: recover every slot of the last N positions that a dead
        consumer claimed and never released, so that 'lost' is complete."""
        ld, n = self._ld, self._n
        h = ld(self._head)
        for c in range(h - n if h > n else 0, h):
            seq = ld(self._slot(c))
            if seq & _LOW63 == c + 1:
                self._recover_held(c, seq, [0, 0, 0])

    # ---- waking and waiting

    def _wake(self, seq, waiters, n):
        mem = self._mem
        if mem.load32(waiters):
            mem.add32(seq, 1)
            mem.futex_wake(seq, n)

    def _lock(self, lk, block, timeout, exc):
        """Acquire a side's lock that another thread holds (a non-blocking
        call does not wait for it); returns the timeout left."""
        if not block:
            raise exc()
        if timeout is None:
            lk.acquire()
            return None
        t0 = time.monotonic()
        if not lk.acquire(True, max(timeout, 0.0)):
            raise exc()
        return max(0.0, timeout - (time.monotonic() - t0))

    def _block(self, try_, seq, waiters, waits, timeout, exc):
        """Retry try_(slow) until it returns something other than None,
        after a first try that failed: poll for the spin time (slow checks
        every 2 ms of it), then sleep on the futex word seq (ring.md,
        "Sleeping and waking"): load seq, count ourselves in waiters, try
        again, FUTEX_WAIT with a bounded timeout; slow after a sleep."""
        q, mem = self._q, self._mem
        mono = time.monotonic
        now = mono()
        deadline = None if timeout is None else now + max(timeout, 0.0)
        spin_end = now + q._spin
        last = now
        slow = False
        while True:
            now = mono()
            if now >= spin_end or (deadline is not None and now >= deadline):
                break
            slow = now - last >= _SLOW_PERIOD
            if slow:
                last = now
            r = try_(slow)
            if r is not None:
                return r
        slept = False
        sleep = q._sleep
        try:
            while True:
                if self._closed:
                    raise ClosedError(_CLOSED_HANDLE)
                t = sleep
                if deadline is not None:
                    left = deadline - mono()
                    if left <= 0:
                        r = try_(True)
                        if r is not None:
                            return r
                        raise exc()
                    t = min(sleep, left)
                s = mem.load32(seq)  # before the re-check
                mem.add32(waiters, 1)
                try:
                    r = try_(slow)
                    if r is not None:
                        return r
                    mem.add64(waits, 1)
                    mem.futex_wait(seq, s, t)
                    slept = True
                finally:
                    mem.add32(waiters, -1)
                slow = True
        except BaseException:
            # Maybe woken for something we leave behind: hand it on.
            if slept:
                self._wake(seq, waiters, 1)
            raise

    # ---- put side

    def _claim_put(self, slow):
        """Claim the slot at the tail: its position, or None (full, or a
        slot ahead being recovered)."""
        ld, n = self._ld, self._n
        tail = self._tail
        for _ in range(_TRIES):
            t = ld(tail)
            if t & _BIT63:
                raise ClosedError(_CLOSED_WRITE)
            seq = ld(self._d + (t & self._mask) * self._ssz)
            if seq == t:
                e = self._eoff
                if self._pc != 1:
                    self._st(e + _E_PCNT, 1)
                    self._pc = 1
                self._st(e + _E_PINT, t + 1)  # before the claiming CAS
                if _hook is not None:
                    _hook("put-intent")
                if self._cas(tail, t, t + 1):
                    self._pclaim = (t, 1)
                    self._stuck_put[2] = 0
                    if _hook is not None:
                        _hook("put-claimed")
                    return t
                # Lost the race: our intent would name a position another
                # producer holds.
                self._st(e + _E_PINT, 0)
            elif t >= n and seq & _LOW63 == t - n + 1:
                # Position t-N published and not yet released.
                if not slow or not self._recover_held(t - n, seq, self._stuck_put):
                    return None
            elif t >= n and seq == t - n:
                return None  # position t-N still being written
            elif ld(tail) == t:
                raise _corrupt("slot of tail %d has sequence %d" % (t, seq))
        return None

    def _claim_put_wait(self, block, timeout):
        r = self._claim_put(False)
        if r is None and not block and self._tryput.failed():
            r = self._claim_put(True)
        if r is not None:
            return r
        if not block:
            raise _queue.Full()
        b = self._b
        return self._block(self._claim_put, b + _SPACESEQ, b + _PUTWAITERS, b + _PUTWAITS, timeout, _queue.Full)

    def _abandon(self):
        """After an exception: mark skipped the positions of the last claim
        that are not published (a stale claim matches none)."""
        c = self._pclaim
        if c is None:
            return
        self._pclaim = None
        t, k = c
        done = 0
        for p in range(t, t + k):
            if self._cas(self._slot(p), p, ((p + 1) | _BIT63) & _M64):
                done += 1
        if done:
            self._wake(self._ds, self._gw, done)

    def _publish(self, pos, so, n):
        _LENPID.pack_into(self._mm, so + _S_LEN, n, self._pid)  # plain, published by the seq store
        self._st(so, pos + 1)
        self._puts += 1
        self._st(self._eoff + _E_PUTS, self._puts & _M64)
        if self._ld32(self._gw):
            self._wake(self._ds, self._gw, 1)

    def put(self, data, block=True, timeout=None):
        if data.__class__ is bytes:
            n = len(data)
        else:
            data, n = _buf(data)
        if n > self._maxm or (self._tsize and n != self._tsize):
            raise self._q._size_error(n)
        lk = self._plock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Full)
        try:
            if self._resv is not None:
                raise RuntimeError(_PENDING_RESV)
            e = self._eoff or self._attach()
            ld, st = self._ld, self._st
            try:
                t = ld(self._tail)
                so = self._d + (t & self._mask) * self._ssz
                if t & _BIT63 == 0 and ld(so) == t and _hook is None:
                    if self._pc != 1:
                        st(e + _E_PCNT, 1)
                        self._pc = 1
                    st(e + _E_PINT, t + 1)  # before the claiming CAS
                    if self._cas(self._tail, t, t + 1):
                        self._pclaim = (t, 1)
                    else:
                        st(e + _E_PINT, 0)
                        t = self._claim_put_wait(block, timeout)
                        so = self._d + (t & self._mask) * self._ssz
                else:
                    t = self._claim_put_wait(block, timeout)
                    so = self._d + (t & self._mask) * self._ssz
                self._mm[so + _S_DATA:so + _S_DATA + n] = data
                _LENPID.pack_into(self._mm, so + _S_LEN, n, self._pid)  # plain, published by the seq store
                st(so, t + 1)  # publishes the message
            except (_queue.Full, ClosedError):
                raise
            except BaseException:
                self._abandon()
                raise
            self._puts += 1
            st(e + _E_PUTS, self._puts & _M64)
            if self._ld32(self._gw):
                self._wake(self._ds, self._gw, 1)
        finally:
            lk.release()

    def _claim_put_run(self, want):
        """Claim up to want free slots from the tail, without waiting or
        recovering: (position, k), or None when the tail's slot is not free."""
        ld, slot = self._ld, self._slot
        tail = self._tail
        for _ in range(_TRIES):
            t = ld(tail)
            if t & _BIT63:
                raise ClosedError(_CLOSED_WRITE)
            if ld(slot(t)) != t:
                return None
            k = 1
            while k < want and ld(slot(t + k)) == t + k:
                k += 1
            e = self._eoff
            if self._pc != k:
                self._st(e + _E_PCNT, k)  # count first, then the intent
                self._pc = k
            self._st(e + _E_PINT, t + 1)
            if _hook is not None:
                _hook("putrun-intent")
            if self._cas(tail, t, t + k):
                self._pclaim = (t, k)
                self._stuck_put[2] = 0
                if _hook is not None:
                    _hook("putrun-claimed")
                return t, k
            self._st(e + _E_PINT, 0)
        return None

    def put_batch(self, msgs, block=True, timeout=None):
        """Put msgs in order: runs of free slots (up to min(capacity/4,
        1024)) claimed with one CAS each, one wake per run. Returns how many
        were put; an exception raised after some were put carries that
        number as its ``done`` attribute."""
        if msgs.__class__ is not list:
            msgs = list(msgs)
        total = len(msgs)
        lens = []
        maxm, tsize = self._maxm, self._tsize
        good = total
        copied = False
        for i, m in enumerate(msgs):
            if m.__class__ is bytes:
                n = len(m)
            else:
                m, n = _buf(m)
                if m is not msgs[i]:
                    if not copied:
                        msgs, copied = msgs[:], True
                    msgs[i] = m
            if n > maxm or (tsize and n != tsize):
                good = i
                lens.append(n)
                break
            lens.append(n)
        lk = self._plock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Full)
        done = 0
        try:
            if self._resv is not None:
                raise RuntimeError(_PENDING_RESV)
            e = self._eoff or self._attach()
            deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
            mm, st, run = self._mm, self._st, self._run
            d, mask, ssz, pid = self._d, self._mask, self._ssz, self._pid
            try:
                while done < total:
                    want = min(good - done, run)
                    if want > 1:
                        r = self._claim_put_run(want)
                        if r is not None:
                            t, k = r
                            for i in range(k):
                                p = t + i
                                so = d + (p & mask) * ssz
                                n = lens[done + i]
                                mm[so + _S_DATA:so + _S_DATA + n] = msgs[done + i]
                                _LENPID.pack_into(mm, so + _S_LEN, n, pid)
                                st(so, p + 1)
                                if i == 0 and _hook is not None:
                                    _hook("putrun-partial")
                            done += k
                            self._puts += k
                            st(e + _E_PUTS, self._puts & _M64)
                            if self._ld32(self._gw):
                                self._wake(self._ds, self._gw, k)
                            continue
                    if done >= good:
                        raise self._q._size_error(lens[done])
                    # One message by the single path: it waits for room and
                    # recovers a dead consumer's slot.
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    t = self._claim_put_wait(block, left)
                    so = d + (t & mask) * ssz
                    n = lens[done]
                    mm[so + _S_DATA:so + _S_DATA + n] = msgs[done]
                    self._publish(t, so, n)
                    done += 1
            except (_queue.Full, ClosedError):
                raise
            except BaseException:
                self._abandon()
                raise
            return done
        except BaseException as exc:
            if done:
                try:
                    exc.done = done
                except AttributeError:  # pragma: no cover
                    pass
            raise
        finally:
            lk.release()

    def reserve(self, n, block=True, timeout=None):
        if n < 0 or n > self._maxm or (self._tsize and n != self._tsize):
            raise self._q._size_error(n)
        lk = self._plock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Full)
        try:
            if self._resv is not None:
                raise RuntimeError(_PENDING_RESV)
            self._eoff or self._attach()
            try:
                t = self._claim_put_wait(block, timeout)
                so = self._slot(t) + _S_DATA
                v = self._view[so:so + n]
                self._resv = (t, n)
                return v
            except (_queue.Full, ClosedError):
                raise
            except BaseException:
                self._resv = None
                self._abandon()
                raise
        finally:
            lk.release()

    def commit(self, n):
        with self._plock:
            if self._closed:
                raise ClosedError(_CLOSED_HANDLE)
            if self._resv is None:
                raise RuntimeError("shmkit: commit without a reservation")
            pos, reserved = self._resv
            if n < 0 or n > reserved:
                raise ValueError("shmkit: commit of %d bytes, %d reserved" % (n, reserved))
            if self._tsize and n != self._tsize:
                raise self._q._size_error(n)
            self._resv = None
            so = self._slot(pos)
            if self._ld(so) != pos:
                raise _corrupt("reserved slot of position %d has sequence %d" % (pos, self._ld(so)))
            self._publish(pos, so, n)

    # ---- get side

    def _claim_get(self, slow):
        """Claim the next published slot at the head: its position, or None
        (empty, or a producer's slot not yet published). EOFError once the
        queue is closed and drained."""
        ld, n = self._ld, self._n
        head = self._head
        for _ in range(_TRIES):
            h = ld(head)
            so = self._d + (h & self._mask) * self._ssz
            seq = ld(so)
            s = seq & _LOW63
            if s == h + 1:
                e = self._eoff
                if self._cc != 1:
                    self._st(e + _E_CCNT, 1)
                    self._cc = 1
                self._st(e + _E_CINT, h + 1)  # before the claiming CAS
                if _hook is not None:
                    _hook("get-intent")
                if self._cas(head, h, h + 1):
                    if seq & _BIT63:
                        # Skipped (its producer died): release, count, move on.
                        self._st(so, h + n)
                        self._wake(self._ss, self._pw, 1)
                        self._mem.add64(self._b + _SKIPPED, 1)
                        continue
                    self._gclaim = (h, 1)
                    self._stuck_get[2] = 0
                    if _hook is not None:
                        _hook("get-claimed")
                    return h
                self._st(e + _E_CINT, 0)  # lost the race
            elif seq == h:
                # Not published: empty, or a producer is writing it.
                t = ld(self._tail)  # read after the head, so t >= h
                tc = t & _LOW63
                if tc < h:
                    if ld(head) == h:
                        raise _corrupt("head %d beyond tail %d" % (h, tc))
                    continue
                if tc == h:
                    if t & _BIT63:
                        self._at_eof()
                    return None
                if not slow or not self._skip_dead(h):
                    return None
            elif h >= n and s == h - n + 1:
                # Position h-N still held by a consumer: nothing for h yet.
                t = ld(self._tail)
                if t & _BIT63 and t & _LOW63 == h:
                    self._at_eof()
                return None
            elif ld(head) == h:
                raise _corrupt("slot of head %d has sequence %d" % (h, seq))
        return None

    def _at_eof(self):
        self._recover_all()
        self._eof = True
        self._gslow = True
        raise EOFError(_EOF)

    def _claim_get_wait(self, block, timeout):
        if self._eof:
            raise EOFError(_EOF)
        r = self._claim_get(False)
        if r is None and not block and self._tryget.failed():
            r = self._claim_get(True)
        if r is not None:
            return r
        if not block:
            raise _queue.Empty()
        b = self._b
        return self._block(self._claim_get, b + _DATASEQ, b + _GETWAITERS, b + _GETWAITS, timeout, _queue.Empty)

    def _done(self, pos):
        """Release a consumed position and count it."""
        self._st(self._slot(pos), (pos + self._n) & _M64)
        if self._ld32(self._pw):
            self._wake(self._ss, self._pw, 1)
        self._gets += 1
        self._st(self._eoff + _E_GETS, self._gets & _M64)

    def _len(self, pos, so):
        n = self._ld32(so + _S_LEN)
        if n > self._maxm:
            self._done(pos)  # give the slot back so the queue keeps moving
            raise _corrupt("message length %d at position %d" % (n, pos))
        return n

    def _rescue(self, copied=None):
        """After an exception: copy into the stash the messages of the last
        get-side claim that are not released yet (a stale claim matches
        none; copied maps positions already copied to their bytes), then
        release them, so that the next get-side call returns them."""
        c = self._gclaim
        if c is None or not self._eoff:
            return
        self._gclaim = None
        ld, st, mm = self._ld, self._st, self._mm
        h, k = c
        got, rel, skipped = [], 0, 0
        for p in range(h, h + k):
            so = self._slot(p)
            seq = ld(so)
            if copied and p in copied:
                got.append(copied[p])
                if seq & _LOW63 != p + 1:
                    continue  # released already
            elif seq & _LOW63 != p + 1 or p == self._held:
                continue  # released, or not ours
            elif seq & _BIT63:
                skipped += 1
            else:
                n = self._ld32(so + _S_LEN)
                if n <= self._maxm:
                    got.append(mm[so + _S_DATA:so + _S_DATA + n])
            st(so, (p + self._n) & _M64)
            rel += 1
        if skipped:
            self._mem.add64(self._b + _SKIPPED, skipped)
        if got:
            self._gets += len(got)
            st(self._eoff + _E_GETS, self._gets & _M64)
            self._stash.extend(got)
            self._gslow = True
        if rel:
            self._wake(self._ss, self._pw, rel)

    def _pending(self):
        """Raise what blocks the get side: a stored error, a held message."""
        if self._gerr is not None:
            err, self._gerr = self._gerr, None
            self._gupdate()
            raise err
        if self._held is not None:
            raise RuntimeError(_PENDING_HELD)

    def _get1(self, block, timeout):
        self._pending()
        if self._stash:
            b = self._stash.pop(0)
            self._gupdate()
            return b
        pos = self._claim_get_wait(block, timeout)
        so = self._slot(pos)
        n = self._len(pos, so)
        b = self._mm[so + _S_DATA:so + _S_DATA + n]
        self._done(pos)
        return b

    def get(self, block=True, timeout=None):
        lk = self._glock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Empty)
        try:
            e = self._eoff or self._attach()
            if self._gslow or _hook is not None:
                return self._get1(block, timeout)
            ld, st = self._ld, self._st
            h = ld(self._head)
            so = self._d + (h & self._mask) * self._ssz
            if ld(so) == h + 1:
                if self._cc != 1:
                    st(e + _E_CCNT, 1)
                    self._cc = 1
                st(e + _E_CINT, h + 1)  # before the claiming CAS
                if self._cas(self._head, h, h + 1):
                    self._gclaim = (h, 1)
                    n = self._ld32(so + _S_LEN)
                    if n > self._maxm:
                        self._done(h)
                        raise _corrupt("message length %d at position %d" % (n, h))
                    b = self._mm[so + _S_DATA:so + _S_DATA + n]
                    st(so, h + self._n)  # release, after the copy
                    if self._ld32(self._pw):
                        self._wake(self._ss, self._pw, 1)
                    self._gets += 1
                    st(e + _E_GETS, self._gets & _M64)
                    return b
                st(e + _E_CINT, 0)
            return self._get1(block, timeout)
        except (_queue.Empty, EOFError, CorruptError, RuntimeError):
            raise
        except BaseException:
            self._rescue()
            raise
        finally:
            lk.release()

    def _claim_get_run(self, want):
        """Claim up to want published (or skipped) slots from the head,
        without waiting: (position, k), or None."""
        ld, slot = self._ld, self._slot
        head = self._head
        want = min(want, self._run)
        for _ in range(_TRIES):
            h = ld(head)
            k = 0
            while k < want and ld(slot(h + k)) & _LOW63 == h + k + 1:
                k += 1
            if k == 0:
                return None
            e = self._eoff
            if self._cc != k:
                self._st(e + _E_CCNT, k)  # count first, then the intent
                self._cc = k
            self._st(e + _E_CINT, h + 1)
            if _hook is not None:
                _hook("getrun-intent")
            if self._cas(head, h, h + k):
                self._gclaim = (h, k)
                self._stuck_get[2] = 0
                if _hook is not None:
                    _hook("getrun-claimed")
                return h, k
            self._st(e + _E_CINT, 0)
        return None

    def _take_run(self, pos, k, out):
        """Copy the claimed positions pos..pos+k-1 into out (passing over
        skipped slots), then release them all (after every copy: a consumer
        killed before the releases holds the whole run, counted lost) and
        wake the producers once. Returns an error to report, or None."""
        ld, st, mm = self._ld, self._st, self._mm
        d, mask, ssz, maxm, n = self._d, self._mask, self._ssz, self._maxm, self._n
        bad = None
        skipped = 0
        got = []  # (position, bytes)
        try:
            for p in range(pos, pos + k):
                so = d + (p & mask) * ssz
                if ld(so) & _BIT63:
                    skipped += 1
                    continue
                ln = self._ld32(so + _S_LEN)
                if ln > maxm:
                    if bad is None:
                        bad = _corrupt("message length %d at position %d" % (ln, p))
                    continue
                got.append((p, mm[so + _S_DATA:so + _S_DATA + ln]))
                if _hook is not None:
                    _hook("getrun-copied")
            for p in range(pos, pos + k):
                st(d + (p & mask) * ssz, (p + n) & _M64)
                if p == pos and _hook is not None:
                    _hook("getrun-releasing")
        except BaseException:
            self._rescue(dict(got))
            raise
        out.extend([b for _, b in got])
        if skipped:
            self._mem.add64(self._b + _SKIPPED, skipped)
        self._gets += len(got)
        st(self._eoff + _E_GETS, self._gets & _M64)
        if self._ld32(self._pw):
            self._wake(self._ss, self._pw, k)
        return bad

    def get_batch(self, max_n=64, block=True, timeout=None):
        lk = self._glock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Empty)
        out = []
        try:
            self._eoff or self._attach()
            self._pending()
            if self._stash:
                out = self._stash[:max_n]
                del self._stash[:max_n]
                self._gupdate()
                return out
            while len(out) < max_n:
                if not self._eof:
                    r = self._claim_get_run(max_n - len(out))
                    if r is not None:
                        bad = self._take_run(r[0], r[1], out)
                        if bad is not None:
                            if not out:
                                raise bad
                            self._gerr = bad  # reported by the next call
                            self._gslow = True
                            return out
                        continue
                # One message by the single path: the first waits; the ones
                # after it only if they are there.
                try:
                    out.append(self._get1(block and not out, timeout))
                except (EOFError, _queue.Empty):
                    if out:
                        return out
                    raise
                except CorruptError as err:
                    if out:
                        self._gerr = err
                        self._gslow = True
                        return out
                    raise
            return out
        except (_queue.Empty, EOFError, CorruptError, RuntimeError):
            raise
        except BaseException:
            # Nothing taken is dropped: what this call copied out, then
            # what it claimed and did not release, go to the stash.
            self._rescue()
            if out:
                self._stash[:0] = out
                self._gslow = True
            raise
        finally:
            lk.release()

    def next(self, block=True, timeout=None):
        lk = self._glock
        if not lk.acquire(False):
            timeout = self._lock(lk, block, timeout, _queue.Empty)
        try:
            self._eoff or self._attach()
            self._pending()
            if self._stash:
                self._held = -1
                self._gslow = True
                return memoryview(self._stash.pop(0))
            pos = self._claim_get_wait(block, timeout)
            so = self._slot(pos)
            n = self._len(pos, so)
            so += _S_DATA
            v = self._view[so:so + n].toreadonly()
            self._held = pos
            self._gslow = True
            return v
        except (_queue.Empty, EOFError, CorruptError, RuntimeError):
            raise
        except BaseException:
            self._rescue()
            raise
        finally:
            lk.release()

    def release(self):
        with self._glock:
            if self._held is None:
                return 0
            pos, self._held = self._held, None
            self._gupdate()
            if pos >= 0:
                self._done(pos)
            return 1

    # ---- state

    def counts(self):
        if self._closed:
            return dict(puts=0, gets=0)
        ld = self._ld
        puts = gets = 0
        e = self._e0
        for _ in range(self._parts):
            puts += ld(e + _E_PUTS)
            gets += ld(e + _E_GETS)
            e += _ENTRY
        return dict(puts=puts & _M64, gets=gets & _M64)

    def entry(self):
        """The index of this handle's participant entry (-1: none yet)."""
        return self._ent

    def close(self):
        """Give back the participant entry: a pending reservation is
        abandoned (its slot marked skipped, as for a dead producer), a
        message held by next() released (messages in the stash are
        dropped); then the intents are zeroed, then the owner."""
        if self._closed:
            return
        e = self._eoff
        if e:
            if self._resv is not None:
                pos = self._resv[0]
                self._resv = None
                if self._cas(self._slot(pos), pos, ((pos + 1) | _BIT63) & _M64):
                    self._wake(self._ds, self._gw, 1)
            if self._held is not None:
                pos, self._held = self._held, None
                if pos >= 0:
                    self._done(pos)
            self._st(e + _E_PINT, 0)
            self._st(e + _E_CINT, 0)
            self._st(e + _E_OWNER, 0)
        self._eoff, self._ent = 0, -1
        self._stash = []
        self._closed = True
        self._gslow = True
