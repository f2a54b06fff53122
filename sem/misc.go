package sem

import (
	"sync/atomic"
	"time"
)

// Sleep bounds: a sleeper's first futex timeout is sleepMin, doubled after
// each timeout up to sleepMax. The timeouts are how a Mutex sleeper checks
// its owner and how any sleeper notices garbage a peer wrote without a
// wake-up; a wake-up itself never waits for them. They are variables only
// so that tests can set them to an hour, so that nothing but a real
// FUTEX_WAKE ends a sleep; atomic because sleepers read them while a test
// sets them. Read once per sleep, next to a system call.
var sleepMin, sleepMax atomic.Int64

func init() { setSleep(time.Millisecond, 64*time.Millisecond) }

// setSleep sets the sleep bounds (tests only, besides init).
func setSleep(lo, hi time.Duration) {
	sleepMin.Store(int64(lo))
	sleepMax.Store(int64(hi))
}

// firstSleep is the futex timeout of a sleeper's first sleep.
func firstSleep() time.Duration { return time.Duration(sleepMin.Load()) }

// nextSleep is the timeout after a sleep of d timed out.
func nextSleep(d time.Duration) time.Duration { return min(2*d, time.Duration(sleepMax.Load())) }

// noCopy makes go vet's copylocks check flag copies of handles.
type noCopy struct{}

// Lock and Unlock exist only for go vet.
func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
