package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Targets of the pool pattern (issue 9), checked by summarizePools.
const (
	// targetVsPython: shmkit's pool at least this many times Python's
	// Pool.map with its default chunksize on tiny tasks.
	targetVsPython = 20
	// targetVsGoroutines: within this factor of the chunked goroutine
	// pool in one process.
	targetVsGoroutines = 2
)

// poolTables prints the pool pattern's records: the Map rows in tasks/s,
// then the start-up rows in times.
func poolTables(w io.Writer, recs []Record, cfg *config) {
	var maps, starts []Record
	for _, r := range recs {
		if isStartup(r.Transport) {
			starts = append(starts, r)
		} else {
			maps = append(maps, r)
		}
	}
	if len(maps) > 0 {
		fmt.Fprintf(w, "Pools: Map of a tiny task (the square of an int) over %d worker processes (-workers), tasks/s;\n", cfg.workers)
		fmt.Fprintln(w, "time/task is 1 over tasks/s; vs python: times the tasks/s of Python's Pool.map with its default")
		fmt.Fprintln(w, "chunksize (py-pool), or with chunksize 1 (py-pool-c1) for the rows of one task per message")
		fmt.Fprintf(w, "  %-16s %-10s %7s %10s %7s %10s %11s  %s\n", "transport", "kind", "workers", "tasks/s", "spread", "time/task", "vs python", "notes")
		for _, r := range maps {
			if r.Status != StatusOK {
				fmt.Fprintf(w, "  %-16s %-10s %7d %10s %7s %10s %11s  %s: %s\n", r.Transport, r.Kind, r.Consumers, "-", "-", "-", "-", r.Status, r.Notes)
				continue
			}
			fmt.Fprintf(w, "  %-16s %-10s %7d %10s %7s %10s %11s  %s\n", r.Transport, r.Kind, r.Consumers,
				fmtRate(r.MsgsPerSec), fmtSpread(r), fmtNSf(1e9/r.MsgsPerSec), fmtRatio(r.Ratio), r.Notes)
		}
	}
	if len(starts) > 0 {
		if len(maps) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Pools: start-up, percentiles of every measured start; vs py-pool-start: its p50 over the row's")
		fmt.Fprintf(w, "  %-16s %-10s %7s %8s %8s %8s %8s %11s  %s\n", "transport", "kind", "workers", "p50", "p90", "p99", "max", ratioHeader(starts, "py-pool-start"), "notes")
		for _, r := range starts {
			if r.Status != StatusOK {
				fmt.Fprintf(w, "  %-16s %-10s %7d %8s %8s %8s %8s %11s  %s: %s\n", r.Transport, r.Kind, r.Consumers, "-", "-", "-", "-", "-", r.Status, r.Notes)
				continue
			}
			fmt.Fprintf(w, "  %-16s %-10s %7d %8s %8s %8s %8s %11s  %s\n", r.Transport, r.Kind, r.Consumers,
				fmtNS(r.P50NS), fmtNS(r.P90NS), fmtNS(r.P99NS), fmtNS(r.MaxNS), fmtRatio(r.Ratio), r.Notes)
		}
	}
}

// met says whether a target is met.
func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// poolRecord returns the ok pool record of transport tr.
func poolRecord(recs []Record, tr string) (Record, bool) { return firstOK(recs, tr, PatPool) }

// summarizePools draws the pool pattern's conclusions, each against the
// issue's targets where it has one: shmkit's chunked Map against Python's
// Pool.map (default and tuned chunksize) and the goroutine pools, starmap,
// the cost of a task with chunk size 1, and the start of a pool and of
// one process. A sentence whose records are missing is left out.
func summarizePools(recs []Record) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	if p, ok := poolRecord(recs, "pool"); ok {
		s := fmt.Sprintf("Map of tiny tasks (the square of an int, %d workers): shmkit's pool runs %s tasks/s with automatic chunking",
			p.Consumers, fmtRate(p.MsgsPerSec))
		if py, ok := poolRecord(recs, "py-pool"); ok {
			r := p.MsgsPerSec / py.MsgsPerSec
			s += fmt.Sprintf(", %s Python's Pool.map with its default chunksize (py-pool, %s/s; target at least %dx: %s)",
				times(p.MsgsPerSec, py.MsgsPerSec), fmtRate(py.MsgsPerSec), targetVsPython, met(r >= targetVsPython))
		}
		if py, ok := poolRecord(recs, "py-pool-tuned"); ok {
			s += fmt.Sprintf(" and %s with a tuned chunksize (py-pool-tuned, %s/s)", times(p.MsgsPerSec, py.MsgsPerSec), fmtRate(py.MsgsPerSec))
		}
		add("%s.", s)
		var vs []string
		if g, ok := poolRecord(recs, "gopool-batch"); ok {
			vs = append(vs, fmt.Sprintf("%s the goroutine pool of one process sending %d tasks at a time (gopool-batch, %s/s; target within %dx, at least %s: %s)",
				share(p.MsgsPerSec, g.MsgsPerSec), goBatch, fmtRate(g.MsgsPerSec), targetVsGoroutines,
				percent(1, targetVsGoroutines), met(p.MsgsPerSec*targetVsGoroutines >= g.MsgsPerSec)))
		}
		if g, ok := poolRecord(recs, "gopool"); ok {
			vs = append(vs, fmt.Sprintf("%s the one sending each task alone (gopool, %s/s)", share(p.MsgsPerSec, g.MsgsPerSec), fmtRate(g.MsgsPerSec)))
		}
		if len(vs) > 0 {
			add("Across processes, pool runs %s.", strings.Join(vs, "; "))
		}
	}
	if p, ok := poolRecord(recs, "pool-star"); ok {
		s := fmt.Sprintf("Starmap (multiply over pairs): pool-star runs %s tasks/s", fmtRate(p.MsgsPerSec))
		if py, ok := poolRecord(recs, "py-starmap"); ok {
			s += fmt.Sprintf(", %s Python's Pool.starmap (%s/s)", times(p.MsgsPerSec, py.MsgsPerSec), fmtRate(py.MsgsPerSec))
		}
		add("%s.", s)
	}
	if p, ok := poolRecord(recs, "pool-c1"); ok {
		s := fmt.Sprintf("One task a message (chunk size 1): a task costs %s through shmkit's pool (pool-c1, %s tasks/s)",
			fmtNSf(1e9/p.MsgsPerSec), fmtRate(p.MsgsPerSec))
		var vs []string
		if py, ok := poolRecord(recs, "py-pool-c1"); ok {
			vs = append(vs, fmt.Sprintf("%s through Python's Pool.map(chunksize=1) (pool-c1 runs %s its tasks/s)", fmtNSf(1e9/py.MsgsPerSec), times(p.MsgsPerSec, py.MsgsPerSec)))
		}
		if py, ok := poolRecord(recs, "py-executor"); ok {
			vs = append(vs, fmt.Sprintf("%s through ProcessPoolExecutor.map (%s)", fmtNSf(1e9/py.MsgsPerSec), times(p.MsgsPerSec, py.MsgsPerSec)))
		}
		if len(vs) > 0 {
			s += ", " + strings.Join(vs, ", ")
		}
		add("%s.", s)
	}
	if p, ok := poolRecord(recs, "pool-start"); ok {
		s := fmt.Sprintf("A shmkit pool of %d workers is ready for its first result in %s (p50)", p.Consumers, fmtNS(p.P50NS))
		if py, ok := poolRecord(recs, "py-pool-start"); ok {
			s += fmt.Sprintf(", Python's fork Pool(%d) in %s: %s of Python's time (target: faster than Python in the same run: %s)",
				py.Consumers, fmtNS(py.P50NS), percent(float64(p.P50NS), float64(py.P50NS)), met(p.P50NS < py.P50NS))
		}
		if n, ok := poolRecord(recs, "pool-start-ncpu"); ok {
			s += fmt.Sprintf("; a pool of NumCPU (%d) workers in %s", n.Consumers, fmtNS(n.P50NS))
		}
		add("%s.", s)
	}
	if p, ok := poolRecord(recs, "proc-start"); ok {
		s := fmt.Sprintf("One worker process from Start to Wait (proc-start) takes %s (p50)", fmtNS(p.P50NS))
		if e, ok := poolRecord(recs, "exec-start"); ok {
			s += fmt.Sprintf(", an exec of this binary that exits at once (exec-start) %s", fmtNS(e.P50NS))
			if d := p.P50NS - e.P50NS; d > 0 {
				s += fmt.Sprintf(": proc adds %s", fmtNS(d))
			}
		}
		add("%s.", s)
		if builtWithCgo() {
			add("This binary was built with cgo (the default where a C compiler is installed), so it is linked dynamically and every worker's exec loads libc first; " +
				"built with CGO_ENABLED=0 it is static and starts faster (about 1 ms less an exec on the 2-vCPU machine of BENCHMARKS.md), which any program using proc can do too.")
		}
	}
	return out
}

// builtWithCgo reports whether this binary was built with cgo, which makes
// it dynamically linked (package net, which shmkit's rendezvous sockets
// use, links the C resolver). A variable, so that tests can set it.
var builtWithCgo = func() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}
