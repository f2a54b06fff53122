package atomicx

// StoreRelease stores v at *p with release semantics and no more: on
// amd64 (TSO) a plain MOV, which is not reordered with the stores before
// it; being an assembly call, the compiler does not move memory accesses
// across it either. Unlike atomic.StoreUint64 (XCHG, a full barrier) it
// does not order the store before later loads: a caller that then reads a
// sleeper count (the wake-up handshake) must make its last publication a
// sequentially consistent one first.
//
//go:noescape
func StoreRelease(p *uint64, v uint64)
