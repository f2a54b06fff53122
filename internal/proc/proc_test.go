package proc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSelfAlive(t *testing.T) {
	id := Self()
	if int(id.Pid) != os.Getpid() || id.Start == 0 {
		t.Fatalf("Self() = %+v", id)
	}
	if !Alive(id) {
		t.Fatal("self not alive")
	}
	if Alive(ID{Pid: id.Pid, Start: id.Start + 1}) {
		t.Fatal("different start time taken as the same process")
	}
}

func TestDeadChild(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start true:", err)
	}
	pid := cmd.Process.Pid
	st, err := StartTime(pid)
	if err != nil && err != ErrNoProcess {
		t.Fatal(err)
	}
	cmd.Wait()
	if Alive(ID{Pid: int32(pid), Start: st}) {
		t.Fatal("reaped child reported alive")
	}
	if Alive(ID{Pid: -1}) || Alive(ID{Pid: 0}) {
		t.Fatal("bad pid reported alive")
	}
}

func TestParseStat(t *testing.T) {
	line := "123 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99887 20 21\n"
	st, err := parseStat([]byte(line))
	if err != nil || st != 99887 {
		t.Fatalf("parseStat = %d, %v", st, err)
	}
	if _, err := parseStat([]byte("123 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20")); err != ErrNoProcess {
		t.Fatalf("zombie: %v", err)
	}
	for _, bad := range []string{"", "123 (x", "1 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Fatalf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestExists(t *testing.T) {
	if !exists(os.Getpid()) {
		t.Fatal("self does not exist")
	}
	if exists(1<<22 + 1) {
		t.Fatal("pid beyond pid_max exists")
	}
}

// TestReadStat: readStat reads what os.ReadFile reads, at any length up
// to its bound, and a missing file is os.ErrNotExist.
func TestReadStat(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 511, 512, 513, 5000, 64 << 10} {
		p := filepath.Join(dir, strconv.Itoa(n))
		want := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := readStat(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("readStat of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	p := filepath.Join(dir, "big")
	if err := os.WriteFile(p, make([]byte, 64<<10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readStat(p); err == nil {
		t.Fatal("readStat of 64 KiB + 1: no error")
	}
	if _, err := readStat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	b, err := readStat("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := parseStat(b); err != nil || st != Self().Start {
		t.Fatalf("start time %d, %v; Self says %d", st, err, Self().Start)
	}
}
