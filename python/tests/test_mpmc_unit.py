"""Unit tests of the Python MPMC ring (shmkit._mpmc), Python processes only:
single-process behaviour, several producer and consumer processes, killed
producers and consumers (their slots skipped or counted lost), and
corrupt shared memory (CorruptError, never a hang)."""
import faulthandler
import os
import queue
import random
import signal
import struct
import threading
import time
import traceback

import pytest

import shmkit
from shmkit import _mpmc, _proc
from shmkit.errors import BusyError, ClosedError, CorruptError, TooLargeError

# Ring offsets (docs/format/ring.md).
TAIL, HEAD, SKIPPED, LOST, LOSTOWNER, LOSTSTART, LOSTPOS = 64, 128, 192, 200, 208, 216, 224
E_OWNER, E_START, E_PINT, E_CINT, E_PUTS, E_GETS, E_PCNT, E_CCNT = 0, 8, 16, 24, 32, 40, 48, 56
SKIP = 1 << 63
REC = struct.Struct("<II")


_kids = []


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()
    # A failed test leaves no child behind.
    while _kids:
        pid = _kids.pop()
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def mk(capacity=8, max_message=64, participants=16):
    return shmkit.Queue.create_anonymous(mode="mpmc", capacity=capacity, max_message=max_message,
                                         participants=participants)


def ld(q, off):
    return q._mem.load64(q._base + off)


def st(q, off, v):
    q._mem.store64(q._base + off, v)


def slot_off(q, pos):
    """Offset (from the ring base) of the slot of position pos."""
    return q._g.data_off + (pos % q._g.capacity) * q._g.slot


def ent_off(i):
    return _mpmc._TABLE + 64 * i


def fork(fn, *args):
    """Run fn(*args) in a child process; its exit status says whether it
    raised."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _kids.append(pid)
    return pid


def reap(pid, timeout=15.0):
    """Wait for child pid; return its exit code (-signal when killed)."""
    end = time.monotonic() + timeout
    while True:
        r, status = os.waitpid(pid, os.WNOHANG)
        if r:
            if pid in _kids:
                _kids.remove(pid)
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("child %d did not finish" % pid)
        time.sleep(0.002)


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    assert reap(pid) == -signal.SIGKILL


def dead_owner():
    """(owner word, start) of a process that existed and is now reaped."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)
        os._exit(0)
    start = _proc.start_time(pid)
    os.write(w, b"x")
    os.waitpid(pid, 0)
    os.close(r)
    os.close(w)
    return _proc.owner_word(pid, start), start


def forge_entry(q, i, owner, start, pint=0, pcnt=0, cint=0, ccnt=0):
    e = ent_off(i)
    st(q, e + E_OWNER, owner)
    st(q, e + E_START, start)
    st(q, e + E_PCNT, pcnt)
    st(q, e + E_PINT, pint)
    st(q, e + E_CCNT, ccnt)
    st(q, e + E_CINT, cint)


def msg(p, i, n):
    return REC.pack(p, i) + bytes([i & 0xFF]) * n


# ---------------------------------------------------------------- one process


def test_put_get_sizes_and_types():
    q = mk(capacity=8, max_message=64)
    try:
        data = [b"", b"a", b"x" * 64, bytearray(b"ba"), memoryview(b"mv"), memoryview(struct.pack("<4i", 1, 2, 3, 4)).cast("i")]
        for d in data:
            q.put(d)
        got = [q.get() for _ in data]
        assert got == [bytes(memoryview(d).cast("B")) if isinstance(d, memoryview) else bytes(d) for d in data]
        assert all(g.__class__ is bytes for g in got)
        # A non-contiguous buffer is copied before anything is claimed.
        q.put(memoryview(b"abcdef")[::2])
        assert q.put_batch([memoryview(b"uvwxyz")[1::2], b"k"]) == 2
        assert q.get_batch(5) == [b"ace", b"vxz", b"k"]
        with pytest.raises(TooLargeError):
            q.put(b"x" * 65)
        with pytest.raises(TooLargeError):
            q.reserve(65)
        with pytest.raises(queue.Empty):
            q.get(False)
        with pytest.raises(queue.Empty):
            q.get_nowait()
        s = q.stats()
        assert s["puts"] == s["gets"] == len(data) + 3
        assert s["skipped"] == s["lost"] == 0
        assert ld(q, TAIL) == ld(q, HEAD) == len(data) + 3
        # The handle claimed entry 0, with its pid in the slots it published.
        assert q._mp.entry() == 0
        assert ld(q, ent_off(0)) == _proc.owner_word(*_proc.self_id())
        assert q._mem.load32(q._base + slot_off(q, 0) + 12) == os.getpid()
    finally:
        q.close()


def test_fifo_full_and_wrap_around():
    q = mk(capacity=4, max_message=16)
    try:
        for i in range(4):
            q.put(b"%d" % i)
        with pytest.raises(queue.Full):
            q.put(b"x", False)
        with pytest.raises(queue.Full):
            q.put_nowait(b"x")
        assert [q.get() for _ in range(4)] == [b"0", b"1", b"2", b"3"]
        # Many laps of the ring, with the occupancy varying.
        nxt = 4
        want = 4
        rng = random.Random(1)
        held = 0
        for _ in range(6000):
            if held < 4 and (held == 0 or rng.random() < 0.5):
                q.put(b"%d" % nxt)
                nxt += 1
                held += 1
            else:
                assert q.get() == b"%d" % want
                want += 1
                held -= 1
        while held:
            assert q.get() == b"%d" % want
            want += 1
            held -= 1
        assert want == nxt > 3000
        assert ld(q, HEAD) == ld(q, TAIL) == nxt
        # Every slot's sequence says "free for the next lap".
        for p in range(nxt, nxt + 4):
            assert ld(q, slot_off(q, p)) == p
    finally:
        q.close()


def test_batches():
    q = mk(capacity=64, max_message=32)
    try:
        msgs = [b"m%d" % i for i in range(40)]
        assert q.put_batch(msgs) == 40
        # Runs of at most capacity/4 = 16 positions (16, 16, 8): the intent names the last run.
        e = ent_off(q._mp.entry())
        assert ld(q, e + E_PCNT) == 8 and ld(q, e + E_PINT) == 32 + 1
        assert q.get_batch(5) == msgs[:5]
        assert q.get_batch(100) == msgs[5:]
        assert ld(q, e + E_CCNT) == 3 and ld(q, e + E_CINT) == 37 + 1
        with pytest.raises(queue.Empty):
            q.get_batch(10, block=False)
        assert q.put_batch([]) == 0
        # Wrap-around in batches.
        n = 0
        for r in range(300):
            k = 1 + r % 37
            assert q.put_batch([b"%d" % (n + j) for j in range(k)]) == k
            got = []
            while len(got) < k:
                got += q.get_batch(k - len(got))
            assert got == [b"%d" % (n + j) for j in range(k)]
            n += k
        # A message too large stops the batch after the ones before it.
        with pytest.raises(TooLargeError) as ei:
            q.put_batch([b"a", b"b", b"x" * 33, b"c"])
        assert ei.value.done == 2
        assert q.get_batch(10) == [b"a", b"b"]
        # A full queue: a non-blocking batch puts what fits.
        with pytest.raises(queue.Full) as ei:
            q.put_batch([b"f"] * 70, block=False)
        assert ei.value.done == 64
        with pytest.raises(queue.Full):
            q.put_batch([b"g"] * 3, timeout=0.05)
        assert len(q.get_batch(1000)) == 64
        s = q.stats()
        assert s["puts"] == s["gets"]
    finally:
        q.close()


def test_batch_consumer_takes_runs_while_producer_blocks():
    q = mk(capacity=16, max_message=8)
    try:
        out = []

        def consume():
            while True:
                try:
                    out.extend(q.get_batch(7, timeout=5))
                except EOFError:
                    return

        t = threading.Thread(target=consume)
        t.start()
        total = 0
        for r in range(200):
            k = 1 + r % 40
            assert q.put_batch([struct.pack("<I", total + j) for j in range(k)], timeout=5) == k
            total += k
        q.close_write()
        t.join(10)
        assert not t.is_alive()
        assert [struct.unpack("<I", m)[0] for m in out] == list(range(total))
    finally:
        q.close()


def test_zero_copy():
    q = mk(capacity=4, max_message=16)
    try:
        m = q.reserve(10)
        assert len(m) == 10 and not m.readonly
        m[:5] = b"hello"
        with pytest.raises(RuntimeError):
            q.put(b"x")
        with pytest.raises(RuntimeError):
            q.reserve(1)
        with pytest.raises(RuntimeError):
            q.put_batch([b"x"])
        with pytest.raises(ValueError):
            q.commit(11)
        q.commit(5)
        m.release()
        with pytest.raises(RuntimeError):
            q.commit(1)
        q.put(b"second")
        v = q.next()
        assert v.readonly and bytes(v) == b"hello"
        with pytest.raises(RuntimeError):
            q.next()
        with pytest.raises(RuntimeError):
            q.get()
        with pytest.raises(RuntimeError):
            q.get_batch(4)
        v.release()
        assert q.stats()["gets"] == 0
        assert q.release() == 1
        assert q.release() == 0
        assert q.stats()["gets"] == 1
        assert q.get() == b"second"
        with pytest.raises(queue.Empty):
            q.next(False)
        with pytest.raises(queue.Empty):
            q.next(timeout=0.02)
        # Reserve waits for room like put.
        for i in range(4):
            q.put(b"%d" % i)
        with pytest.raises(queue.Full):
            q.reserve(1, timeout=0.02)
    finally:
        q.close()


def test_close_write_and_eof():
    q = mk(capacity=8)
    try:
        q.put(b"a")
        q.put(b"b")
        assert not q.closed_for_write()
        q.close_write()
        assert q.closed_for_write()
        with pytest.raises(ClosedError):
            q.put(b"c")
        with pytest.raises(ClosedError):
            q.put_batch([b"c", b"d"])
        with pytest.raises(ClosedError):
            q.reserve(1)
        assert q.get() == b"a"
        assert q.get_batch(5) == [b"b"]
        for f in (q.get, q.next, lambda: q.get_batch(3), lambda: q.get(False)):
            with pytest.raises(EOFError):
                f()
        assert list(q) == []
    finally:
        q.close()


def test_close_write_wakes_blocked_put():
    q = mk(capacity=2)
    q2 = shmkit.Queue.open_fd(q.fileno())
    try:
        q2.put(b"1")
        q2.put(b"2")
        res = {}

        def putter(data):
            t0 = time.monotonic()
            try:
                q2.put(data, timeout=5)
                res[data] = "ok"
            except ClosedError:
                res[data] = time.monotonic() - t0

        t = threading.Thread(target=putter, args=(b"3",))
        t.start()
        time.sleep(0.05)
        assert q.get() == b"1"  # room: the blocked put goes through
        t.join(2)
        assert res[b"3"] == "ok"
        t = threading.Thread(target=putter, args=(b"4",))
        t.start()
        time.sleep(0.1)
        t1 = time.monotonic()
        q.close_write()
        t.join(2)
        assert isinstance(res[b"4"], float) and time.monotonic() - t1 < 0.5
        assert [q.get(), q.get()] == [b"2", b"3"]
        with pytest.raises(EOFError):
            q.get()
    finally:
        q2.close()
        q.close()


def test_eof_wakes_blocked_get_promptly():
    q = mk(capacity=4)
    try:
        res = {}

        def getter():
            t0 = time.monotonic()
            try:
                q.get(timeout=5)
            except EOFError:
                res["t"] = time.monotonic() - t0

        t = threading.Thread(target=getter)
        t.start()
        time.sleep(0.1)
        # The getter holds the get lock while it sleeps; a non-blocking
        # get from another thread does not wait for it.
        with pytest.raises(queue.Empty):
            q.get(False)
        t1 = time.monotonic()
        q.close_write()
        t.join(2)
        assert "t" in res and time.monotonic() - t1 < 0.5
        assert q.stats()["get_waits"] >= 1
    finally:
        q.close()


def test_timeouts():
    q = mk(capacity=2)
    try:
        for timeout in (0, 0.05, 0.12):
            t0 = time.monotonic()
            with pytest.raises(queue.Empty):
                q.get(timeout=timeout)
            dt = time.monotonic() - t0
            assert timeout <= dt < timeout + 0.3
        q.put(b"1")
        q.put(b"2")
        for timeout in (0, 0.05, 0.12):
            t0 = time.monotonic()
            with pytest.raises(queue.Full):
                q.put(b"3", timeout=timeout)
            dt = time.monotonic() - t0
            assert timeout <= dt < timeout + 0.3
        s = q.stats()
        assert s["get_waits"] >= 2 and s["put_waits"] >= 2
        assert q._mem.load32(q._base + 76) == 0 and q._mem.load32(q._base + 140) == 0  # no waiter left counted
    finally:
        q.close()


def test_handle_close_gives_back_entry():
    q = mk(capacity=8, participants=2)
    a = shmkit.Queue.open_fd(q.fileno())
    b = shmkit.Queue.open_fd(q.fileno())
    try:
        a.put(b"x")
        b.put(b"y")
        assert {a._mp.entry(), b._mp.entry()} == {0, 1}
        with pytest.raises(BusyError):
            q.put(b"z")
        # Close with a held message releases it (delivered); with a
        # reservation marks its slot skipped.
        assert bytes(a.next()) == b"x"
        m = b.reserve(4)
        m.release()
        ea = a._mp.entry()
        a.close()
        assert ld(q, ent_off(ea)) == 0
        b.close()
        q.put(b"after")
        assert q.get() == b"y"
        assert q.get() == b"after"
        s = q.stats()
        assert s["skipped"] == 1 and s["gets"] == 3 and s["puts"] == 3
        with pytest.raises(ClosedError):
            a.put(b"x")
        with pytest.raises(ClosedError):
            a.get()
    finally:
        q.close()


def test_threads_share_a_handle():
    q = mk(capacity=16, max_message=16)
    c = shmkit.Queue.open_fd(q.fileno())
    try:
        n, per = 4, 2000
        got = []

        def prod(p):
            for i in range(per):
                q.put(REC.pack(p, i), timeout=10)

        def cons():
            while True:
                try:
                    got.append(REC.unpack(c.get(timeout=10)))
                except EOFError:
                    return

        ts = [threading.Thread(target=prod, args=(p,)) for p in range(n)]
        cs = [threading.Thread(target=cons) for _ in range(2)]
        for t in ts + cs:
            t.start()
        for t in ts:
            t.join(20)
        q.close_write()
        for t in cs:
            t.join(20)
        assert sorted(got) == [(p, i) for p in range(n) for i in range(per)]
        assert q.stats()["puts"] == n * per == q.stats()["gets"]
    finally:
        c.close()
        q.close()


# ---------------------------------------------------------------- processes


def _consume_to_file(q, path, mode):
    out = []
    while True:
        try:
            if mode == "batch":
                out += q.get_batch(5, timeout=10)
            elif mode == "next":
                out.append(bytes(q.next(timeout=10)))
                q.release()
            else:
                out.append(q.get(timeout=10))
        except EOFError:
            break
    q.close()
    with open(path, "wb") as f:
        f.write(b"".join(m[:8] for m in out))


def _read_recs(path):
    b = open(path, "rb").read()
    return [REC.unpack_from(b, i) for i in range(0, len(b), 8)]


def _produce(q, p, n, batch):
    rng = random.Random(p)
    i = 0
    while i < n:
        if batch:
            k = min(n - i, rng.randrange(1, 12))
            assert q.put_batch([msg(p, i + j, rng.randrange(0, 24)) for j in range(k)], timeout=10) == k
            i += k
        else:
            q.put(msg(p, i, rng.randrange(0, 24)), timeout=10)
            i += 1
    q.close()


def test_many_producers_and_consumers(tmp_path):
    q = mk(capacity=16, max_message=32)
    try:
        n = 3000
        prods = [fork(_produce, q, p, n, p == 1) for p in range(3)]
        paths = [str(tmp_path / ("c%d" % c)) for c in range(3)]
        cons = [fork(_consume_to_file, q, paths[c], ("get", "batch", "next")[c]) for c in range(3)]
        for pid in prods:
            assert reap(pid) == 0
        q.close_write()
        for pid in cons:
            assert reap(pid) == 0
        seen = set()
        for path in paths:
            recs = _read_recs(path)
            last = {}
            for p, i in recs:
                assert (p, i) not in seen
                seen.add((p, i))
                assert i > last.get(p, -1)  # per-producer order
                last[p] = i
        assert seen == {(p, i) for p in range(3) for i in range(n)}
        s = q.stats()
        assert s["puts"] == s["gets"] == 3 * n and s["skipped"] == s["lost"] == 0
    finally:
        q.close()


def test_fork_child_claims_own_entry():
    q = mk(capacity=8)
    try:
        q.put(b"parent")
        r, w = os.pipe()

        def child():
            q.put(b"child")
            os.write(w, bytes([q._mp.entry()]))
            q.close()

        pid = fork(child)
        assert reap(pid) == 0
        assert os.read(r, 1) != bytes([q._mp.entry()])
        os.close(r)
        os.close(w)
        assert q.get() == b"parent" and q.get() == b"child"
        assert q._mp.entry() == 0
    finally:
        q.close()


def test_producer_killed_after_claiming():
    q = mk(capacity=8)
    try:
        r, w = os.pipe()
        q.put(b"before")

        def child():
            q.reserve(8)  # claims position 1, never publishes it
            os.write(w, b"x")
            time.sleep(60)

        pid = fork(child)
        assert os.read(r, 1) == b"x"
        q.put(b"after")
        kill(pid)
        assert q.get() == b"before"
        t0 = time.monotonic()
        assert q.get(timeout=5) == b"after"
        assert time.monotonic() - t0 < 1.0
        s = q.stats()
        assert s["skipped"] == 1 and s["lost"] == 0
        # A non-blocking consumer gets past a dead producer's slot too.
        pid = fork(child)
        assert os.read(r, 1) == b"x"
        kill(pid)
        q.put(b"later")
        t0 = time.monotonic()
        while True:
            try:
                assert q.get(False) == b"later"
                break
            except queue.Empty:
                assert time.monotonic() - t0 < 2
        assert q.stats()["skipped"] == 2
        os.close(r)
        os.close(w)
    finally:
        q.close()


def _spin_produce(q, p, batch):
    i = 0
    rng = random.Random(p)
    while True:
        if batch:
            k = rng.randrange(1, 8)
            q.put_batch([msg(p, i + j, 40) for j in range(k)], timeout=30)
            i += k
        else:
            q.put(msg(p, i, 40), timeout=30)
            i += 1


def test_producer_killed_mid_stream(tmp_path):
    for it in range(3):
        q = mk(capacity=8, max_message=64)
        try:
            paths = [str(tmp_path / ("k%d-%d" % (it, c))) for c in range(2)]
            cons = [fork(_consume_to_file, q, paths[c], ("get", "batch")[c]) for c in range(2)]
            good = fork(_produce, q, 0, 1500, False)
            victim = fork(_spin_produce, q, 1, it == 1)
            time.sleep(0.05 + 0.05 * it)
            kill(victim)
            assert reap(good) == 0
            q.close_write()
            for pid in cons:
                assert reap(pid) == 0
            seen = set()
            for path in paths:
                last = {}
                for p, i in _read_recs(path):
                    assert (p, i) not in seen
                    seen.add((p, i))
                    assert i > last.get(p, -1)
                    last[p] = i
            assert {i for p, i in seen if p == 0} == set(range(1500))
            v = sorted(i for p, i in seen if p == 1)
            assert v == list(range(len(v))) and v  # a prefix, nothing twice
            assert q.stats()["lost"] == 0
        finally:
            q.close()


def _hold(q, w):
    v = q.next()
    os.write(w, bytes(v))
    time.sleep(60)


def test_consumer_killed_holding_eof_recovery():
    q = mk(capacity=8)
    try:
        for i in range(5):
            q.put(b"%d" % i)
        r, w = os.pipe()
        pid = fork(_hold, q, w)
        assert os.read(r, 10) == b"0"
        start = _proc.start_time(pid)
        kill(pid)
        assert [q.get() for _ in range(4)] == [b"1", b"2", b"3", b"4"]
        with pytest.raises(queue.Empty):
            q.get(False)
        q.close_write()
        with pytest.raises(EOFError):
            q.get()
        s = q.stats()
        assert s["lost"] == 1 and s["skipped"] == 0
        assert ld(q, LOSTOWNER) >> 32 == pid
        assert ld(q, LOSTSTART) == start
        assert ld(q, LOSTPOS) == 0
        # Counted once: another consumer reaching EOF finds nothing more.
        q2 = shmkit.Queue.open_fd(q.fileno())
        with pytest.raises(EOFError):
            q2.get()
        q2.close()
        assert q.stats()["lost"] == 1
        os.close(r)
        os.close(w)
    finally:
        q.close()


def test_consumer_killed_holding_producer_recovers():
    q = mk(capacity=8)
    try:
        for i in range(8):
            q.put(b"%d" % i)
        r, w = os.pipe()
        pid = fork(_hold, q, w)
        assert os.read(r, 10) == b"0"
        kill(pid)
        assert [q.get() for _ in range(7)] == [b"%d" % i for i in range(1, 8)]
        t0 = time.monotonic()
        for i in range(8):
            q.put(b"n%d" % i, timeout=5)  # the first needs the dead consumer's slot
        assert time.monotonic() - t0 < 1.0
        assert q.stats()["lost"] == 1
        assert [q.get() for _ in range(8)] == [b"n%d" % i for i in range(8)]
        os.close(r)
        os.close(w)
    finally:
        q.close()


def _next_record(q, fd):
    while True:
        v = q.next(timeout=10)
        os.write(fd, bytes(v[:8]))
        v.release()
        q.release()


def test_consumer_killed_mid_stream(tmp_path):
    for it in range(3):
        q = mk(capacity=8, max_message=32)
        try:
            vpath = str(tmp_path / ("v%d" % it))
            fd = os.open(vpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            victim = fork(_next_record, q, fd)
            os.close(fd)
            path = str(tmp_path / ("s%d" % it))
            survivor = fork(_consume_to_file, q, path, "get")
            n = 2000
            for i in range(n):
                q.put(msg(0, i, 8), timeout=10)
                if i == 300 + 400 * it:
                    kill(victim)
            q.close_write()
            assert reap(survivor) == 0
            S = _read_recs(path)
            V = _read_recs(vpath)
            assert len(set(S)) == len(S) and len(set(V)) == len(V)
            assert not set(S) & set(V)
            missing = {(0, i) for i in range(n)} - set(S) - set(V)
            lost = q.stats()["lost"]
            # A message held when the victim died is counted lost, whether or
            # not the victim recorded it before it died.
            assert lost <= 1 and lost - len(missing) in (0, 1), (lost, missing)
        finally:
            q.close()


# ---------------------------------------------------------------- forged crashes


def test_dead_consumer_run_counted_lost():
    for how in ("eof", "producer"):
        q = mk(capacity=64)
        try:
            for i in range(64):
                q.put(b"%d" % i)
            got = q.get_batch(3)  # head 3
            owner, start = dead_owner()
            k = 16
            forge_entry(q, 5, owner, start, cint=3 + 1, ccnt=k)
            assert q._mem.cas64(q._base + HEAD, 3, 3 + k)
            seen = []
            handled = []
            q._mp.lost_handler = handled.append
            if how == "eof":
                q.close_write()
                seen = got + q.get_batch(100)
                with pytest.raises(EOFError):
                    q.get()
            else:
                seen = got + q.get_batch(100)
                t0 = time.monotonic()
                for i in range(20):
                    q.put(b"n%d" % i, timeout=5)  # 3 free, then the dead run
                assert time.monotonic() - t0 < 0.5  # one slow check, not sixteen
            assert seen == [b"%d" % i for i in range(64) if not 3 <= i < 3 + k]
            assert q.stats()["lost"] == k
            assert ld(q, LOSTOWNER) == owner and ld(q, LOSTSTART) == start and ld(q, LOSTPOS) in range(3, 3 + k)
            assert sorted(h["position"] for h in handled) == list(range(3, 3 + k))
            assert all(h["message"] == b"%d" % h["position"] for h in handled)
            assert all(h["producer_pid"] == os.getpid() for h in handled)
            # The dead entry is reusable now that nothing it names is held.
            assert q._mp._entry_stale(q._base + ent_off(5))
        finally:
            q.close()


def test_dead_producer_run_skipped():
    q = mk(capacity=64)
    try:
        q.put(b"first")
        owner, start = dead_owner()
        k = 16
        forge_entry(q, 7, owner, start, pint=1 + 1, pcnt=k)
        assert q._mem.cas64(q._base + TAIL, 1, 1 + k)
        # "Published" two of the run before dying: delivered.
        for p in (1, 2):
            so = q._base + slot_off(q, p)
            q._mem.store32(so + 8, 3)
            q._view[so + 16:so + 19] = b"r%d_" % p
            q._mem.store64(so, p + 1)
        q.put(b"last")
        assert q.get() == b"first"
        t0 = time.monotonic()
        assert q.get_batch(100, timeout=5) == [b"r1_", b"r2_"]
        assert q.get(timeout=5) == b"last"
        assert time.monotonic() - t0 < 0.5  # the whole run in one slow check
        s = q.stats()
        assert s["skipped"] == k - 2 and s["lost"] == 0
        # The dead entry's intent no longer names anything pending: reusable.
        assert q._mp._entry_stale(q._base + ent_off(7))
    finally:
        q.close()


def test_stale_intent_of_dead_entry_blocks_reuse_until_recovered():
    q = mk(capacity=8, participants=2)
    try:
        q.put(b"a")
        owner, start = dead_owner()
        forge_entry(q, 1, owner, start, cint=0 + 1, ccnt=1)
        assert q._mem.cas64(q._base + HEAD, 0, 1)  # the dead consumer holds "a"
        q2 = shmkit.Queue.open_fd(q.fileno())
        with pytest.raises(BusyError):
            q2.put(b"b")
        # EOF recovery frees the slot; then the entry can be taken over.
        q.close_write()
        with pytest.raises(EOFError):
            q.get()
        assert q.stats()["lost"] == 1
        assert ld(q, ent_off(1) + E_CINT) == 0  # a single-position intent is cleared
        with pytest.raises(EOFError):
            q2.get()
        assert q2._mp.entry() == 1
        assert ld(q, ent_off(1) + E_PUTS) == 0
        q2.close()
    finally:
        q.close()


def test_failed_intent_of_dead_process_does_not_hide_live_holder():
    # A dead entry whose intent names a position a live producer holds (it
    # died after storing its intent, before its CAS): the consumer waits.
    q = mk(capacity=8)
    try:
        owner, start = dead_owner()
        m = q.reserve(2)  # this handle (live) claims position 0
        forge_entry(q, 3, owner, start, pint=0 + 1, pcnt=1)
        c = shmkit.Queue.open_fd(q.fileno())
        with pytest.raises(queue.Empty):
            c.get(timeout=0.1)
        m[:2] = b"ok"
        m.release()
        q.commit(2)
        assert c.get() == b"ok"
        assert q.stats()["skipped"] == 0
        c.close()
    finally:
        q.close()


# ---------------------------------------------------------------- corruption


def test_corrupt_sequence_at_head():
    q = mk(capacity=8)
    try:
        q.put(b"a")
        st(q, slot_off(q, 0), 5)
        t0 = time.monotonic()
        with pytest.raises(CorruptError):
            q.get(timeout=5)
        with pytest.raises(CorruptError):
            q.get_batch(4, timeout=5)
        with pytest.raises(CorruptError):
            q.next(timeout=5)
        assert time.monotonic() - t0 < 1
    finally:
        q.close()


def test_corrupt_sequence_at_tail():
    q = mk(capacity=8)
    try:
        st(q, slot_off(q, 0), 12345)
        with pytest.raises(CorruptError):
            q.put(b"x", timeout=5)
        with pytest.raises(CorruptError):
            q.put_batch([b"x", b"y"], timeout=5)
    finally:
        q.close()


def test_corrupt_length():
    q = mk(capacity=8, max_message=16)
    try:
        q.put(b"a")
        q.put(b"b")
        q._mem.store32(q._base + slot_off(q, 0) + 8, 17)
        with pytest.raises(CorruptError):
            q.get()
        assert q.get() == b"b"  # the bad slot was given back
        q.put(b"c")
        q.put(b"d")
        q._mem.store32(q._base + slot_off(q, 3) + 8, 1 << 31)
        # A batch delivers what comes before the bad slot and reports it next.
        assert q.get_batch(10) == [b"c"]
        with pytest.raises(CorruptError):
            q.get_batch(10, block=False)
        with pytest.raises(queue.Empty):
            q.get(False)
    finally:
        q.close()


def test_corrupt_head_beyond_tail():
    q = mk(capacity=8)
    try:
        st(q, HEAD, 3)
        st(q, slot_off(q, 3), 3)
        with pytest.raises(CorruptError):
            q.get(timeout=5)
    finally:
        q.close()


def test_unexplained_claimed_slot_is_corrupt_not_a_hang():
    # The tail moved past a slot that nobody's intent names: after a few
    # slow checks the consumer reports corruption.
    q = mk(capacity=8)
    try:
        st(q, TAIL, 1)
        t0 = time.monotonic()
        with pytest.raises(CorruptError):
            q.get(timeout=5)
        assert time.monotonic() - t0 < 1.5
        # Non-blocking calls run the slow checks too, by the clock.
        t0 = time.monotonic()
        with pytest.raises(CorruptError):
            while time.monotonic() - t0 < 5:
                try:
                    q.get(False)
                except queue.Empty:
                    pass
        assert time.monotonic() - t0 < 1.5
    finally:
        q.close()


def test_unexplained_held_slot_is_corrupt_not_a_hang():
    # The head moved past a published slot that nobody's intent names, and
    # the ring is full: the producer reports corruption.
    q = mk(capacity=4)
    try:
        for i in range(4):
            q.put(b"%d" % i)
        st(q, HEAD, 1)
        for i in range(3):
            assert q.get() == b"%d" % (i + 1)
        t0 = time.monotonic()
        with pytest.raises(CorruptError):
            q.put(b"x", timeout=5)
        assert time.monotonic() - t0 < 1.5
    finally:
        q.close()


def test_hostile_intent_counts_and_positions():
    q = mk(capacity=8, participants=64)
    try:
        owner, start = dead_owner()
        for i in range(1, 64):
            forge_entry(q, i, owner, start, pint=(1 << 64) - 1, pcnt=(1 << 64) - 1,
                        cint=1 << 62, ccnt=1 << 40)
        q.put(b"a")
        assert q.get() == b"a"
        t0 = time.monotonic()
        st(q, TAIL, 2)  # claimed-unpublished position 1, "named" by nobody live
        with pytest.raises(CorruptError):
            q.get(timeout=5)
        assert time.monotonic() - t0 < 2
        n = q._mp._count(q._base + ent_off(1) + E_PCNT)
        assert n == 2  # min(capacity/4, 1024)
    finally:
        q.close()


# ---------------------------------------------------------------- crash points


def _die_at(point):
    def hook(p):
        if p == point:
            os.kill(os.getpid(), signal.SIGKILL)
    return hook


@pytest.mark.parametrize("point,batch,skipped,delivered", [
    ("put-intent", False, 0, 0),
    ("put-claimed", False, 1, 0),
    ("putrun-intent", True, 0, 0),
    ("putrun-claimed", True, 4, 0),
    ("putrun-partial", True, 3, 1),
])
def test_producer_killed_at(point, batch, skipped, delivered):
    q = mk(capacity=16)
    try:
        q.put(b"before")

        def child():
            _mpmc._hook = _die_at(point)
            if batch:
                q.put_batch([b"r%d" % i for i in range(4)])
            else:
                q.put(b"r0")
            os._exit(3)  # the hook did not fire

        assert reap(fork(child)) == -signal.SIGKILL
        q.put(b"after")
        q.close_write()
        t0 = time.monotonic()
        got = []
        with pytest.raises(EOFError):
            while True:
                got.append(q.get(timeout=5))
        assert time.monotonic() - t0 < 1
        assert got == [b"before"] + [b"r%d" % i for i in range(delivered)] + [b"after"]
        assert q.stats()["skipped"] == skipped and q.stats()["lost"] == 0
    finally:
        q.close()


@pytest.mark.parametrize("point,batch,lost,taken", [
    ("get-intent", False, 0, 0),
    ("get-claimed", False, 1, 0),
    ("getrun-intent", True, 0, 0),
    ("getrun-claimed", True, 4, 0),
    ("getrun-copied", True, 4, 0),
    ("getrun-releasing", True, 3, 1),  # the released one was copied out: delivered
])
def test_consumer_killed_at(point, batch, lost, taken):
    for how in ("eof", "producer"):
        q = mk(capacity=16)
        try:
            for i in range(16):
                q.put(b"%d" % i)

            def child():
                _mpmc._hook = _die_at(point)
                if batch:
                    q.get_batch(4)
                else:
                    q.get()
                os._exit(3)

            pid = fork(child)
            assert reap(pid) == -signal.SIGKILL
            got = q.get_batch(100)
            assert got == [b"%d" % i for i in range(lost + taken, 16)]
            if how == "eof":
                q.close_write()
                with pytest.raises(EOFError):
                    q.get()
            else:
                t0 = time.monotonic()
                q.put_batch([b"n"] * 16, timeout=5)  # needs the dead consumer's slots
                assert time.monotonic() - t0 < 0.5
            s = q.stats()
            assert s["lost"] == lost and s["skipped"] == 0
            if lost:
                assert ld(q, LOSTOWNER) >> 32 == pid and ld(q, LOSTPOS) in range(taken, taken + lost)
        finally:
            q.close()


# ---------------------------------------------------------------- async exceptions


def _raise_at(point, times=1):
    left = [times]

    def hook(p):
        if p == point and left[0]:
            left[0] -= 1
            raise KeyboardInterrupt
    return hook


@pytest.fixture
def hook():
    def set_(h):
        _mpmc._hook = h
    yield set_
    _mpmc._hook = None


def test_interrupted_put_abandons_its_claim(hook):
    q = mk(capacity=8)
    try:
        hook(_raise_at("put-claimed"))
        with pytest.raises(KeyboardInterrupt):
            q.put(b"interrupted")
        hook(_raise_at("putrun-partial"))
        with pytest.raises(KeyboardInterrupt):
            q.put_batch([b"p0", b"p1", b"p2"])
        hook(_raise_at("put-claimed"))
        with pytest.raises(KeyboardInterrupt):
            q.reserve(4)
        hook(None)
        with pytest.raises(RuntimeError):
            q.commit(1)  # the interrupted reservation is gone
        q.put(b"next")
        t0 = time.monotonic()
        assert q.get(timeout=5) == b"p0"  # published before the interrupt
        assert q.get(timeout=5) == b"next"
        assert time.monotonic() - t0 < 0.2  # no recovery wait: the slots were skipped at once
        assert q.stats()["skipped"] == 1 + 1 + 1
    finally:
        q.close()


@pytest.mark.parametrize("point", ["get-claimed", "getrun-claimed", "getrun-copied", "getrun-releasing"])
def test_interrupted_get_keeps_its_messages(hook, point):
    q = mk(capacity=8)
    try:
        for i in range(8):
            q.put(b"%d" % i)
        got = []
        if point == "get-claimed":
            got.append(q.get())
            hook(_raise_at(point))
            with pytest.raises(KeyboardInterrupt):
                q.get()
        else:
            got += q.get_batch(1)
            hook(_raise_at(point))
            with pytest.raises(KeyboardInterrupt):
                q.get_batch(8)
        hook(None)
        # The ring was given back at once: producers are not blocked...
        for i in range(8, 8 + len(got) + (1 if point == "get-claimed" else 2)):
            q.put(b"%d" % i, timeout=0.5)
        # ...and nothing is lost or delivered twice.
        while True:
            try:
                got += q.get_batch(3, block=False)
            except queue.Empty:
                break
        assert got == [b"%d" % i for i in range(len(got))]
        assert q.stats()["lost"] == 0 and q.stats()["puts"] == q.stats()["gets"] == len(got)
    finally:
        q.close()


def test_interrupted_next_keeps_its_message(hook):
    q = mk(capacity=4)
    try:
        q.put(b"a")
        q.put(b"b")
        hook(_raise_at("get-claimed"))
        with pytest.raises(KeyboardInterrupt):
            q.next()
        hook(None)
        v = q.next()
        assert bytes(v) == b"a"
        with pytest.raises(RuntimeError):
            q.get()
        assert q.release() == 1
        assert q.get() == b"b"
        for i in range(4):
            q.put(b"%d" % i, timeout=0.5)
    finally:
        q.close()
