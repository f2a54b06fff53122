package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/hdr"
)

// envPeer, when set, makes shmbench run as a peer process; its value is the
// JSON of a peerSpec.
const envPeer = "SHMBENCH_PEER"

// Peer roles.
const (
	roleProducer = "prod"
	roleConsumer = "cons"
	rolePing     = "ping"
	rolePong     = "pong"
	roleInProc   = "inproc" // every role as goroutines of one process
	roleRun      = "run"    // a runner's one peer, which runs the whole measurement
)

// peerSpec tells a re-executed shmbench what to be.
type peerSpec struct {
	M      Measurement       `json:"m"`
	Role   string            `json:"role"`
	Index  int               `json:"index"`
	Args   map[string]string `json:"args,omitempty"`
	NFiles int               `json:"nfiles"`
}

// PeerEnv is what Transport.Open sees in a peer process.
type PeerEnv struct {
	M     *Measurement
	Role  string
	Index int
	Args  map[string]string
	Files []*os.File // inherited as fds 3, 4, ...
}

// report is one line a peer prints to the coordinator (JSON on stdout).
// A consumer or pinger prints one per measured repetition with Msgs over
// NS; a pinger's report of the last repetition adds the percentiles of
// the round trips of every measured repetition (one merged histogram).
type report struct {
	Ready bool   `json:"ready,omitempty"`
	Rep   int    `json:"rep"`
	Msgs  uint64 `json:"msgs"`
	NS    int64  `json:"ns"`
	Errs  uint64 `json:"errs,omitempty"` // messages out of order or corrupt
	P50   int64  `json:"p50,omitempty"`
	P90   int64  `json:"p90,omitempty"`
	P99   int64  `json:"p99,omitempty"`
	P999  int64  `json:"p999,omitempty"`
	Max   int64  `json:"max,omitempty"`
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

var outMu sync.Mutex

// emit prints one report line; safe from any goroutine.
func emit(r report) {
	b, _ := json.Marshal(r)
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

// peerFail reports err to the coordinator and exits.
func peerFail(err error) {
	emit(report{Error: err.Error()})
	fmt.Fprintln(os.Stderr, "shmbench peer:", err)
	os.Exit(1)
}

// peerMain runs this process as a peer and returns the exit code.
func peerMain(specJSON string) int {
	var spec peerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "shmbench peer: bad", envPeer, err)
		return 2
	}
	t, ok := lookup(spec.M.Transport)
	if !ok {
		fmt.Fprintln(os.Stderr, "shmbench peer: unknown transport", spec.M.Transport)
		return 2
	}
	env := &PeerEnv{M: &spec.M, Role: spec.Role, Index: spec.Index, Args: spec.Args}
	for i := range spec.NFiles {
		env.Files = append(env.Files, os.NewFile(uintptr(3+i), fmt.Sprintf("fd%d", 3+i)))
	}
	// The coordinator writes "go" on stdin, then closes it when it is
	// done (or dies): either way the peer must not outlive it.
	goCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		started := false
		for sc.Scan() {
			if sc.Text() == "go" && !started {
				started = true
				close(goCh)
			}
		}
		os.Exit(0)
	}()

	p := &peer{t: t, spec: &spec, goCh: goCh}
	var err error
	switch spec.Role {
	case roleRun:
		r, ok := t.(runner)
		if !ok {
			err = fmt.Errorf("%s is not a runner", spec.M.Transport)
		} else {
			err = r.Run(env, goCh)
		}
	case roleInProc:
		err = p.runInProcess(env)
	default:
		err = p.run(env)
	}
	if err != nil {
		peerFail(err)
	}
	// Wait for the coordinator to close stdin, so that a peer that has
	// finished its part keeps its endpoints open for the others.
	select {}
}

// peer runs the roles of one process.
type peer struct {
	t    Transport
	spec *peerSpec
	goCh chan struct{}
}

// openOne opens the endpoints of one role in this process.
func (p *peer) openOne(env *PeerEnv) ([]Endpoint, error) {
	eps, err := p.t.Open(env)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s[%d]: %w", p.t.Spec().Name, env.Role, env.Index, err)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("%s: open %s[%d]: no endpoint", p.t.Spec().Name, env.Role, env.Index)
	}
	return eps, nil
}

func (p *peer) run(env *PeerEnv) error {
	eps, err := p.openOne(env)
	if err != nil {
		return err
	}
	emit(report{Ready: true})
	<-p.goCh
	switch env.Role {
	case roleProducer:
		return produce(eps, env.Index)
	case roleConsumer:
		return consume(env.M, eps, !p.t.Spec().NoProducer)
	case rolePing:
		return ping(env.M, eps[0])
	case rolePong:
		return pong(eps[0])
	}
	return fmt.Errorf("unknown role %q", env.Role)
}

// runInProcess runs every role as goroutines of this process.
func (p *peer) runInProcess(env *PeerEnv) error {
	m := env.M
	type job struct {
		role string
		idx  int
		eps  []Endpoint
	}
	var jobs []job
	add := func(role string, n int) error {
		for i := range n {
			e := *env
			e.Role, e.Index = role, i
			eps, err := p.openOne(&e)
			if err != nil {
				return err
			}
			jobs = append(jobs, job{role, i, eps})
		}
		return nil
	}
	var err error
	if m.Pattern == PatPingPong {
		err = errors.Join(add(rolePong, 1), add(rolePing, 1))
	} else {
		err = errors.Join(add(roleProducer, m.Producers), add(roleConsumer, m.Consumers))
	}
	if err != nil {
		return err
	}
	emit(report{Ready: true})
	<-p.goCh
	errc := make(chan error, len(jobs)+1)
	var consumers []Endpoint
	for _, j := range jobs {
		switch j.role {
		case roleProducer:
			go func() { errc <- produce(j.eps, j.idx) }()
		case roleConsumer:
			consumers = append(consumers, j.eps...)
		case rolePong:
			go func() { errc <- pong(j.eps[0]) }()
		case rolePing:
			go func() { errc <- ping(m, j.eps[0]) }()
		}
	}
	if len(consumers) > 0 {
		go func() { errc <- consume(m, consumers, !p.t.Spec().NoProducer) }()
	}
	for {
		if err := <-errc; err != nil {
			return err
		}
	}
}

// produce sends messages until the process exits, on its endpoints in
// turn (a byte-stream producer may have several connections). The
// sequence number carries the producer index in its top 16 bits; each
// endpoint sees it increase.
func produce(eps []Endpoint, index int) error {
	base := uint64(index) << 48
	if len(eps) == 1 {
		ep := eps[0]
		if re, ok := ep.(runEndpoint); ok {
			seqs := make([]uint64, runLen)
			for seq := uint64(1); ; {
				for i := range seqs {
					seqs[i] = base | seq
					seq++
				}
				if err := re.SendRun(seqs); err != nil {
					return fmt.Errorf("send: %w", err)
				}
			}
		}
		for seq := uint64(1); ; seq++ {
			if err := ep.Send(base | seq); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		}
	}
	i := 0
	for seq := uint64(1); ; seq++ {
		if err := eps[i].Send(base | seq); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if i++; i == len(eps) {
			i = 0
		}
	}
}

// runEndpoint is an Endpoint of a batched row that also moves messages
// in runs of sequence numbers: SendRun sends one message for each of
// seqs, in order; RecvRun receives at least one message and at most
// len(seqs), without waiting for more once it has one, and stores their
// sequence numbers in seqs. The harness uses them, where a batched row's
// endpoint has them, instead of one interface call a message on each
// side (about 3-4 ns, as much as a batched ring's own work at 8 B): each
// message is still built, moved, framed and checked one by one, and the
// rows compared with each other (queue-batch, slots-batch, unix-buf) all
// have them.
type runEndpoint interface {
	SendRun(seqs []uint64) error
	RecvRun(seqs []uint64) (int, error)
}

// runLen is the number of messages of one SendRun or RecvRun.
const runLen = 256

// ticker marks the repetitions of a consumer process: gen is incremented
// every m.Duration. Each consume loop notices a change of gen on its next
// message and starts its next window there, so a loop's windows are
// consecutive and timed by the loop itself, and a loop that misses a tick
// (descheduled on a loaded machine) just has a longer window, never a
// missing one. The per-message cost is one atomic load.
type ticker struct {
	gen atomic.Int64 // read by every consume loop per message; written by the ticking goroutine
}

// consume counts messages on every endpoint (one goroutine each) in
// successive windows and prints one report per measured window with the
// sum of the goroutines' rates. Window 0 (start-up) is never reported,
// windows 1..m.Warmup are the warm-up, then come m.Reps measured ones.
// check enables the per-producer sequence check.
func consume(m *Measurement, eps []Endpoint, check bool) error {
	last := m.Warmup + m.Reps
	tk := &ticker{}
	base := time.Now()
	type tally struct {
		win  int
		msgs uint64
		ns   int64
		errs uint64
	}
	tallies := make(chan tally, len(eps)*(last+1))
	errc := make(chan error, len(eps))
	for _, ep := range eps {
		go func() {
			var prev [1 << 8]uint64 // last sequence seen per producer (index < 256)
			var n, errs uint64
			win := 0
			seen := tk.gen.Load()
			start := time.Since(base)
			failed := func(err error) {
				if win > last {
					return // finished: the producers may go away
				}
				if errors.Is(err, io.EOF) {
					err = errors.New("producer closed the transport early")
				}
				errc <- fmt.Errorf("recv: %w", err)
			}
			re, runs := ep.(runEndpoint)
			var seqs []uint64
			if runs {
				seqs = make([]uint64, runLen)
			}
			for {
				if runs {
					k, err := re.RecvRun(seqs)
					for _, seq := range seqs[:k] {
						if !checkSeq(&prev, seq, check) {
							errs++
						}
					}
					n += uint64(k)
					if err != nil {
						failed(err)
						return
					}
				} else {
					seq, err := ep.Recv()
					if err != nil {
						failed(err)
						return
					}
					if !checkSeq(&prev, seq, check) {
						errs++
					}
					n++
				}
				if g := tk.gen.Load(); g != seen {
					now := time.Since(base)
					if win >= 1 && win <= last {
						tallies <- tally{win, n, int64(now - start), errs}
					}
					win++
					seen, n, errs, start = g, 0, 0, now
				}
			}
		}()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(m.Duration)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				tk.gen.Add(1)
			case <-done:
				return
			}
		}
	}()
	// Sum the goroutines' rates window by window.
	got := map[int][]tally{}
	for {
		select {
		case err := <-errc:
			return err
		case t := <-tallies:
			got[t.win] = append(got[t.win], t)
			if len(got[t.win]) < len(eps) {
				continue
			}
			if t.win > m.Warmup {
				var rate float64
				var msgs, errs uint64
				var ns int64
				for _, x := range got[t.win] {
					if x.ns > 0 {
						rate += float64(x.msgs) / float64(x.ns)
					}
					msgs += x.msgs
					errs += x.errs
					ns = max(ns, x.ns)
				}
				// Report msgs and ns so that msgs/ns is the summed rate.
				emit(report{Rep: t.win - m.Warmup, Msgs: uint64(rate * float64(ns)), NS: ns, Errs: errs})
			}
			if t.win == last {
				return nil
			}
		}
	}
}

// checkSeq reports whether seq is in order for its producer (when
// check, and seq carries one), recording it in prev.
func checkSeq(prev *[1 << 8]uint64, seq uint64, check bool) bool {
	if !check || seq == 0 {
		return true
	}
	p, s := seq>>48, seq&(1<<48-1)
	if p >= uint64(len(prev)) || s <= prev[p] {
		return false
	}
	prev[p] = s
	return true
}

// ping times round trips in successive windows of m.Duration and reports
// each measured window's round trips per second. Every measured round
// trip goes into one histogram, whose percentiles the last window's
// report carries: they are those of all the measured round trips, not of
// one window.
func ping(m *Measurement, ep Endpoint) error {
	h := hdr.New()
	if rt, ok := ep.(roundTripper); ok {
		return pingBatched(m, rt, h)
	}
	base := time.Now()
	seq := uint64(0)
	for rep := 1 - m.Warmup; rep <= m.Reps; rep++ {
		if rep == 1 {
			h.Reset() // forget the warm-up
		}
		start := time.Since(base)
		end := start + m.Duration
		now := start
		var n uint64
		for now < end {
			seq++
			t0 := now
			if err := ep.Send(seq); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			got, err := ep.Recv()
			if err != nil {
				return fmt.Errorf("recv: %w", err)
			}
			now = time.Since(base)
			if m.Size >= 8 && got != seq {
				return fmt.Errorf("round trip %d came back as %d", seq, got)
			}
			h.Record(int64(now - t0))
			n++
		}
		if rep >= 1 {
			emitLatency(m, rep, n, int64(now-start), h)
		}
	}
	return nil
}

// pingBatched is ping for endpoints that time their own round trips.
func pingBatched(m *Measurement, rt roundTripper, h *hdr.Histogram) error {
	for rep := 1 - m.Warmup; rep <= m.Reps; rep++ {
		if rep == 1 {
			h.Reset()
		}
		start := time.Now()
		var n uint64
		for time.Since(start) < m.Duration {
			ds, err := rt.RoundTrips(1000)
			if err != nil {
				return err
			}
			for _, d := range ds {
				h.Record(int64(d))
			}
			n += uint64(len(ds))
		}
		if rep >= 1 {
			emitLatency(m, rep, n, int64(time.Since(start)), h)
		}
	}
	return nil
}

// emitLatency reports repetition rep: n round trips in ns, and on the
// last repetition the percentiles of every measured round trip (h).
func emitLatency(m *Measurement, rep int, n uint64, ns int64, h *hdr.Histogram) {
	r := report{Rep: rep, Msgs: n, NS: ns}
	if rep == m.Reps {
		r.P50, r.P90, r.P99 = h.Quantile(0.50), h.Quantile(0.90), h.Quantile(0.99)
		r.P999, r.Max = h.Quantile(0.999), h.Max()
	}
	emit(r)
}

// pong echoes every message back until the transport closes.
func pong(ep Endpoint) error {
	if rt, ok := ep.(roundTripper); ok {
		return rt.Serve()
	}
	for {
		seq, err := ep.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the pinger finished
			}
			return fmt.Errorf("recv: %w", err)
		}
		if err := ep.Send(seq); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
}
