package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func init() {
	// create NAME: create a segment and exit, leaving it with a dead creator.
	testproc.Register("create", func(args []string) int {
		s, err := shm.Create(args[0], 64, shm.WithKind(shm.KindQueue))
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		s.Close()
		testproc.Printf("created")
		return 0
	})
}

func shmctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"rm"}, {"inspect"}, {"ls", "x"}, {"gc", "-nope"}, {"gc", "a", "b"}} {
		if code, _, e := shmctl(t, args...); code != 2 || !strings.Contains(e, "usage: shmctl") {
			t.Errorf("%q: code %d, stderr %q", args, code, e)
		}
	}
	if code, o, _ := shmctl(t, "help"); code != 0 || !strings.Contains(o, "usage") {
		t.Errorf("help: %d %q", code, o)
	}
}

func TestLsInspectRm(t *testing.T) {
	name := fmt.Sprintf("shmctl-test-%d", os.Getpid())
	t.Cleanup(func() { _ = shm.Unlink(name) })
	s, err := shm.Create(name, 1000, shm.WithKind(shm.KindArray), shm.WithParams(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	code, o, e := shmctl(t, "ls")
	if code != 0 || !strings.Contains(o, name) || !strings.Contains(o, "array") || !strings.Contains(o, "(alive)") {
		t.Fatalf("ls: %d\n%s\n%s", code, o, e)
	}
	code, o, e = shmctl(t, "inspect", name)
	if code != 0 || !strings.Contains(o, "size:      1000") || !strings.Contains(o, "params:    10 0") || !strings.Contains(o, "ready") {
		t.Fatalf("inspect: %d\n%s\n%s", code, o, e)
	}
	if code, _, e = shmctl(t, "inspect", name+"-missing"); code != 1 || !strings.Contains(e, "no such file") {
		t.Fatalf("inspect missing: %d %s", code, e)
	}
	if code, _, e = shmctl(t, "rm", name); code != 0 {
		t.Fatalf("rm: %d %s", code, e)
	}
	if code, _, e = shmctl(t, "rm", name); code != 1 || !strings.Contains(e, "no such file") {
		t.Fatalf("second rm: %d %s", code, e)
	}
	if code, _, e = shmctl(t, "rm", "../etc/passwd"); code != 1 || !strings.Contains(e, "invalid segment name") {
		t.Fatalf("rm bad name: %d %s", code, e)
	}
}

func TestGC(t *testing.T) {
	dead := fmt.Sprintf("shmctl-gc-%d-dead", os.Getpid())
	live := fmt.Sprintf("shmctl-gc-%d-live", os.Getpid())
	t.Cleanup(func() { _ = shm.Unlink(dead); _ = shm.Unlink(live) })
	p := testproc.Start(t, "create", dead)
	p.Expect(t, "created")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	s, err := shm.Create(live, 64) // creator alive (this process)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pattern := fmt.Sprintf("shmctl-gc-%d-*", os.Getpid())

	code, o, e := shmctl(t, "gc", pattern)
	if code != 0 || strings.TrimSpace(o) != dead {
		t.Fatalf("gc (dry run): %d %q %q", code, o, e)
	}
	if _, err := shm.Inspect(dead); err != nil {
		t.Fatalf("dry run removed the segment: %v", err)
	}
	code, o, e = shmctl(t, "gc", "-delete", pattern)
	if code != 0 || strings.TrimSpace(o) != "removed "+dead {
		t.Fatalf("gc -delete: %d %q %q", code, o, e)
	}
	if _, err := shm.Inspect(dead); err == nil {
		t.Fatal("gc -delete left the segment")
	}
	if _, err := shm.Inspect(live); err != nil {
		t.Fatalf("gc removed a live creator's segment: %v", err)
	}
}

func TestMountinfoHidesPids(t *testing.T) {
	for _, c := range []struct {
		info string
		want bool
	}{
		{"22 27 0:21 / /proc rw,relatime - proc proc rw\n", false},
		{"22 27 0:21 / /proc rw,nosuid - proc proc rw,hidepid=2\n", true},
		{"22 27 0:21 / /proc rw,nosuid - proc proc rw,hidepid=invisible\n", true},
		{"22 27 0:21 / /proc rw,nosuid - proc proc rw,hidepid=0\n", false},
		{"30 27 0:40 / /other/proc rw - proc proc rw,hidepid=2\n", false},
		{"", false},
	} {
		if got := mountinfoHidesPids([]byte(c.info)); got != c.want {
			t.Errorf("%q: %v, want %v", c.info, got, c.want)
		}
	}
}

// A file that is not a valid segment is listed with its name quoted, so
// control characters in a hostile name reach the terminal escaped.
func TestLsQuotesBadNames(t *testing.T) {
	name := fmt.Sprintf("shmctl-bad-%d-\x1b[2J", os.Getpid())
	p := "/dev/shm/" + shm.NamePrefix + name
	if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(p) })
	code, o, e := shmctl(t, "ls")
	if code != 0 || strings.Contains(o, "\x1b") || !strings.Contains(o, fmt.Sprintf("%q", name)) {
		t.Fatalf("ls: %d\n%q\n%s", code, o, e)
	}
}
