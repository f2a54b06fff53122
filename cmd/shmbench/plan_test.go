package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// realTransports lists the registered transports without the test
// binary's misbehaving ones, comma-separated: "all" to a user.
func realTransports() string {
	var names []string
	for _, t := range registry {
		if t.Spec().Kind != "test" {
			names = append(names, t.Spec().Name)
		}
	}
	return strings.Join(names, ",")
}

// TestPlanCost holds the defaults to the bounds, arithmetically
// (deterministic, unlike a wall-clock assertion): the default run about a
// minute on two CPUs, -quick under 20 seconds, Python included.
func TestPlanCost(t *testing.T) {
	defer func(p string) { pythonPath = p }(pythonPath)
	pythonPath = "python3" // count the Python measurements as available
	for _, tc := range []struct {
		args     []string
		min, max time.Duration
	}{
		// The costs are rounded up: the defaults with the dict pattern's
		// 40 rows are estimated at 83 s and measured at 66 s on two CPUs;
		// -quick with the pool pattern's six rows and the dict pattern's
		// eight at 22.2 s and measured at 14 s.
		// The scaling pattern's 15 rows add about 9 s (measured: 7 s),
		// the rpc pattern's 12 and shmnet's ping-pong about 11 s.
		{nil, 40 * time.Second, 115 * time.Second},
		{[]string{"-quick"}, 5 * time.Second, 26 * time.Second},
	} {
		c, err := parseFlags(append(tc.args, "-transports", realTransports()), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		plan := buildPlan(c)
		n := 0
		for _, it := range plan {
			if it.rec == nil {
				n++
			}
		}
		cost := planCost(plan)
		t.Logf("%q: %d measurements, about %v", tc.args, n, cost.Round(time.Second))
		if cost < tc.min || cost > tc.max {
			t.Errorf("%q: plan costs %v, want %v..%v", tc.args, cost, tc.min, tc.max)
		}
	}
}

// TestSkippedUnavailableSchema checks the records of what did not run:
// py-queue without Python (unavailable) and refring without pinning
// (skipped), beside the measured baseline.
func TestSkippedUnavailableSchema(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-json", "-transports", "py-queue,refring", "-nopin", "-python", "",
		"-patterns", "throughput", "-sizes", "64", "-duration", "5ms", "-reps", "1"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	_, results := decodeDoc(t, out.Bytes())
	status := map[string]any{}
	for i, r := range results {
		rec := checkRecord(t, i, r)
		status[fmt.Sprint(rec["transport"])] = rec["status"]
	}
	if status["py-queue"] != StatusUnavailable || status["refring"] != StatusSkipped || status["unix"] != StatusOK {
		t.Errorf("statuses %v, want py-queue unavailable, refring skipped, unix ok", status)
	}
}

// TestSchemaDocumented compares the record fields documented in doc.go
// with the JSON tags of Record, in order and by type.
func TestSchemaDocumented(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	i := strings.Index(text, "with one record per measurement")
	j := strings.Index(text, "// Skipped and unavailable records")
	if i < 0 || j < i {
		t.Fatal("doc.go: record schema not found")
	}
	name := regexp.MustCompile(`^[a-z][a-z0-9_]*,?$`)
	types := map[string]bool{"string": true, "int": true, "number": true, "bool": true, "[number]": true}
	type field struct{ name, typ string }
	var doc []field
	for _, line := range strings.Split(text[i:j], "\n") {
		line, ok := strings.CutPrefix(line, "//\t")
		if !ok || line == "" || line[0] == ' ' {
			continue // not a table row, or a continuation
		}
		// Names ("a," continues the list, also onto the next line),
		// then the type.
		toks := strings.Fields(line)
		var names []string
		typ := ""
		for k, tok := range toks {
			if types[tok] {
				typ = tok
				break
			}
			if !name.MatchString(tok) || k > 0 && !strings.HasSuffix(toks[k-1], ",") {
				break
			}
			names = append(names, strings.TrimSuffix(tok, ","))
		}
		if typ == "" && len(doc) > 0 {
			// The end of a list begun on the line above, which gave
			// the type ("p50_ns, p90_ns, int ..." then "p99_ns, p999_ns").
			typ = doc[len(doc)-1].typ
		}
		for _, n := range names {
			doc = append(doc, field{n, typ})
		}
	}
	var want []field
	rt := reflect.TypeOf(Record{})
	for k := range rt.NumField() {
		f := rt.Field(k)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		typ := "?"
		switch f.Type.Kind() {
		case reflect.String:
			typ = "string"
		case reflect.Int, reflect.Int64:
			typ = "int"
		case reflect.Float64:
			typ = "number"
		case reflect.Bool:
			typ = "bool"
		case reflect.Slice:
			if f.Type.Elem().Kind() == reflect.Float64 {
				typ = "[number]"
			}
		}
		want = append(want, field{tag, typ})
	}
	if fmt.Sprint(doc) != fmt.Sprint(want) {
		t.Errorf("doc.go documents the record as\n  %v\nRecord's JSON is\n  %v", doc, want)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := append([]float64(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if fmt.Sprint(in) != fmt.Sprint(tc.in) {
			t.Errorf("median reordered its argument: %v", tc.in)
		}
	}
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }

func TestAggregate(t *testing.T) {
	c := &coordinator{}
	// Throughput: two consumers per repetition, their rates added; the
	// median over repetitions.
	rec := Record{Pattern: PatMPMC, Size: 100}
	c.aggregate(&rec, [][]report{
		{{Rep: 1, Msgs: 100, NS: 1e9}, {Rep: 1, Msgs: 300, NS: 1e9}}, // 400/s
		{{Rep: 2, Msgs: 50, NS: 5e8}, {Rep: 2, Msgs: 50, NS: 5e8}},   // 200/s
		{{Rep: 3, Msgs: 900, NS: 1e9}},                               // 900/s
	})
	if rec.Status != StatusOK || rec.MsgsPerSec != 400 || rec.BytesPerSec != 40000 || fmt.Sprint(rec.RepRates) != "[400 200 900]" {
		t.Errorf("throughput: %+v", rec)
	}
	// Ping-pong: the percentiles of the last repetition's report (all
	// round trips merged), the largest max, bytes both ways.
	rec = Record{Pattern: PatPingPong, Size: 10}
	c.aggregate(&rec, [][]report{
		{{Rep: 1, Msgs: 10, NS: 1e6, Max: 900}},
		{{Rep: 2, Msgs: 10, NS: 1e6, P50: 100, P90: 200, P99: 300, P999: 400, Max: 500}},
	})
	if rec.P50NS != 100 || rec.P90NS != 200 || rec.P99NS != 300 || rec.P999NS != 400 || rec.MaxNS != 900 ||
		!approx(rec.MsgsPerSec, 1e4) || !approx(rec.BytesPerSec, 2e5) {
		t.Errorf("pingpong: %+v", rec)
	}
	// Out-of-order messages fail the record.
	rec = Record{Pattern: PatThroughput, Size: 8}
	c.aggregate(&rec, [][]report{{{Rep: 1, Msgs: 10, NS: 1e6, Errs: 2}}})
	if rec.Status != StatusFailed || !strings.Contains(rec.Notes, "2 messages out of order") {
		t.Errorf("errors: %+v", rec)
	}
}

func TestApplyBaseline(t *testing.T) {
	recs := []Record{
		{Transport: "unix", Pattern: PatThroughput, Size: 64, Consumers: 1, Status: StatusOK, MsgsPerSec: 100},
		{Transport: "queue", Pattern: PatThroughput, Size: 64, Consumers: 1, Status: StatusOK, MsgsPerSec: 2500},
		{Transport: "queue", Pattern: PatThroughput, Size: 128, Consumers: 1, Status: StatusOK, MsgsPerSec: 50}, // no unix at 128
		{Transport: "unix", Pattern: PatPingPong, Size: 64, Consumers: 1, Status: StatusOK, P50NS: 8000},
		{Transport: "queue", Pattern: PatPingPong, Size: 64, Consumers: 1, Status: StatusOK, P50NS: 1000},
		{Transport: "tcp", Pattern: PatPingPong, Size: 64, Consumers: 1, Status: StatusFailed},
		{Transport: "py-value", Pattern: PatContention, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: 10},
		{Transport: "value", Pattern: PatContention, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: 70},
		{Transport: "py-array", Pattern: PatContention, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: 5},
		{Transport: "array", Pattern: PatContention, Size: 8, Consumers: 2, Status: StatusOK, MsgsPerSec: 20},
	}
	applyBaseline(recs, "unix")
	want := []struct {
		base  string
		ratio float64
	}{{"unix", 1}, {"unix", 25}, {"", 0}, {"unix", 1}, {"unix", 8}, {"", 0}, {"py-value", 1}, {"py-value", 7}, {"py-array", 1}, {"py-array", 4}}
	for i, w := range want {
		if recs[i].Baseline != w.base || recs[i].Ratio != w.ratio {
			t.Errorf("%s %s %d: baseline %q ratio %v, want %q %v", recs[i].Transport, recs[i].Pattern, recs[i].Size,
				recs[i].Baseline, recs[i].Ratio, w.base, w.ratio)
		}
	}
}

// TestStreamDeal: with n producers and m consumers every process gets a
// connection, whichever of n and m is larger.
func TestStreamDeal(t *testing.T) {
	tr, _ := lookup("unix")
	for _, pc := range [][2]int{{1, 3}, {3, 2}, {2, 2}} {
		m := Measurement{Transport: "unix", Pattern: PatMPMC, Size: 64, Producers: pc[0], Consumers: pc[1]}
		setup, err := tr.Setup(&m)
		if err != nil {
			t.Fatal(err)
		}
		var prod, cons []int
		total := 0
		for i := range pc[0] {
			prod = append(prod, len(setup.Files(roleProducer, i)))
			total += prod[i]
		}
		for i := range pc[1] {
			cons = append(cons, len(setup.Files(roleConsumer, i)))
		}
		setup.Cleanup()
		for _, n := range append(prod, cons...) {
			if n == 0 {
				t.Errorf("%d:%d: a process without a connection: producers %v, consumers %v", pc[0], pc[1], prod, cons)
				break
			}
		}
		if total != max(pc[0], pc[1]) {
			t.Errorf("%d:%d: %d connections, want %d", pc[0], pc[1], total, max(pc[0], pc[1]))
		}
	}
}

// TestMemcpyFootprint: memcpy copies from one message-sized source into
// a destination the size of queue's ring, and never runs off its end.
func TestMemcpyFootprint(t *testing.T) {
	for _, size := range []int{1, 8, 64, 4 << 10, 1 << 20} {
		m := Measurement{Transport: "memcpy", Pattern: PatThroughput, Size: size, Consumers: 1}
		want, err := ring.SizeOf(ringConfig(&m))
		if err != nil {
			t.Fatal(err)
		}
		eps, err := memcpyTransport{}.Open(&PeerEnv{M: &m, Role: roleConsumer})
		if err != nil {
			t.Fatal(err)
		}
		e := eps[0].(*memcpyEndpoint)
		if len(e.src) != size || len(e.dst) != want {
			t.Errorf("size %d: src %d, dst %d; want %d, %d", size, len(e.src), len(e.dst), size, want)
		}
		for range 2*len(e.dst)/e.stride + 2 {
			e.Recv()
		}
	}
}

func TestInFlight(t *testing.T) {
	for size, want := range map[int]int{1: 1024, 8: 1024, 2 << 10: 1024, 64 << 10: 32, 1 << 20: 8} {
		if got := inFlight(size); got != want {
			t.Errorf("inFlight(%d) = %d, want %d", size, got, want)
		}
	}
	// The Python queue is bounded the same way.
	tr, _ := lookup("py-queue")
	defer removeScript()
	setup, err := tr.Setup(&Measurement{Transport: "py-queue", Pattern: PatThroughput, Size: 1 << 20, Producers: 1, Consumers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var arg map[string]any
	if err := json.Unmarshal([]byte(setup.Command[len(setup.Command)-1]), &arg); err != nil || arg["capacity"] != float64(8) {
		t.Errorf("python arguments %v (%v), want capacity 8", arg, err)
	}
}

func TestTouchLines(t *testing.T) {
	const word = 0x0101010101010101
	// One word per 64-byte line from the start, and the last word.
	for size, words := range map[int]uint64{8: 2, 64: 2, 196: 4, 200: 5, 4096: 65} {
		m := bytes.Repeat([]byte{1}, size)
		if got := touchLines(m); got != words*word {
			t.Errorf("touchLines of %d bytes read %v words, want %d", size, float64(got)/word, words)
		}
	}
	if got := touchLines([]byte{7}); got != 7 {
		t.Errorf("touchLines of 1 byte = %d", got)
	}
}

// TestFailedExitStatus: a run with a failed measurement exits 1, after
// printing its report.
func TestFailedExitStatus(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-transports", "test-crash", "-patterns", "throughput", "-sizes", "64",
		"-duration", "5ms", "-reps", "1", "-python", ""}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "test-crash") || !strings.Contains(errb.String(), "1 of 2 measurements failed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}

// TestStopAfterChatter: a peer that goes on printing after the
// measurement must not keep its reader goroutine blocked on the event
// channel, which would keep stop from seeing it exit and make it kill
// the peer after exitTimeout.
func TestStopAfterChatter(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	c := testCoordinator(t)
	tr, _ := lookup("test-chatty")
	rec := c.measure(tr, testMeasurement("test-chatty"))
	if rec.Status != StatusOK {
		t.Fatalf("record: %+v", rec)
	}
	if n := c.kills.Load(); n != 0 {
		t.Errorf("stop killed %d peers that had been told to exit", n)
	}
}

// TestProgressWithoutTerminal: when stderr is not a terminal, each
// measurement done is a line of its own there, with its result and the
// elapsed time, and nothing goes to stdout (there is no stdout here to
// write to: progress only gets stderr).
func TestProgressWithoutTerminal(t *testing.T) {
	var b bytes.Buffer
	plan := []planItem{
		{m: Measurement{Transport: "queue", Pattern: PatThroughput, Size: 64}},
		{rec: &Record{Transport: "py-queue", Status: StatusUnavailable}}, // reported, not run: not counted
		{m: Measurement{Transport: "unix", Pattern: PatPingPong, Size: 4096}},
	}
	p := newProgress(&b, plan)
	if p.live {
		t.Fatal("a bytes.Buffer is not a terminal")
	}
	p.show(plan[0])
	p.finished(plan[0], Record{Pattern: PatThroughput, Status: StatusOK, MsgsPerSec: 8.1e6, BytesPerSec: 8.1e6 * 64})
	p.show(plan[2])
	p.finished(plan[2], Record{Pattern: PatPingPong, Status: StatusFailed, Notes: "peer died"})
	p.done()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\[  1/2 +\d+s\] throughput +queue +64 B +8\.10M msgs/s, 518 MB/s$`),
		regexp.MustCompile(`^\[  2/2 +\d+s\] pingpong +unix +4 KiB +failed: peer died$`),
		regexp.MustCompile(`^shmbench: 2 measurements in \d+\.\ds$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("progress wrote %q", b.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %v", i, lines[i], re)
		}
	}
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "\033") {
		t.Errorf("terminal control characters in a non-terminal's progress: %q", b.String())
	}
}

func TestCheckSeq(t *testing.T) {
	var prev [1 << 8]uint64
	for i, c := range []struct {
		seq   uint64
		check bool
		ok    bool
	}{
		{1<<48 | 1, true, true},
		{1<<48 | 2, true, true},
		{1<<48 | 2, true, false}, // repeated
		{1<<48 | 1, true, false}, // went back
		{2<<48 | 1, true, true},  // another producer's own order
		{1<<48 | 5, true, true},  // a gap is not an error (the window may start anywhere)
		{0, true, true},          // a message too short to carry one
		{300 << 48, true, false}, // producer index out of range
		{1<<48 | 1, false, true}, // not checked
	} {
		if got := checkSeq(&prev, c.seq, c.check); got != c.ok {
			t.Errorf("case %d: checkSeq(%#x, %v) = %v, want %v", i, c.seq, c.check, got, c.ok)
		}
	}
}
