package main

import "fmt"

// The shared map's targets.
const (
	// targetVsRedis: dict Load at least this many times Redis's GET in
	// pipelines of 64, from the same number of processes.
	targetVsRedis = 100
	// targetVsManager: at least this many times Python's
	// Manager().dict() get.
	targetVsManager = 1000
	// targetVsSyncMap: within this factor of an in-process sync.Map Load.
	targetVsSyncMap = 3
)

// dictRecord returns the ok dict record of transport tr at value size
// size from procs processes.
func dictRecord(recs []Record, tr string, size, procs int) (Record, bool) {
	for _, r := range recs {
		if r.Transport == tr && r.Pattern == PatDict && r.Size == size && r.Consumers == procs && r.Status == StatusOK {
			return r, true
		}
	}
	return Record{}, false
}

// summarizeDict draws the dict pattern's conclusions for each shape,
// against the targets: Load beside pipelined Redis, Manager().dict() and
// sync.Map, from one process, and how reading scales to two.
func summarizeDict(recs []Record) []string {
	var out []string
	for _, size := range dictSizes {
		l1, ok := dictRecord(recs, "dict-load", size, 1)
		if !ok {
			continue
		}
		shape := "8 B keys, 64 B values"
		if size > 64 {
			shape = "32 B string keys, 1 KiB values"
		}
		s := fmt.Sprintf("Shared map (%s): dict Load makes %s ops/s from one process", shape, fmtRate(l1.MsgsPerSec))
		if l2, ok := dictRecord(recs, "dict-load", size, 2); ok {
			s += fmt.Sprintf(", %s from two (%s)", fmtRate(l2.MsgsPerSec), times(l2.MsgsPerSec, l1.MsgsPerSec))
		}
		if r, ok := dictRecord(recs, "redis-get-p64", size, 1); ok {
			x := l1.MsgsPerSec / r.MsgsPerSec
			s += fmt.Sprintf("; %s Redis GET pipelined by 64 (redis-get-p64, %s/s; target at least %dx: %s)",
				fmtRatio(x), fmtRate(r.MsgsPerSec), targetVsRedis, met(x >= targetVsRedis))
		}
		if r, ok := dictRecord(recs, "redis-get", size, 1); ok {
			s += fmt.Sprintf(", %s one GET per round trip (%s/s)", times(l1.MsgsPerSec, r.MsgsPerSec), fmtRate(r.MsgsPerSec))
		}
		if p, ok := dictRecord(recs, "py-manager-get", size, 1); ok {
			x := l1.MsgsPerSec / p.MsgsPerSec
			s += fmt.Sprintf("; %s Python's Manager().dict() (py-manager-get, %s/s; target at least %dx: %s)",
				fmtRatio(x), fmtRate(p.MsgsPerSec), targetVsManager, met(x >= targetVsManager))
		}
		if g, ok := dictRecord(recs, "syncmap-load", size, 1); ok {
			s += fmt.Sprintf("; %s a sync.Map Load in one process (syncmap-load, %s/s; target within %dx: %s)",
				share(l1.MsgsPerSec, g.MsgsPerSec), fmtRate(g.MsgsPerSec), targetVsSyncMap, met(l1.MsgsPerSec*targetVsSyncMap >= g.MsgsPerSec))
		}
		if st, ok := dictRecord(recs, "dict-store", size, 1); ok {
			s += fmt.Sprintf(". Store makes %s ops/s", fmtRate(st.MsgsPerSec))
			if r, ok := dictRecord(recs, "redis-set", size, 1); ok {
				s += fmt.Sprintf(", %s Redis SET", times(st.MsgsPerSec, r.MsgsPerSec))
			}
		}
		out = append(out, s+".")
	}
	return out
}
