// Package race tells the Go race detector about the happens-before edges
// created by locks that live in shared memory.
//
// The race detector only tracks synchronisation on addresses inside the Go
// heap or data segment (runtime/race.go: isvalidaddr); runtime.RaceAcquire
// and runtime.RaceRelease on an address in an mmap'ed segment are silently
// ignored. A sem.Mutex whose word lives in a mapping therefore looks like no
// synchronisation at all, and Go heap data it guards would be reported as
// racy. This package maps each shared address to a small heap object (its
// proxy) and annotates the proxy instead.
//
// Without the race build tag every function is an empty inlined no-op and
// Proxy returns nil.
//
// Two mappings of the same object in one process (two Opens of one named
// segment) are at different addresses; on Linux, Proxy looks the address
// up in /proc/self/maps and keys shared file mappings by device, inode and
// file offset, so both get one proxy. Proxies are never freed; there is
// one per distinct lock address ever used, a few bytes each.
package race
