package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// SchemaVersion names the JSON format written by -json.
const SchemaVersion = "shmbench/v1"

// Document is what -json prints.
type Document struct {
	Schema  string     `json:"schema"`
	Started time.Time  `json:"started"`
	WallNS  int64      `json:"wall_ns"`
	Host    Host       `json:"host"`
	Config  ConfigJSON `json:"config"`
	Results []Record   `json:"results"`
	// Legend describes every transport that has a record (the legend
	// under the table).
	Legend []LegendEntry `json:"legend"`
	// Summary is what to conclude, computed from Results (the closing
	// lines of the table).
	Summary []string `json:"summary"`
}

// Host describes the machine of a run.
type Host struct {
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Kernel   string `json:"kernel"`
	CPUModel string `json:"cpu_model"`
	NumCPU   int    `json:"num_cpu"`
	CPUs     []int  `json:"cpus"`
	Pinning  bool   `json:"pinning"`
	Go       string `json:"go"`
	Python   string `json:"python"`
}

// ConfigJSON is the configuration of a run as -json reports it.
type ConfigJSON struct {
	Sizes       []int    `json:"sizes"`
	DurationNS  int64    `json:"duration_ns"`
	Repetitions int      `json:"repetitions"`
	Warmup      int      `json:"warmup"`
	Rounds      int      `json:"rounds"`
	Patterns    []string `json:"patterns"`
	Transports  []string `json:"transports"`
	Baseline    string   `json:"baseline"`
	Producers   int      `json:"producers"`
	Consumers   int      `json:"consumers"`
	Contenders  int      `json:"contenders"`
	Workers     int      `json:"workers"`
}

func configJSON(c *config) ConfigJSON {
	var ps []string
	for _, p := range c.patterns {
		ps = append(ps, string(p))
	}
	return ConfigJSON{Sizes: c.sizes, DurationNS: int64(c.duration), Repetitions: c.reps, Warmup: warmupReps, Rounds: c.rounds,
		Patterns: ps, Transports: c.transports, Baseline: c.baseline,
		Producers: c.producers, Consumers: c.consumers, Contenders: c.contenders, Workers: c.workers}
}

func writeJSON(w io.Writer, doc *Document) error {
	for i := range doc.Results {
		if doc.Results[i].RepRates == nil {
			doc.Results[i].RepRates = []float64{}
		}
	}
	if doc.Legend == nil {
		doc.Legend = []LegendEntry{}
	}
	if doc.Summary == nil {
		doc.Summary = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// writeTable prints the human-readable report.
func writeTable(w io.Writer, doc *Document, cfg *config) {
	h := doc.Host
	fmt.Fprintf(w, "shmbench: %s/%s, %s, %d CPUs", h.OS, h.Arch, orDash(h.CPUModel), len(h.CPUs))
	if h.Kernel != "" {
		fmt.Fprintf(w, ", kernel %s", h.Kernel)
	}
	fmt.Fprintf(w, ", %s", h.Go)
	if h.Python != "" {
		fmt.Fprintf(w, ", python %s", h.Python)
	}
	fmt.Fprintln(w)
	pin := "peers pinned to distinct CPUs where they fit"
	switch {
	case len(h.CPUs) < 2:
		pin = "peers not pinned (one CPU: busy-spinning references skipped)"
	case !h.Pinning:
		pin = "peers not pinned (-nopin)"
	}
	fmt.Fprintf(w, "median of %d repetitions x %v after a warm-up; %s; run took %.1fs\n",
		cfg.reps, cfg.duration, pin, float64(doc.WallNS)/1e9)
	fmt.Fprintln(w, "vs X: times better than transport X at the same size (throughput: msgs/s over X's; latency: X's p50 over p50).")
	fmt.Fprintln(w, "spread: half the range of the repetitions, in % of the median. Figures move with the host")
	fmt.Fprintln(w, "(vCPUs migrate, neighbours load them): compare rows of one run, not runs.")

	for _, p := range cfg.patterns {
		var recs []Record
		for _, r := range doc.Results {
			if r.Pattern == p {
				recs = append(recs, r)
			}
		}
		if len(recs) == 0 {
			continue
		}
		slices.SortStableFunc(recs, func(a, b Record) int { return a.Size - b.Size })
		fmt.Fprintln(w)
		switch p {
		case PatThroughput:
			fmt.Fprintln(w, "Throughput: 1 producer process -> 1 consumer process")
			throughputTable(w, recs, cfg.baseline)
		case PatMPMC:
			fmt.Fprintf(w, "Throughput: %s -> %s\n", processes(cfg.producers, "producer"), processes(cfg.consumers, "consumer"))
			throughputTable(w, recs, cfg.baseline)
		case PatPingPong:
			fmt.Fprintln(w, "Latency: ping-pong round trip between two processes")
			latencyTable(w, recs, cfg.baseline)
		case PatContention:
			fmt.Fprintf(w, "Contention: %d processes incrementing shared int64s under one lock (value-atomic: lock-free);\n", cfg.contenders)
			fmt.Fprintln(w, "vs python: against Python's equivalent (py-value, or py-array for array)")
			contentionTable(w, recs)
		case PatScaling:
			fmt.Fprintf(w, "Scaling: n producer processes -> n consumer processes at 64 B on %d CPUs; per CPU: msgs/s over min(2n, CPUs)\n", len(doc.Host.CPUs))
			scalingTable(w, recs, len(doc.Host.CPUs))
		case PatRPC:
			fmt.Fprintln(w, "RPC: net/http GETs (2-byte body) and gRPC unary calls from client processes to a server process;")
			fmt.Fprintln(w, "vs unix: against the same protocol over a Unix socket with as many clients")
			rpcTable(w, recs)
		case PatDict:
			fmt.Fprintln(w, "Shared map: processes on one map of 4096 entries, each value checked; 64 B: 8 B keys (dict.Map),")
			fmt.Fprintln(w, "1 KiB: 32 B string keys (dict.Bytes); in-process rows are goroutines of one process")
			dictTable(w, recs)
		case PatPool:
			poolTables(w, recs, cfg)
		}
	}
	writeLegend(w, doc.Legend)
	writeSummary(w, doc.Summary)
}

// processes says "1 producer process" or "3 producer processes".
func processes(n int, what string) string {
	if n == 1 {
		return "1 " + what + " process"
	}
	return fmt.Sprintf("%d %s processes", n, what)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ratioHeader names the ratio column after the records' baseline.
func ratioHeader(recs []Record, def string) string {
	for _, r := range recs {
		if r.Baseline != "" {
			return "vs " + r.Baseline
		}
	}
	return "vs " + def
}

func throughputTable(w io.Writer, recs []Record, base string) {
	fmt.Fprintf(w, "  %7s  %-12s %-10s %10s %7s %12s %11s  %s\n", "size", "transport", "kind", "msgs/s", "spread", "bytes/s", ratioHeader(recs, base), "notes")
	last := -1
	for _, r := range recs {
		if r.Size != last && last != -1 {
			fmt.Fprintln(w)
		}
		last = r.Size
		if r.Status != StatusOK {
			fmt.Fprintf(w, "  %7s  %-12s %-10s %10s %7s %12s %11s  %s: %s\n", fmtSize(r.Size), r.Transport, r.Kind, "-", "-", "-", "-", r.Status, r.Notes)
			continue
		}
		fmt.Fprintf(w, "  %7s  %-12s %-10s %10s %7s %12s %11s  %s\n", fmtSize(r.Size), r.Transport, r.Kind,
			fmtRate(r.MsgsPerSec), fmtSpread(r), fmtBytes(r.BytesPerSec), fmtRatio(r.Ratio), r.Notes)
	}
}

func latencyTable(w io.Writer, recs []Record, base string) {
	fmt.Fprintf(w, "  %7s  %-12s %-10s %8s %8s %8s %8s %10s %11s  %s\n", "size", "transport", "kind", "p50", "p90", "p99", "p99.9", "trips/s", ratioHeader(recs, base), "notes")
	last := -1
	for _, r := range recs {
		if r.Size != last && last != -1 {
			fmt.Fprintln(w)
		}
		last = r.Size
		if r.Status != StatusOK {
			fmt.Fprintf(w, "  %7s  %-12s %-10s %8s %8s %8s %8s %10s %11s  %s: %s\n", fmtSize(r.Size), r.Transport, r.Kind, "-", "-", "-", "-", "-", "-", r.Status, r.Notes)
			continue
		}
		fmt.Fprintf(w, "  %7s  %-12s %-10s %8s %8s %8s %8s %10s %11s  %s\n", fmtSize(r.Size), r.Transport, r.Kind,
			fmtNS(r.P50NS), fmtNS(r.P90NS), fmtNS(r.P99NS), fmtNS(r.P999NS), fmtRate(r.MsgsPerSec), fmtRatio(r.Ratio), r.Notes)
	}
}

func contentionTable(w io.Writer, recs []Record) {
	fmt.Fprintf(w, "  %-12s %-10s %6s %12s %11s  %s\n", "transport", "kind", "procs", "updates/s", "vs python", "notes")
	for _, r := range recs {
		if r.Status != StatusOK {
			fmt.Fprintf(w, "  %-12s %-10s %6d %12s %11s  %s: %s\n", r.Transport, r.Kind, r.Consumers, "-", "-", r.Status, r.Notes)
			continue
		}
		fmt.Fprintf(w, "  %-12s %-10s %6d %12s %11s  %s\n", r.Transport, r.Kind, r.Consumers, fmtRate(r.MsgsPerSec), fmtRatio(r.Ratio), r.Notes)
	}
}

// rpcTable prints the rpc rows: by protocol and client count.
func rpcTable(w io.Writer, recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Transport[:4], b.Transport[:4]), a.Consumers-b.Consumers)
	})
	fmt.Fprintf(w, "  %-12s %-10s %7s %12s %7s %8s  %s\n", "transport", "kind", "clients", "requests/s", "spread", "vs unix", "notes")
	last := ""
	for _, r := range recs {
		if k := fmt.Sprint(r.Transport[:4], r.Consumers); k != last {
			if last != "" {
				fmt.Fprintln(w)
			}
			last = k
		}
		if r.Status != StatusOK {
			fmt.Fprintf(w, "  %-12s %-10s %7d %12s %7s %8s  %s: %s\n", r.Transport, r.Kind, r.Consumers, "-", "-", "-", r.Status, r.Notes)
			continue
		}
		fmt.Fprintf(w, "  %-12s %-10s %7d %12s %7s %8s  %s\n", r.Transport, r.Kind, r.Consumers, fmtRate(r.MsgsPerSec), fmtSpread(r), fmtRatio(r.Ratio), r.Notes)
	}
}

// scalingProcs are the process counts of the scaling pattern (each side).
var scalingProcs = []int{1, 2, 4, 8, 16}

// scalingTable prints the scaling rows: by transport, then n, with the
// rate per CPU in use and against the transport's own 1:1 row.
func scalingTable(w io.Writer, recs []Record, cpus int) {
	slices.SortStableFunc(recs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(transportRank(a.Transport), transportRank(b.Transport)), a.Producers-b.Producers)
	})
	fmt.Fprintf(w, "  %-12s %-10s %7s %10s %7s %10s %8s  %s\n", "transport", "kind", "n:n", "msgs/s", "spread", "per CPU", "vs 1:1", "notes")
	one := map[string]float64{}
	last := ""
	for _, r := range recs {
		if r.Transport != last && last != "" {
			fmt.Fprintln(w)
		}
		last = r.Transport
		nn := fmt.Sprintf("%d:%d", r.Producers, r.Consumers)
		if r.Status != StatusOK {
			fmt.Fprintf(w, "  %-12s %-10s %7s %10s %7s %10s %8s  %s: %s\n", r.Transport, r.Kind, nn, "-", "-", "-", "-", r.Status, r.Notes)
			continue
		}
		if r.Producers == 1 {
			one[r.Transport] = r.MsgsPerSec
		}
		used := max(1, min(r.Producers+r.Consumers, cpus))
		fmt.Fprintf(w, "  %-12s %-10s %7s %10s %7s %10s %8s  %s\n", r.Transport, r.Kind, nn, fmtRate(r.MsgsPerSec), fmtSpread(r),
			fmtRate(r.MsgsPerSec/float64(used)), times(r.MsgsPerSec, one[r.Transport]), r.Notes)
	}
}

// transportRank is a transport's place in the registry (report order).
func transportRank(name string) int {
	for i, t := range registry {
		if t.Spec().Name == name {
			return i
		}
	}
	return len(registry)
}

// dictTable prints the dict rows: by shape, then process count.
func dictTable(w io.Writer, recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int { return cmp.Or(a.Size-b.Size, a.Consumers-b.Consumers) })
	fmt.Fprintf(w, "  %7s  %-14s %-10s %5s %10s %7s %11s  %s\n", "value", "transport", "kind", "procs", "ops/s", "spread", ratioHeader(recs, "redis-get-p64"), "notes")
	last := [2]int{-1, -1}
	for _, r := range recs {
		if k := [2]int{r.Size, r.Consumers}; k != last {
			if last[0] != -1 {
				fmt.Fprintln(w)
			}
			last = k
		}
		if r.Status != StatusOK {
			why := r.Status + ": " + r.Notes
			if r.Status == StatusUnavailable {
				why = r.Notes
			}
			fmt.Fprintf(w, "  %7s  %-14s %-10s %5d %10s %7s %11s  %s\n", fmtSize(r.Size), r.Transport, r.Kind, r.Consumers, "-", "-", "-", why)
			continue
		}
		fmt.Fprintf(w, "  %7s  %-14s %-10s %5d %10s %7s %11s  %s\n", fmtSize(r.Size), r.Transport, r.Kind, r.Consumers,
			fmtRate(r.MsgsPerSec), fmtSpread(r), fmtRatio(r.Ratio), r.Notes)
	}
}

// fmtSize prints a size in binary units: 64 B, 4 KiB, 1 MiB.
func fmtSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fmtRate prints a rate with an SI suffix and three significant digits.
func fmtRate(v float64) string {
	switch {
	case v >= 1e9:
		return sig3(v/1e9) + "G"
	case v >= 1e6:
		return sig3(v/1e6) + "M"
	case v >= 1e3:
		return sig3(v/1e3) + "k"
	}
	return sig3(v)
}

// fmtBytes prints bytes per second in decimal units.
func fmtBytes(v float64) string {
	switch {
	case v >= 1e9:
		return sig3(v/1e9) + " GB/s"
	case v >= 1e6:
		return sig3(v/1e6) + " MB/s"
	case v >= 1e3:
		return sig3(v/1e3) + " kB/s"
	}
	return sig3(v) + " B/s"
}

// fmtNS prints a duration in ns, µs or ms with three significant digits.
func fmtNS(ns int64) string { return fmtNSf(float64(ns)) }

// fmtNSf is fmtNS for a fraction of nanoseconds (2.51ns).
func fmtNSf(v float64) string {
	switch {
	case v >= 1e6:
		return sig3(v/1e6) + "ms"
	case v >= 1e3:
		return sig3(v/1e3) + "µs"
	}
	return sig3(v) + "ns"
}

// fmtSpread prints the range of the repetitions' rates as a percentage of
// their median: a quick measure of how steady the machine was.
func fmtSpread(r Record) string {
	if len(r.RepRates) < 2 || r.MsgsPerSec <= 0 {
		return "-"
	}
	return fmt.Sprintf("±%.0f%%", (slices.Max(r.RepRates)-slices.Min(r.RepRates))/r.MsgsPerSec*50)
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	if r >= 10 {
		return fmt.Sprintf("%.0fx", r)
	}
	return fmt.Sprintf("%.2fx", r)
}

func sig3(v float64) string {
	switch {
	case v >= 100 || v == math.Trunc(v) && v >= 10:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// progress reports the run as it goes, on stderr: a live status line
// (measurement k of n, elapsed time, what is running) when stderr is a
// terminal, else one line per measurement done, with its result, so that
// "shmbench > out.txt" or "shmbench 2>log" is never silent for a minute.
// stdout carries only the report.
type progress struct {
	w     io.Writer
	live  bool
	total int // measurements to run (records reported as is not counted)
	k     int // measurements started
	start time.Time
}

func newProgress(stderr io.Writer, plan []planItem) *progress {
	p := &progress{w: stderr, live: isTerminal(stderr), start: time.Now()}
	for _, it := range plan {
		if it.rec == nil {
			p.total++
		}
	}
	return p
}

// what names a measurement: "throughput  queue        64 B".
func (p *progress) what(it planItem) string {
	size := fmtSize(it.m.Size)
	switch it.m.Pattern {
	case PatPool:
		size = fmt.Sprintf("%dw", it.m.Consumers) // workers, not a message size
	case PatDict:
		size = fmt.Sprintf("%s x%d", size, it.m.Consumers)
	case PatRPC:
		size = fmt.Sprintf("x%d", it.m.Consumers)
	}
	return fmt.Sprintf("%-10s %-12s %7s", it.m.Pattern, it.m.Transport, size)
}

// show announces the measurement it starts (live line only).
func (p *progress) show(it planItem) {
	p.k++
	if p.live {
		fmt.Fprintf(p.w, "\r\033[K[%3d/%d %4.0fs] %s ...", p.k, p.total, time.Since(p.start).Seconds(), p.what(it))
	}
}

// finished reports the result of the measurement show announced (a line
// of its own when stderr is not a terminal).
func (p *progress) finished(it planItem, r Record) {
	if p.live {
		return
	}
	fmt.Fprintf(p.w, "[%3d/%d %4.0fs] %s  %s\n", p.k, p.total, time.Since(p.start).Seconds(), p.what(it), resultText(r))
}

// resultText says what a measurement gave, in a few words.
func resultText(r Record) string {
	switch {
	case r.Status != StatusOK:
		return r.Status + ": " + r.Notes
	case r.Pattern == PatPool && r.P50NS > 0:
		return "start p50 " + fmtNS(r.P50NS)
	case r.Pattern == PatPool:
		return fmtRate(r.MsgsPerSec) + " tasks/s"
	case r.Pattern == PatPingPong:
		return "p50 " + fmtNS(r.P50NS)
	case r.Pattern == PatContention:
		return fmtRate(r.MsgsPerSec) + " updates/s"
	case r.Pattern == PatDict:
		return fmtRate(r.MsgsPerSec) + " ops/s"
	case r.Pattern == PatRPC:
		return fmtRate(r.MsgsPerSec) + " requests/s"
	}
	return fmtRate(r.MsgsPerSec) + " msgs/s, " + fmtBytes(r.BytesPerSec)
}

// done erases the live line, or says how long the run took.
func (p *progress) done() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		return
	}
	if p.k > 0 {
		fmt.Fprintf(p.w, "shmbench: %d measurements in %.1fs\n", p.k, time.Since(p.start).Seconds())
	}
}
