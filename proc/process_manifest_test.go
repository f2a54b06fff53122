package proc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// manifestProbe must never run: every manifest below is refused first.
var manifestProbe = Register("manifest-probe", func(ctx context.Context, a *Args) error {
	return errors.New("manifest-probe ran with a manifest it should have refused")
})

// TestBadManifest starts the test binary as a worker by hand, with a
// manifest that is not what this binary writes, and requires the child to
// refuse it with exitBadStart and a message, running nothing.
func TestBadManifest(t *testing.T) {
	gobOf := func(m manifest) []byte {
		var b bytes.Buffer
		if err := gob.NewEncoder(&b).Encode(m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	good := manifest{Version: manifestVersion, Func: manifestProbe.Name(), Events: 0}
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"other version", encManifest(&manifest{Version: manifestVersion + 98, Func: manifestProbe.Name(), Events: 0}),
			"manifest version " + strconv.Itoa(manifestVersion+98)},
		{"version 1 (gob)", gobOf(manifest{Version: 1, Func: manifestProbe.Name(), Events: 0}), "read manifest: malformed manifest: magic"},
		{"not a manifest", []byte("this is not a manifest"), "read manifest"},
		{"empty", nil, "read manifest"},
		{"cut short", encManifest(&good)[:20], "read manifest: malformed manifest"},
		{"trailing bytes", append(encManifest(&good), 0), "bytes after the last argument"},
		{"no event ring", encManifest(&manifest{Version: manifestVersion, Func: manifestProbe.Name(), Events: -1}), "no event ring"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fd, err := unix.MemfdCreate("manifest", unix.MFD_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(fd), "manifest")
			defer f.Close()
			if _, err := f.Write(c.body); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envWorker+"="+manifestProbe.Name(),
				envParent+"="+strconv.Itoa(os.Getpid()), envManifest+"=3")
			cmd.ExtraFiles = []*os.File{f}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitBadStart {
				t.Fatalf("worker with a bad manifest: %v, want exit status %d; stderr: %s", err, exitBadStart, &stderr)
			}
			if msg := stderr.String(); !strings.Contains(msg, c.want) || strings.Contains(msg, "should have refused") {
				t.Fatalf("stderr %q, want it to say %q", msg, c.want)
			}
		})
	}
}

// encManifest is m.marshal() for manifests that encode.
func encManifest(m *manifest) []byte {
	b, err := m.marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// manifestSeeds are encoded manifests for FuzzManifest, valid and not.
func manifestSeeds() map[string][]byte {
	full := manifest{Version: manifestVersion, Func: "f", Name: "f-0", Parent: 4242, Events: 1, Level: slog.LevelWarn,
		Args: []argEntry{{File: 2, Kind: shm.KindQueue, Type: "*ring.Queue"}, {File: -1, Type: "int", Data: []byte{3, 4, 0, 6}}}}
	b := encManifest(&full)
	huge := encManifest(&manifest{Version: manifestVersion, Func: "f", Events: 1})
	binary.LittleEndian.PutUint32(huge[len(huge)-4:], 0xffffffff) // argument count
	long := slices.Clone(b)
	binary.LittleEndian.PutUint32(long[8:], 0xfffffff0) // the function name's length
	return map[string][]byte{
		"full":        b,
		"no-args":     encManifest(&manifest{Version: manifestVersion, Func: "f", Events: 1}),
		"cut":         b[:len(b)-1],
		"huge-nargs":  huge,
		"long-name":   long,
		"version-1":   encManifest(&manifest{Version: 1}),
		"value-kind":  encManifest(&manifest{Version: manifestVersion, Func: "f", Events: 1, Args: []argEntry{{File: -1, Kind: shm.KindQueue, Type: "int"}}}),
		"object-data": encManifest(&manifest{Version: manifestVersion, Func: "f", Events: 1, Args: []argEntry{{File: 2, Kind: shm.KindQueue, Data: []byte{1}}}}),
	}
}

// FuzzManifest: any bytes decode to a manifest or an error, never a panic
// or an allocation beyond what they hold, and what decodes encodes back to
// the same bytes (the encoding is canonical).
func FuzzManifest(f *testing.F) {
	for _, b := range manifestSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := unmarshalManifest(b)
		if err != nil {
			return
		}
		if got, err := m.marshal(); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("decoded %+v, which encodes as %x, not %x", m, got, b)
		}
	})
}

// TestManifestRoundTrip checks the seeds (and writes them to testdata
// when SHMKIT_WRITE_SEEDS=1).
func TestManifestRoundTrip(t *testing.T) {
	seeds := manifestSeeds()
	m, err := unmarshalManifest(seeds["full"])
	if err != nil || m.Func != "f" || m.Name != "f-0" || m.Parent != 4242 || m.Events != 1 || m.Level != slog.LevelWarn ||
		len(m.Args) != 2 || m.Args[0].File != 2 || m.Args[0].Kind != shm.KindQueue || m.Args[0].Type != "*ring.Queue" || m.Args[0].Data != nil ||
		m.Args[1].File != -1 || m.Args[1].Type != "int" || !bytes.Equal(m.Args[1].Data, []byte{3, 4, 0, 6}) {
		t.Fatalf("full: %+v, %v", m, err)
	}
	for name, b := range seeds {
		_, err := unmarshalManifest(b)
		if (err == nil) != (name == "full" || name == "no-args") {
			t.Errorf("seed %s: %v", name, err)
		}
		t.Logf("seed %s: %v", name, err)
	}
	writeFuzzSeeds(t, "FuzzManifest", seeds)
}

// TestManifestTooLarge: the parent refuses arguments that make a manifest
// the worker would refuse (the 64 MiB below are never touched: address
// space, not memory).
func TestManifestTooLarge(t *testing.T) {
	d := make([]byte, maxManifest/16+1) // shared by 16 arguments
	m := manifest{Version: manifestVersion, Func: "f", Events: 1}
	for range 16 {
		m.Args = append(m.Args, argEntry{File: -1, Data: d})
	}
	if _, err := m.marshal(); err == nil {
		t.Fatal("a manifest over maxManifest encoded")
	}
}

// TestTaskParams: the pool's third worker argument round-trips, and
// anything else is refused.
func TestTaskParams(t *testing.T) {
	for _, p := range []taskParams{{Codec: "gob"}, {Codec: "json", NoSpin: true}, {Codec: "task", NoSpin: false}} {
		if got, err := parseTaskParams(p.String()); err != nil || got != p {
			t.Errorf("%+v: parsed %+v, %v", p, got, err)
		}
	}
	for _, s := range []string{"", " nospin", "gob nospin x", "gob spin", "gob  nospin", "nospin "} {
		if p, err := parseTaskParams(s); err == nil {
			t.Errorf("%q parsed as %+v", s, p)
		}
	}
}
