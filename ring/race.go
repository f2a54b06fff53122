//go:build race

package ring

import (
	"unsafe"

	"github.com/shmkit/shmkit/internal/race"
)

// raceEnabled reports whether the race detector is on.
const raceEnabled = true

// raceOff turns the annotations off. Only the package's tests set it (in
// a helper process, before any queue exists), to show that the hand-off
// tests report a DATA RACE without them.
var raceOff bool

// raceRelease records, on the queue's proxy p, that what the calling
// goroutine did so far happens before whatever a later raceAcquire on p
// is called for: a producer calls it just before the atomic store that
// publishes a message (or closes the queue for writing).
func raceRelease(p unsafe.Pointer) {
	if !raceOff {
		race.ReleaseMerge(p)
	}
}

// raceAcquire records that the calling goroutine has seen what a
// raceRelease on p published: a consumer calls it after the atomic load
// that found a message (or the close), before the call returns.
func raceAcquire(p unsafe.Pointer) {
	if !raceOff {
		race.Acquire(p)
	}
}
