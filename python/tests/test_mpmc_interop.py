"""An MPMC queue shared by Go and Python producers and consumers."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import shmkit

N = int(os.environ.get("SHMKIT_PY_MPMC_MESSAGES", "50000"))

PRODUCER = """
import struct, sys, shmkit
q = shmkit.Queue.open(sys.argv[1])
pid, n = int(sys.argv[2]), int(sys.argv[3])
pack = struct.Struct("<QQ").pack
for i in range(n):
    q.put(pack(pid, i))
print("sent", n, flush=True)
"""

CONSUMER = """
import struct, sys, shmkit
q = shmkit.Queue.open(sys.argv[1])
unpack = struct.Struct("<QQ").unpack
last, count, total = {}, {}, 0
batch = len(sys.argv) > 2
while True:
    try:
        msgs = q.get_batch(16) if batch else [q.get()]
    except EOFError:
        break
    for m in msgs:
        assert len(m) == 16, len(m)
        pid, seq = unpack(m)
        assert seq > last.get(pid, -1), (pid, seq, last.get(pid))
        last[pid] = seq
        count[pid] = count.get(pid, 0) + 1
        total += (pid << 32) ^ seq
print("got" + "".join(" %d:%d" % kv for kv in count.items()) + " sum:%d" % total, flush=True)
"""


def py(code, *args):
    return subprocess.Popen([sys.executable, "-u", "-c", textwrap.dedent(code)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, text=True)


def parse(line):
    assert line.startswith("got"), line
    counts, total = {}, 0
    for f in line.split()[1:]:
        k, v = f.split(":")
        if k == "sum":
            total = int(v)
        else:
            counts[int(k)] = int(v)
    return counts, total


def test_mpmc_two_go_two_python(name, peer):
    q = shmkit.Queue.create(name, "mpmc", capacity=64, max_message=64)
    consumers = [py(CONSUMER, name), py(CONSUMER, name, "batch")]
    goc = [peer("mpmc-consume", name), peer("mpmc-consume", name)]
    producers = [py(PRODUCER, name, 1, N), py(PRODUCER, name, 2, N)]
    gop = [peer("mpmc-produce", name, 3, N), peer("mpmc-produce", name, 4, N)]
    for p in producers:
        assert p.stdout.readline().strip() == "sent %d" % N
        assert p.wait(60) == 0
    for g in gop:
        assert g.wait() == "sent %d" % N
    q.close_write()
    counts, total = {}, 0
    lines = [c.stdout.readline().strip() for c in consumers] + [g.wait() for g in goc]
    for c in consumers:
        assert c.wait(60) == 0
    for line in lines:
        c, t = parse(line)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        total += t
    # Every message exactly once: counts and the checksum of (id, seq).
    assert counts == {1: N, 2: N, 3: N, 4: N}, lines
    want = sum((pid << 32) ^ i for pid in (1, 2, 3, 4) for i in range(N))
    assert total == want
    # Every consumer got a share (the queue is really shared).
    assert all(sum(parse(line)[0].values()) > 0 for line in lines), lines
    st = q.stats()
    assert st["lost"] == 0 and st["skipped"] == 0
    q.close()


HOLD = """
import sys, shmkit, time
q = shmkit.Queue.open(sys.argv[1])
view = q.next()  # an MPMC handle holds one message at a time
print("held", flush=True)
time.sleep(3600)
"""


def test_python_consumer_killed_holding_go_recovers(name, peer):
    """A Python consumer SIGKILLed holding MPMC messages (next without
    release): a Go consumer reaching EOF recovers them and counts them lost,
    exactly; the others are delivered once."""
    q = shmkit.Queue.create(name, "mpmc", capacity=16, max_message=64)
    for i in range(10):
        q.put(b"m%d" % i)
    holders = [py(HOLD, name) for _ in range(3)]
    for c in holders:
        assert c.stdout.readline().strip() == "held"
    for c in holders:
        c.kill()
        c.wait()
    q.close_write()
    line = peer("mpmc-consume-raw", name).wait()
    assert line == "got 7 lost 3", line
    q.close()


def test_go_consumer_killed_holding_python_recovers(name, peer):
    q = shmkit.Queue.create(name, "mpmc", capacity=16, max_message=64)
    for i in range(10):
        q.put(b"m%d" % i)
    holders = []
    for _ in range(4):  # one held message per handle, in MPMC mode
        g = peer("mpmc-hold", name, 1)
        assert g.line() == "held"
        holders.append(g)
    for g in holders:
        g.kill()
    q.close_write()
    got = []
    while True:
        try:
            got.append(q.get(timeout=10))
        except EOFError:
            break
    assert sorted(got) == sorted(b"m%d" % i for i in range(4, 10))
    assert q.stats()["lost"] == 4
    q.close()


def test_python_producer_killed_go_skips(name, peer):
    """A Python producer killed between claiming a slot and publishing it:
    Go consumers skip the slot (counted in skipped) and lose nothing else."""
    q = shmkit.Queue.create(name, "mpmc", capacity=16, max_message=64)
    code = """
import sys, shmkit, time
q = shmkit.Queue.open(sys.argv[1])
q.put(b"first")
v = q.reserve(8)          # claims a position, never committed
print("claimed", flush=True)
time.sleep(3600)
"""
    c = py(code, name)
    assert c.stdout.readline().strip() == "claimed"
    q.put(b"after")
    c.kill()
    c.wait()
    q.close_write()
    line = peer("mpmc-consume-raw", name).wait()
    assert line == "got 2 lost 0 skipped 1", line
    q.close()
