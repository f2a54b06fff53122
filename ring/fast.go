package ring

import (
	"sync/atomic"
	"unsafe"
)

// The SPSC fast paths: the common case of each Put-side and Get-side
// call, as a straight line through the general code's steps (spsc.go):
// the same validation (spscSizeFits, spscRecordFits, spscLoadHead,
// checkCommit, inlined), the same publication (spscPublish) and release
// (spscRelease), the same atomics in the same order. Each reports done =
// false, having changed nothing, for every other case (role not yet
// claimed, reservation or held messages, a wrap, a full or empty ring per
// the cached indices, closed for writing, anything invalid), which the
// general code then handles and reports.

// spscPutFast publishes p as one record when the role is owned, nothing
// is reserved, p's size is right (checkSize), the record fits before the
// end of the data area and the cached head says there is room (record
// plus terminator): spscClaimFast, the copy, spscPublish. Reserve and
// Commit take the same two steps around the caller's writing.
func (q *Queue) spscPutFast(p []byte) (done bool, err error) {
	n := uint64(len(p))
	off, span, ok := q.spscClaimFast(n)
	if !ok {
		return false, nil
	}
	copyIn(q.spscPayload(off, n), p) // plain: published below
	t := q.spsc.prod.tail
	if q.spscPublish(t, n|span<<32, t+span, 1) {
		return true, ErrClosed
	}
	return true, nil
}

// spscClaimFast finds room for a record of n payload bytes at the write
// position in the common case (see spscPutFast) and returns its offset in
// the data area and its span; ok is false, having changed nothing, for
// every other case, which the general code (spscRoom) handles.
func (q *Queue) spscClaimFast(n uint64) (off, span uint64, ok bool) {
	if !q.spsc.prod.owned || q.spsc.prod.resvNeed != 0 || !q.spscSizeFits(n) {
		return 0, 0, false
	}
	t := q.spsc.prod.tail // == q.spsc.prod.published: no batch is open between calls
	off = t & q.mask
	span = recHeader + align8(n)
	if off+span > q.geo.capacity || t+span+recHeader-q.spsc.prod.cachedHead > q.geo.capacity {
		return 0, 0, false // a wrap, or the ring may be full: see spscRoom
	}
	if q.closedForWrite() {
		return 0, 0, false // the general path abandons the record and returns ErrClosed
	}
	return off, span, true
}

// spscReserveFast is Reserve in spscClaimFast's common case: the
// reservation is the record's payload, in place.
func (q *Queue) spscReserveFast(n int) ([]byte, bool) {
	off, span, ok := q.spscClaimFast(uint64(n))
	if !ok {
		return nil, false
	}
	q.spsc.prod.resvOff, q.spsc.prod.resvNeed, q.spsc.prod.resvLen, q.spsc.prod.resvFast = off, span, uint64(n), true
	return q.spscPayload(off, uint64(n)), true
}

// spscCommitFast is Commit of a reservation spscReserveFast made, with a
// valid length: nothing was written since, so the record is published as
// spscPutFast publishes one (the span stays the reserved one).
func (q *Queue) spscCommitFast(n int) (done bool, err error) {
	if !q.spsc.prod.resvFast {
		return false, nil
	}
	if err := q.checkCommit(n, q.spsc.prod.resvLen); err != nil {
		return true, err // as spscCommit: the reservation stays
	}
	span, t := q.spsc.prod.resvNeed, q.spsc.prod.tail
	q.spsc.prod.resvNeed, q.spsc.prod.resvFast = 0, false
	if q.spscPublish(t, uint64(n)|span<<32, t+span, 1) {
		return true, ErrClosed
	}
	return true, nil
}

// spscPeekFast returns the record at the read position when the role is
// owned, io.EOF was not returned, and a valid message record (not a pad)
// is there; ok is false otherwise. It does not move the read position.
func (q *Queue) spscPeekFast() (off, n, span uint64, ok bool) {
	if !q.spsc.cons.owned || q.spsc.cons.eof {
		return 0, 0, 0, false
	}
	v := q.spsc.cons.view
	off = v & q.mask
	// Atomic load (acquire): pairs with the producer's store of the
	// header (see spscPeek).
	w := atomic.LoadUint64((*uint64)(unsafe.Add(q.spsc.data, off)))
	n, span = w&0xFFFF_FFFF, w>>32
	// checkRecord's rule (spscRecordFits: an empty slot or a pad fails
	// it), and spscPeek's bound on the read position.
	if !q.spscRecordFits(off, n, span) || v+span-q.spsc.cons.head > q.geo.capacity {
		return 0, 0, 0, false
	}
	raceAcquire(q.raceProxy) // a no-op without -race
	q.spsc.cons.span = span  // touchNext's hint
	return off, n, span, true
}

// spscGetFast copies the next message into buf and releases it when
// nothing is held and spscPeekFast finds one that fits in buf.
func (q *Queue) spscGetFast(buf []byte) (int, bool) {
	if q.spsc.cons.held != 0 {
		return 0, false
	}
	off, n, span, ok := q.spscPeekFast()
	if !ok || n > uint64(len(buf)) {
		return 0, false
	}
	copy(buf, q.spscPayload(off, n))
	// spscRelease(view+span, 1), written out so that Get's fast path
	// makes no call but spscPeekFast and the copy.
	v := q.spsc.cons.view + span
	q.spsc.cons.view, q.spsc.cons.head = v, v
	// Atomic store, sequentially consistent: releases the space we read
	// and is ordered before the load of putWaiters (see spscRelease).
	atomic.StoreUint64(q.head, v)
	q.spsc.cons.gets++
	*q.spsc.getsCounter = q.spsc.cons.gets    // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.putWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.spaceSeq, q.putWaiters, 1)
	}
	return int(n), true
}

// spscNextFast is spscNext when spscPeekFast finds a message.
func (q *Queue) spscNextFast() ([]byte, bool) {
	off, n, span, ok := q.spscPeekFast()
	if !ok {
		return nil, false
	}
	q.spscHold(span)
	return q.spscPayload(off, n), true
}

// spscPutBatchFast writes the messages of msgs that fit before the end of
// the data area and in the room the cached head (refreshed when needed)
// shows, as Put's general code would one by one, publishing them in runs
// (spscPublish): each run with one atomic store, and a new run every
// quarter of the ring, so that the consumer starts on a batch of large
// messages while the rest is still being written. It returns how many it
// put; 0 (having changed nothing) leaves every case to the general code,
// and the caller (spscPutBatch) hands the general code the rest after a
// partial batch.
func (q *Queue) spscPutBatchFast(msgs [][]byte) (int, error) {
	if !q.spsc.prod.owned || q.spsc.prod.resvNeed != 0 || len(msgs) == 0 {
		return 0, nil
	}
	if q.closedForWrite() {
		return 0, nil // the general path returns ErrClosed
	}
	pub := q.spsc.prod.tail // == q.spsc.prod.published: no batch is open between calls
	t, c := pub, q.geo.capacity
	var first uint64
	k, done := 0, 0
	for _, m := range msgs {
		n := uint64(len(m))
		if !q.spscSizeFits(n) {
			break // the general code reports it
		}
		off := t & q.mask
		span := recHeader + align8(n)
		if off+span > c {
			break // a wrap: the general code writes the pad
		}
		if t+span+recHeader-q.spsc.prod.cachedHead > c {
			h, valid := q.spscLoadHead() // as spscRoom
			if !valid || t+span+recHeader-h > c {
				break // full, or corrupt: the general code tells which
			}
			q.spsc.prod.cachedHead = h
		}
		copyIn(q.spscPayload(off, n), m) // plain: published below
		w := n | span<<32
		if k == 0 {
			first = w
		} else {
			*(*uint64)(unsafe.Add(q.spsc.data, off)) = w // plain: published by the first header's store
		}
		t += span
		k++
		if t-pub >= c/4 {
			if q.spscPublish(pub, first, t, k) {
				return done, ErrClosed // this run not promised (see spscPublish)
			}
			done, pub, k = done+k, t, 0
		}
	}
	if k > 0 && q.spscPublish(pub, first, t, k) {
		return done, ErrClosed
	}
	return done + k, nil
}

// spscGetBatchFast copies the messages queued at the read position into
// dst, as Get's general code would one by one, while spscPeekFast's checks
// pass and they fit, releasing their space in runs (spscRelease): with one
// atomic store each, and a new run every quarter of the ring, so that the
// producer can refill it while large messages are still being copied out.
// It returns how many it took; 0 (having changed nothing) leaves every
// case to the general code (spscGetBatch).
func (q *Queue) spscGetBatchFast(dst [][]byte) int {
	if !q.spsc.cons.owned || q.spsc.cons.eof || q.spsc.cons.held != 0 {
		return 0
	}
	v, h, c := q.spsc.cons.view, q.spsc.cons.head, q.geo.capacity
	k, run := 0, 0
	for k < len(dst) {
		off := v & q.mask
		// Atomic load (acquire): pairs with the producer's store of the
		// batch's first header (see spscPeek).
		w := atomic.LoadUint64((*uint64)(unsafe.Add(q.spsc.data, off)))
		n, span := w&0xFFFF_FFFF, w>>32
		if w == padLen && off != 0 && v+c-off-h <= c {
			// A wrap pad (checkRecord's rule): the next record is at
			// offset 0, where a pad fails the checks below.
			v += c - off
			continue
		}
		// spscPeekFast's checks: an empty slot ends the batch.
		if !q.spscRecordFits(off, n, span) || v+span-h > c || n > uint64(cap(dst[k])) {
			break
		}
		raceAcquire(q.raceProxy) // a no-op without -race
		dst[k] = dst[k][:n]
		copy(dst[k], q.spscPayload(off, n))
		v += span
		k++
		run++
		if v-h >= c/4 {
			q.spscRelease(v, run)
			h, run = v, 0
		}
	}
	if run > 0 {
		q.spscRelease(v, run)
	}
	return k
}
