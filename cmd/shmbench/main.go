package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/proc"
)

func main() {
	if os.Getenv(envHello) != "" {
		os.Exit(0) // exec-start: this binary as a hello-world program
	}
	// A pool's workers are this binary re-executed by package proc: they
	// run their task here and exit, before anything of shmbench runs.
	// (They also inherit SHMBENCH_PEER from the peer that started them,
	// so this must come first.)
	proc.Main()
	if spec := os.Getenv(envRPCServer); spec != "" {
		os.Exit(rpcServerMain(spec))
	}
	if spec := os.Getenv(envPeer); spec != "" {
		os.Exit(peerMain(spec))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// pythonPath is the Python interpreter to run ("" when none or unusable),
// pythonWhy says why it is unusable and pythonVersion is its version; set
// by run.
var pythonPath, pythonWhy, pythonVersion string

// checkPython asks the interpreter at path whether it is Python 3.7 or
// later (the script needs time.perf_counter_ns) and where it really is
// (sys.executable): a version manager's shim (pyenv's is a shell script)
// can take half a second to start, which every Python measurement would
// otherwise pay. It returns the interpreter to run and its version, or ""
// and the reason.
func checkPython(path string) (exe, version, why string) {
	out, err := exec.Command(path, "-c", "import sys; print(sys.version_info >= (3, 7)); print(sys.version.split()[0]); print(sys.executable)").Output()
	if err != nil {
		return "", "", fmt.Sprintf("%s does not run: %v", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "True" {
		return "", "", path + " is older than Python 3.7"
	}
	exe = path
	if len(lines) >= 3 {
		if real := strings.TrimSpace(lines[2]); real != "" {
			if _, err := os.Stat(real); err == nil {
				exe = real
			}
		}
	}
	if len(lines) >= 2 {
		version = strings.TrimSpace(lines[1])
	}
	return exe, version, ""
}

// run is the whole command; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "shmbench:", err)
		fmt.Fprintln(stderr, "run 'shmbench -h' for usage")
		return 2
	}
	pythonPath, pythonWhy, pythonVersion = "", "no "+cfg.python+" on PATH", ""
	if cfg.python == "" {
		pythonWhy = "-python is empty"
	} else {
		if p, err := exec.LookPath(cfg.python); err == nil {
			pythonPath, pythonVersion, pythonWhy = checkPython(p)
		}
	}
	if cfg.list {
		printList(stdout)
		return 0
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "shmbench: cannot find my own executable to start peers:", err)
		return 1
	}
	defer removeScript()
	defer stopRedis()
	defer stopRPCServers()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	host := describeHost(cfg)
	co := &coordinator{ctx: ctx, exe: exe, cpus: allowedCPUs(), pin: cfg.pin}
	if len(co.cpus) < 2 {
		co.pin = false
	}
	doc := &Document{Schema: SchemaVersion, Started: time.Now().UTC(), Host: host, Config: configJSON(cfg)}
	plan := buildPlan(cfg)
	var all []planItem // the plan once per round, for the progress lines
	for range cfg.rounds {
		all = append(all, plan...)
	}
	prog := newProgress(stderr, all)
	start := time.Now()
	rounds := make([][]Record, len(plan)) // each item's record of every round run
	for r := 0; r < cfg.rounds && ctx.Err() == nil; r++ {
		for i, item := range plan {
			if ctx.Err() != nil {
				break
			}
			if item.rec != nil {
				if r == 0 {
					rounds[i] = append(rounds[i], *item.rec)
				}
				continue
			}
			prog.show(item)
			t0 := time.Now()
			rec := co.measure(item.t, item.m)
			rec.WallNS = int64(time.Since(t0))
			rounds[i] = append(rounds[i], rec)
			prog.finished(item, rec)
		}
	}
	for i := range plan {
		if len(rounds[i]) > 0 {
			doc.Results = append(doc.Results, medianRound(rounds[i], cfg.rounds))
		}
	}
	prog.done()
	doc.WallNS = int64(time.Since(start))
	applyBaseline(doc.Results, cfg.baseline)
	doc.Legend = legendFor(doc.Results)
	doc.Summary = summarize(doc.Results)
	interrupted := ctx.Err() != nil

	if cfg.svgFile != "" {
		if err := os.WriteFile(cfg.svgFile, renderSVG(doc), 0o644); err != nil {
			fmt.Fprintln(stderr, "shmbench:", err)
			return 1
		}
	}
	if cfg.jsonOut {
		if err := writeJSON(stdout, doc); err != nil {
			fmt.Fprintln(stderr, "shmbench:", err)
			return 1
		}
	} else {
		writeTable(stdout, doc, cfg)
	}
	if interrupted {
		fmt.Fprintln(stderr, "shmbench: interrupted; peers stopped, results above are partial")
		return 130
	}
	if n := countStatus(doc.Results, StatusFailed); n > 0 {
		fmt.Fprintf(stderr, "shmbench: %d of %d measurements failed (see their notes)\n", n, len(doc.Results))
		return 1
	}
	return 0
}

// countStatus counts the records with status st.
// medianRound is the record reported for a measurement run in several
// rounds (-rounds): the one of median rate (the lower of the two middle
// ones for an even count), with every round's rate in its notes; a round
// that did not end OK is reported instead, the first such, since a median
// would hide it. A measurement run once is its record.
func medianRound(recs []Record, rounds int) Record {
	if len(recs) == 1 && rounds == 1 {
		return recs[0]
	}
	for i, r := range recs {
		if r.Status != StatusOK {
			if len(recs) > 1 {
				r.note("round %d of %d", i+1, len(recs))
			}
			return r
		}
	}
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(recs[a].MsgsPerSec, recs[b].MsgsPerSec) })
	rec := recs[order[(len(order)-1)/2]]
	rates := make([]string, len(recs))
	for i, r := range recs {
		rates[i] = fmtRate(r.MsgsPerSec)
	}
	rec.note("median of %d rounds, msgs/s by round: %s", len(recs), strings.Join(rates, ", "))
	return rec
}

func countStatus(recs []Record, st string) int {
	n := 0
	for _, r := range recs {
		if r.Status == st {
			n++
		}
	}
	return n
}

// planItem is a measurement to run, or a record to report as is (skipped,
// unavailable).
type planItem struct {
	t   Transport
	m   Measurement
	rec *Record
}

// buildPlan lists the measurements of a run in report order.
func buildPlan(cfg *config) []planItem {
	var plan []planItem
	for _, p := range cfg.patterns {
		sizes := cfg.sizes
		names := cfg.transports
		switch p {
		case PatContention:
			sizes = []int{8} // one int64
		case PatScaling:
			sizes = []int{64}
			if cfg.quick {
				names = nil // a minute's curve: not in a short run
			}
		case PatRPC:
			sizes = []int{2} // the body's bytes
			if cfg.quick {
				names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(rpcQuick, n) })
			}
		case PatDict:
			sizes = dictSizes
			if cfg.quick {
				sizes = dictQuickSizes
				names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(dictQuick, n) })
			}
		case PatPool:
			sizes = []int{8} // one int each way
			names = poolOrder(names)
			if cfg.quick {
				names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(poolQuick, n) })
			}
		}
		seenFixed := map[string]bool{}
		reportedUnavailable := map[string]bool{}
		procs := []int{0} // the pattern's own count
		switch p {
		case PatDict:
			procs = dictProcs
		case PatScaling:
			procs = scalingProcs
		case PatRPC:
			procs = rpcClients
			if cfg.quick {
				procs = []int{1}
			}
		}
		for _, size := range sizes {
			for _, np := range procs {
				for _, name := range names {
					t, _ := lookup(name)
					spec := t.Spec()
					if !slices.Contains(spec.Patterns, p) {
						continue
					}
					sz := size
					if spec.FixedSize > 0 {
						if seenFixed[name] {
							continue
						}
						seenFixed[name] = true
						sz = spec.FixedSize
					}
					m := Measurement{Transport: name, Pattern: p, Size: sz, Producers: 1, Consumers: 1,
						Duration: cfg.duration, Reps: cfg.reps, Warmup: warmupReps}
					switch p {
					case PatMPMC:
						m.Producers, m.Consumers = cfg.producers, cfg.consumers
					case PatContention:
						m.Producers, m.Consumers = 0, cfg.contenders
					case PatDict:
						m.Producers, m.Consumers = 0, np
					case PatScaling:
						m.Producers, m.Consumers = np, np
					case PatRPC:
						m.Producers, m.Consumers = 0, np
					case PatPool:
						m.Producers, m.Consumers = 0, poolWorkers(spec, cfg)
						m.Tasks = poolTasks(spec, cfg)
						if spec.Startup {
							m.Size, sz = 0, 0
						}
					}
					base := Record{Transport: name, Kind: spec.Kind, Pattern: p, Size: sz,
						Producers: m.Producers, Consumers: m.Consumers, Repetitions: m.Reps,
						DurationNS: int64(m.Duration)}
					if spec.NoProducer {
						base.Producers = 0
					}
					if why := t.Unavailable(); why != "" {
						if !reportedUnavailable[name] {
							base.Consumers = max(base.Consumers, 1)
							reportedUnavailable[name] = true
							base.Status, base.Notes = StatusUnavailable, why
							plan = append(plan, planItem{rec: &base})
						}
						continue
					}
					if err := supports(t, p, sz); err != nil {
						base.Status, base.Notes = StatusSkipped, err.Error()
						plan = append(plan, planItem{rec: &base})
						continue
					}
					plan = append(plan, planItem{t: t, m: m})
				}
			}
		}
	}
	return plan
}

// Costs of a run beyond its repetitions, as measured on a 2-CPU virtual
// machine (and rounded up), for planCost: starting and stopping the peers
// of one measurement (re-executions of shmbench; or python3, which forks
// its processes), and what a run does once (probes, the Python check).
const (
	costPerMeasurement = 50 * time.Millisecond
	costPerGoPeer      = 25 * time.Millisecond
	costPerPython      = 200 * time.Millisecond
	costPerPythonProc  = 50 * time.Millisecond
	costPerRun         = 500 * time.Millisecond
)

// planCost estimates how long the plan takes to run: for each
// measurement its warm-up and measured repetitions, plus its start-up
// and stop (see the costs above). It is what keeps the defaults at about
// a minute on two CPUs and -quick under 20 seconds (TestPlanCost).
func planCost(plan []planItem) time.Duration {
	total := costPerRun
	for _, it := range plan {
		if it.rec != nil {
			continue // reported, not measured
		}
		m := it.m
		spec := it.t.Spec()
		rep := m.Duration
		if spec.ExpectRate > 0 {
			rep = max(rep, time.Duration(float64(m.Tasks)/spec.ExpectRate*1e9))
		}
		total += time.Duration(m.Warmup+m.Reps) * rep
		switch {
		case spec.External:
			total += costPerPython + time.Duration(externalProcs(&m))*costPerPythonProc
		default:
			total += costPerMeasurement + time.Duration(len(layout(spec, &m)))*costPerGoPeer
			if m.Pattern == PatPool {
				total += time.Duration(m.Consumers) * costPerGoPeer // the workers
			}
		}
	}
	return total
}

// fallbackBaseline is the baseline of a record whose pattern the
// -baseline transport does not run: for contention, Python's equivalent
// (py-array for arrays, py-value otherwise); for pools, Python's
// Pool.map with its default chunksize (py-pool), with chunksize 1 for
// the rows that pay per task (py-pool-c1), and the start of a fork Pool
// for the start-up rows (py-pool-start).
func fallbackBaseline(r *Record) string {
	switch r.Pattern {
	case PatDict:
		return "redis-get-p64"
	case PatRPC:
		if strings.HasPrefix(r.Transport, "grpc-") {
			return "grpc-unix"
		}
		return "http-unix"
	case PatPool:
		t, _ := lookup(r.Transport)
		switch {
		case t == nil:
			return ""
		case t.Spec().Startup:
			return "py-pool-start"
		case t.Spec().PerTask:
			return "py-pool-c1"
		}
		return "py-pool"
	case PatContention:
	default:
		return ""
	}
	if strings.Contains(r.Transport, "array") {
		return "py-array"
	}
	return "py-value"
}

// applyBaseline sets Baseline and Ratio on every measured record: the
// ratio is how many times better than the baseline transport at the same
// pattern, size and process counts (throughput: msgs_per_sec / baseline's;
// ping-pong and start-up: baseline's p50 / p50). Ratio is 0 when there is
// no baseline.
func applyBaseline(recs []Record, baseline string) {
	for i := range recs {
		r := &recs[i]
		if r.Status != StatusOK {
			continue
		}
		name := baseline
		if !hasPattern(recs, name, r.Pattern) {
			name = fallbackBaseline(r)
		}
		for _, b := range recs {
			if b.Transport != name || b.Status != StatusOK || b.Pattern != r.Pattern ||
				b.Size != r.Size || b.Consumers != r.Consumers && r.Pattern != PatPool {
				continue // pools: one baseline for every worker count (the table shows each)
			}
			r.Baseline = name
			switch {
			case (r.Pattern == PatPingPong || isStartup(r.Transport)) && r.P50NS > 0 && b.P50NS > 0:
				r.Ratio = float64(b.P50NS) / float64(r.P50NS)
			case r.Pattern != PatPingPong && b.MsgsPerSec > 0:
				r.Ratio = r.MsgsPerSec / b.MsgsPerSec
			}
			break
		}
	}
}

func hasPattern(recs []Record, name string, p Pattern) bool {
	return slices.ContainsFunc(recs, func(r Record) bool { return r.Transport == name && r.Pattern == p })
}

// printList prints the transports and patterns.
func printList(w io.Writer) {
	fmt.Fprintln(w, "Patterns:")
	for _, p := range allPatterns {
		fmt.Fprintf(w, "  %-11s %s\n", p, patternDesc[p])
	}
	fmt.Fprintln(w, "\nTransports:")
	for _, t := range registry {
		s := t.Spec()
		var ps []string
		for _, p := range s.Patterns {
			ps = append(ps, string(p))
		}
		avail := ""
		if why := t.Unavailable(); why != "" {
			avail = "  [unavailable: " + why + "]"
		}
		fmt.Fprintf(w, "  %-12s %-10s %s (%s)%s\n", s.Name, s.Kind, s.Desc, joinStrings(ps), avail)
	}
}

func joinStrings(s []string) string { return strings.Join(s, ", ") }

// describeHost collects what a reader needs to interpret the numbers.
func describeHost(cfg *config) Host {
	h := Host{OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(),
		NumCPU: runtime.NumCPU(), CPUs: allowedCPUs(), Pinning: cfg.pin}
	if len(h.CPUs) < 2 {
		h.Pinning = false
	}
	h.CPUModel = cpuModel()
	h.Kernel = kernelRelease()
	if pythonPath != "" {
		h.Python = pythonVersion
	}
	return h
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// cpuModel reads the CPU model name from /proc/cpuinfo ("" off Linux).
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range splitLines(string(b)) {
		if k, v, ok := cutColon(line); ok && (k == "model name" || k == "Model" || k == "CPU part") {
			return v
		}
	}
	return ""
}

// kernelRelease reads the kernel release ("" off Linux).
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return string(trimNL(b))
}
