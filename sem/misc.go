package sem

import "sync/atomic"

// slowCalls counts futex system calls made by this package (waits and
// wakes). Tests use it to show that uncontended paths make none.
var slowCalls atomic.Uint64

// noCopy makes go vet's copylocks check flag copies of handles.
type noCopy struct{}

// Lock and Unlock exist only for go vet.
func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
