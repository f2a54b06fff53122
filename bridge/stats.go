package bridge

import "sync/atomic"

// Stats are a bridge's counters since it started. Read them with Snapshot
// (or the accessors) from any goroutine while the bridge runs.
type Stats struct {
	messages   atomic.Uint64
	bytes      atomic.Uint64
	inFlight   atomic.Int64
	retries    atomic.Uint64
	lost       atomic.Uint64
	duplicates atomic.Uint64
}

// Snapshot is a copy of a bridge's counters.
type Snapshot struct {
	Messages   uint64 // messages carried (Out: acknowledged by JetStream; In: put into the queue)
	Bytes      uint64 // their payload bytes
	InFlight   int64  // Out: published, not yet acknowledged; In: fetched, not yet acknowledged
	Retries    uint64 // Out: publishes retried after a failure; In: fetches retried
	Lost       uint64 // Out: messages the stream refused for good; In: messages past MaxDeliver
	Duplicates uint64 // Out: publishes JetStream reported as duplicates; In: redeliveries already put
}

// Snapshot returns the counters.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		Messages:   s.messages.Load(),
		Bytes:      s.bytes.Load(),
		InFlight:   s.inFlight.Load(),
		Retries:    s.retries.Load(),
		Lost:       s.lost.Load(),
		Duplicates: s.duplicates.Load(),
	}
}
