package kv

import "sync/atomic"

// loadFence orders the plain loads before it before the atomic loads
// after it. On arm64 an atomic load is only an acquire (LDAR): a reader's
// copy of a record could otherwise be satisfied after its second load of
// the descriptor. An atomic read-modify-write (acquire and release) on a
// local word is the barrier Go offers.
func loadFence() {
	var x uint64
	atomic.AddUint64(&x, 0)
}
