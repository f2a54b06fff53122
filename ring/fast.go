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
// is reserved, the record fits before the end of the data area and the
// cached head says there is room (record plus terminator).
func (q *Queue) spscPutFast(p []byte) (done bool, err error) {
	n := uint64(len(p))
	if !q.p.owned || q.p.resvNeed != 0 || n > q.g.maxMsg {
		return false, nil
	}
	t := q.p.tail // == q.p.pub: no batch is open between calls
	off := t & q.mask
	span := recHeader + align8(n)
	if off+span > q.g.capacity || t+span+recHeader-q.p.cachedHead > q.g.capacity {
		return false, nil // a wrap, or the ring may be full: see spscRoom
	}
	// Seq-cst load, as closedForWrite: a closed queue takes the general
	// path, which abandons the record and returns ErrClosed.
	if atomic.LoadUint32(q.closedWord) != 0 {
		return false, nil
	}
	copy(unsafe.Slice((*byte)(unsafe.Add(q.data, off+recHeader)), n), p) // plain: published below
	t += span
	*(*uint64)(unsafe.Add(q.data, t&q.mask)) = 0 // plain: the terminator, published below
	// Atomic store, sequentially consistent: publishes the payload and the
	// terminator, and is ordered before the loads of getWaiters and of the
	// closed flag below (see spscPublish).
	atomic.StoreUint64((*uint64)(unsafe.Add(q.data, off)), n|span<<32)
	q.p.pub, q.p.tail = t, t
	q.p.puts++
	*q.tail = t                               // plain: the tail hint (see spscPublish)
	*q.putsW = q.p.puts                       // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.getWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.dataSeq, q.getWaiters, false)
	}
	if atomic.LoadUint32(q.closedWord) != 0 { // seq-cst: closed while we published
		return true, ErrClosed
	}
	return true, nil
}

// spscPeekFast returns the record at the read position when the role is
// owned, io.EOF was not returned, and a valid message record (not a pad)
// is there; ok is false otherwise. It does not move the read position.
func (q *Queue) spscPeekFast() (off, n, span uint64, ok bool) {
	if !q.c.owned || q.c.eof {
		return 0, 0, 0, false
	}
	v := q.c.view
	off = v & q.mask
	// Atomic load (acquire): pairs with the producer's store of the
	// header (see spscPeek).
	w := atomic.LoadUint64((*uint64)(unsafe.Add(q.data, off)))
	n, span = w&0xFFFF_FFFF, w>>32
	// checkRecord's conditions, and spscPeek's bound on the read position.
	// An empty slot (w == 0) fails span >= recHeader; a pad fails
	// n <= maxMsg (maxMsg < padLen).
	if n > q.g.maxMsg || span < recHeader+align8(n) || span > q.maxSpan || span&7 != 0 ||
		off+span > q.g.capacity || v+span-q.c.head > q.g.capacity {
		return 0, 0, 0, false
	}
	return off, n, span, true
}

// spscGetFast copies the next message into buf and releases it when
// nothing is held and spscPeekFast finds one that fits in buf.
func (q *Queue) spscGetFast(buf []byte) (int, bool) {
	if q.c.held != 0 {
		return 0, false
	}
	off, n, span, ok := q.spscPeekFast()
	if !ok || n > uint64(len(buf)) {
		return 0, false
	}
	copy(buf, unsafe.Slice((*byte)(unsafe.Add(q.data, off+recHeader)), n))
	v := q.c.view + span
	q.c.view, q.c.head = v, v
	// Atomic store, sequentially consistent: releases the space we read
	// and is ordered before the load of putWaiters (see spscRelease).
	atomic.StoreUint64(q.head, v)
	q.c.gets++
	*q.getsW = q.c.gets                       // plain: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.putWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.spaceSeq, q.putWaiters, false)
	}
	return int(n), true
}

// spscNextFast is spscNext when spscPeekFast finds a message.
func (q *Queue) spscNextFast() ([]byte, bool) {
	off, n, span, ok := q.spscPeekFast()
	if !ok {
		return nil, false
	}
	q.c.view += span
	q.c.held++
	return unsafe.Slice((*byte)(unsafe.Add(q.data, off+recHeader)), n)[:n:n], true
}
