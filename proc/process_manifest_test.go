package proc

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

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
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"other version", gobOf(manifest{Version: manifestVersion + 98, Func: manifestProbe.Name(), Events: 0}),
			"manifest version " + strconv.Itoa(manifestVersion+98)},
		{"not gob", []byte("this is not a manifest"), "read manifest"},
		{"empty", nil, "read manifest"},
		{"no event ring", gobOf(manifest{Version: manifestVersion, Func: manifestProbe.Name(), Events: -1}), "no event ring"},
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
