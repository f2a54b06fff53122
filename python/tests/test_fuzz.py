"""Hostile bytes: random mutations of headers and rings give a typed
exception or a valid result, never a crash or a hang (the C extension
reads the ring's records, so a bad bound there would be a segfault)."""
import os
import queue
import random
import struct

import pytest

import shmkit
from shmkit import ring as _ring
from shmkit.segment import HEADER_SIZE, encode_header, fnv1a64, parse_header

ROUNDS = int(os.environ.get("SHMKIT_PY_FUZZ", "3000"))
OK = (shmkit.CorruptError, shmkit.VersionError, shmkit.NotSupportedError)  # NotSupported: a mutated mode of 3 names a Slots ring


def test_parse_header_mutations():
    rnd = random.Random(1)
    good = bytearray(encode_header(6, 4096, (24, 8, 0x0123456789ABCDEF), (512, 0), "main.Point"))
    good[120:124] = struct.pack("<I", 2)
    h = parse_header(bytes(good), 128 + 4096)
    assert h.kind == 6 and h.type_name == "main.Point" and h.params == (512, 0)
    for _ in range(ROUNDS):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(128)] = rnd.randrange(256)
        if rnd.random() < 0.5:
            b[112:120] = struct.pack("<Q", fnv1a64(b[:112]))
        try:
            h = parse_header(bytes(b), 128 + 4096)
        except OK:
            continue
        assert 0 < h.size <= 4096 and h.offset == 128 and h.kind != 0


def test_ring_header_mutations():
    rnd = random.Random(2)
    for mode in (_ring.SPSC, _ring.MPMC):
        q = shmkit.Queue.create_anonymous("spsc" if mode == _ring.SPSC else "mpmc", capacity=8, max_message=64)
        good = bytes(q._view[HEADER_SIZE:HEADER_SIZE + 64])
        avail = len(q._view) - HEADER_SIZE
        for _ in range(ROUNDS // 2):
            b = bytearray(good)
            b[rnd.randrange(56)] = rnd.randrange(256)
            if rnd.random() < 0.7:
                b[56:64] = struct.pack("<Q", fnv1a64(b[:56]))
            try:
                g = _ring.parse_ring(memoryview(bytes(b) + bytes(avail - 64)), 0, avail)
            except OK:
                continue
            assert g.size <= avail
        q.close()


def test_spsc_garbage_records():
    """Random words in an SPSC ring's data area and positions: every call
    returns data, raises a typed exception, or reports empty/EOF."""
    rnd = random.Random(3)
    expected = (shmkit.CorruptError, queue.Empty, queue.Full, EOFError, shmkit.ClosedError)
    for it in range(ROUNDS // 10):
        q = shmkit.Queue.create_anonymous("spsc", capacity=8, max_message=64)
        for i in range(rnd.randrange(8)):
            q.put(bytes(rnd.randrange(65)))
        mem, b = q._mem, q._base
        cap = q._g.capacity
        for _ in range(rnd.randint(1, 6)):
            r = rnd.random()
            if r < 0.6:
                off = HEADER_SIZE + _ring.HEADER + 8 * rnd.randrange(cap // 8)
                word = rnd.choice([0, 0xFFFFFFFF, rnd.getrandbits(64), rnd.randrange(200) | rnd.randrange(300) << 32])
                mem.store64(off, word)
            elif r < 0.8:
                mem.store64(b + _ring.O_HEAD, rnd.choice([rnd.getrandbits(64), 8 * rnd.randrange(64)]))
            else:
                mem.store64(b + _ring.O_TAIL, rnd.choice([rnd.getrandbits(64), 8 * rnd.randrange(64)]))
        # A fresh handle, as a process attaching to the hostile ring.
        seg = shmkit.open_fd(q.fileno())
        h = shmkit.Queue(seg)
        for _ in range(20):
            op = rnd.randrange(5)
            try:
                if op == 0:
                    m = h.get(block=False)
                    assert len(m) <= 64
                elif op == 1:
                    ms = h.get_batch(8, block=False)
                    assert all(len(m) <= 64 for m in ms)
                elif op == 2:
                    v = h.next(block=False)
                    assert len(v) <= 64
                    v.release()
                    h.release()
                elif op == 3:
                    h.put(bytes(rnd.randrange(65)), block=False)
                else:
                    h.put_batch([bytes(8)] * 3, block=False)
            except expected:
                pass
            except shmkit.BusyError:
                pass
        h.close()
        q.close()


def test_slots_garbage_positions(name, peer):
    """Random head and tail words in a Slots ring (created by Go): every
    call on a fresh handle returns a whole value, raises a typed exception,
    or reports empty/full/EOF."""
    assert peer("create-slots", name, 8).wait() == "created"
    rnd = random.Random(5)
    expected = (shmkit.CorruptError, queue.Empty, queue.Full, EOFError, shmkit.ClosedError, shmkit.BusyError)
    base = shmkit.Queue.open(name)
    mem, b = base._mem, base._base
    for it in range(ROUNDS // 10):
        for off in (_ring.O_HEAD, _ring.O_TAIL):
            if rnd.random() < 0.7:
                mem.store64(b + off, rnd.choice([rnd.getrandbits(64), rnd.randrange(20), (1 << 64) - rnd.randrange(1, 9)]))
        mem.store32(b + _ring.O_CLOSED, rnd.randrange(2))
        h = shmkit.Queue.open(name)
        for _ in range(10):
            op = rnd.randrange(5)
            try:
                if op == 0:
                    assert len(h.get(block=False)) == 24
                elif op == 1:
                    assert all(len(m) == 24 for m in h.get_batch(4, block=False))
                elif op == 2:
                    v = h.next(block=False)
                    assert len(v) == 24
                    v.release()
                    h.release()
                elif op == 3:
                    h.put(bytes(24), block=False)
                else:
                    h.put_batch([bytes(24)] * 3, block=False)
            except expected:
                pass
        h.close()
    base.close()


def test_mutex_and_value_garbage(name):
    rnd = random.Random(4)
    m = shmkit.Mutex.create(name)
    for _ in range(ROUNDS // 10):
        m._mem.store64(HEADER_SIZE, rnd.choice([rnd.getrandbits(64), rnd.getrandbits(22), 1 << 31 | rnd.getrandbits(22)]))
        try:
            if m.acquire(timeout=0.001):
                m.release()
        except (shmkit.CorruptError, shmkit.OwnerDeadError, RuntimeError):
            m._mem.store64(HEADER_SIZE, 0)
    m._mem.store64(HEADER_SIZE, 0)
    m.close()
    a = shmkit.Array.create_anonymous("q", 4)
    good = bytes(a._seg.view[HEADER_SIZE:HEADER_SIZE + 64])
    for _ in range(ROUNDS // 3):
        b = bytearray(good)
        b[rnd.randrange(8, 40)] = rnd.randrange(256)
        if rnd.random() < 0.7:
            b[40:48] = struct.pack("<Q", fnv1a64(b[8:40]))
        a._seg.view[HEADER_SIZE:HEADER_SIZE + 64] = b
        try:
            x = shmkit.Array(a._seg, "q", owns=False)
        except (shmkit.CorruptError, shmkit.VersionError, shmkit.KindError, shmkit.TypeMismatchError):
            continue
        assert len(x) <= 4
        x.close()
    a._seg.view[HEADER_SIZE:HEADER_SIZE + 64] = good
    a.close()
