//go:build !amd64

package atomicx

import "sync/atomic"

// StoreRelease stores v at *p with (at least) release semantics: an
// atomic store, which on arm64 is STLR, a release store already.
func StoreRelease(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
