//go:build race

package ring

import (
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

func init() {
	// handoff-unannotated CASE: run hand-off case CASE with the race
	// annotations off. The race detector should report a DATA RACE
	// (and make the process exit with status 66). The detector may miss
	// one occurrence (it drops a report whose earlier access it can no
	// longer trace), so the case runs several times.
	testproc.Register("handoff-unannotated", func(args []string) int {
		raceOff = true
		for _, c := range handoffCases() {
			if c.name == args[0] {
				for range 10 {
					if err := c.run(); err != nil {
						return fail("%s: %v", c.name, err)
					}
				}
				return 0
			}
		}
		return fail("no hand-off case %q", args[0])
	})
}

// The hand-off tests prove something only if they fail without the
// annotations: each case, run in a helper with them off, must report a
// DATA RACE.
func TestRaceHandoffUnannotated(t *testing.T) {
	for _, c := range handoffCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := testproc.Start(t, "handoff-unannotated", c.name)
			err := p.Wait()
			if err == nil || !strings.Contains(p.Stderr(), "WARNING: DATA RACE") {
				t.Fatalf("without the annotations: %v, stderr:\n%s", err, p.Stderr())
			}
		})
	}
}
