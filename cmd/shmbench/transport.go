package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Pattern names a way of using a transport.
type Pattern string

// The patterns shmbench measures.
const (
	// PatThroughput is one producer process sending to one consumer process
	// as fast as it can; messages per second are counted at the consumer.
	PatThroughput Pattern = "throughput"
	// PatMPMC is n producer processes sending to m consumer processes.
	PatMPMC Pattern = "mpmc"
	// PatPingPong is one process sending a message and waiting for the
	// other to send it back; latency is the round trip.
	PatPingPong Pattern = "pingpong"
	// PatContention is several processes updating one shared value under
	// its lock; the rate is updates per second, all processes together.
	PatContention Pattern = "contention"
	// PatDict is 1 and 2 processes reading or writing one shared map;
	// the rate is operations per second, all processes together.
	PatDict Pattern = "dict"
	// PatScaling is the mpmc pattern at 1:1, 2:2, 4:4, 8:8 and 16:16
	// processes, at 64 B, whatever the machine's CPU count: the curve a
	// bigger machine shows.
	PatScaling Pattern = "scaling"
	// PatRPC is HTTP requests and gRPC unary calls from 1 and 8 client
	// processes to a server process, over shmnet, a Unix socket and
	// loopback TCP; the rate is requests per second, all clients
	// together.
	PatRPC Pattern = "rpc"
	// PatPool is a pool of worker processes mapping a tiny task (the
	// square of an int) over many inputs, in tasks per second, and the
	// cost of starting one, until its first result.
	PatPool Pattern = "pool"
)

// isMPMC reports whether p runs producer and consumer processes on one
// queue (or one stream each), as the mpmc pattern does.
func isMPMC(p Pattern) bool { return p == PatMPMC || p == PatScaling }

// allPatterns is the order in which patterns run and are reported.
var allPatterns = []Pattern{PatThroughput, PatMPMC, PatScaling, PatPingPong, PatContention, PatDict, PatRPC, PatPool}

// patternDesc describes each pattern for -list.
var patternDesc = map[Pattern]string{
	PatThroughput: "1 producer process -> 1 consumer process, messages/s by size",
	PatMPMC:       "n producer processes -> m consumer processes (-procs n:m), aggregate messages/s",
	PatPingPong:   "round-trip latency between two processes, p50/p90/p99/p99.9 by size",
	PatContention: "processes updating one shared value under its lock, updates/s",
	PatScaling:    "n producer processes -> n consumer processes for n = 1, 2, 4, 8, 16 at 64 B: aggregate and per-CPU messages/s",
	PatDict:       "1 and 2 processes on one shared map (8 B keys/64 B values, 32 B keys/1 KiB values): Load hit and miss, Store, operations/s",
	PatRPC:        "net/http GETs and gRPC unary calls from 1 and 8 client processes over shmnet, a Unix socket and TCP, requests/s",
	PatPool:       "worker pools (-workers): Map of square(int) in tasks/s; start of a pool until its first result",
}

// Kinds group transports in the report.
const (
	KindShmkit    = "shmkit"
	KindIPC       = "ipc"
	KindInProcess = "in-process"
	KindPython    = "python"
	KindReference = "reference"
)

// Spec is the static description of a transport.
type Spec struct {
	Name string // short name used by -transports and in reports
	Kind string // one of the Kind constants
	Desc string // one line for -list

	// Patterns lists the patterns the transport can run.
	Patterns []Pattern
	// InProcess: every producer and consumer is a goroutine of one process.
	InProcess bool
	// NoProducer: the consumers do the work themselves (memcpy, a value
	// update); there are no producer processes.
	NoProducer bool
	// External: the transport supplies its own peer command (Setup.Command)
	// which runs the whole measurement and prints the reports itself.
	External bool
	// StartInOrder: each peer is started only once the previous one is
	// ready (the first peer creates what the next one opens).
	StartInOrder bool
	// Spins: the transport busy-waits, so it needs a CPU per process.
	Spins bool
	// Note is added to every measured record of the transport.
	Note string
	// MaxSize is the largest message size it supports (0: any).
	MaxSize int
	// FixedSize, when set, is the only size measured: other sizes are
	// reported once, at this size.
	FixedSize int
	// Batching says how messages are grouped per call and per system
	// call (one per call, or how many), for the legend under the table,
	// so that a reader compares like with like. Every transport has one.
	Batching string
	// Batched: the transport groups several messages per call or per
	// system call; the legend sets the batched transports apart.
	Batched bool

	// Runs: one peer process runs the whole measurement itself (the
	// transport is a runner): it reports ready, waits for "go" and
	// prints one report per measured repetition. The pool pattern's
	// shmkit and goroutine rows are runners.
	Runs bool
	// NoPin: the measurement's processes are left to the scheduler and
	// the record says so in Note, not as "unpinned": a pool's workers
	// inherit their parent's CPU mask, so pinning the parent would put
	// every worker on its CPU.
	NoPin bool
	// Startup: a pool row that times starts (of a pool until its first
	// result, or of a process until it exits) rather than tasks; its
	// record carries the percentiles of the starts in p50_ns.. max_ns and
	// the starts per second (back to back) in msgs_per_sec.
	Startup bool
	// PerTask: a pool row that pays per task (chunk size 1), so its Map
	// calls get fewer inputs (poolTasksPerTask) than the chunked rows'.
	PerTask bool
	// Workers is how many worker processes (or goroutines) a pool row
	// has: 0 for the -workers flag, workersNumCPU for runtime.NumCPU(),
	// else that many.
	Workers int
	// ExpectRate is the slowest rate (tasks/s) planCost expects of a
	// pool row, whose repetition lasts at least one Map call: longer than
	// -duration when a call of its inputs at that rate is (0: -duration).
	ExpectRate float64
}

// Transport is one way to move messages between processes, measured by
// shmbench. Setup runs in the coordinating process; Open runs in each peer
// process that the coordinator starts (a re-execution of shmbench).
type Transport interface {
	// Spec describes the transport.
	Spec() Spec
	// Unavailable says why the transport cannot run on this machine or in
	// this build ("" when it can).
	Unavailable() string
	// Setup creates what the peers of one measurement share (a socket
	// pair, a segment, a pipe) and says what each peer receives.
	Setup(m *Measurement) (*Setup, error)
	// Open attaches a peer to what Setup created. A consumer may get
	// several endpoints (one per connection); each is served by its own
	// goroutine. A producer may get several too, and sends on them in
	// turn. A ping/pong peer gets exactly one.
	Open(env *PeerEnv) ([]Endpoint, error)
}

// Setup is what a transport created for one measurement.
type Setup struct {
	// Args are given to every peer (names of segments, addresses).
	Args map[string]string
	// Files returns the files peer (role, index) inherits as fds 3, 4, ...
	// It may be nil.
	Files func(role string, index int) []*os.File
	// Command, for External transports, is the program and arguments of
	// the single peer that runs the measurement.
	Command []string
	// Cleanup releases what Setup created (the coordinator's copies of
	// files, segment names). It runs once, when every peer is ready (has
	// opened its side), or when the measurement ends before that.
	Cleanup func()
}

// Endpoint is one side of a transport in a peer process. Each message
// carries a 64-bit sequence number in its first 8 bytes when the message is
// at least 8 bytes long, so consumers can check order and integrity.
type Endpoint interface {
	// Send sends one message of the measurement's size carrying seq.
	Send(seq uint64) error
	// Recv receives one message and returns its sequence number (0 for
	// messages shorter than 8 bytes).
	Recv() (uint64, error)
	// Close releases the endpoint.
	Close() error
}

// Measurement is one cell of the benchmark: a transport, a pattern, a size.
type Measurement struct {
	Transport string        `json:"transport"`
	Pattern   Pattern       `json:"pattern"`
	Size      int           `json:"size"`
	Producers int           `json:"producers"`
	Consumers int           `json:"consumers"`
	Duration  time.Duration `json:"duration"` // one repetition
	Reps      int           `json:"reps"`     // measured repetitions
	Warmup    int           `json:"warmup"`   // unreported repetitions first
	Tasks     int           `json:"tasks"`    // pool pattern: inputs of one Map call
	CPUs      []int         `json:"cpus"`     // CPUs the peers may be pinned to (external transports pin themselves)
}

// errUnsupported marks a pattern or size a transport cannot run.
var errUnsupported = errors.New("not supported")

// supports reports whether t can run pattern p at size, and why not.
func supports(t Transport, p Pattern, size int) error {
	s := t.Spec()
	if !slices.Contains(s.Patterns, p) {
		return fmt.Errorf("%w: %s has no %s pattern", errUnsupported, s.Name, p)
	}
	if s.MaxSize > 0 && size > s.MaxSize {
		return fmt.Errorf("%w: messages over %d bytes", errUnsupported, s.MaxSize)
	}
	return nil
}

// registry holds every transport, in report order.
var registry []Transport

// kindRank orders the registry: shmkit first, then what users would use
// instead, then the yardsticks.
var kindRank = map[string]int{KindShmkit: 0, KindIPC: 1, KindPython: 2, KindInProcess: 3, KindReference: 4}

// register adds t to the registry, keeping it ordered by kind (stable).
func register(t Transport) {
	i := len(registry)
	for i > 0 && kindRank[registry[i-1].Spec().Kind] > kindRank[t.Spec().Kind] {
		i--
	}
	registry = slices.Insert(registry, i, t)
}

// lookup returns the transport called name.
func lookup(name string) (Transport, bool) {
	for _, t := range registry {
		if t.Spec().Name == name {
			return t, true
		}
	}
	return nil, false
}

// transportNames lists the registered names.
func transportNames() []string {
	var out []string
	for _, t := range registry {
		out = append(out, t.Spec().Name)
	}
	return out
}

// inFlight is how many messages of size bytes the queues that are not
// shmkit rings hold (the Go channel, Python's Queue): like ringConfig,
// about 2 MiB of messages, at least 8 and at most 1024 of them, so that
// 1 MiB messages do not put a gigabyte in flight.
func inFlight(size int) int { return max(8, min(1024, (2<<20)/max(size, 1))) }

// putSeq writes seq into the first 8 bytes of b when there is room.
func putSeq(b []byte, seq uint64) {
	if len(b) >= 8 {
		_ = b[7]
		b[0], b[1], b[2], b[3] = byte(seq), byte(seq>>8), byte(seq>>16), byte(seq>>24)
		b[4], b[5], b[6], b[7] = byte(seq>>32), byte(seq>>40), byte(seq>>48), byte(seq>>56)
	}
}

// getSeq reads the sequence number putSeq wrote (0 when b is short).
func getSeq(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
