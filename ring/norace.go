//go:build !race

package ring

import "unsafe"

// raceEnabled reports whether the race detector is on.
const raceEnabled = false

// raceRelease does nothing without the race detector (see race.go).
func raceRelease(p unsafe.Pointer) {}

// raceAcquire does nothing without the race detector (see race.go).
func raceAcquire(p unsafe.Pointer) {}
