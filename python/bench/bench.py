"""Python peer benchmark: shmkit queues and pipes from Python, beside
multiprocessing.Queue and multiprocessing.Pipe, in one run.

    python3 python/bench/bench.py [--rounds 5] [--quick] [--go PYPEER]

Rows (messages per second, the consumer checks every message's sequence
number and size):
  mp.Queue, mp.Pipe          Python -> Python, one message per call
  shmkit put/get             Python -> Python, one message per call (SPSC Queue)
  shmkit batch               Python -> Python, put_batch/get_batch of 64 KiB
  shmkit zero-copy           Python -> Python, reserve/commit and next/release
  shmkit py->go              Python -> Go (internal/pypeer sink), one put per message
and round trips (ping-pong of 64 B): mp.Pipe, shmkit Pipe Python<->Python,
shmkit Pipe Python<->Go. Rounds are interleaved (each round runs every row
once, in a rotated order); the table shows medians and the spread, and the
ratio of each shmkit row to mp.Queue at the same size.
"""
import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time

import shmkit

SIZES = (64, 4096, 65536)
_seqno = struct.Struct("<Q")


def count_for(size, quick):
    base = {64: 200000, 4096: 100000, 65536: 20000}[size]
    return base // 10 if quick else base


# ---- multiprocessing rows


def _mpq_producer(q, n, size):
    payload = bytearray(size)
    for i in range(n):
        _seqno.pack_into(payload, 0, i)
        q.put(bytes(payload))
    q.put(None)


def run_mpq(size, n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_mpq_producer, args=(q, n, size))
    t = time.perf_counter()
    p.start()
    i = 0
    while True:
        m = q.get()
        if m is None:
            break
        assert len(m) == size and _seqno.unpack_from(m)[0] == i
        i += 1
    dt = time.perf_counter() - t
    p.join()
    assert i == n
    return n / dt


def _mpp_producer(c, n, size):
    payload = bytearray(size)
    for i in range(n):
        _seqno.pack_into(payload, 0, i)
        c.send_bytes(payload)
    c.send_bytes(b"")
    c.close()


def run_mpp(size, n):
    ctx = mp.get_context("fork")
    r, w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_mpp_producer, args=(w, n, size))
    t = time.perf_counter()
    p.start()
    w.close()
    i = 0
    while True:
        m = r.recv_bytes()
        if not m:
            break
        assert len(m) == size and _seqno.unpack_from(m)[0] == i
        i += 1
    dt = time.perf_counter() - t
    p.join()
    assert i == n
    return n / dt


# ---- shmkit rows


def _name(tag):
    return "bench-py-%d-%s" % (os.getpid(), tag)


def _sk_queue(size, tag):
    return shmkit.Queue.create(_name(tag), "spsc", capacity=max(16, (1 << 20) // size), max_message=size)


def _sk_producer(name, n, size, how):
    q = shmkit.Queue.open(name)
    payload = bytearray(size)
    if how == "single":
        put = q.put
        for i in range(n):
            _seqno.pack_into(payload, 0, i)
            put(payload)
    elif how == "batch":
        k = max(1, min(64, 65536 // size))
        bufs = [bytearray(size) for _ in range(k)]
        i = 0
        while i < n:
            m = min(k, n - i)
            for j in range(m):
                _seqno.pack_into(bufs[j], 0, i + j)
            q.put_batch(bufs[:m])
            i += m
    else:  # zero-copy: fill the message in the ring
        reserve, commit = q.reserve, q.commit
        for i in range(n):
            v = reserve(size)
            v[:] = payload
            _seqno.pack_into(v, 0, i)
            v.release()
            commit(size)
    q.close_write()
    q.close()


def run_sk(size, n, how):
    q = _sk_queue(size, how)
    name = _name(how)
    try:
        ctx = mp.get_context("fork")
        p = ctx.Process(target=_sk_producer, args=(name, n, size, how))
        t = time.perf_counter()
        p.start()
        i = 0
        unpack = _seqno.unpack_from
        try:
            if how == "single":
                get = q.get
                while True:
                    m = get()
                    assert len(m) == size and unpack(m)[0] == i
                    i += 1
            elif how == "batch":
                k = max(1, min(64, 65536 // size))
                while True:
                    for m in q.get_batch(k):
                        assert len(m) == size and unpack(m)[0] == i
                        i += 1
            else:
                nxt, rel = q.next, q.release
                while True:
                    v = nxt()
                    assert len(v) == size and unpack(v)[0] == i
                    v.release()
                    rel()
                    i += 1
        except EOFError:
            pass
        dt = time.perf_counter() - t
        p.join()
        assert i == n, (i, n)
        return n / dt
    finally:
        q.close()
        shmkit.unlink(name)


def run_sk_go(size, n, pypeer):
    """Python producer (this process), Go consumer (pypeer sink)."""
    name = _name("go")
    q = _sk_queue(size, "go")
    try:
        g = subprocess.Popen([pypeer, "sink", name], stdout=subprocess.PIPE, text=True)
        payload = bytearray(size)
        put = q.put
        t = time.perf_counter()
        for i in range(n):
            _seqno.pack_into(payload, 0, i)
            put(payload)
        q.close_write()
        out, _ = g.communicate(timeout=120)
        dt = time.perf_counter() - t
        word, count, nbytes, _ = out.split()
        assert word == "sank" and int(count) == n and int(nbytes) == n * size, out
        return n / dt
    finally:
        q.close()
        shmkit.unlink(name)


# ---- round trips


def _mp_echo(c, n):
    for _ in range(n):
        c.send_bytes(c.recv_bytes())


def rtt_mp(n):
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=_mp_echo, args=(b, n))
    p.start()
    m = b"x" * 64
    a.send_bytes(m)
    a.recv_bytes()
    t = time.perf_counter()
    for _ in range(n - 1):
        a.send_bytes(m)
        a.recv_bytes()
    dt = time.perf_counter() - t
    p.join()
    return dt / (n - 1) * 1e6


def _sk_echo(name, n):
    p = shmkit.Pipe.open(name)
    for _ in range(n):
        p.send(p.recv())
    p.close()


def rtt_sk(n, pypeer=None):
    name = _name("rtt")
    a = shmkit.Pipe.create(name, capacity=16, max_message=64)
    try:
        if pypeer:
            g = subprocess.Popen([pypeer, "echo", name], stdout=subprocess.PIPE, text=True)
        else:
            ctx = mp.get_context("fork")
            g = ctx.Process(target=_sk_echo, args=(name, n))
            g.start()
        m = b"x" * 64
        a.send(m)
        a.recv()
        t = time.perf_counter()
        for _ in range(n - 1):
            a.send(m)
            a.recv()
        dt = time.perf_counter() - t
        if pypeer:
            a.close()
            g.communicate(timeout=60)
        else:
            g.join()
            a.close()
        return dt / (n - 1) * 1e6
    finally:
        a.close()
        shmkit.unlink(name)


def build_pypeer():
    go = shutil.which("go") or "/usr/local/go/bin/go"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join("/tmp", "pypeer-bench-%d" % os.getpid())
    try:
        subprocess.run([go, "build", "-o", out, "./internal/pypeer"], cwd=repo, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print("skipped the Go rows: cannot build internal/pypeer (%s)" % e)
        return None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a tenth of the messages, 3 rounds")
    ap.add_argument("--go", help="path of a built internal/pypeer (default: go build it)")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    pypeer = args.go or build_pypeer()
    rows = []
    for size in SIZES:
        n = count_for(size, args.quick)
        rows += [("mp.Queue", size, lambda s=size, n=n: run_mpq(s, n)),
                 ("mp.Pipe", size, lambda s=size, n=n: run_mpp(s, n)),
                 ("shmkit put/get", size, lambda s=size, n=n: run_sk(s, n, "single")),
                 ("shmkit batch", size, lambda s=size, n=n: run_sk(s, n, "batch")),
                 ("shmkit zero-copy", size, lambda s=size, n=n: run_sk(s, n, "zero"))]
        if pypeer:
            rows.append(("shmkit py->go", size, lambda s=size, n=n: run_sk_go(s, n, pypeer)))
    nrt = 20000 if args.quick else 100000
    rtts = [("mp.Pipe", lambda: rtt_mp(nrt)), ("shmkit Pipe py<->py", lambda: rtt_sk(nrt))]
    if pypeer:
        rtts.append(("shmkit Pipe py<->go", lambda: rtt_sk(nrt, pypeer)))
    res = {(r[0], r[1]): [] for r in rows}
    rres = {r[0]: [] for r in rtts}
    for k in range(rounds):
        order = rows[k % len(rows):] + rows[:k % len(rows)]
        for label, size, fn in order:
            res[(label, size)].append(fn())
        for label, fn in rtts[k % len(rtts):] + rtts[:k % len(rtts)]:
            rres[label].append(fn())
        print("round %d/%d done" % (k + 1, rounds), file=sys.stderr)
    print("Python peer benchmark: %d interleaved rounds, medians (min..max); %s, %d CPUs" % (
        rounds, sys.version.split()[0], os.cpu_count()))
    print()
    print("%-18s %7s %14s %24s %9s" % ("transport", "size", "msg/s", "spread", "vs mp.Queue"))
    for label, size, _ in rows:
        v = res[(label, size)]
        base = statistics.median(res[("mp.Queue", size)])
        med = statistics.median(v)
        print("%-18s %7d %14s %24s %8.1fx" % (label, size, "{:,.0f}".format(med),
                                             "{:,.0f}..{:,.0f}".format(min(v), max(v)), med / base))
    print()
    print("%-22s %12s %20s" % ("round trip, 64 B", "median µs", "spread"))
    for label, _ in rtts:
        v = rres[label]
        print("%-22s %12.2f %20s" % (label, statistics.median(v), "%.2f..%.2f" % (min(v), max(v))))
    print()
    q64 = statistics.median(res[("shmkit put/get", 64)]) / statistics.median(res[("mp.Queue", 64)])
    z64k = statistics.median(res[("shmkit zero-copy", 65536)]) / statistics.median(res[("mp.Queue", 65536)])
    print("summary: at 64 B shmkit put/get moves %.1fx the messages of multiprocessing.Queue (target 5x);" % q64)
    print("         at 64 KiB zero-copy moves %.1fx (target 20x)." % z64k)
    if pypeer and not args.go:
        os.unlink(pypeer)


if __name__ == "__main__":
    main()
