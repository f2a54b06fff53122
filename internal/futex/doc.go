// Package futex wraps the Linux futex(2) system call for 32-bit words that
// live in memory shared between processes.
//
// The words are in MAP_SHARED mappings, so the shared (non-private) futex
// operations are used: the kernel keys the wait queue on the backing page,
// not on this process's virtual address, and a wake in one process reaches
// a waiter in another.
//
// This package is internal: the sem and ring packages build their blocking
// paths on it. Callers always recheck their condition after Wait returns,
// since wakes may be spurious.
package futex

import "errors"

// ErrTimeout is returned by Wait when the timeout elapsed.
var ErrTimeout = errors.New("futex: timeout")

// ErrNotSupported is returned on systems without futexes.
var ErrNotSupported = errors.New("futex: not supported on this system")
