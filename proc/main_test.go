package proc_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/proc"
)

// TestMain is the package's only one: proc.Main runs a worker and exits
// when the test binary was re-executed by Start; testproc.Main runs a
// helper the same way, or the tests.
func TestMain(m *testing.M) {
	poolHoldStart()
	proc.Main()
	// Under -race a process sleeps 1 s at exit by default to let reports
	// flush; workers exit often, so skip that wait in them.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	testproc.DefaultTimeout = 60 * time.Second
	testproc.Main(m)
}
