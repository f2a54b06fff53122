package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Record statuses.
const (
	StatusOK          = "ok"          // measured
	StatusSkipped     = "skipped"     // the transport cannot run this pattern/size here
	StatusUnavailable = "unavailable" // the transport cannot run at all here
	StatusFailed      = "failed"      // it ran and something went wrong (see notes)
)

// Record is one measurement in the report (and one object of -json's
// "results"; see the package documentation for the schema).
type Record struct {
	Transport   string    `json:"transport"`
	Kind        string    `json:"kind"`
	Pattern     Pattern   `json:"pattern"`
	Size        int       `json:"size"`
	Producers   int       `json:"producers"`
	Consumers   int       `json:"consumers"`
	Status      string    `json:"status"`
	MsgsPerSec  float64   `json:"msgs_per_sec"`
	BytesPerSec float64   `json:"bytes_per_sec"`
	P50NS       int64     `json:"p50_ns"`
	P90NS       int64     `json:"p90_ns"`
	P99NS       int64     `json:"p99_ns"`
	P999NS      int64     `json:"p999_ns"`
	MaxNS       int64     `json:"max_ns"`
	Repetitions int       `json:"repetitions"`
	DurationNS  int64     `json:"duration_ns"`
	RepRates    []float64 `json:"rep_msgs_per_sec"`
	Baseline    string    `json:"baseline"`
	Ratio       float64   `json:"ratio"`
	Pinned      bool      `json:"pinned"`
	WallNS      int64     `json:"wall_ns"`
	Notes       string    `json:"notes"`
}

func (r *Record) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if r.Notes == "" {
		r.Notes = s
	} else {
		r.Notes += "; " + s
	}
}

// coordinator starts and supervises the peer processes of measurements.
type coordinator struct {
	ctx      context.Context
	exe      string   // this program, re-executed for peers
	cpus     []int    // CPUs peers may be pinned to
	pin      bool     // pin peers to distinct CPUs when there are enough
	extraEnv []string // added to every peer's environment

	// Timeouts; zero means the defaults below.
	ready time.Duration // for every peer to open its side
	grace time.Duration // beyond the expected run time, for the reports

	kills atomic.Int64 // peers stop had to kill (they did not exit when told)
}

// peerProc is one running peer.
type peerProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *tailBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, valid after done
	lastEr string        // last error the peer reported
	pinErr error         // why it could not be pinned to its CPU
}

// event is a line from a peer or its exit.
type event struct {
	p    *peerProc
	rep  *report
	exit bool
}

// slot is one peer process of a measurement.
type slot struct {
	role  string
	index int
}

func layout(spec Spec, m *Measurement) []slot {
	switch {
	case spec.External:
		return []slot{{"ext", 0}}
	case spec.Runs:
		return []slot{{roleRun, 0}}
	case spec.InProcess:
		return []slot{{roleInProc, 0}}
	case m.Pattern == PatPingPong:
		return []slot{{rolePong, 0}, {rolePing, 0}}
	}
	var out []slot
	if !spec.NoProducer {
		for i := range m.Producers {
			out = append(out, slot{roleProducer, i})
		}
	}
	for i := range m.Consumers {
		out = append(out, slot{roleConsumer, i})
	}
	return out
}

// externalProcs is how many processes an external transport runs.
func externalProcs(m *Measurement) int {
	switch m.Pattern {
	case PatPingPong:
		return 2
	case PatContention, PatDict, PatPool:
		return m.Consumers
	}
	return m.Producers + m.Consumers
}

// reporter tells whether a peer in this role prints the measurements.
func reporter(role string) bool { return role != roleProducer && role != rolePong }

// peer timeouts.
const (
	readyTimeout = 30 * time.Second // start-up, including python3's
	graceTimeout = 10 * time.Second // beyond the expected run time
	exitTimeout  = 2 * time.Second  // after stdin is closed
)

// measure runs one measurement of t and returns its record.
func (c *coordinator) measure(t Transport, m Measurement) Record {
	spec := t.Spec()
	rec := Record{Transport: spec.Name, Kind: spec.Kind, Pattern: m.Pattern, Size: m.Size,
		Producers: m.Producers, Consumers: m.Consumers, Repetitions: m.Reps,
		DurationNS: int64(m.Duration)}
	if spec.NoProducer {
		rec.Producers = 0
	}
	slots := layout(spec, &m)
	var cpus []int
	switch {
	case spec.NoPin:
		// Left to the scheduler; the transport's Note says so.
	case spec.External:
		// The external program pins its own processes when they fit.
		if c.pin {
			m.CPUs = c.cpus
			rec.Pinned = externalProcs(&m) <= len(c.cpus)
		}
	case c.pin && !spec.InProcess && len(slots) <= len(c.cpus):
		// Leave the lowest CPUs (interrupts, the coordinator) when there
		// are spare ones.
		cpus = c.cpus[len(c.cpus)-len(slots):]
		rec.Pinned = true
	}
	if spec.Spins && !rec.Pinned {
		rec.Status = StatusSkipped
		rec.note("busy-spins: needs a CPU of its own per process (%d processes, %d CPUs, pinning %v)", len(slots), len(c.cpus), c.pin)
		return rec
	}
	if !rec.Pinned && !spec.InProcess && !spec.NoPin {
		n := len(slots)
		if spec.External {
			n = externalProcs(&m)
		}
		rec.note("unpinned (%d processes, %d CPUs)", n, len(c.cpus))
	}

	setup, err := t.Setup(&m)
	if err != nil {
		rec.Status = StatusFailed
		rec.note("setup: %v", err)
		return rec
	}
	cleanup := sync.OnceFunc(func() {
		if setup.Cleanup != nil {
			setup.Cleanup()
		}
	})
	defer cleanup()

	// events carries the peers' lines and exits to this function; quit,
	// closed when it returns, tells the peers' reader goroutines that
	// nobody reads events any more, so that they drop what is left
	// instead of blocking on a full channel (and so never reaching the
	// cmd.Wait that stop waits for).
	events := make(chan event, 256)
	quit := make(chan struct{})
	var procs []*peerProc
	defer func() {
		close(quit)
		c.stop(procs)
	}()
	readyT, graceT := cmp.Or(c.ready, readyTimeout), cmp.Or(c.grace, graceTimeout)
	timer := time.NewTimer(readyT)
	defer timer.Stop()
	ready := 0
	// waitReady waits until n peers in all have said they are ready.
	waitReady := func(n int) bool {
		for ready < n {
			select {
			case ev := <-events:
				if ev.exit {
					rec = c.died(rec, ev.p, procs)
					return false
				}
				if ev.rep.Error != "" {
					ev.p.lastEr = ev.rep.Error
				} else if ev.rep.Ready {
					ready++
				}
			case <-timer.C:
				rec.Status = StatusFailed
				rec.note("peers not ready after %v", readyT)
				return false
			case <-c.ctx.Done():
				rec.Status = StatusFailed
				rec.note("interrupted")
				return false
			}
		}
		return true
	}
	for i, s := range slots {
		cpu := -1
		if cpus != nil {
			cpu = cpus[i]
		}
		p, err := c.start(t, &m, setup, s, cpu, events, quit)
		if err != nil {
			rec.Status = StatusFailed
			rec.note("start %s[%d]: %v", s.role, s.index, err)
			return rec
		}
		procs = append(procs, p)
		if p.pinErr != nil && rec.Pinned {
			rec.Pinned = false
			rec.note("not pinned: %v", p.pinErr)
		}
		if spec.StartInOrder && !waitReady(len(procs)) {
			return rec
		}
	}
	if !waitReady(len(procs)) {
		return rec
	}
	// The peers hold their own copies of the shared files, and have
	// mapped the named segments, now.
	cleanup()
	for _, p := range procs {
		io.WriteString(p.stdin, "go\n")
	}

	// Collect the repetitions.
	want := 0
	for _, s := range slots {
		if reporter(s.role) {
			want++
		}
	}
	reps := make([][]report, m.Reps+1)
	total := 0
	budget := time.Duration(m.Warmup+m.Reps)*m.Duration + graceT
	timer.Reset(budget)
	for total < want*m.Reps {
		select {
		case ev := <-events:
			if ev.exit {
				return c.died(rec, ev.p, procs)
			}
			r := ev.rep
			if r.Error != "" {
				ev.p.lastEr = r.Error
				continue
			}
			if r.Note != "" && !strings.Contains(rec.Notes, r.Note) {
				rec.note("%s", r.Note)
			}
			if r.Ready || r.Rep < 1 || r.Rep > m.Reps {
				continue
			}
			reps[r.Rep] = append(reps[r.Rep], *r)
			total++
		case <-timer.C:
			rec.Status = StatusFailed
			rec.note("no result within %v (%d of %d reports): a peer is stuck (%s)", budget, total, want*m.Reps, c.states(procs))
			return rec
		case <-c.ctx.Done():
			rec.Status = StatusFailed
			rec.note("interrupted")
			return rec
		}
	}
	c.aggregate(&rec, reps[1:])
	if spec.Note != "" {
		rec.note("%s", spec.Note)
	}
	return rec
}

// aggregate fills rec from the per-repetition reports: the sum of the
// reporters' rates in each repetition, then the median over repetitions.
// The latency percentiles are those a pinger reported with its last
// repetition, over the round trips of all repetitions (see ping); Max is
// the largest reported.
func (c *coordinator) aggregate(rec *Record, reps [][]report) {
	var rates []float64
	var errs uint64
	for _, rs := range reps {
		var rate float64
		for _, r := range rs {
			if r.NS > 0 {
				rate += float64(r.Msgs) / (float64(r.NS) / 1e9)
			}
			errs += r.Errs
			if r.P50 > 0 {
				rec.P50NS, rec.P90NS, rec.P99NS, rec.P999NS = r.P50, r.P90, r.P99, r.P999
			}
			rec.MaxNS = max(rec.MaxNS, r.Max)
		}
		rates = append(rates, rate)
	}
	rec.RepRates = rates
	rec.MsgsPerSec = median(rates)
	rec.BytesPerSec = rec.MsgsPerSec * float64(rec.Size)
	if rec.Pattern == PatPingPong {
		rec.BytesPerSec *= 2 // a round trip moves the message both ways
	}
	rec.Status = StatusOK
	if errs > 0 {
		rec.Status = StatusFailed
		rec.note("%d messages out of order or corrupt", errs)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// died records a peer that exited before the measurement was complete.
func (c *coordinator) died(rec Record, p *peerProc, procs []*peerProc) Record {
	rec.Status = StatusFailed
	status := "exited"
	if p.err != nil {
		status = p.err.Error()
	} else {
		status = "exit status 0"
	}
	msg := p.lastEr
	if msg == "" {
		// The end of its stderr (a Python traceback, a Go panic) on one
		// line, so that the table stays a table.
		msg = strings.Join(strings.Fields(p.stderr.String()), " ")
		if len(msg) > 400 {
			msg = "..." + msg[len(msg)-400:]
		}
	}
	if msg != "" {
		rec.note("peer %s died mid-run (%s): %s", p.name, status, msg)
	} else {
		rec.note("peer %s died mid-run (%s)", p.name, status)
	}
	return rec
}

// start launches one peer. Its reader goroutine sends the peer's lines
// and exit on events until quit is closed, and drops them after that.
func (c *coordinator) start(t Transport, m *Measurement, setup *Setup, s slot, cpu int, events chan<- event, quit <-chan struct{}) (*peerProc, error) {
	var files []*os.File
	if setup.Files != nil {
		files = setup.Files(s.role, s.index)
	}
	var cmd *exec.Cmd
	if s.role == "ext" {
		if len(setup.Command) == 0 {
			return nil, errors.New("external transport without a command")
		}
		cmd = exec.Command(setup.Command[0], setup.Command[1:]...)
	} else {
		b, err := json.Marshal(peerSpec{M: *m, Role: s.role, Index: s.index, Args: setup.Args, NFiles: len(files)})
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(c.exe)
		cmd.Env = append(os.Environ(), envPeer+"="+string(b), raceEnv())
		cmd.Env = append(cmd.Env, c.extraEnv...)
	}
	cmd.ExtraFiles = files
	p := &peerProc{name: fmt.Sprintf("%s[%d]", s.role, s.index), cmd: cmd, stderr: &tailBuffer{}, done: make(chan struct{})}
	if s.role == "ext" {
		p.name = t.Spec().Name
	}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdin = stdin
	if cpu >= 0 {
		p.name += fmt.Sprintf("@cpu%d", cpu)
	}
	// A process group of its own: the terminal's ^C reaches only the
	// coordinator, which then kills the whole group (python3's children
	// included).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pinErr, err := startPinned(cmd, cpu)
	if err != nil {
		return nil, err
	}
	p.pinErr = pinErr
	go func() {
		send := func(ev event) {
			select {
			case events <- ev:
			case <-quit:
			}
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r report
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				r = report{Error: "bad line from peer: " + sc.Text()}
			}
			send(event{p: p, rep: &r})
		}
		// A line longer than the scanner's buffer ends the scan: read
		// on to EOF, so the peer never blocks writing to a full pipe.
		io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		close(p.done)
		send(event{p: p, exit: true})
	}()
	return p, nil
}

// stop ends the peers: close their stdin (they exit), then kill what is
// left after exitTimeout.
func (c *coordinator) stop(procs []*peerProc) {
	for _, p := range procs {
		p.stdin.Close()
	}
	timer := time.NewTimer(exitTimeout)
	defer timer.Stop()
	expired := false
	for _, p := range procs {
		if !expired {
			select {
			case <-p.done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		select {
		case <-p.done:
		default:
			c.kills.Add(1)
			killGroup(p.cmd)
			select {
			case <-p.done:
			case <-time.After(exitTimeout):
				// Never wait forever; the process is gone or unkillable.
			}
		}
	}
}

// killGroup sends SIGKILL to the process group of a started peer.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		cmd.Process.Kill()
	}
}

// tailBuffer keeps the last 4 KiB written to it (a peer's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer; only the tail is kept.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 8<<10 {
		rest := b.buf.Bytes()[b.buf.Len()-4<<10:]
		b.buf = *bytes.NewBuffer(slices.Clone(rest))
	}
	return len(p), nil
}

// String returns the kept tail.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > 4<<10 {
		s = s[len(s)-4<<10:]
	}
	return s
}

// raceEnv returns GORACE for peers with the race detector's one-second
// sleep at exit turned off (it matters only to race-enabled builds, such
// as this package's tests, whose peers exit once per measurement).
func raceEnv() string {
	v := os.Getenv("GORACE")
	if strings.Contains(v, "atexit_sleep_ms") {
		return "GORACE=" + v
	}
	return "GORACE=" + strings.TrimSpace(v+" atexit_sleep_ms=0")
}

// states describes what each peer is doing, for a stuck measurement:
// its scheduler state and kernel wait channel (Linux /proc).
func (c *coordinator) states(procs []*peerProc) string {
	var parts []string
	for _, p := range procs {
		pid := p.cmd.Process.Pid
		st := "?"
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
				st = string(b[i+2])
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid)); err == nil && len(b) > 0 && string(b) != "0" {
			st += " " + string(b)
		}
		parts = append(parts, p.name+": "+st)
	}
	return strings.Join(parts, ", ")
}
