//go:build !arm64

package kv

// loadFence orders the plain loads before it before the atomic loads
// after it. On amd64 (TSO) loads are not reordered with other loads, and
// the compiler does not move loads across atomic operations: nothing to
// do. Other architectures are not supported by shmkit's segments.
func loadFence() {}
