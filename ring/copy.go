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
