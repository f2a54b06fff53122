// Command shmbench measures what shmkit buys over the alternatives, on
// the machine it runs on, in under a minute:
//
//	go run ./cmd/shmbench                  # the comparison table (~55 s)
//	go run ./cmd/shmbench -patterns pool   # pools against Python's (~10 s)
//	go run ./cmd/shmbench -quick -json     # machine-readable, under 20 s
//	go run ./cmd/shmbench -svg chart.svg   # also a chart by message size
//
// # What it measures
//
// Every measurement runs across real OS processes: shmbench re-executes
// itself (os.Executable, with the environment variable SHMBENCH_PEER naming
// the peer's role) for the producers, consumers, pingers and pongers. When
// the machine has a CPU for each peer, each peer is pinned to a CPU of its
// own (the affinity is set on the locked thread that starts it, and the
// child inherits it); otherwise the peers are left to the scheduler and
// the row says "unpinned". The coordinating process only waits on pipes
// while the peers run.
//
// Patterns (-patterns):
//
//   - throughput: one producer process sends messages of a given size to
//     one consumer process as fast as it can; the consumer counts.
//   - mpmc: n producer processes and m consumer processes (-procs n:m,
//     default 2:2), the rates of all consumers added up. Byte streams have
//     one writer and one reader, so there are max(n, m) connections:
//     connection i is written by producer i mod n (a producer with several
//     writes to them in turn) and read by consumer i mod m (a goroutine per
//     connection).
//   - scaling: the mpmc pattern at 64 B with n producer and n consumer
//     processes for n = 1, 2, 4, 8 and 16 (queue, queue-batch, unix-buf),
//     on any machine: where there are fewer CPUs than processes the rows
//     say so and run anyway. The table adds the rate per CPU in use
//     (msgs/s over min(2n, CPUs)) and the ratio to the row's own 1:1, so
//     a bigger machine shows the curve. Not in -quick.
//   - pingpong: one process sends a message, the other sends it back; the
//     latency is the round trip, timed one by one and reported as p50,
//     p90, p99 and p99.9 (see "Repetitions and medians" for how).
//   - contention: -contenders processes (default 2) increment a shared
//     int64 under its lock: shmkit value.Value.Update beside Python's
//     multiprocessing.Value(lock=True), array.Array.Update (contender i on
//     element i of 16, one lock) beside multiprocessing.Array(lock=True),
//     and lock-free value.AtomicOf(v).Add.
//   - dict: 1 and then 2 processes on one shared map of 4096 entries, in
//     two shapes named by the value size: 64 B values under 8-byte keys
//     (shmkit dict.Map[uint64, [8]uint64]) and 1 KiB values under 32-byte
//     string keys (dict.Bytes). Each process loops on one operation, in
//     operations/s, all processes together, and checks every value it
//     reads (its first 8 bytes name its key): dict-load (Load of present
//     keys), dict-miss (absent keys), dict-store (Store over present
//     keys, each process its own); beside Redis on localhost through
//     go-redis, one connection per process (redis-get, redis-get-p64: in
//     pipelines of 64, redis-set; shmbench starts redis-server from PATH
//     for the run, persistence off, and stops it; it installs nothing,
//     and without redis-server the rows say "skipped: redis-server not
//     found"), Python's Manager().dict() (py-manager-get, py-manager-set;
//     the manager is a process of its own, as in Python), and sync.Map and
//     a map under sync.RWMutex in one process (syncmap-load, rwmap-load:
//     goroutines). -quick runs the 64 B shape with dict-load,
//     syncmap-load, redis-get-p64 and py-manager-get. The ratio is
//     against redis-get-p64 with as many processes.
//   - rpc: net/http GETs of a 2-byte body (http-shmnet, http-unix,
//     http-tcp) and gRPC unary calls, the health service's Check
//     (grpc-shmnet, grpc-unix, grpc-tcp), from 1 and then 8 client
//     processes, each with one connection, to one server process per row
//     kind (started for the run, stopped at its end), in requests/s, all
//     clients together; every reply is checked. The code is the same for
//     the three: only the listener and the dialer differ (package shmnet
//     for the shmnet rows). The ratio is against the same protocol over
//     the Unix socket with as many clients. -quick: one client, shmnet and
//     unix.
//   - pool: worker pools (-workers, default 2) mapping a tiny task, the
//     square of an int, over many inputs, in tasks/s: Map calls of the
//     same inputs (100,000 for the chunked rows, 1,000 for the rows of
//     one task per message; -quick: 20,000 and 200) until the
//     repetition's time has passed, at least one call; the rate is the
//     tasks over the time spent inside the calls (results are checked
//     outside it). The start-up rows start a pool and time it until its
//     first result (or a process until it exits), as often as fits in a
//     repetition, and report the percentiles of every measured start.
//     Rows that are compared run one after the other (pool, py-pool,
//     py-pool-tuned, gopool-batch, gopool, ...). A pool's workers inherit
//     their parent's CPUs, so nothing is pinned in this pattern.
//
// Transports (-transports; -list describes each):
//
//   - shmkit: queue (ring.Queue Put/Get), queue-batch (PutBatch/GetBatch),
//     slots and slots-batch (ring.Typed of [size]byte values on a Slots
//     queue, Put/Get and PutBatch/GetBatch; sizes that are powers of two
//     from 8 B to 4 KiB; throughput, and ping-pong for slots),
//     queue-zc (zero-copy: the producer copies its message into the space
//     Reserve gives and Commits it; the consumer reads the message where
//     Next shows it, one word per 64-byte line, and Releases it), pipe
//     (ring.Conn Send/Recv), shmnet (a shmnet.Conn, the net.Conn over a
//     pipe: Write and io.ReadFull; ping-pong only), pipe-block (the same with SetSpin(0), so
//     each blocked side sleeps on its futex at once; ping-pong only, beside
//     the futex reference), value, value-atomic and array. A queue holds
//     about 2 MiB of messages (8 to 65536 of them). For pools (package
//     proc; the workers are this binary re-executed, dispatched by
//     proc.Main at the top of main): pool (Pool.Map of square, automatic
//     chunking), pool-star (Map of multiply over proc.Pair[int, int]:
//     Python's starmap), pool-c1 (ChunkSize 1: the cost of one task),
//     pool-start and pool-start-ncpu (NewPool of -workers or
//     runtime.NumCPU() workers until the result of a Map of one input)
//     and proc-start (Start of one worker whose function returns at once,
//     until Wait returns).
//   - ipc, what Go programs use instead: unix (a Unix domain stream socket,
//     one write per message), unix-buf (the same through 64 KiB bufio
//     buffers, flushed only when full), os-pipe, tcp (127.0.0.1). Byte
//     streams carry length-prefixed messages (4-byte little-endian length,
//     then the payload).
//   - python, when python3 is on PATH (else reported as unavailable):
//     py-queue (multiprocessing.Queue, bounded like the Go channel below),
//     py-pipe (multiprocessing.Pipe, send_bytes/recv_bytes), py-value and
//     py-array (multiprocessing.Value and Array, lock=True); for pools,
//     py-pool (Pool(workers).map(square, range(n)), its default
//     chunksize len/(4*workers)), py-pool-tuned (chunksize n/20),
//     py-pool-c1 (chunksize 1), py-starmap (starmap of multiply over
//     pairs, default chunksize), py-executor (ProcessPoolExecutor.map,
//     chunksize 1, its default) and py-pool-start (a fork Pool(workers)
//     until apply's result), all forked; run by a
//     script embedded in the binary. The interpreter is run by the path it
//     reports (sys.executable), so that a version manager's shim does not
//     add its start-up to every measurement.
//   - in-process: chan, goroutines of ONE process passing []byte over a Go
//     channel (each message copied once into a pooled buffer; the channel
//     holds about 2 MiB of messages, 8 to 1024 of them). It shares an
//     address space and is there as a yardstick, not as a competitor.
//     So are gopool and gopool-batch, a pool of -workers goroutines of
//     one process fed through a buffered channel, one task per send or
//     1,000 (an index range), calling the same square function.
//   - reference, this machine's limits measured in the same run: refring
//     (internal/refring, a bare ring of fixed 64-byte slots with no
//     features, busy-spinning), cacheline (one shared cache line flipped
//     between two processes: the floor of any round trip), futex (two
//     futex words, each side sleeping at once: the floor of a blocking
//     round trip) and memcpy (the
//     copy a queue's producer makes, alone: from one hot buffer of the
//     message's size into a destination that walks through as many bytes
//     as queue's ring for that size, record by record; a copying queue
//     does that and more, so memcpy's bytes/s is its ceiling). The
//     busy-spinning references need a CPU per process and are skipped,
//     with a note, where the peers cannot be pinned. For pools,
//     exec-start: os/exec of this binary, which exits first thing in main
//     (a hello-world Go program of shmbench's size), the floor under
//     proc-start.
//
// Every message of at least 8 bytes carries a sequence number (producer
// index in the top 16 bits); consumers check that each producer's numbers
// increase, and a measurement with messages out of order or of the wrong
// length is reported as failed.
//
// # Repetitions and medians
//
// Each measurement starts its peers once, runs one warm-up repetition and
// then -reps repetitions (default 3) of -duration each (default 60ms, at
// sizes 8 B, 64 B, 4 KiB, 64 KiB and 1 MiB, and the pool pattern's 15
// rows: about 175 measurements, 55 seconds measured on two CPUs, about a
// minute; -quick: 30ms at 64 B and 64 KiB and six pool rows, 12 seconds
// measured, under 20). A consumer counts the messages it receives within each
// repetition's window and its own clock gives the window's length; the
// rates of all consumers of a repetition are added; the report gives the
// median over repetitions (and, in JSON, every repetition's rate).
//
// -rounds N runs the whole plan N times, one round after the other, and
// reports for each measurement the record of its median round (by rate),
// with every round's rate in its notes; a round that failed is reported
// instead. The host's state changes within minutes on a shared virtual
// machine (two rows measured a minute apart can differ by 2x for reasons
// of the host alone); over several rounds, the rows compared with each
// other have each gone through every state, and their median rounds are
// what the summary compares.
//
// Latency percentiles are not per repetition: the pinger puts every
// round trip of the measured repetitions (not the warm-up's) into one
// histogram and p50, p90, p99 and p99.9 are read from it, so p99.9 rests
// on all of them. Go's pingers use a log-linear histogram (internal/hdr,
// values within 0.8%); Python's sorts the round trips and reads the exact
// percentiles (the smallest value with at least that fraction of the
// round trips at or below it). max is the largest round trip.
//
// # Reading the table
//
// The spread column is half the range of the repetitions' rates, in
// percent of their median: ±5% is a steady measurement, ±50% one the host
// disturbed (rerun it, or raise -duration and -reps).
//
// The "vs X" column says how many times better than the baseline X
// (-baseline, default unix: a Unix socket with one write per message) a
// row is, at the same pattern, size and process counts: for throughput
// its msgs/s divided by X's; for latency X's p50 divided by its p50. So
// 20x means twenty times the messages per second, or a twentieth of the
// round trip. Contention rows are compared with Python's equivalent
// (py-value, or py-array for array), the baseline having no such pattern.
//
// Under the tables a legend gives one line per transport of the run: what
// it is and how many messages one call (and one system call) moves; then
// which rows compare like with like: the transports that move one message
// per call (queue, queue-zc, pipe against unix, os-pipe, tcp, py-queue,
// py-pipe, chan) and those that move several (queue-batch against
// unix-buf), the references being yardsticks. Last comes "What to conclude
// from this run": a few sentences computed from the run's own results
// (queue against unix and unix-buf at 64 B, queue-batch against unix-buf,
// against Python, refring and chan; at the largest size against unix and
// memcpy; the round trip against unix and cacheline; mpmc; contention
// against Python; the shared map's Load against pipelined Redis (target:
// 100 times), Manager().dict() (target: 1000 times) and sync.Map (target:
// within 3 times), from one process and two; pools: pool against Python's Pool.map with its default
// chunksize (target: 20 times), a tuned one and the chunked goroutine
// pool (target: within 2 times), starmap, the cost of a task with chunk
// size 1 against Python's, the start of a pool against Python's fork
// Pool (target: faster), proc-start against exec-start, each target
// said to be met or not); a sentence whose rows were not measured or
// failed is left out.
//
// A virtual machine's vCPUs share physical cores with other guests and
// move between them: absolute figures drift between runs, sometimes by a
// factor of two. The ratios within one run are what is comparable, which
// is why the references run in the same run as everything else. Do not
// compare numbers from different runs or machines without their
// references.
//
// # Progress and exit status
//
// While it runs, shmbench reports its progress on stderr, never on
// stdout, so that "shmbench -json | jq" and "shmbench > out.txt" get only
// the report. When stderr is a terminal it is one live line (measurement
// k of n, elapsed time, what is running), erased before the report; when
// it is not (a log file, a CI job), one line per measurement done, with
// its result, and a last line with the count and the time:
//
//	[ 12/93   9s] throughput queue           64 B  8.10M msgs/s, 518 MB/s
//	[ 13/93   9s] pingpong   unix          4 KiB  p50 21.3µs
//	shmbench: 93 measurements in 48.2s
//
// The exit status is 0 when every measurement was ok, skipped or
// unavailable; 1 when any failed (the report is still printed, and each
// failed row says why), or shmbench could not start; 2 for a usage error;
// 130 when interrupted.
//
// # Failures
//
// Bad flags, unknown transports or patterns are usage errors (exit status
// 2), and so is an explicit -duration 0. A peer that dies mid-run is reported in its row with its exit status
// and last error; a peer that stops reporting is killed after the expected
// time plus a grace period and the row says which peers were doing what.
// SIGINT or SIGTERM stops the run, kills every peer (each runs in its own
// process group) and prints the partial results (exit status 130). Peers
// exit when the coordinator closes their standard input, so they never
// outlive it.
//
// # JSON schema (-json)
//
// -json prints one object (schema "shmbench/v1"):
//
//	{
//	  "schema":  "shmbench/v1",
//	  "started": RFC 3339 time (UTC),
//	  "wall_ns": whole run, nanoseconds,
//	  "host":    {"os", "arch", "kernel", "cpu_model": strings, "num_cpu": int,
//	              "cpus": [ints] (CPUs this process may use), "pinning": bool,
//	              "go", "python": strings ("" when no python3)},
//	  "config":  {"sizes": [ints], "duration_ns", "repetitions", "warmup", "rounds": ints,
//	              "patterns", "transports": [strings], "baseline": string,
//	              "producers", "consumers", "contenders", "workers": ints},
//	  "results": [ record, ... ],
//	  "legend":  [ {"transport", "kind", "what", "batching": strings,
//	               "batched": bool}, ... ] (the transports of the results),
//	  "summary": [ strings ] (what to conclude: the closing sentences)
//	}
//
// with one record per measurement, every field always present:
//
//	transport         string  transport name (-list)
//	kind              string  "shmkit", "ipc", "python", "in-process" or "reference"
//	pattern           string  "throughput", "mpmc", "pingpong", "contention", "dict", "scaling", "rpc" or "pool"
//	size              int     message size in bytes (8 for contention: one int64; dict: the value size; pool: 8,
//	                          one int each way; 0 for the start-up rows)
//	producers         int     producer processes (0 where consumers work alone: memcpy, contention, pool)
//	consumers         int     consumer processes (contention: the contenders; dict: the processes on the map; pool: the workers)
//	status            string  "ok", "skipped" (cannot run this pattern/size here),
//	                          "unavailable" (cannot run at all here) or "failed"
//	msgs_per_sec      number  median messages/s (pingpong: round trips/s;
//	                          contention: updates/s, all processes together;
//	                          dict: operations/s, all processes together;
//	                          pool: tasks/s, or starts/s back to back for start-up rows)
//	bytes_per_sec     number  msgs_per_sec * size (pingpong: * 2 * size)
//	p50_ns, p90_ns,   int     round-trip percentiles over every measured round trip, nanoseconds (pingpong only; else 0)
//	p99_ns, p999_ns           (pool start-up rows: of every measured start)
//	max_ns            int     largest round trip seen (pingpong only; start-up: slowest start; else 0)
//	repetitions       int     measured repetitions (the warm-up not counted)
//	duration_ns       int     length of one repetition
//	rep_msgs_per_sec  [number] each repetition's rate (empty unless measured)
//	baseline          string  transport the ratio is against ("" when none; pool: py-pool,
//	                          py-pool-c1 or py-pool-start)
//	ratio             number  times better than baseline (see above); 0 when none
//	pinned            bool    peers pinned to distinct CPUs
//	wall_ns           int     time the measurement took, start-up and warm-up included
//	notes             string  why it was skipped or failed, and caveats ("" when none)
//
// Skipped and unavailable records carry zeros in the measured fields
// (rates, percentiles, ratio) and an empty rep_msgs_per_sec; failed ones
// carry what was measured before the failure (usually nothing) and never
// a ratio. The
// schema string changes if a field changes meaning or disappears; new
// fields may be added.
//
// # Chart (-svg)
//
// -svg FILE writes a self-contained SVG (no scripts or external
// resources): throughput (messages/s, one producer and one consumer) and
// ping-pong p50 by message size, both on log scales, one line per
// transport; in-process and reference series are dashed.
package main
