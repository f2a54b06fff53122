# shmbench's Python side: measures multiprocessing.Queue, multiprocessing.Pipe,
# multiprocessing.Value(lock=True) and the pools (Pool.map, Pool.starmap,
# ProcessPoolExecutor.map, the start of a fork Pool) the way shmbench
# measures its own transports, and speaks the same line protocol on
# stdout/stdin:
#   {"ready": true}            once everything is set up
#   (waits for "go" on stdin)
#   {"rep": k, "msgs": n, "ns": t, ...}   one per measured repetition (a
#   pinger's last one adds the percentiles of all measured round trips)
# argv[1] is a JSON object: transport, pattern, size, producers, consumers,
# duration (ns), reps, warmup, cpus, capacity (the Queue's maxsize); for the
# pool pattern also tasks (inputs per map call) and chunksize (0: the default).
import concurrent.futures
import json
import multiprocessing as mp
import os
import sys
import time

now = time.perf_counter_ns


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pin(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def producer(kind, end, size, start, stop, cpu):
    pin(cpu)
    msg = bytes(size)
    start.wait()
    if kind == "queue":
        put = end.put
    else:
        put = end.send_bytes
    while not stop.value:
        for _ in range(64):
            put(msg)


def consumer(kind, end, idx, windows, dur, start, results, cpu):
    pin(cpu)
    get = end.get if kind == "queue" else end.recv_bytes
    start.wait()
    for w in range(windows):
        n = 0
        t0 = now()
        deadline = t0 + dur
        t = t0
        while t < deadline:
            get()
            n += 1
            t = now()
        results.put((w, idx, n, t - t0))
    while True:  # keep draining so the producers never block
        get()


def contender(v, idx, windows, dur, start, results, cpu):
    pin(cpu)
    lock = v.get_lock()
    is_array = not hasattr(v, "value")
    i = idx % 16
    start.wait()
    for w in range(windows):
        n = 0
        t0 = now()
        deadline = t0 + dur
        t = t0
        while t < deadline:
            if is_array:
                with lock:
                    v[i] += 1
            else:
                with lock:
                    v.value += 1
            n += 1
            t = now()
        results.put((w, idx, n, t - t0))


def dict_key(size, i):
    # shmbench's dictKey: 8 bytes little-endian, or "key-" and 28 digits.
    if size <= 64:
        return i.to_bytes(8, "little")
    return ("key-%028d" % i).encode()


def dict_value(size, i, ver):
    return i.to_bytes(8, "little") + ver.to_bytes(8, "little") + bytes(size - 16)


def dict_worker(d, op, size, keys, idx, procs, windows, dur, start, results, cpu):
    pin(cpu)
    if op == "set":
        mine = list(range(idx, keys, procs))
    else:
        mine = [(idx * 977 + j) % keys for j in range(keys)]
    names = [dict_key(size, i) for i in range(keys)]
    start.wait()
    ver = 0
    j = 0
    for w in range(windows):
        n = 0
        t0 = now()
        deadline = t0 + dur
        t = t0
        while t < deadline:
            i = mine[j]
            j = j + 1 if j + 1 < len(mine) else 0
            if op == "set":
                ver += 1
                d[names[i]] = dict_value(size, i, ver)
            else:
                v = d[names[i]]
                if len(v) != size or int.from_bytes(v[:8], "little") != i:
                    results.put(("error", "key %d: bad value" % i))
                    return
            n += 1
            t = now()
        results.put((w, idx, n, t - t0))


def dict_main(spec):
    op = {"py-manager-get": "get", "py-manager-set": "set"}[spec["transport"]]
    size, keys, m = spec["size"], spec["keys"], spec["consumers"]
    warm, reps = spec["warmup"], spec["reps"]
    windows = warm + reps
    dur = spec["duration"]
    cpus = spec.get("cpus") or []
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    manager = ctx.Manager()
    d = manager.dict()
    d.update({dict_key(size, i): dict_value(size, i, 0) for i in range(keys)})
    start = ctx.Event()
    results = ctx.Queue()
    procs = []
    for j in range(m):
        cpu = cpus[len(cpus) - m + j] if len(cpus) >= m else None
        procs.append(ctx.Process(target=dict_worker, args=(d, op, size, keys, j, m, windows, dur, start, results, cpu), daemon=True))
    for p in procs:
        p.start()
    emit({"ready": True})
    if sys.stdin.readline().strip() != "go":
        return 0
    start.set()
    got = {}
    for _ in range(windows * m):
        r = results.get(timeout=60 + windows * dur / 1e9)
        if r[0] == "error":
            emit({"error": r[1]})
            break
        w, idx, n, ns = r
        got.setdefault(w, []).append((n, ns))
        if len(got[w]) == m and w >= warm:
            rate = sum(n / ns for n, ns in got[w] if ns > 0)
            ns = max(ns for _, ns in got[w])
            emit({"rep": w - warm + 1, "msgs": round(rate * ns), "ns": ns})
    for p in procs:
        p.terminate()
    manager.shutdown()
    sys.stdout.flush()
    os._exit(0)


def ponger(kind, a, b, cpu):
    pin(cpu)
    if kind == "queue":
        while True:
            b.put(a.get())
    else:
        while True:
            a.send_bytes(a.recv_bytes())


def pct(sorted_vals, q):
    if not sorted_vals:
        return 0
    import math
    i = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[i]


def square(x):
    return x * x


def multiply(a, b):
    return a * b


def default_chunksize(n, workers):
    # Pool.map's own rule (multiprocessing/pool.py, _map_async).
    chunksize, extra = divmod(n, workers * 4)
    return chunksize + 1 if extra else chunksize


def pool_main(spec):
    """The pool pattern: one line per measured repetition, as the others.

    Map rows run map calls on the same inputs until the repetition's
    duration has passed (at least one call); a repetition reports the
    tasks done over the time spent inside the calls (the results are
    checked outside it). py-pool-start starts a fork Pool and waits for the
    result of one apply, as often as fits in the repetition: it reports the
    starts over the time they took, and with the last repetition the
    percentiles of every measured start.
    """
    kind = spec["transport"]
    dur = spec["duration"]
    warm = spec["warmup"]
    windows = warm + spec["reps"]
    workers = max(1, spec["consumers"])
    n = max(1, spec.get("tasks") or 1)
    cs = spec.get("chunksize") or None
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()

    if kind == "py-pool-start":
        emit({"ready": True})
        if sys.stdin.readline().strip() != "go":
            return 0
        lat = []
        for w in range(windows):
            if w == warm:
                lat = []
            count, spent, t0 = 0, 0, now()
            while count == 0 or now() - t0 < dur:
                a = now()
                p = ctx.Pool(workers)
                if p.apply(square, (3,)) != 9:
                    emit({"error": "apply(square, (3,)) != 9"})
                    return 1
                d = now() - a
                p.terminate()
                p.join()
                lat.append(d)
                spent += d
                count += 1
            if w >= warm:
                rep = {"rep": w - warm + 1, "msgs": count, "ns": spent,
                       "note": "%s Pool(%d) until apply's result" % (ctx.get_start_method(), workers)}
                if w == windows - 1:
                    lat.sort()
                    rep.update({"p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99),
                                "p999": pct(lat, 0.999), "max": lat[-1]})
                emit(rep)
        sys.stdout.flush()
        os._exit(0)

    inputs = range(n)
    if kind == "py-starmap":
        pairs = list(zip(range(n), range(n)))
        want = [a * b for a, b in pairs]
    else:
        want = [x * x for x in inputs]
    if kind == "py-executor":
        ex = concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx)
        list(ex.map(square, range(4 * workers)))  # the workers are up
        run = lambda: list(ex.map(square, inputs))  # chunksize=1, its default
        note = "ProcessPoolExecutor(%d).map, chunksize 1 (its default)" % workers
    else:
        p = ctx.Pool(workers)
        p.map(square, range(4 * workers))
        if kind == "py-starmap":
            run = lambda: p.starmap(multiply, pairs, cs)
        else:
            run = lambda: p.map(square, inputs, cs)
        used = cs or default_chunksize(n, workers)
        note = "chunksize %d%s" % (used, "" if cs else " (the default: len/(4*workers))")
    note = "%d tasks a call, %s" % (n, note)
    emit({"ready": True})
    if sys.stdin.readline().strip() != "go":
        return 0
    for w in range(windows):
        tasks, spent, t0, errs = 0, 0, now(), 0
        while tasks == 0 or now() - t0 < dur:
            a = now()
            out = run()
            spent += now() - a
            tasks += n
            if out != want:
                errs += sum(1 for x, y in zip(out, want) if x != y) + abs(len(out) - len(want))
        if w >= warm:
            rep = {"rep": w - warm + 1, "msgs": tasks, "ns": spent, "note": note}
            if errs:
                rep["errs"] = errs
            emit(rep)
    sys.stdout.flush()
    os._exit(0)


def main():
    spec = json.loads(sys.argv[1])
    if spec["pattern"] == "pool":
        return pool_main(spec)
    if spec["pattern"] == "dict":
        return dict_main(spec)
    kind = {"py-queue": "queue", "py-pipe": "pipe", "py-value": "value", "py-array": "array"}[spec["transport"]]
    pattern = spec["pattern"]
    size = spec["size"]
    dur = spec["duration"]
    warm = spec["warmup"]
    reps = spec["reps"]
    windows = warm + reps
    cpus = spec.get("cpus") or []
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    start = ctx.Event()
    stop = ctx.RawValue("b", 0)
    results = ctx.Queue()
    procs = []

    def cpu_of(i, total):
        if len(cpus) >= total and total > 0:
            return cpus[len(cpus) - total + i]
        return None

    if pattern in ("throughput", "mpmc"):
        n, m = spec["producers"], spec["consumers"]
        total = n + m
        if kind == "queue":
            # One queue shared by every producer and consumer.
            # Bounded like shmkit's ring (about 2 MiB of messages).
            q = ctx.Queue(maxsize=spec.get("capacity") or 1024)
            prod_ends, cons_ends = [q] * n, [q] * m
        else:
            # One pipe per producer, read by consumer i mod m (as shmbench
            # does for byte streams); shmbench only asks for 1:1.
            pipes = [ctx.Pipe(duplex=False) for _ in range(n)]  # (recv, send)
            prod_ends = [p[1] for p in pipes]
            cons_ends = [pipes[j][0] for j in range(m)]
        for i in range(n):
            procs.append(ctx.Process(target=producer, args=(kind, prod_ends[i], size, start, stop, cpu_of(i, total)), daemon=True))
        for j in range(m):
            procs.append(ctx.Process(target=consumer, args=(kind, cons_ends[j], j, windows, dur, start, results, cpu_of(n + j, total)), daemon=True))
        reporters = m
    elif pattern == "contention":
        v = ctx.Array("q", 16, lock=True) if kind == "array" else ctx.Value("q", 0, lock=True)
        m = spec["consumers"]
        for j in range(m):
            procs.append(ctx.Process(target=contender, args=(v, j, windows, dur, start, results, cpu_of(j, m)), daemon=True))
        reporters = m
    elif pattern == "pingpong":
        if kind == "queue":
            a, b = ctx.Queue(), ctx.Queue()
            procs.append(ctx.Process(target=ponger, args=(kind, a, b, cpu_of(0, 2)), daemon=True))
            send, recv = a.put, b.get
        else:
            mine, theirs = ctx.Pipe(duplex=True)
            procs.append(ctx.Process(target=ponger, args=(kind, theirs, None, cpu_of(0, 2)), daemon=True))
            send, recv = mine.send_bytes, mine.recv_bytes
        reporters = 0
    else:
        emit({"error": "unsupported pattern " + pattern})
        return 1

    for p in procs:
        p.start()
    if pattern == "pingpong":
        pin(cpu_of(1, 2))
    emit({"ready": True})
    line = sys.stdin.readline()
    if line.strip() != "go":
        return 0
    start.set()

    if pattern == "pingpong":
        msg = bytes(size)
        lat = []  # every measured round trip; the warm-up's are dropped
        for w in range(windows):
            if w == warm:
                lat = []
            n = 0
            t0 = now()
            deadline = t0 + dur
            t = t0
            while t < deadline:
                a0 = t
                send(msg)
                recv()
                t = now()
                lat.append(t - a0)
                n += 1
            if w >= warm:
                rep = {"rep": w - warm + 1, "msgs": n, "ns": t - t0}
                if w == windows - 1:
                    # Exact percentiles of all measured round trips.
                    lat.sort()
                    rep.update({"p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99),
                                "p999": pct(lat, 0.999), "max": lat[-1]})
                emit(rep)
    else:
        got = {}
        for _ in range(windows * reporters):
            w, idx, n, ns = results.get(timeout=60 + windows * dur / 1e9)
            got.setdefault(w, []).append((n, ns))
            if len(got[w]) == reporters and w >= warm:
                rate = sum(n / ns for n, ns in got[w] if ns > 0)
                ns = max(ns for _, ns in got[w])
                emit({"rep": w - warm + 1, "msgs": round(rate * ns), "ns": ns})
    stop.value = 1
    for p in procs:
        p.terminate()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
