package ring

import (
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/futex"
)

// CloseWrite closes the queue for writing, for every process: later Puts
// fail with ErrClosed, blocked producers wake with ErrClosed, and
// consumers drain what is queued and then get io.EOF. Closing twice is
// harmless.
func (q *Queue) CloseWrite() error {
	if q.closed.Load() {
		return ErrClosed
	}
	raceRelease(q.raceProxy) // what we did before CloseWrite happens before io.EOF and ErrClosed
	// Seq-cst store: SPSC producers check it after publishing, consumers
	// before declaring EOF (see spscPublish).
	atomic.StoreUint32(q.u32(offClosed), 1)
	if q.geo.mode == MPMC {
		// Atomic OR: a producer's claiming CAS on the tail fails once the
		// bit is set, so no Put can succeed after CloseWrite returned.
		atomic.OrUint64(q.tail, closedBit)
	}
	q.wakeAll()
	return nil
}

func (q *Queue) wakeAll() {
	// Bump both sequences (seq-cst adds) so that sleepers that read the
	// old value before our OR do not go to sleep, then wake them all.
	atomic.AddUint32(q.dataSeq, 1)
	atomic.AddUint32(q.spaceSeq, 1)
	_, _ = futex.WakeAll(q.dataSeq)
	_, _ = futex.WakeAll(q.spaceSeq)
}

// Close releases the handle: it gives back this handle's SPSC role or
// MPMC participant entry and closes the segment (for New and At, the
// memory stays the caller's). It fails with ErrPending while a
// reservation or held messages are outstanding. The queue itself lives on
// for other processes; CloseWrite ends it for them, Unlink removes it.
func (q *Queue) Close() error {
	if q.closed.Load() {
		return ErrClosed
	}
	if q.spsc.prod.resvNeed != 0 || q.spsc.cons.held != 0 || q.mpmc.reserved || q.mpmc.held || q.slots.prod.reserved || q.slots.cons.held != 0 {
		return ErrPending
	}
	q.closeOnce.Do(func() {
		q.closed.Store(true)
		q.closeNappers()
		// Atomic stores: the role and entry words are read by other
		// processes deciding whether to take them over.
		if q.spsc.prod.owned || q.slots.prod.owned {
			atomic.StoreUint64(q.u64(offProdOwner), 0)
		}
		if q.spsc.cons.owned || q.slots.cons.owned {
			atomic.StoreUint64(q.u64(offConsOwner), 0)
		}
		if q.geo.mode == MPMC && q.mpmc.entryErr == nil && q.mpmc.entry >= 0 && q.entryClaimed() {
			atomic.StoreUint64(q.ent(q.mpmc.entry, entProdIntent), 0)
			atomic.StoreUint64(q.ent(q.mpmc.entry, entConsIntent), 0)
			atomic.StoreUint64(q.ent(q.mpmc.entry, entOwner), 0)
		}
		if q.seg != nil {
			q.closeError = q.seg.Close()
		}
	})
	return q.closeError
}
