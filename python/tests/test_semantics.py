"""Python-side semantics found in review: owner death on Value/Array
operations, fork, closing with held messages, partial batches, poll."""
import os
import queue
import time

import pytest

import shmkit


def _die_holding(lock):
    pid = os.fork()
    if pid == 0:
        lock.acquire()
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_value_update_after_owner_death_is_applied():
    v = shmkit.Value.create_anonymous("d", 1.0)
    pid = _die_holding(v.get_lock())  # the child's own identity, after fork
    with pytest.raises(shmkit.OwnerDeadError) as e:
        v.update(lambda x: x + 1)
    assert e.value.applied and e.value.result == 2.0 and e.value.pid == pid
    assert v.value == 2.0          # applied, and the mutex was repaired:
    assert v.update(lambda x: x * 2) == 4.0
    v.close()


def test_float_value_under_its_own_lock():
    v = shmkit.Value.create_anonymous("d", 0.0)
    with v.get_lock():
        v.value = 1.5              # no self-deadlock: the holder reads plainly
        assert v.value == 1.5
    v.close()


def test_forked_child_uses_its_own_roles():
    q = shmkit.Queue.create_anonymous("spsc", capacity=16, max_message=64)
    q.put(b"parent-1")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            q.put(b"child", block=False)  # the parent is alive and holds the role
            code = 1
        except shmkit.BusyError:
            pass
        except BaseException:
            code = 2
        os._exit(code)
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 0
    q.put(b"parent-2")
    assert q.get() == b"parent-1" and q.get() == b"parent-2"
    q.close()


def test_close_with_held_messages_refused():
    q = shmkit.Queue.create_anonymous("spsc", capacity=16, max_message=64)
    q.put(b"a")
    v = q.next()
    with pytest.raises(RuntimeError):
        q.close()
    with pytest.raises(BufferError):  # the view into the ring is alive
        q.release()
        q.close()
    v.release()
    q.close()


def test_put_batch_partial_progress_and_deadline():
    q = shmkit.Queue.create_anonymous("spsc", capacity=4, max_message=64)
    msgs = [b"x" * 64] * 12
    t = time.monotonic()
    with pytest.raises(queue.Full) as e:
        q.put_batch(msgs, timeout=0.2)
    assert time.monotonic() - t < 1.0
    assert 4 <= e.value.done < 12
    assert len(q.get_batch(100)) == e.value.done
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    assert q.get_batch(0, block=False) == []
    q.close()


def test_pipe_poll():
    a = shmkit.Pipe.create_anonymous(capacity=4, max_message=64)
    b = shmkit.Pipe.open_fd(a.fileno())
    assert not b.poll()
    assert not b.poll(0.01)
    a.send(b"x")
    assert b.poll(None)
    assert b.recv() == b"x"
    a.close()
    assert b.poll()                # EOF: poll is true, recv raises
    with pytest.raises(EOFError):
        b.recv()
    b.close()


def test_native_misuse_is_refused():
    q = shmkit.Queue.create_anonymous("spsc", capacity=4, max_message=64)
    with pytest.raises(RuntimeError):
        q._mem.__init__(bytearray(64))
    with pytest.raises(IndexError):
        q._sp.put_batch([b"a"], -100000)
    with pytest.raises(ValueError):
        shmkit._native.Spsc(q._mem, (1 << 63) - 64, 4096, 64, 64, 0, shmkit.CorruptError)
    assert q._mem.futex_wait(q._base + 72, 12345, float("nan")) in (1, 2)
    q.close()
