// Package atomicx has the one atomic operation sync/atomic lacks that
// shmkit's rings need: a store with release semantics and no more (a
// plain MOV on amd64, where atomic.StoreUint64 is an XCHG, a full
// barrier), for publishing several slots of a batch where only the last
// store must be sequentially consistent, and for the reference ring.
package atomicx
