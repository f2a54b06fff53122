//go:build linux

package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	iproc "github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/testproc"
)

const orphanWorkers = 3

func init() {
	// parent starts sleeping workers, prints their pids and "ready", and
	// waits to be killed.
	testproc.Register("parent", func(args []string) int {
		for range orphanWorkers {
			p, err := exitWorker.Start(context.Background(), "sleep")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			testproc.Printf("%d", p.Pid())
		}
		testproc.Printf("ready")
		time.Sleep(time.Hour)
		return 0
	})
}

// alive reports whether the process pid with start time start still runs
// (a zombie does not: it has exited and waits to be reaped).
func alive(t *testing.T, pid int, start uint64) bool {
	st, err := iproc.StartTime(pid)
	if errors.Is(err, iproc.ErrNoProcess) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if st != start {
		return false // the pid was reused
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// TestParentKilled: workers never outlive a parent that is SIGKILLed. A
// helper process starts sleeping workers; the test kills the helper and
// checks through /proc that every worker is gone within a bounded time.
func TestParentKilled(t *testing.T) {
	parent := testproc.Start(t, "parent")
	pids := make([]int, orphanWorkers)
	starts := make([]uint64, orphanWorkers)
	for i := range pids {
		pid, err := strconv.Atoi(parent.Line(t))
		if err != nil {
			t.Fatal(err)
		}
		pids[i] = pid
		if starts[i], err = iproc.StartTime(pid); err != nil {
			t.Fatalf("worker %d: %v", pid, err)
		}
	}
	parent.Expect(t, "ready")
	for i, pid := range pids {
		if !alive(t, pid, starts[i]) {
			t.Fatalf("worker %d not running before the parent is killed", pid)
		}
	}
	parent.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for i, pid := range pids {
		for alive(t, pid, starts[i]) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d still alive 10 s after its parent was SIGKILLed", pid)
			}
			time.Sleep(5 * time.Millisecond) // polling /proc: a bounded wait, not synchronisation
		}
	}
}
