package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestLegendCoversPlan: every transport name a plan can produce (all
// transports, all patterns, Python counted as available) has a legend
// line saying what it is and how it batches, and every transport that
// moves messages is placed in a like-with-like group.
func TestLegendCoversPlan(t *testing.T) {
	defer func(p string) { pythonPath = p }(pythonPath)
	pythonPath = "python3"
	c, err := parseFlags([]string{"-transports", realTransports()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	names := map[string]bool{}
	for _, it := range buildPlan(c) {
		name := it.m.Transport
		if it.rec != nil {
			name = it.rec.Transport
		}
		names[name] = true
		recs = append(recs, Record{Transport: name, Status: StatusOK})
	}
	for _, want := range strings.Split(realTransports(), ",") {
		if !names[want] {
			t.Errorf("the full plan has no %s", want)
		}
	}
	legend := legendFor(recs)
	var b bytes.Buffer
	writeLegend(&b, legend)
	text := b.String()
	var groups string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "Compare like with like") || strings.Contains(line, "yardsticks") {
			groups += line + "\n"
		}
	}
	for name := range names {
		i := slices.IndexFunc(legend, func(e LegendEntry) bool { return e.Transport == name })
		if i < 0 {
			t.Errorf("%s: no legend entry", name)
			continue
		}
		e := legend[i]
		if e.What == "" || e.Batching == "" || e.Batching == "-" {
			t.Errorf("%s: legend entry %+v lacks what it is or its batching", name, e)
		}
		if !strings.Contains(text, "\n  "+name+" ") {
			t.Errorf("%s: no legend line in\n%s", name, text)
		}
		tr, _ := lookup(name)
		if slices.ContainsFunc(tr.Spec().Patterns, func(p Pattern) bool { return p != PatContention }) &&
			!regexp.MustCompile(`(^|[ \n])`+regexp.QuoteMeta(name)+`[,.;:]`).MatchString(groups) {
			t.Errorf("%s: in no like-with-like group:\n%s", name, groups)
		}
	}
	// Batched transports are set apart from the one-per-call ones.
	group := func(prefix string) []string {
		_, rest, _ := strings.Cut(groups, prefix)
		list, _, _ := strings.Cut(rest, ";")
		list, _, _ = strings.Cut(list, ".\n")
		return strings.Split(list, ", ")
	}
	single, batched := group("one message per call: "), group("several messages per call or system call: ")
	for _, n := range []string{"queue", "queue-zc", "pipe", "unix", "os-pipe", "tcp", "py-queue", "py-pipe", "chan"} {
		if !slices.Contains(single, n) || slices.Contains(batched, n) {
			t.Errorf("%s: want it with one message per call: %q, batched %q", n, single, batched)
		}
	}
	for _, n := range []string{"queue-batch", "unix-buf"} {
		if !slices.Contains(batched, n) || slices.Contains(single, n) {
			t.Errorf("%s: want it batched: %q, one per call %q", n, batched, single)
		}
	}
	// Pools: chunked, one task per message and start-up rows apart.
	chunked, perTask, startup := group("several tasks per message: "), group("one task per message: "), group("start-up: ")
	for _, n := range []string{"pool", "pool-star", "py-pool", "py-pool-tuned", "py-starmap", "gopool-batch"} {
		if !slices.Contains(chunked, n) {
			t.Errorf("%s: want it with several tasks per message: %q", n, chunked)
		}
	}
	for _, n := range []string{"pool-c1", "py-pool-c1", "py-executor", "gopool"} {
		if !slices.Contains(perTask, n) {
			t.Errorf("%s: want it with one task per message: %q", n, perTask)
		}
	}
	for _, n := range []string{"pool-start", "pool-start-ncpu", "py-pool-start", "proc-start", "exec-start"} {
		if !slices.Contains(startup, n) || slices.Contains(single, n) || slices.Contains(batched, n) {
			t.Errorf("%s: want it with the start-up rows only: %q", n, startup)
		}
	}
	// Only the transports of the run.
	legend = legendFor([]Record{{Transport: "unix"}, {Transport: "queue"}})
	if len(legend) != 2 || legend[0].Transport != "queue" || legend[1].Transport != "unix" {
		t.Errorf("legend for queue and unix: %+v", legend)
	}
}

// syntheticRun is a run's records with round numbers, for the summary.
func syntheticRun() []Record {
	tp := func(tr string, size int, msgs float64) Record {
		return Record{Transport: tr, Pattern: PatThroughput, Size: size, Producers: 1, Consumers: 1,
			Status: StatusOK, MsgsPerSec: msgs, BytesPerSec: msgs * float64(size)}
	}
	pp := func(tr string, size int, p50 int64) Record {
		return Record{Transport: tr, Pattern: PatPingPong, Size: size, Producers: 1, Consumers: 1,
			Status: StatusOK, P50NS: p50, MsgsPerSec: 1e9 / float64(p50)}
	}
	mp := func(tr string, msgs float64) Record {
		return Record{Transport: tr, Pattern: PatMPMC, Size: 64, Producers: 2, Consumers: 2,
			Status: StatusOK, MsgsPerSec: msgs, BytesPerSec: msgs * 64}
	}
	ct := func(tr string, ups float64) Record {
		return Record{Transport: tr, Pattern: PatContention, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: ups}
	}
	return []Record{
		tp("queue", 8, 13e6), tp("unix", 8, 1e6), // not the size the summary picks
		tp("queue", 64, 12e6), tp("queue-batch", 64, 30e6), tp("unix", 64, 1e6), tp("unix-buf", 64, 4e6), tp("slots-batch", 64, 60e6),
		tp("py-queue", 64, 0.1e6), tp("chan", 64, 20e6), tp("refring", 64, 24e6),
		tp("queue", 1<<20, 5e9/(1<<20)), tp("unix", 1<<20, 2.5e9/(1<<20)), tp("memcpy", 1<<20, 10e9/(1<<20)),
		pp("queue", 64, 1000), pp("unix", 64, 15000), pp("cacheline", 64, 200),
		mp("queue", 8e6), mp("unix", 2e6),
		ct("value", 5e6), ct("py-value", 0.5e6), ct("value-atomic", 50e6),
	}
}

// TestSummary: the closing summary is computed from the results it is
// given: each ratio in its text is the quotient of the records' figures,
// and it changes when they do.
func TestSummary(t *testing.T) {
	text := strings.Join(summarize(syntheticRun()), "\n")
	t.Logf("summary:\n%s", text)
	for _, want := range []string{
		"At 64 B, one producer process to one consumer process, shmkit's queue moves 12M msgs/s: " +
			"12x the messages of a Unix socket written once per message (unix), " +
			"3.00x those of one buffered with bufio (unix-buf), 120x those of Python's multiprocessing.Queue (py-queue).",
		"Batched against batched at 64 B: queue-batch moves 30M msgs/s, 7.50x unix-buf's.",
		"move 60M msgs/s at 64 B (slots-batch: 15x unix-buf's, 2.00x queue-batch's): for one producer and one consumer of a plain Go type, that is the mode to use.",
		"At 64 B queue reaches 50% of refring (24M msgs/s)",
		"queue moves 60% of what a Go channel moves between goroutines of one process (chan, 20M msgs/s) at 64 B.",
		"At 1 MiB, queue moves 5.00 GB/s: 2.00x unix, 50% of memcpy (10 GB/s,",
		"A round trip of 64 B through queue takes 1.00µs (p50), 15µs through unix: 15x less; the floor of any round trip here (cacheline) is 200ns (queue takes 5.00x it; target within 1.3x).",
		"With 2 producer processes and 2 consumer processes at 64 B, queue moves 8.00M msgs/s, 4.00x unix's.",
		"Under contention (2 processes), value.Update makes 5.00M updates/s, 10x Python's multiprocessing.Value; lock-free value-atomic makes 10x value.Update's.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q", want)
		}
	}

	// Other figures, other ratios: nothing in the text is fixed.
	recs := syntheticRun()
	for i := range recs {
		if recs[i].Transport == "unix" {
			recs[i].MsgsPerSec *= 2
			recs[i].BytesPerSec *= 2
			recs[i].P50NS /= 3
		}
	}
	text = strings.Join(summarize(recs), "\n")
	for _, want := range []string{"6.00x the messages of a Unix socket", "At 1 MiB, queue moves 5.00 GB/s: 1.00x unix",
		"5.00µs through unix: 5.00x less", "2.00x unix's"} {
		if !strings.Contains(text, want) {
			t.Errorf("after doubling unix, the summary lacks %q:\n%s", want, text)
		}
	}

	// Missing or failed records leave their sentences out, not zeros.
	recs = nil
	for _, r := range syntheticRun() {
		switch {
		case r.Transport == "unix-buf", r.Transport == "py-value":
			continue
		case r.Transport == "queue" && r.Pattern == PatPingPong:
			r.Status = StatusFailed
		}
		recs = append(recs, r)
	}
	text = strings.Join(summarize(recs), "\n")
	for _, absent := range []string{"unix-buf", "Batched", "round trip", "Python's multiprocessing.Value", "-x", " 0x", "NaN", "Inf"} {
		if strings.Contains(text, absent) {
			t.Errorf("summary without unix-buf, py-value and queue's ping-pong mentions %q:\n%s", absent, text)
		}
	}
	if !strings.Contains(text, "12x the messages of a Unix socket") || !strings.Contains(text, "value-atomic makes 10x") {
		t.Errorf("summary lost what it could still say:\n%s", text)
	}
	// A queue faster than a reference is not told it reached a share of
	// its ceiling.
	recs = syntheticRun()
	for i := range recs {
		switch recs[i].Transport {
		case "refring", "chan":
			recs[i].MsgsPerSec /= 4
		case "memcpy":
			recs[i].BytesPerSec /= 4
		}
	}
	text = strings.Join(summarize(recs), "\n")
	for _, want := range []string{"queue moves 2.00x refring's messages (6.00M msgs/s)", "no ceiling for queue",
		"queue moves 2.40x what a Go channel moves", "2.00x memcpy (2.50 GB/s"} {
		if !strings.Contains(text, want) {
			t.Errorf("with slow references, the summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "the ceiling for small") || strings.Contains(text, "a copying queue's ceiling") {
		t.Errorf("a reference queue beat is called its ceiling:\n%s", text)
	}

	if s := summarize([]Record{{Transport: "unix", Pattern: PatThroughput, Size: 64, Status: StatusOK, MsgsPerSec: 1}}); s != nil {
		t.Errorf("summary of a run without shmkit: %q", s)
	}
}

// TestTableEndsWithLegendAndSummary: the report prints the legend and the
// summary under the tables, and -json carries both.
func TestTableEndsWithLegendAndSummary(t *testing.T) {
	c, err := parseFlags([]string{"-sizes", "64", "-python", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	doc := &Document{Schema: SchemaVersion, Results: syntheticRun()}
	doc.Legend, doc.Summary = legendFor(doc.Results), summarize(doc.Results)
	var b bytes.Buffer
	writeTable(&b, doc, c)
	out := b.String()
	i, j, k := strings.Index(out, "Throughput:"), strings.Index(out, "Transports (what each row is"), strings.Index(out, "What to conclude from this run:")
	if i < 0 || j < i || k < j {
		t.Fatalf("table, legend, summary not in that order (%d %d %d):\n%s", i, j, k, out)
	}
	if !strings.Contains(out[k:], "  - At 64 B, one producer") {
		t.Errorf("summary lines:\n%s", out[k:])
	}
	b.Reset()
	if err := writeJSON(&b, doc); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&b)
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("not a Document: %v", err)
	}
	if !slices.Equal(d.Summary, doc.Summary) || len(d.Legend) != len(doc.Legend) || len(d.Summary) == 0 {
		t.Errorf("JSON summary %q, legend %v", d.Summary, d.Legend)
	}
}
