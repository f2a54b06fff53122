"""Bad input gets the exception with the Go sentinel's meaning."""
import os
import socket
import struct

import pytest

import shmkit
from shmkit import ring as _ring
from shmkit.segment import fnv1a64, path


def rewrite(name, off, data, fix_checksum=True):
    """Overwrite header bytes of segment name, recomputing the checksum."""
    with open(path(name), "r+b") as f:
        f.seek(off)
        f.write(data)
        if fix_checksum:
            f.seek(0)
            h = f.read(112)
            f.seek(112)
            f.write(struct.pack("<Q", fnv1a64(h)))


def test_not_found_exists_name(name):
    with pytest.raises(shmkit.NotFoundError):
        shmkit.open(name)
    with pytest.raises(FileNotFoundError):
        shmkit.Queue.open(name)
    shmkit.create(name, 64).close()
    with pytest.raises(shmkit.ExistsError):
        shmkit.create(name, 64)
    with pytest.raises(FileExistsError):
        shmkit.Value.create(name, "i")
    for bad in ("", ".x", "a..b", "a/b", "x" * 300, "é"):
        with pytest.raises(shmkit.InvalidNameError):
            shmkit.open(bad)
    with pytest.raises(shmkit.InvalidSizeError):
        shmkit.create(name + "-z", 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_permission(name):
    shmkit.create(name, 64, mode=0o600).close()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            shmkit.open(name)
        except shmkit.PermissionDenied:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0


@pytest.mark.parametrize("off,data,fix,exc", [
    (0, b"shmkitXX", True, shmkit.CorruptError),      # magic
    (8, struct.pack("<I", 1), True, shmkit.VersionError),   # version 1
    (8, struct.pack("<I", 3), True, shmkit.VersionError),   # version 3
    (20, b"\x01", False, shmkit.CorruptError),        # checksum
    (28, struct.pack("<I", 2), True, shmkit.VersionError),  # unknown flag
    (52, b"\x01", True, shmkit.CorruptError),         # reserved
    (12, struct.pack("<I", 0), True, shmkit.CorruptError),  # kind 0
    (16, struct.pack("<Q", 1 << 20), True, shmkit.CorruptError),  # size past the file
    (24, struct.pack("<I", 64), True, shmkit.CorruptError),  # payload offset
    (36, struct.pack("<I", 3), True, shmkit.CorruptError),  # alignment
    (48, struct.pack("<I", 0), True, shmkit.CorruptError),  # creator pid
    (80, b"\x01", True, shmkit.CorruptError),         # type name not printable
    (120, struct.pack("<I", 7), False, shmkit.CorruptError),  # state
])
def test_corrupt_headers(name, off, data, fix, exc):
    shmkit.create(name, 256).close()
    rewrite(name, off, data, fix)
    with pytest.raises(exc):
        shmkit.open(name)


def test_truncated_and_creator_died(name):
    shmkit.create(name, 256).close()
    os.truncate(path(name), 100)
    with pytest.raises(shmkit.CorruptError):
        shmkit.open(name)
    os.unlink(path(name))
    shmkit.create(name, 256).close()
    # A segment left initialising by a creator that has died.
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    rewrite(name, 48, struct.pack("<IIQ", pid, 0, 0))
    rewrite(name, 120, struct.pack("<I", 1), False)
    with pytest.raises(shmkit.CreatorDiedError):
        shmkit.open(name)


def test_kind_and_type(name):
    v = shmkit.Value.create(name, "d", 1.5)
    with pytest.raises(shmkit.TypeMismatchError):
        shmkit.Value.open(name, "q")
    with pytest.raises(TypeError):
        shmkit.Value.open(name, "f")
    with pytest.raises(shmkit.KindError):
        shmkit.Array.open(name, "d")
    with pytest.raises(shmkit.KindError):
        shmkit.Queue.open(name)
    with pytest.raises(shmkit.KindError):
        shmkit.Mutex.open(name)
    with pytest.raises(TypeError):
        shmkit.Value.open(name, "x")
    assert shmkit.Value.open(name, "d").value == 1.5
    v.close()


def test_not_a_segment():
    r, w = os.pipe()
    try:
        with pytest.raises(shmkit.NotSegmentError):
            shmkit.open_fd(r)
    finally:
        os.close(r)
        os.close(w)
    fd = os.memfd_create("x")
    os.write(fd, b"hello world" * 20)
    try:
        with pytest.raises(shmkit.NotSegmentError):
            shmkit.Queue.open_fd(fd)
    finally:
        os.close(fd)


def test_ring_header_corrupt(name):
    shmkit.Queue.create(name, "spsc", capacity=8, max_message=64).close()
    with open(path(name), "r+b") as f:
        f.seek(128 + 8)
        f.write(struct.pack("<I", 1))
    with pytest.raises(shmkit.VersionError):
        shmkit.Queue.open(name)
    with open(path(name), "r+b") as f:
        f.seek(128 + 8)
        f.write(struct.pack("<I", 2))  # version 2: sleeper words on the tail and head lines
    with pytest.raises(shmkit.VersionError):
        shmkit.Queue.open(name)
    with open(path(name), "r+b") as f:
        f.seek(128 + 8)
        f.write(struct.pack("<I", _ring._VERSION))
        f.seek(128 + 24)
        f.write(struct.pack("<Q", 1 << 30))
    with pytest.raises(shmkit.CorruptError):
        shmkit.Queue.open(name)


def test_corrupt_ring_record(name):
    q = shmkit.Queue.create(name, "spsc", capacity=8, max_message=64)
    q.put(b"hello")
    q._mem.store64(128 + _ring.HEADER, 1000 | (2000 << 32))  # length past max_message
    with pytest.raises(shmkit.CorruptError):
        q.get(block=False)
    q.close()


def test_corrupt_mutex_word(name):
    m = shmkit.Mutex.create(name)
    m._mem.store64(128, 1 << 25)  # reserved state bits
    with pytest.raises(shmkit.CorruptError):
        m.acquire(timeout=1)
    with pytest.raises(shmkit.CorruptError):
        shmkit.Mutex.open(name)
    m.close()


def test_sizes_and_closed(name):
    q = shmkit.Queue.create(name, "spsc", capacity=4, max_message=16)
    with pytest.raises(shmkit.TooLargeError):
        q.put(b"x" * 17)
    n = 0
    while n < 100:
        try:
            q.put(b"m" * 16, timeout=0.01)
        except __import__("queue").Full:
            break
        n += 1
    assert 4 <= n < 100  # capacity 4 guaranteed, more fit when the ring is not wrapped
    q.close_write()
    with pytest.raises(shmkit.ClosedError):
        q.put(b"m" * 16)
    for i in range(n):
        assert q.get() == b"m" * 16
    with pytest.raises(EOFError):
        q.get()
    q.close()
    with pytest.raises(shmkit.ClosedError):
        q.get()


def test_send_receive_over_socket():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    q = shmkit.Queue.create_anonymous("spsc", capacity=4, max_message=16)
    q.put(b"over the socket")
    shmkit.send(a, q)
    seg = shmkit.receive(b, kind=7)
    q2 = shmkit.Queue(seg)
    q.close()
    assert q2.get() == b"over the socket"
    q2.close()
    a.close()
    b.close()


def test_semaphore_event(name):
    s = shmkit.Semaphore.create(name, 2, 2)
    assert s.acquire() and s.acquire()
    assert not s.acquire(timeout=0.01)
    s.release(2)
    with pytest.raises(shmkit.OverReleaseError):
        s.release()
    s.close()
    e = shmkit.Event.create(name + "-e")
    assert not e.wait(0.01)
    e.set()
    assert e.wait(0) and e.is_set()
    e.clear()
    assert not e.is_set()
    e.close()
    shmkit.unlink(name + "-e")


def test_numpy_view(name):
    np = pytest.importorskip("numpy")
    a = shmkit.Array.create(name, "d", [1.0, 2.0, 3.0])
    x = a.numpy()
    x += 1.0                      # no copy: the shared elements change
    assert a[:] == [2.0, 3.0, 4.0]
    assert x.dtype == np.float64 and x.shape == (3,)
    b = shmkit.Array.open(name, "d")
    b[0] = 9.5
    assert x[0] == 9.5
    del x
    b.close()
    a.close()
