//go:build !amd64

package ring

import "sync/atomic"

// storeRelease stores v at *p with (at least) release semantics: an
// atomic store, which on arm64 is STLR, a release store already.
func storeRelease(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
