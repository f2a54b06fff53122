package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// LegendEntry describes one transport of a run, as the legend under the
// table (and "legend" in -json) gives it.
type LegendEntry struct {
	Transport string `json:"transport"`
	Kind      string `json:"kind"`
	What      string `json:"what"`
	Batching  string `json:"batching"`
	Batched   bool   `json:"batched"`
}

// legendFor lists, in registry order, every transport that has a record
// in recs.
func legendFor(recs []Record) []LegendEntry {
	var out []LegendEntry
	for _, t := range registry {
		s := t.Spec()
		if !slices.ContainsFunc(recs, func(r Record) bool { return r.Transport == s.Name }) {
			continue
		}
		b := s.Batching
		if b == "" {
			b = "-"
		}
		out = append(out, LegendEntry{Transport: s.Name, Kind: s.Kind, What: s.Desc, Batching: b, Batched: s.Batched})
	}
	return out
}

// writeLegend prints the legend: one line per transport, then which rows
// compare like with like.
func writeLegend(w io.Writer, legend []LegendEntry) {
	if len(legend) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Transports (what each row is, and how many messages one call moves):")
	width := 12
	for _, e := range legend {
		width = max(width, len(e.Transport))
	}
	for _, e := range legend {
		fmt.Fprintf(w, "  %-*s %s; batching: %s\n", width, e.Transport, e.What, e.Batching)
	}
	var single, batched, refs []string
	var poolChunked, poolPerTask, poolStart []string
	for _, e := range legend {
		t, _ := lookup(e.Transport)
		if t == nil || !slices.ContainsFunc(t.Spec().Patterns, func(p Pattern) bool { return p != PatContention }) {
			continue // contention rows are compared with Python's own
		}
		if slices.Equal(t.Spec().Patterns, []Pattern{PatPool}) {
			switch s := t.Spec(); {
			case s.Startup:
				poolStart = append(poolStart, e.Transport)
			case s.Batched:
				poolChunked = append(poolChunked, e.Transport)
			default:
				poolPerTask = append(poolPerTask, e.Transport)
			}
			continue
		}
		switch {
		case e.Kind == KindReference:
			refs = append(refs, e.Transport)
		case e.Batched:
			batched = append(batched, e.Transport)
		default:
			single = append(single, e.Transport)
		}
	}
	var parts []string
	if len(single) > 0 {
		parts = append(parts, "one message per call: "+strings.Join(single, ", "))
	}
	if len(batched) > 0 {
		parts = append(parts, "several messages per call or system call: "+strings.Join(batched, ", "))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "Compare like with like: %s.\n", strings.Join(parts, "; "))
	}
	parts = nil
	if len(poolChunked) > 0 {
		parts = append(parts, "several tasks per message: "+strings.Join(poolChunked, ", "))
	}
	if len(poolPerTask) > 0 {
		parts = append(parts, "one task per message: "+strings.Join(poolPerTask, ", "))
	}
	if len(poolStart) > 0 {
		parts = append(parts, "start-up: "+strings.Join(poolStart, ", "))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "Compare like with like in pools: %s.\n", strings.Join(parts, "; "))
	}
	if len(refs) > 0 {
		fmt.Fprintf(w, "%s: this machine's limits, measured in the same run; yardsticks, not competitors.\n", strings.Join(refs, ", "))
	}
}

// writeSummary prints the conclusions of summarize under the table.
func writeSummary(w io.Writer, summary []string) {
	if len(summary) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "What to conclude from this run:")
	for _, s := range summary {
		fmt.Fprintf(w, "  - %s\n", s)
	}
}

// okRecord returns the ok record of transport tr for pattern p at size.
func okRecord(recs []Record, tr string, p Pattern, size int) (Record, bool) {
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == p && r.Size == size && r.Status == StatusOK {
			return r, true
		}
	}
	return Record{}, false
}

// times says how many times a is b: "12x", "1.90x" (fmtRatio).
func times(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmtRatio(a / b)
}

// percent says what percentage of b a is: "45%".
func percent(a, b float64) string { return fmt.Sprintf("%.0f%%", a/b*100) }

// share says how a compares with b: "45% of" up to b, "1.90x" beyond.
func share(a, b float64) string {
	if a <= b {
		return percent(a, b) + " of"
	}
	return times(a, b)
}

// summarize draws the conclusions a newcomer wants from the records of a
// run, each computed from the run's own results: how shmkit's queue
// compares with a Unix socket written per message and a buffered one,
// with Python, with this machine's ceilings, at small and large messages,
// in latency, with several processes and under lock contention. A
// sentence whose records are missing (not measured, skipped, failed) is
// left out; nil when there is nothing to compare.
func summarize(recs []Record) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	// The small size: 64 B where queue ran there, else its smallest.
	var sizes []int
	for _, r := range recs {
		if r.Transport == "queue" && r.Pattern == PatThroughput && r.Status == StatusOK && !slices.Contains(sizes, r.Size) {
			sizes = append(sizes, r.Size)
		}
	}
	slices.Sort(sizes)
	if len(sizes) > 0 {
		small := sizes[0]
		if slices.Contains(sizes, 64) {
			small = 64
		}
		q, _ := okRecord(recs, "queue", PatThroughput, small)
		s := fmt.Sprintf("At %s, one producer process to one consumer process, shmkit's queue moves %s msgs/s", fmtSize(small), fmtRate(q.MsgsPerSec))
		var vs []string
		if u, ok := okRecord(recs, "unix", PatThroughput, small); ok {
			vs = append(vs, fmt.Sprintf("%s the messages of a Unix socket written once per message (unix)", times(q.MsgsPerSec, u.MsgsPerSec)))
		}
		if u, ok := okRecord(recs, "unix-buf", PatThroughput, small); ok {
			vs = append(vs, fmt.Sprintf("%s those of one buffered with bufio (unix-buf)", times(q.MsgsPerSec, u.MsgsPerSec)))
		}
		if p, ok := okRecord(recs, "py-queue", PatThroughput, small); ok {
			vs = append(vs, fmt.Sprintf("%s those of Python's multiprocessing.Queue (py-queue)", times(q.MsgsPerSec, p.MsgsPerSec)))
		}
		if len(vs) > 0 {
			s += ": " + strings.Join(vs, ", ")
		}
		add("%s.", s)

		qb, okb := okRecord(recs, "queue-batch", PatThroughput, small)
		ub, okub := okRecord(recs, "unix-buf", PatThroughput, small)
		if okb && okub {
			add("Batched against batched at %s: queue-batch moves %s msgs/s, %s unix-buf's.", fmtSize(small), fmtRate(qb.MsgsPerSec), times(qb.MsgsPerSec, ub.MsgsPerSec))
		}
		if sb, ok := okRecord(recs, "slots-batch", PatThroughput, small); ok {
			s := fmt.Sprintf("Fixed-size values through a Slots queue (ring.Typed with Mode: ring.Slots), in batches of the same bytes, move %s msgs/s at %s", fmtRate(sb.MsgsPerSec), fmtSize(small))
			var vs []string
			if okub {
				vs = append(vs, fmt.Sprintf("%s unix-buf's", times(sb.MsgsPerSec, ub.MsgsPerSec)))
			}
			if okb {
				vs = append(vs, fmt.Sprintf("%s queue-batch's", times(sb.MsgsPerSec, qb.MsgsPerSec)))
			}
			if len(vs) > 0 {
				s += " (slots-batch: " + strings.Join(vs, ", ") + ")"
			}
			add("%s: for one producer and one consumer of a plain Go type, that is the mode to use.", s)
		}
		if ref, ok := firstOK(recs, "refring", PatThroughput); ok {
			if q, ok := okRecord(recs, "queue", PatThroughput, ref.Size); ok {
				if q.MsgsPerSec <= ref.MsgsPerSec {
					add("At %s queue reaches %s of refring (%s msgs/s), a bare ring of fixed slots with none of queue's features: the ceiling for small messages here.",
						fmtSize(ref.Size), percent(q.MsgsPerSec, ref.MsgsPerSec), fmtRate(ref.MsgsPerSec))
				} else {
					add("At %s queue moves %s refring's messages (%s msgs/s), a bare ring of fixed slots, each published alone: no ceiling for queue in this run.",
						fmtSize(ref.Size), times(q.MsgsPerSec, ref.MsgsPerSec), fmtRate(ref.MsgsPerSec))
				}
			}
		}
		if c, ok := okRecord(recs, "chan", PatThroughput, small); ok {
			add("Across processes, queue moves %s what a Go channel moves between goroutines of one process (chan, %s msgs/s) at %s.",
				share(q.MsgsPerSec, c.MsgsPerSec), fmtRate(c.MsgsPerSec), fmtSize(small))
		}

		if large := sizes[len(sizes)-1]; large != small {
			q, _ := okRecord(recs, "queue", PatThroughput, large)
			s := fmt.Sprintf("At %s, queue moves %s", fmtSize(large), fmtBytes(q.BytesPerSec))
			var vs []string
			if u, ok := okRecord(recs, "unix", PatThroughput, large); ok {
				vs = append(vs, fmt.Sprintf("%s unix", times(q.BytesPerSec, u.BytesPerSec)))
			}
			if m, ok := okRecord(recs, "memcpy", PatThroughput, large); ok {
				if q.BytesPerSec <= m.BytesPerSec {
					vs = append(vs, fmt.Sprintf("%s of memcpy (%s, the producer's copy alone: a copying queue's ceiling)", percent(q.BytesPerSec, m.BytesPerSec), fmtBytes(m.BytesPerSec)))
				} else {
					vs = append(vs, fmt.Sprintf("%s memcpy (%s, the producer's copy alone, which should be its ceiling: a disturbed run?)", times(q.BytesPerSec, m.BytesPerSec), fmtBytes(m.BytesPerSec)))
				}
			}
			if len(vs) > 0 {
				s += ": " + strings.Join(vs, ", ")
			}
			add("%s.", s)
		}
	}

	// Latency, at 64 B where measured, else the smallest size.
	if q, ok := smallOK(recs, "queue", PatPingPong); ok {
		s := fmt.Sprintf("A round trip of %s through queue takes %s (p50)", fmtSize(q.Size), fmtNS(q.P50NS))
		if u, ok := okRecord(recs, "unix", PatPingPong, q.Size); ok {
			s += fmt.Sprintf(", %s through unix: %s less", fmtNS(u.P50NS), times(float64(u.P50NS), float64(q.P50NS)))
		}
		if c, ok := firstOK(recs, "cacheline", PatPingPong); ok {
			s += fmt.Sprintf("; the floor of any round trip here (cacheline) is %s (queue takes %s it; target within 1.3x)",
				fmtNS(c.P50NS), times(float64(q.P50NS), float64(c.P50NS)))
		}
		add("%s.", s)
	}
	// Sleeping at once: the ring's futex handshake against a bare one.
	if p, ok := okRecord(recs, "pipe-block", PatPingPong, 8); ok {
		if f, ok := firstOK(recs, "futex", PatPingPong); ok {
			add("Sleeping instead of spinning, an 8 B round trip through pipe-block takes %s (p50), a bare futex round trip %s: %s (target within 1.2x).",
				fmtNS(p.P50NS), fmtNS(f.P50NS), times(float64(p.P50NS), float64(f.P50NS)))
		}
	}

	if q, ok := smallOK(recs, "queue", PatMPMC); ok {
		if u, ok := okRecord(recs, "unix", PatMPMC, q.Size); ok {
			add("With %s and %s at %s, queue moves %s msgs/s, %s unix's.", processes(q.Producers, "producer"), processes(q.Consumers, "consumer"),
				fmtSize(q.Size), fmtRate(q.MsgsPerSec), times(q.MsgsPerSec, u.MsgsPerSec))
		}
	}

	if v, ok := firstOK(recs, "value", PatContention); ok {
		s := fmt.Sprintf("Under contention (%d processes), value.Update makes %s updates/s", v.Consumers, fmtRate(v.MsgsPerSec))
		if p, ok := firstOK(recs, "py-value", PatContention); ok {
			s += fmt.Sprintf(", %s Python's multiprocessing.Value", times(v.MsgsPerSec, p.MsgsPerSec))
		}
		if a, ok := firstOK(recs, "value-atomic", PatContention); ok {
			s += fmt.Sprintf("; lock-free value-atomic makes %s value.Update's", times(a.MsgsPerSec, v.MsgsPerSec))
		}
		add("%s.", s)
	}
	if a, ok := scalingRecord(recs, "queue-batch", 1); ok {
		if b, ok := scalingRecord(recs, "queue-batch", 16); ok {
			s := fmt.Sprintf("From 1:1 to 16:16 processes at 64 B (on %d CPUs), queue-batch moves %s then %s msgs/s (%s)",
				len(allowedCPUs()), fmtRate(a.MsgsPerSec), fmtRate(b.MsgsPerSec), times(b.MsgsPerSec, a.MsgsPerSec))
			if u, ok := scalingRecord(recs, "unix-buf", 16); ok {
				s += fmt.Sprintf("; at 16:16, %s unix-buf's", times(b.MsgsPerSec, u.MsgsPerSec))
			}
			add("%s.", s)
		}
	}
	if r, ok := okRecord(recs, "shmnet", PatPingPong, 64); ok {
		if u, ok := okRecord(recs, "unix", PatPingPong, 64); ok {
			x := float64(u.P50NS) / float64(r.P50NS)
			add("A 64 B round trip over a shmnet.Conn (net.Conn) takes %s (p50), %s less than a Unix socket's %s (target at least 30x: %s).",
				fmtNS(r.P50NS), fmtRatio(x), fmtNS(u.P50NS), met(x >= 30))
		}
	}
	for _, proto := range []string{"http", "grpc"} {
		what := map[string]string{"http": "net/http serves", "grpc": "gRPC answers"}[proto]
		unit := map[string]string{"http": "requests", "grpc": "unary calls"}[proto]
		var parts []string
		for _, n := range rpcClients {
			r, ok1 := rpcRecord(recs, proto+"-shmnet", n)
			u, ok2 := rpcRecord(recs, proto+"-unix", n)
			if ok1 && ok2 {
				x := r.MsgsPerSec / u.MsgsPerSec
				parts = append(parts, fmt.Sprintf("%s %s/s with %s, %s a Unix socket's (target at least 1.5x: %s)",
					fmtRate(r.MsgsPerSec), unit, processes(n, "client"), fmtRatio(x), met(x >= 1.5)))
			}
		}
		if len(parts) > 0 {
			add("Over shmnet, %s %s.", what, strings.Join(parts, "; "))
		}
	}
	out = append(out, summarizeDict(recs)...)
	return append(out, summarizePools(recs)...)
}

// rpcRecord returns the ok rpc record of transport tr with n clients.
func rpcRecord(recs []Record, tr string, n int) (Record, bool) {
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == PatRPC && r.Consumers == n && r.Status == StatusOK {
			return r, true
		}
	}
	return Record{}, false
}

// scalingRecord returns the ok scaling record of transport tr at n:n.
func scalingRecord(recs []Record, tr string, n int) (Record, bool) {
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == PatScaling && r.Producers == n && r.Status == StatusOK {
			return r, true
		}
	}
	return Record{}, false
}

// firstOK returns the first ok record of transport tr for pattern p.
func firstOK(recs []Record, tr string, p Pattern) (Record, bool) {
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == p && r.Status == StatusOK {
			return r, true
		}
	}
	return Record{}, false
}

// smallOK returns the ok record of transport tr for pattern p at 64 B,
// or else at its smallest size.
func smallOK(recs []Record, tr string, p Pattern) (Record, bool) {
	if r, ok := okRecord(recs, tr, p, 64); ok {
		return r, true
	}
	var best Record
	found := false
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == p && r.Status == StatusOK && (!found || r.Size < best.Size) {
			best, found = r, true
		}
	}
	return best, found
}
