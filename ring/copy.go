package ring

import "github.com/shmkit/shmkit/internal/ntcopy"

// ntMin is the size from which a producer copies a message into the ring
// with non-temporal stores (internal/ntcopy), which leave it in memory
// rather than in the producer's caches, where every line of it would have
// to be snooped across to the consumer's CPU. Measured on the 2-vCPU
// machine (BENCHMARKS.md): from 4 KiB up the consumer then streams the
// message several times faster when the two CPUs are far apart, but a
// non-temporal copy of 4 KiB costs the producer 200 ns against 34 for an
// ordinary one, and when the CPUs share a cache small messages cross
// faster through it; from 32 KiB the non-temporal copy wins in both
// placements.
const ntMin = 32 << 10

// copyIn copies a message's payload into its place in the ring: with
// non-temporal stores from ntMin bytes (fenced before it returns, so the
// publication that follows orders them), with the built-in copy below.
func copyIn(dst, src []byte) {
	if len(src) >= ntMin {
		ntcopy.Copy(dst, src)
		return
	}
	copy(dst, src)
}

// CopyIn copies src into dst, a message buffer that Reserve returned, the
// way Put copies a message into the ring, and returns the number of bytes
// copied (the smaller length, as the built-in copy). From 32 KiB it uses
// non-temporal stores on amd64, which send the bytes to memory instead
// of leaving them in this CPU's cache: a consumer on another CPU then
// streams them from memory rather than fetching every cache line from
// this one, several times faster for messages of tens of kilobytes
// (BENCHMARKS.md). A producer that builds a large message in place, with
// ordinary stores, does not get this; one that fills its reservation from
// a buffer should use CopyIn rather than copy.
func CopyIn(dst, src []byte) int {
	n := min(len(dst), len(src))
	copyIn(dst[:n], src[:n])
	return n
}
