// Package refring is the yardstick for package ring: the barest ring that
// can move 64-byte messages between two processes, and a ping-pong of one
// shared cache line. Benchmarks (ring's and cmd/shmbench's) run them in the
// same process pair and the same run as the real queue, so that figures are
// quoted as ratios that survive a noisy, shared machine.
//
// The ring has fixed 64-byte slots, a power-of-two slot count, a consumer
// index and a producer index on separate cache lines, each side caching the
// other's index and reading it only when the cache says full or empty. It
// has no variable lengths, no blocking (it busy-spins), no close, no crash
// handling and no validation beyond its own layout: it trusts its peer. Do
// not use it for anything but measurement.
//
// Layout of a ring of n slots (Size(n) bytes, 64-byte aligned):
//
//	offset 0     head  uint64  consumer index (messages taken), own cache line
//	offset 64    tail  uint64  producer index (messages put), own cache line
//	offset 128   n slots of 64 bytes; message i lives in slot i mod n
//
// The ping-pong uses one uint64 word (PingSize bytes, at offset 0): the
// pinger writes 2k+1 and waits for 2k+2, which the ponger writes back.
//
// Both sides of each pair live in different processes: map the memory
// with Anonymous in the parent, pass the file to the child (exec.Cmd
// ExtraFiles), and MapFile it there.
package refring
