//go:build !race

package race

import "unsafe"

// Enabled reports whether the race detector is on.
const Enabled = false

// Proxy returns nil: without the race detector there is nothing to track.
func Proxy(addr unsafe.Pointer) unsafe.Pointer { return nil }

// ProxyKey returns nil: without the race detector there is nothing to track.
func ProxyKey(key any) unsafe.Pointer { return nil }

// Acquire does nothing without the race detector.
func Acquire(p unsafe.Pointer) {}

// ReleaseMerge does nothing without the race detector.
func ReleaseMerge(p unsafe.Pointer) {}
