package main

import (
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// pyScript is the Python side of the comparison, written to a temporary
// file and run with python3.
//
//go:embed pybench.py
var pyScript string

// pyTransport runs one of Python's multiprocessing primitives through the
// embedded script, which starts its own processes (fork) and reports in the
// peer protocol.
type pyTransport struct {
	name     string
	desc     string
	batching string
	patterns []Pattern
}

func init() {
	register(&pyTransport{name: "py-queue", patterns: []Pattern{PatThroughput, PatMPMC, PatPingPong},
		desc:     "Python multiprocessing.Queue(maxsize=2 MiB of messages, 8..1024), put/get of bytes (pickled, feeder thread)",
		batching: "none: one put and one get per message (a feeder thread pickles each and writes it to a pipe)"})
	register(&pyTransport{name: "py-pipe", patterns: []Pattern{PatThroughput, PatPingPong},
		desc:     "Python multiprocessing.Pipe, send_bytes/recv_bytes (one reader, one writer)",
		batching: "none: one send_bytes and one recv_bytes per message"})
	register(&pyTransport{name: "py-value", patterns: []Pattern{PatContention},
		desc:     "Python multiprocessing.Value('q', lock=True): with v.get_lock(): v.value += 1",
		batching: "none: one locked update per iteration"})
	register(&pyTransport{name: "py-manager-get", patterns: []Pattern{PatDict},
		desc:     "Python multiprocessing.Manager().dict(), d[key] from each process (a proxy: one round trip to the manager process)",
		batching: "none: one proxy call (a request and a reply over a socket, pickled) per get"})
	register(&pyTransport{name: "py-manager-set", patterns: []Pattern{PatDict},
		desc:     "Python multiprocessing.Manager().dict(), d[key] = value from each process (each its own keys)",
		batching: "none: one proxy call per set"})
	register(&pyTransport{name: "py-array", patterns: []Pattern{PatContention},
		desc:     "Python multiprocessing.Array('q', 16, lock=True): with a.get_lock(): a[i] += 1",
		batching: "none: one locked update per iteration"})
}

// Spec implements Transport.
func (t *pyTransport) Spec() Spec {
	return Spec{Name: t.name, Kind: KindPython, Desc: t.desc, Patterns: t.patterns, External: true, Batching: t.batching}
}

// Unavailable implements Transport.
func (t *pyTransport) Unavailable() string {
	if pythonPath == "" {
		return pythonWhy + ": the Python comparison is skipped"
	}
	return ""
}

var (
	pyFileOnce sync.Once
	pyFile     string
	pyFileErr  error
)

// scriptFile writes the embedded script to a temporary file once per run
// (so that multiprocessing's children can find __main__).
func scriptFile() (string, error) {
	pyFileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shmbench-py-")
		if err != nil {
			pyFileErr = err
			return
		}
		pyFile = filepath.Join(dir, "pybench.py")
		pyFileErr = os.WriteFile(pyFile, []byte(pyScript), 0o600)
	})
	return pyFile, pyFileErr
}

// removeScript deletes the temporary script; run calls it at the end. A
// later scriptFile (another run in the same process: the tests) writes a
// new one.
func removeScript() {
	if pyFile != "" {
		os.RemoveAll(filepath.Dir(pyFile))
	}
	pyFileOnce, pyFile, pyFileErr = sync.Once{}, "", nil
}

// Setup implements Transport.
func (t *pyTransport) Setup(m *Measurement) (*Setup, error) {
	file, err := scriptFile()
	if err != nil {
		return nil, err
	}
	arg, err := json.Marshal(map[string]any{
		"transport": t.name, "pattern": m.Pattern, "size": m.Size,
		"producers": m.Producers, "consumers": m.Consumers,
		"duration": m.Duration.Nanoseconds(), "reps": m.Reps, "warmup": m.Warmup, "cpus": m.CPUs,
		"capacity": inFlight(m.Size), "keys": dictKeys,
	})
	if err != nil {
		return nil, err
	}
	return &Setup{Command: []string{pythonPath, "-u", file, string(arg)}}, nil
}

// Open implements Transport.
func (t *pyTransport) Open(env *PeerEnv) ([]Endpoint, error) { return nil, errUnsupported }
