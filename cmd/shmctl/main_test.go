package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

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

// ls and inspect show the type name the creator recorded, and -json gives
// every field of shm.Info, one object per segment.
func TestTypeNamesAndJSON(t *testing.T) {
	name := fmt.Sprintf("shmctl-json-%d", os.Getpid())
	untyped := name + "-untyped"
	t.Cleanup(func() { _ = shm.Unlink(name); _ = shm.Unlink(untyped) })
	s, err := shm.Create(name, 1000, shm.WithKind(shm.KindArray), shm.WithParams(10, 0),
		shm.WithType(shm.TypeDesc{Size: 16, Align: 8, Fingerprint: 0xdeadbeefcafef00d}), shm.WithTypeName("main.Point"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	u, err := shm.Create(untyped, 64)
	if err != nil {
		t.Fatal(err)
	}
	u.Close()

	code, o, e := shmctl(t, "ls")
	if code != 0 || !regexp.MustCompile(`(?m)^`+name+` +1000 +array +main\.Point +ready `).MatchString(o) ||
		!regexp.MustCompile(`(?m)^`+untyped+` +64 +\S+ +untyped +ready `).MatchString(o) {
		t.Fatalf("ls: %d\n%s\n%s", code, o, e)
	}
	code, o, e = shmctl(t, "inspect", name, untyped)
	if code != 0 || !strings.Contains(o, "type name: main.Point\n") || !strings.Contains(o, "type name: - (not recorded)\n") ||
		!strings.Contains(o, "fp=0xdeadbeefcafef00d") {
		t.Fatalf("inspect: %d\n%s\n%s", code, o, e)
	}

	wantKeys := "creator_alive creator_pid creator_start error file_size inode kind mode name params path size state type type_name"
	check := func(what string, obj map[string]any) {
		t.Helper()
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if strings.Join(keys, " ") != wantKeys {
			t.Errorf("%s: keys %v, want %s", what, keys, wantKeys)
		}
		typ, _ := obj["type"].(map[string]any)
		if obj["type_name"] != "main.Point" || obj["kind"] != "array" || obj["state"] != "ready" || obj["size"] != 1000.0 ||
			fmt.Sprint(obj["params"]) != "[10 0]" || obj["creator_pid"] != float64(os.Getpid()) || obj["creator_alive"] != true ||
			obj["error"] != "" || obj["mode"] != "-rw-------" || obj["path"] != "/dev/shm/"+shm.NamePrefix+name ||
			fmt.Sprint(typ) != "map[align:8 fingerprint:0xdeadbeefcafef00d size:16]" {
			t.Errorf("%s: %v", what, obj)
		}
	}
	code, o, e = shmctl(t, "ls", "-json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(o), &list); code != 0 || err != nil {
		t.Fatalf("ls -json: %d %v\n%s\n%s", code, err, o, e)
	}
	found := 0
	for _, obj := range list {
		switch obj["name"] {
		case name:
			found++
			check("ls -json", obj)
		case untyped:
			found++
			if obj["type_name"] != "" || obj["kind"] != "raw" {
				t.Errorf("ls -json, untyped: %v", obj)
			}
		}
	}
	if found != 2 {
		t.Errorf("ls -json lists %d of the 2 segments:\n%s", found, o)
	}

	code, o, e = shmctl(t, "inspect", "-json", name, name+"-missing")
	var objs []map[string]any
	if err := json.Unmarshal([]byte(o), &objs); code != 1 || err != nil || len(objs) != 2 || !strings.Contains(e, "no such file") {
		t.Fatalf("inspect -json with a missing name: %d %v\n%s\n%s", code, err, o, e)
	}
	check("inspect -json", objs[0])
	if objs[1]["name"] != name+"-missing" || !strings.Contains(fmt.Sprint(objs[1]["error"]), "no such file") {
		t.Errorf("inspect -json, missing: %v", objs[1])
	}
	if code, _, e := shmctl(t, "ls", "-jsn"); code != 2 || !strings.Contains(e, "usage") {
		t.Errorf("ls -jsn: %d %s", code, e)
	}
}

// A process that exits while gc reads it is not counted as unreadable;
// one whose maps cannot be opened or read is, with its pid, its command
// and the error.
func TestMappedFiles(t *testing.T) {
	proc := t.TempDir()
	maps := map[string]string{
		"4": "7f00-7f10 rw-s 00000000 00:1a 777 /dev/shm/shmkit.a\n" +
			"7f10-7f20 rw-s 00000000 00:1a 888 /dev/shm/#888 (deleted)\n" +
			"7f20-7f30 r-xp 00000000 fe:00 999 /usr/bin/x\n",
	}
	for _, pid := range []string{"1", "2", "3", "4", "5"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(proc, pid, "maps"), []byte(maps[pid]), 0o644)
		os.WriteFile(filepath.Join(proc, pid, "comm"), []byte("cmd"+pid+"\n"), 0o644)
	}
	open := func(name string) (io.ReadCloser, error) {
		switch filepath.Base(filepath.Dir(name)) {
		case "1":
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EACCES}
		case "2": // exited between the glob and the open
			return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
		case "3": // exited while read
			return io.NopCloser(iotest.ErrReader(&fs.PathError{Op: "read", Path: name, Err: syscall.ESRCH})), nil
		case "5":
			return io.NopCloser(iotest.ErrReader(&fs.PathError{Op: "read", Path: name, Err: syscall.EIO})), nil
		}
		return os.Open(name)
	}
	mapped, unreadable := mappedFiles(proc, open)
	if len(mapped) != 2 || !mapped[777] || !mapped[888] {
		t.Errorf("mapped %v, want 777 and 888", mapped)
	}
	var got []string
	for _, p := range unreadable {
		got = append(got, p.String())
	}
	if want := "pid 1 (cmd1): permission denied|pid 5 (cmd5): input/output error"; strings.Join(got, "|") != want {
		t.Errorf("unreadable: %q, want %q", got, want)
	}
}

// gc names the processes whose maps it could not read, and only when it
// lists a segment: when it lists none, they changed nothing (the
// spurious "could not read the mappings of 1 processes" of a root run in
// a VM whose init refuses its maps even to root).
func TestGCNotesUnreadableOnlyWhenListing(t *testing.T) {
	dead := fmt.Sprintf("shmctl-gcn-%d-dead", os.Getpid())
	t.Cleanup(func() { _ = shm.Unlink(dead) })
	p := testproc.Start(t, "create", dead)
	p.Expect(t, "created")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	real := procMaps
	t.Cleanup(func() { procMaps = real })
	procMaps = func() (map[uint64]bool, []unreadableProc) {
		m, _ := real()
		return m, []unreadableProc{{pid: 1, comm: "init", err: &fs.PathError{Op: "open", Path: "/proc/1/maps", Err: syscall.EACCES}}}
	}
	code, o, e := shmctl(t, "gc", fmt.Sprintf("shmctl-gcn-%d-nothing-*", os.Getpid()))
	if code != 0 || o != "" || strings.Contains(e, "could not read") {
		t.Errorf("gc listing nothing: %d %q %q", code, o, e)
	}
	code, o, e = shmctl(t, "gc", dead)
	if code != 0 || strings.TrimSpace(o) != dead ||
		!strings.Contains(e, "could not read the mappings of process: pid 1 (init): permission denied; a segment mapped only there would be listed below as abandoned") {
		t.Errorf("gc listing one: %d %q %q", code, o, e)
	}
	if root := os.Geteuid() == 0; strings.Contains(e, "ptrace") != root {
		t.Errorf("root %v, but the ptrace explanation present is %v: %q", root, !root, e)
	}
}
