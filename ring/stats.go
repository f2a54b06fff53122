package ring

import (
	"sync/atomic"
)

// Stats are the queue's counters, read from its header. They are updated
// without locks and read one by one, so they are a recent picture, not an
// atomic snapshot.
type Stats struct {
	Puts     uint64      // messages put
	Gets     uint64      // messages taken (Get, GetBatch, Release)
	PutWaits uint64      // times a producer went to sleep on a full queue
	GetWaits uint64      // times a consumer went to sleep on an empty queue
	Skipped  uint64      // MPMC: slots skipped because their producer died before publishing
	Lost     uint64      // MPMC: messages lost because the consumer holding them died
	LastLost Participant // MPMC: the consumer that held the last lost message, and its position
	Len      int         // messages queued (see Queue.Len)
	Cap      int         // see Queue.Cap
	Closed   bool        // closed for writing
}

// Lost describes a message lost because the consumer that held it died
// (MPMC), as given to the function set with SetLostHandler.
type Lost struct {
	Position    uint64      // the message's position in the queue
	Consumer    Participant // the dead consumer that held it
	ProducerPid int         // the process that put it (0 if unknown)
	Message     []byte      // a copy of the message, the caller's to keep
}

// Participant identifies a process attached to a queue.
type Participant struct {
	Pid      int    // process id; 0 if none is recorded
	Start    uint64 // process start time, clock ticks after boot
	Position uint64 // the queue position concerned (LastLost: the lost message)
}

// Cap returns how many messages of MaxMessage bytes the queue holds, at
// least the Capacity it was created with.
func (q *Queue) Cap() int {
	if q.geo.mode == Slots {
		return int(q.geo.capacity)
	}
	if q.geo.mode == SPSC {
		// A wrap pad wastes less than one record and the terminator takes
		// 8 bytes: all but one record's worth of bytes hold records.
		return int(q.geo.capacity/(recHeader+align8(q.geo.maxMsg)) - 1)
	}
	return int(q.geo.capacity)
}

// Len returns how many messages are queued (in MPMC mode including slots
// being written or being skipped). It is a snapshot of moving counters.
func (q *Queue) Len() int {
	if q.closed.Load() {
		return 0
	}
	var n uint64
	if q.geo.mode == Slots {
		// Atomic loads: the positions are the counters.
		h := atomic.LoadUint64(q.head)
		if t := atomic.LoadUint64(q.tail); t > h {
			n = min(t-h, q.geo.capacity)
		}
		return int(n)
	}
	if q.geo.mode == SPSC {
		// Atomic loads: the counters are written by the two peers.
		g := atomic.LoadUint64(q.u64(offGets))
		p := atomic.LoadUint64(q.u64(offPuts))
		if p > g {
			n = p - g
		}
	} else {
		// Atomic loads: moved by every participant's CAS.
		h := atomic.LoadUint64(q.head)
		t := atomic.LoadUint64(q.tail) &^ closedBit
		if t > h {
			n = min(t-h, q.geo.capacity)
		}
	}
	return int(n)
}

// SetLostHandler sets fn to be called, in this process, for each message
// that this handle recovers from a dead consumer in MPMC mode (the
// messages counted in Stats.Lost): with its position, the consumer that
// held it, the producer that put it and a copy of its bytes, so that an
// application can put again exactly what was lost. Recovery happens
// inside the Put-side calls that need the dead consumer's slot and in the
// Get-side calls that reach the end of a closed queue, so the handler
// runs in whichever process recovers the slot (Stats.Lost counts them all;
// the handler sees the ones its handle recovered). It runs on the
// goroutine of that call and must not call the queue. Call SetLostHandler
// before the handle is shared between goroutines; nil removes it.
//
// A lost message was delivered to a consumer that died before it
// released it: it may have been processed in part, so whether to resend
// it is the application's decision.
func (q *Queue) SetLostHandler(fn func(Lost)) { q.lostFn = fn }

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	if q.closed.Load() {
		return Stats{}
	}
	// Atomic loads throughout: every counter is written by other processes.
	s := Stats{
		PutWaits: atomic.LoadUint64(q.putWaits),
		GetWaits: atomic.LoadUint64(q.getWaits),
		Skipped:  atomic.LoadUint64(q.u64(offSkipped)),
		Lost:     atomic.LoadUint64(q.u64(offLost)),
		Closed:   q.closedForWrite(),
		Len:      q.Len(),
		Cap:      q.Cap(),
	}
	if w := atomic.LoadUint64(q.u64(offLostOwner)); w != 0 {
		s.LastLost = Participant{Pid: ownerPid(w), Start: atomic.LoadUint64(q.u64(offLostStart)), Position: atomic.LoadUint64(q.u64(offLostPos))}
	}
	switch q.geo.mode {
	case Slots:
		// The positions count messages.
		s.Puts, s.Gets = atomic.LoadUint64(q.tail), atomic.LoadUint64(q.head)
	case SPSC:
		s.Puts = atomic.LoadUint64(q.u64(offPuts))
		s.Gets = atomic.LoadUint64(q.u64(offGets))
	default:
		for i := range int(q.geo.parts) {
			s.Puts += atomic.LoadUint64(q.ent(i, entPuts))
			s.Gets += atomic.LoadUint64(q.ent(i, entGets))
		}
	}
	return s
}
