package ring

import (
	"sync/atomic"
	"unsafe"
)

// The SPSC fast paths: the common case of Put, Get and Next flattened
// into one function each, with no calls but the copy. Each does exactly
// what the general code (spsc.go) does for that case, with the same
// validation and the same atomics in the same order, and reports done =
// false, having changed nothing, for every other case (role not yet
// claimed, reservation or held messages, a wrap, a full or empty ring per
// the cached indices, closed for writing, anything invalid), which the
// general code then handles and reports.

// spscPutFast publishes p as one record when the role is owned, nothing
// is reserved, p's size is right (checkSize), the record fits before the
// end of the data area and the cached head says there is room (record
// plus terminator): spscClaimFast, the copy, spscPublishFast. Reserve and
// Commit take the same two steps around the caller's writing.
func (q *Queue) spscPutFast(p []byte) (done bool, err error) {
	n := uint64(len(p))
	off, span, ok := q.spscClaimFast(n)
	if !ok {
		return false, nil
	}
	copy(unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n), p) // plain: published below
	return true, q.spscPublishFast(off, n, span)
}

// spscClaimFast finds room for a record of n payload bytes at the write
// position in the common case (see spscPutFast) and returns its offset in
// the data area and its span; ok is false, having changed nothing, for
// every other case, which the general code (spscRoom) handles.
func (q *Queue) spscClaimFast(n uint64) (off, span uint64, ok bool) {
	// n-putLo > putSpan: n > MaxMessage, or in a typed queue n other than
	// the element size (one comparison for both).
	if !q.spsc.prod.owned || q.spsc.prod.resvNeed != 0 || n-q.spsc.putLo > q.spsc.putSpan {
		return 0, 0, false
	}
	t := q.spsc.prod.tail // == q.spsc.prod.published: no batch is open between calls
	off = t & q.mask
	span = recHeader + align8(n)
	if off+span > q.geo.capacity || t+span+recHeader-q.spsc.prod.cachedHead > q.geo.capacity {
		return 0, 0, false // a wrap, or the ring may be full: see spscRoom
	}
	// Seq-cst load, as closedForWrite: a closed queue takes the general
	// path, which abandons the record and returns ErrClosed.
	if atomic.LoadUint32(q.closedWord) != 0 {
		return 0, 0, false
	}
	return off, span, true
}

// spscPublishFast publishes the record of n payload bytes and the given
// span that the caller wrote at data offset off, the write position.
func (q *Queue) spscPublishFast(off, n, span uint64) error {
	t := q.spsc.prod.tail + span
	*(*uint64)(unsafe.Add(q.spsc.data, t&q.mask)) = 0 // plain: the terminator, published below
	// Atomic store, sequentially consistent: publishes the payload and the
	// terminator, and is ordered before the loads of getWaiters and of the
	// closed flag below (see spscPublish).
	raceRelease(q.raceProxy) // a no-op without -race
	atomic.StoreUint64((*uint64)(unsafe.Add(q.spsc.data, off)), n|span<<32)
	q.spsc.prod.published, q.spsc.prod.tail = t, t
	q.spsc.prod.puts++
	*q.tail = t                               // plain: the tail hint (see spscPublish)
	*q.spsc.putsCounter = q.spsc.prod.puts    // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.getWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.dataSeq, q.getWaiters, 1)
	}
	if atomic.LoadUint32(q.closedWord) != 0 { // seq-cst: closed while we published
		raceAcquire(q.raceProxy)
		return ErrClosed
	}
	return nil
}

// spscReserveFast is Reserve in spscClaimFast's common case: the
// reservation is the record's payload, in place.
func (q *Queue) spscReserveFast(n int) ([]byte, bool) {
	off, span, ok := q.spscClaimFast(uint64(n))
	if !ok {
		return nil, false
	}
	q.spsc.prod.resvOff, q.spsc.prod.resvNeed, q.spsc.prod.resvLen, q.spsc.prod.resvFast = off, span, uint64(n), true
	return unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n)[:n:n], true
}

// spscCommitFast is Commit of a reservation spscReserveFast made, with a
// valid length: nothing was written since, so the record is published as
// spscPutFast publishes one (the span stays the reserved one).
func (q *Queue) spscCommitFast(n int) (done bool, err error) {
	if !q.spsc.prod.resvFast || n < 0 || uint64(n) > q.spsc.prod.resvLen || q.typ.Size != 0 && uint64(n) != uint64(q.typ.Size) {
		return false, nil // the general code reports what is wrong
	}
	off, span := q.spsc.prod.resvOff, q.spsc.prod.resvNeed
	q.spsc.prod.resvNeed, q.spsc.prod.resvFast = 0, false
	return true, q.spscPublishFast(off, uint64(n), span)
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
	// checkRecord's conditions, and spscPeek's bound on the read position.
	// An empty slot (w == 0) fails span >= recHeader; a pad fails
	// n <= maxMsg (maxMsg < padLen).
	if n > q.geo.maxMsg || span < recHeader+align8(n) || span > q.spsc.maxSpan || span&7 != 0 ||
		off+span > q.geo.capacity || v+span-q.spsc.cons.head > q.geo.capacity {
		return 0, 0, 0, false
	}
	raceAcquire(q.raceProxy) // a no-op without -race
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
	copy(buf, unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n))
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
	q.spsc.cons.lastPos = q.spsc.cons.view
	q.spsc.cons.view += span
	q.spsc.cons.held++
	return unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n)[:n:n], true
}

// spscPutBatchFast writes the messages of msgs that fit before the end of
// the data area and in the room the cached head (refreshed when needed)
// shows, as spscPutBatch does, publishing them in runs: each run with one
// atomic store, and a new run every quarter of the ring, so that the
// consumer starts on a batch of large messages while the rest is still
// being written. It returns how many it put; 0 (having changed nothing)
// leaves every case to the general code, and the caller hands the general
// code the rest after a partial batch.
func (q *Queue) spscPutBatchFast(msgs [][]byte) (int, error) {
	if !q.spsc.prod.owned || q.spsc.prod.resvNeed != 0 || len(msgs) == 0 {
		return 0, nil
	}
	// Seq-cst load, as closedForWrite: a closed queue takes the general
	// path, which returns ErrClosed.
	if atomic.LoadUint32(q.closedWord) != 0 {
		return 0, nil
	}
	pub := q.spsc.prod.tail // == q.spsc.prod.published: no batch is open between calls
	t, c := pub, q.geo.capacity
	var first uint64
	k, done := 0, 0
	for _, m := range msgs {
		n := uint64(len(m))
		if n-q.spsc.putLo > q.spsc.putSpan { // too large, or the wrong size for a typed queue
			break
		}
		off := t & q.mask
		span := recHeader + align8(n)
		if off+span > c {
			break // a wrap: the general code writes the pad
		}
		if t+span+recHeader-q.spsc.prod.cachedHead > c {
			// Atomic load (acquire), validated, as in spscRoom.
			h := atomic.LoadUint64(q.head)
			if h > pub || pub-h > c || h&7 != 0 || t+span+recHeader-h > c {
				break // full, or corrupt: the general code tells which
			}
			q.spsc.prod.cachedHead = h
		}
		copy(unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n), m) // plain: published below
		w := n | span<<32
		if k == 0 {
			first = w
		} else {
			*(*uint64)(unsafe.Add(q.spsc.data, off)) = w // plain: published by the first header's store
		}
		t += span
		k++
		if t-pub >= c/4 {
			if q.spscPublishRun(pub, first, t, k) {
				return done, ErrClosed // this run not promised, as in spscPutBatch
			}
			done, pub, k = done+k, t, 0
		}
	}
	if k > 0 && q.spscPublishRun(pub, first, t, k) {
		return done, ErrClosed
	}
	return done + k, nil
}

// spscPublishRun publishes the k records written from position pub to t,
// whose first header word is first, and reports whether the queue was
// closed meanwhile (then the run is not promised: see spscPublish).
func (q *Queue) spscPublishRun(pub, first, t uint64, k int) (closed bool) {
	*(*uint64)(unsafe.Add(q.spsc.data, t&q.mask)) = 0 // plain: the terminator, published below
	// Atomic store, sequentially consistent: publishes the run, ordered
	// before the loads of getWaiters and of the closed flag below (see
	// spscPublish).
	raceRelease(q.raceProxy) // a no-op without -race
	atomic.StoreUint64((*uint64)(unsafe.Add(q.spsc.data, pub&q.mask)), first)
	q.spsc.prod.published, q.spsc.prod.tail = t, t
	q.spsc.prod.puts += uint64(k)
	*q.tail = t                               // plain: the tail hint (see spscPublish)
	*q.spsc.putsCounter = q.spsc.prod.puts    // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.getWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.dataSeq, q.getWaiters, 1)
	}
	if atomic.LoadUint32(q.closedWord) != 0 { // seq-cst: closed while we published
		raceAcquire(q.raceProxy)
		return true
	}
	return false
}

// spscGetBatchFast copies the messages queued at the read position into
// dst, as spscGetBatch does, while spscPeekFast's checks pass and they
// fit, releasing their space in runs: with one atomic store each, and a
// new run every quarter of the ring, so that the producer can refill it
// while large messages are still being copied out. It returns how many
// it took; 0 (having changed nothing) leaves every case to spscGetBatch.
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
		if n > q.geo.maxMsg || span < recHeader+align8(n) || span > q.spsc.maxSpan || span&7 != 0 ||
			off+span > c || v+span-h > c || n > uint64(cap(dst[k])) {
			break
		}
		raceAcquire(q.raceProxy) // a no-op without -race
		dst[k] = dst[k][:n]
		copy(dst[k], unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n))
		v += span
		k++
		run++
		if v-h >= c/4 {
			q.spscReleaseRun(v, run)
			h, run = v, 0
		}
	}
	if run > 0 {
		q.spscReleaseRun(v, run)
	}
	return k
}

// spscReleaseRun gives the space up to read position v back to the
// producer, counting k messages.
func (q *Queue) spscReleaseRun(v uint64, k int) {
	q.spsc.cons.view, q.spsc.cons.head = v, v
	// Atomic store, sequentially consistent: releases the space we read,
	// ordered before the load of putWaiters (see spscRelease).
	atomic.StoreUint64(q.head, v)
	q.spsc.cons.gets += uint64(k)
	*q.spsc.getsCounter = q.spsc.cons.gets    // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.putWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.spaceSeq, q.putWaiters, 1)
	}
}
