package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/proc"
)

// envTestMain makes the test binary run shmbench's main with the
// arguments after "--": the end-to-end tests run the real command line
// without building a separate binary.
const envTestMain = "SHMBENCH_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envHello) != "" {
		os.Exit(0) // exec-start's hello-world program
	}
	proc.Main() // the pools' workers (before the peers: they inherit SHMBENCH_PEER)
	if spec := os.Getenv(envRPCServer); spec != "" {
		os.Exit(rpcServerMain(spec))
	}
	if spec := os.Getenv(envPeer); spec != "" {
		os.Exit(peerMain(spec))
	}
	if os.Getenv(envTestMain) == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// Transports that misbehave on purpose, for the supervision tests. They
// are registered only in the test binary (and so in its peers).
func init() {
	register(&testTransport{name: "test-crash"})
	register(&testTransport{name: "test-stuck"})
	register(&testTransport{name: "test-notify"})
	register(chattyTransport{})
}

// testTransport has consumer processes only (like memcpy). test-crash's
// consumer exits with status 3 on its first message; test-stuck's never
// returns from Recv; test-notify's writes its pid to the file the
// coordinator inherited as fd 3 (from the test) and then hangs.
type testTransport struct{ name string }

func (t *testTransport) Spec() Spec {
	return Spec{Name: t.name, Kind: "test", Desc: "misbehaving peer for tests", NoProducer: true,
		Patterns: []Pattern{PatThroughput}}
}

func (t *testTransport) Unavailable() string { return "" }

func (t *testTransport) Setup(m *Measurement) (*Setup, error) {
	s := &Setup{}
	if t.name == "test-notify" {
		f := os.NewFile(3, "notify")
		s.Files = func(string, int) []*os.File { return []*os.File{f} }
	}
	return s, nil
}

func (t *testTransport) Open(env *PeerEnv) ([]Endpoint, error) {
	if t.name == "test-notify" {
		fmt.Fprintf(env.Files[0], "%d\n", os.Getpid())
		env.Files[0].Close()
	}
	return []Endpoint{&testEndpoint{name: t.name}}, nil
}

type testEndpoint struct{ name string }

func (e *testEndpoint) Send(uint64) error { return errUnsupported }
func (e *testEndpoint) Recv() (uint64, error) {
	switch e.name {
	case "test-crash":
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(3)
	}
	select {}
}
func (e *testEndpoint) Close() error { return nil }

// chattyTransport is an external peer (a shell script) that reports its
// one repetition and then prints far more lines than the coordinator's
// event channel holds, when nobody reads them any more; it exits when
// its stdin is closed.
type chattyTransport struct{}

func (chattyTransport) Spec() Spec {
	return Spec{Name: "test-chatty", Kind: "test", Desc: "external peer that chatters after its report", External: true,
		NoProducer: true, Patterns: []Pattern{PatThroughput}}
}

func (chattyTransport) Unavailable() string { return "" }

func (chattyTransport) Setup(m *Measurement) (*Setup, error) {
	const script = `echo '{"ready":true}'; read go
echo '{"rep":1,"msgs":10,"ns":1000000}'
i=0; while [ $i -lt 1000 ]; do echo '{"note":"chatter"}'; i=$((i+1)); done
cat >/dev/null`
	return &Setup{Command: []string{"/bin/sh", "-c", script}}, nil
}

func (chattyTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }

func TestParseFlagsGood(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The issue asks for 8 B to 1 MiB by default.
	if got := fmt.Sprint(c.sizes); got != "[8 64 4096 65536 1048576]" {
		t.Errorf("default sizes = %s", got)
	}
	if c.duration != defaultDuration || c.reps != defaultReps ||
		c.baseline != "unix" || c.producers != 2 || c.consumers != 2 || !c.pin || len(c.patterns) != len(allPatterns) {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || fmt.Sprint(c.sizes) != "[64 65536]" || c.duration != quickDuration {
		t.Errorf("-quick: %+v, %v", c, err)
	}
	// An explicit -duration wins over -quick's.
	c, err = parseFlags([]string{"-quick", "-duration", "7ms"}, io.Discard)
	if err != nil || c.duration != 7*time.Millisecond {
		t.Errorf("-quick -duration 7ms: %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"-sizes", "8, 1K,64KiB,1M,8", "-duration", "50ms", "-reps", "5",
		"-patterns", "pingpong,throughput", "-transports", "tcp,unix", "-baseline", "tcp",
		"-procs", "3:1", "-json", "-svg", "out.svg", "-nopin", "-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.sizes); got != "[8 1024 65536 1048576]" {
		t.Errorf("sizes = %s", got)
	}
	if c.duration != 50*time.Millisecond || c.reps != 5 || c.baseline != "tcp" || !c.jsonOut ||
		c.svgFile != "out.svg" || c.pin || c.producers != 3 || c.consumers != 1 {
		t.Errorf("parsed %+v", c)
	}
	// Report order, not command-line order.
	if fmt.Sprint(c.patterns) != "[throughput pingpong]" || fmt.Sprint(c.transports) != "[unix tcp]" {
		t.Errorf("patterns %v transports %v", c.patterns, c.transports)
	}
	// The baseline is added to the transports.
	c, err = parseFlags([]string{"-transports", "queue,chan"}, io.Discard)
	if err != nil || fmt.Sprint(c.transports) != "[queue unix chan]" {
		t.Errorf("patterns %v transports %v", c.patterns, c.transports)
	}
}

func TestParseFlagsBad(t *testing.T) {
	for _, args := range [][]string{
		{"-sizes", "0"},
		{"-sizes", "2M"},
		{"-sizes", "abc"},
		{"-sizes", "64,"},
		{"-sizes", "-5"},
		{"-duration", "0s1"},
		{"-duration", "0"},
		{"-duration", "0s"},
		{"-duration", "500us"},
		{"-quick", "-duration", "0"},
		{"-sizes", ""},
		{"-duration", "-1s"},
		{"-duration", "1h"},
		{"-reps", "0"},
		{"-patterns", "nope"},
		{"-transports", "unix,carrier-pigeon"},
		{"-baseline", "nope"},
		{"-procs", "2"},
		{"-procs", "0:1"},
		{"-procs", "a:b"},
		{"-contenders", "0"},
		{"-no-such-flag"},
		{"extra-argument"},
	} {
		_, err := parseFlags(args, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
}

// TestRunUsageErrors checks the exit status and message of bad command
// lines through run (no peers are started).
func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-transports", "carrier-pigeon"}, {"-patterns", "x"}, {"-bogus"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if !strings.Contains(errb.String(), "usage") && !strings.Contains(errb.String(), "unknown") {
			t.Errorf("%q: stderr %q", args, errb.String())
		}
	}
	var out bytes.Buffer
	if code := run([]string{"-h"}, &out, &out); code != 0 || !strings.Contains(out.String(), "-transports") {
		t.Errorf("-h: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-list"}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "unix") ||
		!strings.Contains(out.String(), "pingpong") {
		t.Errorf("-list: exit %d, output %q", code, out.String())
	}
}

func TestParseSizes(t *testing.T) {
	for in, want := range map[string]string{"1": "[1]", "4k": "[4096]", "1MiB": "[1048576]", "2KB,1b": "[1 2048]"} {
		got, err := parseSizes(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("parseSizes(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

// TestQuickJSON runs the command line as a user would with -quick -json
// (and -svg), the test binary's misbehaving transports left out, and
// checks every record against the schema and what it measured for
// plausibility, and the chart for well-formedness.
func TestQuickJSON(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	svg := t.TempDir() + "/chart.svg"
	cmd := command(t, "-quick", "-json", "-svg", svg, "-transports", realTransports())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstderr:\n%s\nstdout:\n%s", err, errb.String(), out.String())
	}
	// The bound (under 20 s) is checked arithmetically by
	// TestPlanCost: the wall time depends on the machine's load and on
	// -race (whose peers start slower), so it is only logged.
	t.Logf("-quick -json took %v", time.Since(start).Round(time.Millisecond))
	doc, results := decodeDoc(t, out.Bytes())
	cfg := doc["config"].(map[string]any)
	if fmt.Sprint(cfg["sizes"]) != "[64 65536]" || fmt.Sprint(cfg["duration_ns"]) != fmt.Sprint(int64(quickDuration)) {
		t.Errorf("config %v", cfg)
	}
	seen := map[string]bool{}
	for i, r := range results {
		rec := checkRecord(t, i, r)
		what := fmt.Sprint(rec["transport"], "/", rec["pattern"], "/", rec["size"])
		if rec["status"] == StatusFailed {
			t.Errorf("%s failed: %v", what, rec["notes"])
		}
		if rec["status"] != StatusOK {
			continue
		}
		num := func(f string) float64 { v, _ := rec[f].(json.Number).Float64(); return v }
		tr, _ := lookup(fmt.Sprint(rec["transport"]))
		startup := tr.Spec().Startup
		okSize := num("size") == 64 || num("size") == 65536 || num("size") == float64(tr.Spec().FixedSize) ||
			rec["pattern"] == string(PatContention) && num("size") == 8 ||
			rec["pattern"] == string(PatRPC) && num("size") == 2 ||
			rec["pattern"] == string(PatPool) && num("size") == 8 && !startup ||
			rec["pattern"] == string(PatPool) && num("size") == 0 && startup
		if num("msgs_per_sec") <= 0 || (num("bytes_per_sec") <= 0) != startup || num("repetitions") != defaultReps || !okSize {
			t.Errorf("%s: implausible %v", what, rec)
		}
		if rec["pattern"] == string(PatPingPong) || startup {
			if !(0 < num("p50_ns") && num("p50_ns") <= num("p90_ns") && num("p90_ns") <= num("p99_ns") &&
				num("p99_ns") <= num("p999_ns") && num("p999_ns") <= num("max_ns")) {
				t.Errorf("%s: percentiles out of order: %v", what, rec)
			}
		}
		if rec["transport"] == "unix" && num("ratio") != 1 {
			t.Errorf("%s: baseline ratio = %v, want 1", what, rec["ratio"])
		}
		seen[fmt.Sprint(rec["transport"], "/", rec["pattern"])] = true
	}
	for _, want := range []string{"unix/throughput", "unix/mpmc", "unix/pingpong", "chan/throughput", "chan/pingpong",
		"memcpy/throughput", "queue/throughput", "queue/mpmc", "queue/pingpong", "queue-zc/throughput",
		"pipe/throughput", "pipe/pingpong", "value/contention",
		"pool/pool", "gopool-batch/pool", "pool-c1/pool", "pool-start/pool", "dict-load/dict", "syncmap-load/dict", "http-shmnet/rpc", "grpc-unix/rpc"} {
		if !seen[want] {
			t.Errorf("no ok record for %s", want)
		}
	}
	// The closing summary and the legend are in the JSON too, and the
	// progress went to stderr, a line per measurement (not a terminal).
	summary, _ := doc["summary"].([]any)
	if len(summary) == 0 || !strings.Contains(fmt.Sprint(summary[0]), "shmkit's queue moves") {
		t.Errorf("summary = %v", doc["summary"])
	}
	legend, _ := doc["legend"].([]any)
	inLegend := map[string]bool{}
	for _, e := range legend {
		e, _ := e.(map[string]any)
		inLegend[fmt.Sprint(e["transport"])] = e["batching"] != "" && e["what"] != ""
	}
	for _, r := range results {
		if tr := fmt.Sprint(r.(map[string]any)["transport"]); !inLegend[tr] {
			t.Errorf("legend lacks %s: %v", tr, doc["legend"])
		}
	}
	if !regexp.MustCompile(`(?m)^\[ +1/\d+ +\d+s\] throughput +queue +64 B +\S+ msgs/s`).MatchString(errb.String()) ||
		!strings.Contains(errb.String(), " measurements in ") {
		t.Errorf("no progress lines on stderr:\n%s", errb.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("</svg>")) || !bytes.Contains(b, []byte("unix")) {
		t.Errorf("svg: %v\n%.200s", err, b)
	}
	// Well-formed XML throughout.
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
	}
}

// decodeDoc decodes -json output with numbers kept as json.Number, checks
// the document's top level and returns it with its results.
func decodeDoc(t *testing.T, out []byte) (map[string]any, []any) {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Errorf("more than one JSON value in the output")
	}
	if doc["schema"] != SchemaVersion {
		t.Errorf("schema = %v", doc["schema"])
	}
	for _, k := range []string{"host", "config"} {
		if _, ok := doc[k].(map[string]any); !ok {
			t.Errorf("%s missing or not an object", k)
		}
	}
	if _, ok := doc["wall_ns"].(json.Number); !ok {
		t.Errorf("wall_ns = %#v, want a number", doc["wall_ns"])
	}
	if _, ok := doc["started"].(string); !ok {
		t.Errorf("started = %#v, want a string", doc["started"])
	}
	results, ok := doc["results"].([]any)
	if !ok || len(results) == 0 {
		t.Fatalf("results = %v", doc["results"])
	}
	// Strictly too: no field the Document type does not know.
	sdec := json.NewDecoder(bytes.NewReader(out))
	sdec.DisallowUnknownFields()
	var d Document
	if err := sdec.Decode(&d); err != nil {
		t.Errorf("output does not decode into Document: %v", err)
	}
	return doc, results
}

// checkRecord checks that result i has every field of the schema, of its
// type, and the invariants of its status; it returns the record.
func checkRecord(t *testing.T, i int, r any) map[string]any {
	t.Helper()
	rec, ok := r.(map[string]any)
	if !ok {
		t.Fatalf("result %d is not an object", i)
	}
	strFields := []string{"transport", "kind", "pattern", "status", "notes", "baseline"}
	numFields := []string{"size", "producers", "consumers", "msgs_per_sec", "bytes_per_sec",
		"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "repetitions", "duration_ns", "ratio", "wall_ns"}
	for _, f := range strFields {
		if _, ok := rec[f].(string); !ok {
			t.Errorf("result %d: %s = %#v, want a string", i, f, rec[f])
		}
	}
	for _, f := range numFields {
		if _, ok := rec[f].(json.Number); !ok {
			t.Errorf("result %d: %s = %#v, want a number", i, f, rec[f])
		}
	}
	if _, ok := rec["pinned"].(bool); !ok {
		t.Errorf("result %d: pinned = %#v, want a bool", i, rec["pinned"])
	}
	reps, ok := rec["rep_msgs_per_sec"].([]any)
	if !ok {
		t.Errorf("result %d: rep_msgs_per_sec = %#v, want an array", i, rec["rep_msgs_per_sec"])
	}
	if n := len(rec); n != len(strFields)+len(numFields)+2 {
		t.Errorf("result %d has %d fields, want %d: %v", i, n, len(strFields)+len(numFields)+2, rec)
	}
	num := func(f string) float64 {
		n, _ := rec[f].(json.Number)
		v, _ := n.Float64()
		return v
	}
	switch st := rec["status"]; st {
	case StatusOK:
		if len(reps) != int(num("repetitions")) {
			t.Errorf("result %d: %d repetition rates, want %v", i, len(reps), rec["repetitions"])
		}
	case StatusSkipped, StatusUnavailable:
		for _, f := range []string{"msgs_per_sec", "bytes_per_sec", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "ratio"} {
			if num(f) != 0 {
				t.Errorf("result %d (%s): %s = %v, want 0", i, st, f, rec[f])
			}
		}
		if len(reps) != 0 || rec["baseline"] != "" || rec["notes"] == "" {
			t.Errorf("result %d (%s): rep rates %v, baseline %q, notes %q", i, st, reps, rec["baseline"], rec["notes"])
		}
	case StatusFailed:
		if num("ratio") != 0 || rec["notes"] == "" {
			t.Errorf("result %d (failed): ratio %v, notes %q", i, rec["ratio"], rec["notes"])
		}
	default:
		t.Errorf("result %d: status %v", i, st)
	}
	return rec
}

// command returns the test binary set up to run as shmbench with args.
func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), envTestMain+"=1")
	return cmd
}

// TestEndToEnd runs the command line as a user would, briefly.
func TestEndToEnd(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	cmd := command(t, "-transports", "unix,os-pipe", "-sizes", "4K", "-duration", "30ms", "-reps", "1", "-patterns", "throughput,pingpong")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	t.Logf("took %v\n%s", time.Since(start), out.String())
	for _, want := range []string{"Throughput: 1 producer", "Latency: ping-pong", "vs unix", "os-pipe", "4 KiB", "1.00x"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "failed") {
		t.Errorf("a measurement failed:\n%s", out.String())
	}
}

func TestEndToEndUsage(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	cmd := command(t, "-transports", "carrier-pigeon")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit status 2", err)
	}
	if !strings.Contains(errb.String(), `unknown transport "carrier-pigeon"`) || strings.Contains(errb.String(), "panic") {
		t.Errorf("stderr: %s", errb.String())
	}
}

func testCoordinator(t *testing.T) *coordinator {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &coordinator{ctx: context.Background(), exe: exe, cpus: allowedCPUs(), pin: true,
		ready: 20 * time.Second, grace: 2 * time.Second}
}

func testMeasurement(name string) Measurement {
	return Measurement{Transport: name, Pattern: PatThroughput, Size: 64, Producers: 0, Consumers: 1,
		Duration: 10 * time.Millisecond, Reps: 1, Warmup: 1}
}

// TestPeerDies: a peer that exits mid-run is reported with its status.
func TestPeerDies(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	c := testCoordinator(t)
	tr, _ := lookup("test-crash")
	rec := c.measure(tr, testMeasurement("test-crash"))
	if rec.Status != StatusFailed || !strings.Contains(rec.Notes, "exit status 3") || !strings.Contains(rec.Notes, "crashing on purpose") {
		t.Fatalf("record: %+v", rec)
	}
}

// TestPeerStuck: a peer that never reports is not waited on forever.
func TestPeerStuck(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	c := testCoordinator(t)
	tr, _ := lookup("test-stuck")
	start := time.Now()
	rec := c.measure(tr, testMeasurement("test-stuck"))
	if rec.Status != StatusFailed || !strings.Contains(rec.Notes, "stuck") {
		t.Fatalf("record: %+v", rec)
	}
	t.Log(rec.Notes)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestInterrupt: SIGINT stops the run, kills the peers and exits 130.
func TestInterrupt(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := command(t, "-transports", "test-notify", "-patterns", "throughput", "-sizes", "64", "-duration", "10s", "-reps", "1")
	cmd.ExtraFiles = []*os.File{w}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("no pid from the peer: %v; stderr %s", err, errb.String())
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	cmd.Process.Signal(os.Interrupt)
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("shmbench did not exit after SIGINT")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want status 130; stderr %s", err, errb.String())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("peer %d still alive after shmbench exited (kill 0: %v)", pid, err)
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("report does not say it was interrupted:\n%s", out.String())
	}
}

// TestPython runs the embedded Python script for each of its primitives,
// when python3 is installed.
func TestPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	var out, errb bytes.Buffer
	code := run([]string{"-json", "-transports", "py-queue,py-pipe,py-value,py-array", "-patterns", "throughput,mpmc,pingpong,contention",
		"-sizes", "64", "-duration", "20ms", "-reps", "1", "-procs", "1:2"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range doc.Results {
		if r.Kind != KindPython {
			continue
		}
		if r.Status != StatusOK || r.MsgsPerSec <= 0 {
			t.Errorf("%s %s: %s %v: %s", r.Transport, r.Pattern, r.Status, r.MsgsPerSec, r.Notes)
		}
		if r.Pattern == PatPingPong && (r.P50NS <= 0 || r.P99NS < r.P50NS) {
			t.Errorf("%s ping-pong percentiles %d %d", r.Transport, r.P50NS, r.P99NS)
		}
		seen[r.Transport+"/"+string(r.Pattern)] = true
	}
	for _, want := range []string{"py-queue/throughput", "py-queue/mpmc", "py-queue/pingpong", "py-pipe/throughput",
		"py-pipe/pingpong", "py-value/contention", "py-array/contention"} {
		if !seen[want] {
			t.Errorf("no record for %s", want)
		}
	}
}

// TestDict runs the dict pattern's rows briefly: every row measured (or,
// for Redis and Python, unavailable with the reason), every value read
// checked by the rows themselves, the ratios against pipelined Redis.
func TestDict(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"-json", "-patterns", "dict", "-duration", "10ms", "-reps", "1"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc Document
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	_, redisErr := exec.LookPath("redis-server")
	got := map[string]int{}
	for _, r := range doc.Results {
		if r.Pattern != PatDict {
			t.Errorf("%s: pattern %s", r.Transport, r.Pattern)
			continue
		}
		switch {
		case strings.HasPrefix(r.Transport, "redis") && redisErr != nil:
			if r.Status != StatusUnavailable || !strings.Contains(r.Notes, "skipped: redis-server not found") {
				t.Errorf("%s without redis-server: %s %q", r.Transport, r.Status, r.Notes)
			}
		case strings.HasPrefix(r.Transport, "py-") && pythonPath == "":
		case r.Status != StatusOK || r.MsgsPerSec <= 0:
			t.Errorf("%s %d B x%d: %s %v: %s", r.Transport, r.Size, r.Consumers, r.Status, r.MsgsPerSec, r.Notes)
		default:
			got[r.Transport]++
			if redisErr == nil && r.Baseline != "redis-get-p64" {
				t.Errorf("%s: baseline %q", r.Transport, r.Baseline)
			}
		}
	}
	for _, tr := range []string{"dict-load", "dict-miss", "dict-store", "syncmap-load", "rwmap-load"} {
		if got[tr] != len(dictSizes)*len(dictProcs) {
			t.Errorf("%s: %d rows, want %d", tr, got[tr], len(dictSizes)*len(dictProcs))
		}
	}
	if s := strings.Join(doc.Summary, "\n"); !strings.Contains(s, "Shared map (8 B keys, 64 B values): dict Load makes") {
		t.Errorf("summary:\n%s", s)
	}
}

// TestDictNoRedis checks what a machine without redis-server reports.
func TestDictNoRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"-patterns", "dict", "-transports", "dict-load,redis-get,redis-get-p64", "-sizes", "64",
		"-duration", "5ms", "-reps", "1", "-python", ""}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if n := strings.Count(out.String(), "skipped: redis-server not found"); n != 2 {
		t.Errorf("%d rows say redis-server is missing, want 2:\n%s", n, out.String())
	}
}
