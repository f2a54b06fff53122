package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on what the flags accept.
const (
	minSize = 1
	maxSize = 1 << 20
)

// config is the parsed command line.
type config struct {
	sizes      []int
	duration   time.Duration
	reps       int
	rounds     int // the whole plan this many times; each measurement's median round is reported
	patterns   []Pattern
	transports []string
	baseline   string
	producers  int
	consumers  int
	contenders int
	workers    int // pool pattern
	quick      bool
	jsonOut    bool
	svgFile    string
	list       bool
	pin        bool
	python     string
}

// errUsage marks command-line errors (exit status 2).
var errUsage = errors.New("usage")

// Defaults, chosen so that the default run takes about a minute on two
// CPUs and -quick under 20 seconds (planCost estimates a plan's time;
// TestPlanCost holds the defaults to these bounds).
var (
	defaultSizes = []int{8, 64, 4 << 10, 64 << 10, 1 << 20}
	quickSizes   = []int{64, 64 << 10}
)

const (
	defaultDuration = 60 * time.Millisecond
	quickDuration   = 30 * time.Millisecond
	defaultReps     = 3
	// warmupReps is how many unreported repetitions run before the
	// measured ones.
	warmupReps = 1
)

// parseFlags parses args (without the program name). Output for -h goes to
// out.
func parseFlags(args []string, out io.Writer) (*config, error) {
	fs := flag.NewFlagSet("shmbench", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		sizes      = fs.String("sizes", "", "message sizes, comma-separated, with optional K/M suffix (binary), 1 B to 1M (default 8,64,4K,64K,1M; -quick: 64,64K)")
		duration   = fs.Duration("duration", defaultDuration, "length of one repetition, 1ms..1m (-quick: 30ms unless given)")
		reps       = fs.Int("reps", defaultReps, "measured repetitions per measurement (the median is reported); one more runs first as warm-up")
		rounds     = fs.Int("rounds", 1, "run the whole plan this many times, one round after the other, and report each measurement's median round: rows compared with each other then share every state the host went through")
		patterns   = fs.String("patterns", "all", "patterns to run, comma-separated: "+joinPatterns(allPatterns)+", or all")
		transports = fs.String("transports", "all", "transports to run, comma-separated (see -list), or all")
		baseline   = fs.String("baseline", "unix", "transport the ratios are computed against (always measured)")
		procs      = fs.String("procs", "2:2", "producers:consumers for the mpmc pattern")
		contenders = fs.Int("contenders", 2, "processes updating one value in the contention pattern")
		workers    = fs.Int("workers", 2, "worker processes of the pools in the pool pattern (Python's too)")
		quick      = fs.Bool("quick", false, "a short run (under 20 s): fewer sizes, shorter repetitions")
		jsonOut    = fs.Bool("json", false, "print the results as JSON instead of the table (schema: go doc github.com/shmkit/shmkit/cmd/shmbench)")
		svgFile    = fs.String("svg", "", "also write a self-contained SVG chart of throughput and latency by size to `FILE`")
		list       = fs.Bool("list", false, "list transports and patterns and exit")
		nopin      = fs.Bool("nopin", false, "do not pin peer processes to CPUs")
		python     = fs.String("python", "python3", "Python interpreter for the multiprocessing comparison (\"\" to skip)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shmbench [flags]\n\nshmbench measures shmkit's queues and values against the alternatives, across\nreal processes. Flags:\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{} // flags given on the command line
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c := &config{reps: *reps, rounds: *rounds, baseline: *baseline, quick: *quick, jsonOut: *jsonOut,
		svgFile: *svgFile, list: *list, pin: !*nopin, python: *python, contenders: *contenders, workers: *workers}
	var err error
	switch {
	case set["sizes"]:
		if c.sizes, err = parseSizes(*sizes); err != nil {
			return nil, err
		}
	case c.quick:
		c.sizes = quickSizes
	default:
		c.sizes = defaultSizes
	}
	switch {
	case set["duration"] && *duration < 0:
		return nil, fmt.Errorf("%w: -duration %v is negative", errUsage, *duration)
	case set["duration"]:
		c.duration = *duration // an explicit 0 fails the range check below
	case c.quick:
		c.duration = quickDuration
	default:
		c.duration = defaultDuration
	}
	if c.duration < time.Millisecond || c.duration > time.Minute {
		return nil, fmt.Errorf("%w: -duration %v out of range 1ms..1m", errUsage, c.duration)
	}
	if c.reps < 1 || c.reps > 100 {
		return nil, fmt.Errorf("%w: -reps %d out of range 1..100", errUsage, c.reps)
	}
	if c.rounds < 1 || c.rounds > 20 {
		return nil, fmt.Errorf("%w: -rounds %d out of range 1..20", errUsage, c.rounds)
	}
	if c.contenders < 1 || c.contenders > 64 {
		return nil, fmt.Errorf("%w: -contenders %d out of range 1..64", errUsage, c.contenders)
	}
	if c.workers < 1 || c.workers > 64 {
		return nil, fmt.Errorf("%w: -workers %d out of range 1..64", errUsage, c.workers)
	}
	if c.patterns, err = parsePatterns(*patterns); err != nil {
		return nil, err
	}
	if c.transports, err = parseTransports(*transports); err != nil {
		return nil, err
	}
	if _, ok := lookup(c.baseline); !ok {
		return nil, fmt.Errorf("%w: unknown -baseline %q (known: %s)", errUsage, c.baseline, strings.Join(transportNames(), ", "))
	}
	if !slices.Contains(c.transports, c.baseline) {
		// The baseline is always measured, so that every row has a ratio.
		c.transports, _ = parseTransports(strings.Join(append(c.transports, c.baseline), ","))
	}
	if c.producers, c.consumers, err = parseProcs(*procs); err != nil {
		return nil, err
	}
	return c, nil
}

// parseSizes parses "64,4K,1M" (binary multiples).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		u := strings.ToUpper(f)
		for _, suf := range []struct {
			s string
			m int
		}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
			if strings.HasSuffix(u, suf.s) {
				u, mult = strings.TrimSuffix(u, suf.s), suf.m
				break
			}
		}
		n, err := strconv.Atoi(strings.TrimSpace(u))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: bad size %q in -sizes", errUsage, f)
		}
		if n > maxSize/mult || n*mult < minSize {
			return nil, fmt.Errorf("%w: size %q out of range %d B..1 MiB", errUsage, f, minSize)
		}
		if !slices.Contains(out, n*mult) {
			out = append(out, n*mult)
		}
	}
	slices.Sort(out)
	return out, nil
}

func parsePatterns(s string) ([]Pattern, error) {
	if s == "all" || s == "" {
		return allPatterns, nil
	}
	var want []Pattern
	for _, f := range strings.Split(s, ",") {
		p := Pattern(strings.TrimSpace(f))
		if !slices.Contains(allPatterns, p) {
			return nil, fmt.Errorf("%w: unknown pattern %q (known: %s)", errUsage, p, joinPatterns(allPatterns))
		}
		want = append(want, p)
	}
	// Keep the report order.
	var out []Pattern
	for _, p := range allPatterns {
		if slices.Contains(want, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func parseTransports(s string) ([]string, error) {
	if s == "all" || s == "" {
		return transportNames(), nil
	}
	var want []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if _, ok := lookup(f); !ok {
			return nil, fmt.Errorf("%w: unknown transport %q (known: %s)", errUsage, f, strings.Join(transportNames(), ", "))
		}
		want = append(want, f)
	}
	var out []string
	for _, n := range transportNames() {
		if slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func parseProcs(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, ":")
	n, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || m < 1 || n > 64 || m > 64 {
		return 0, 0, fmt.Errorf("%w: -procs %q: want producers:consumers, each 1..64", errUsage, s)
	}
	return n, m, nil
}

func joinPatterns(ps []Pattern) string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p))
	}
	return strings.Join(s, ", ")
}
