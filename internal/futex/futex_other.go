//go:build !linux

package futex

import (
	"context"
	"time"
)

// Supported reports whether futexes work on this system.
const Supported = false

// Calls returns 0: no futex system call is ever made on this system.
func Calls() uint64 { return 0 }

// Wait is not supported on this system.
func Wait(addr *uint32, val uint32, timeout time.Duration) error { return ErrNotSupported }

// Wake is not supported on this system.
func Wake(addr *uint32, n int) (int, error) { return 0, ErrNotSupported }

// WakeAll is not supported on this system.
func WakeAll(addr *uint32) (int, error) { return 0, ErrNotSupported }

// WaitContext is not supported on this system.
func WaitContext(ctx context.Context, addr *uint32, val uint32, timeout time.Duration) error {
	return ErrNotSupported
}

// Yield does nothing on systems other than Linux.
func Yield() {}
