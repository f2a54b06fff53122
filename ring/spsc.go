package ring

import (
	"context"
	"io"
	"sync/atomic"
	"unsafe"
)

// The SPSC byte ring. Positions (head, tail) are byte counts since
// creation; a record starts at position p, offset p mod capacity in the
// data area, with an 8-byte header word (u32 length, u32 span) followed
// by the payload padded to 8. A record never wraps: when it would, the
// producer writes a pad header (length padLen) at the current offset and
// the record at offset 0.
//
// The header word is the publication: the producer writes the payload,
// then a zero word after the record (the terminator), then the header
// with an atomic store. The consumer polls the header word at its read
// position: zero means empty. So a message crosses between the processes
// in the cache lines of the record itself; the consumer never reads the
// producer's tail, and the producer reads the consumer's head only when
// its cached copy says the ring is full. The tail word is a hint (it may
// lag the published records) used to take over from a dead producer.

// spscHandle is an SPSC handle's state: its producer and consumer sides
// (a handle may hold either role or both, as a pipe's do) and values
// derived from the header once, for the fast paths (fast.go).
type spscHandle struct {
	data                     unsafe.Pointer // start of the data area
	putsCounter, getsCounter *uint64        // the puts and gets counters (offPuts, offGets)
	maxSpan                  uint64         // span of a MaxMessage record
	putLo                    uint64         // a size n may be put if n-putLo <= putSpan (checkSize)
	putSpan                  uint64         // see putLo

	// peerDeath makes a blocked call fail with ErrPeerDied when the
	// process holding the other role is dead (pipes: one peer, for good).
	peerDeath bool

	prod spscProducer // producer side; touched only by the goroutine putting
	cons spscConsumer // consumer side; touched only by the goroutine getting
}

// spscProducer is an SPSC handle's producer state: the role, the
// write position and the open batch or reservation. Positions are byte
// counts since the queue was created.
type spscProducer struct {
	owned       bool   // this handle holds the producer role
	published   uint64 // end of the published records
	tail        uint64 // write position, >= published while a batch is open
	firstHeader uint64 // header word of the batch's first record, stored last
	deferred    bool   // firstHeader is set
	cachedHead  uint64 // last head read; refreshed only when full
	puts        uint64 // messages put, as stored in the puts counter
	resvOff     uint64 // record offset of the pending reservation
	resvNeed    uint64 // bytes it takes, pad included; 0: none
	resvLen     uint64 // the size reserved
	resvFast    bool   // the reservation was made by spscReserveFast
}

// spscConsumer is an SPSC handle's consumer state: the role, the read
// and release positions and the messages Next holds.
type spscConsumer struct {
	owned   bool   // this handle holds the consumer role
	head    uint64 // head as last stored: the space before it is released
	view    uint64 // read position, past messages held by Next
	gets    uint64 // messages taken, as stored in the gets counter
	eof     bool   // io.EOF was returned: sticky
	held    uint64 // messages Next returned and Release has not freed
	lastPos uint64 // position of the record Next returned last (Position)
	span    uint64 // span of the last record found (a hint for touchNext)
}

// claimRole takes the SPSC role whose owner word is at ownerOff, if it is
// free or its owner died.
func (q *Queue) claimRole(ownerOff, startOff uint64) error {
	me := ownerWord(q.self)
	p := q.u64(ownerOff)
	var w uint64
	for range 16 {
		// Atomic load and CAS: other processes race to take the role.
		w = atomic.LoadUint64(p)
		if w != 0 && ownerAlive(w) {
			break
		}
		if atomic.CompareAndSwapUint64(p, w, me) {
			atomic.StoreUint64(q.u64(startOff), q.self.Start) // informational
			// The role's side has no sleeper but this handle's: one the
			// previous holder counted and never took back (killed asleep,
			// or a call left blocked across its Close) would cost the
			// other side a wake-up system call per message for good.
			waiters := q.putWaiters
			if ownerOff == offConsOwner {
				waiters = q.getWaiters
			}
			atomic.StoreUint32(waiters, 0)
			return nil
		}
	}
	role := "producer"
	if ownerOff == offConsOwner {
		role = "consumer"
	}
	return &BusyError{Role: role, Pid: ownerPid(w)}
}

// peerGone reports, for queues that want it (pipes), whether the process
// holding the other role (owner word at ownerOff) has died.
func (q *Queue) peerGone(ownerOff uint64) bool {
	if !q.spsc.peerDeath {
		return false
	}
	w := atomic.LoadUint64(q.u64(ownerOff)) // atomic: written by the peer's role claim
	return w != 0 && !ownerAlive(w)
}

// hdr returns a pointer to the header word at data offset off.
func (q *Queue) hdr(off uint64) *uint64 { return q.u64(q.geo.dataOff + off) }

// checkRecord validates the header word w found at position pos.
func (q *Queue) checkRecord(pos, w uint64) (n, span uint64, err error) {
	off := pos & q.mask
	n, span = w&0xFFFF_FFFF, w>>32
	if n == padLen {
		if off == 0 {
			return 0, 0, corrupt("pad record at offset 0")
		}
		return n, q.geo.capacity - off, nil
	}
	if !q.spscRecordFits(off, n, span) {
		return 0, 0, corrupt("record length %d span %d at offset %d", n, span, off)
	}
	return n, span, nil
}

// spscRecordFits is checkRecord's rule for a record that is not a pad: n
// payload bytes at most MaxMessage, in a span that holds them, at most
// MaxMessage's, 8-byte aligned and within the data area from offset off.
// The fast paths check it as it is: an empty slot (header word 0) fails
// span >= recHeader, and a pad n <= maxMsg (maxMsg < padLen).
func (q *Queue) spscRecordFits(off, n, span uint64) bool {
	return n <= q.geo.maxMsg && span >= recHeader+align8(n) && span <= q.spsc.maxSpan &&
		span&7 == 0 && off+span <= q.geo.capacity
}

// spscSizeFits is checkSize's rule, for the fast paths, in one comparison:
// n-putLo > putSpan when n is over MaxMessage or, in a typed queue, other
// than the element size.
func (q *Queue) spscSizeFits(n uint64) bool { return n-q.spsc.putLo <= q.spsc.putSpan }

// spscPayload returns the n payload bytes of the record at data offset
// off.
func (q *Queue) spscPayload(off, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(q.spsc.data, off+recHeader)), n)
}

// spscClaimProducer takes the producer role for this handle, once: it
// finds the end of what the previous producer published (see below) and
// starts there.
func (q *Queue) spscClaimProducer() error {
	if q.spsc.prod.owned {
		return nil
	}
	if q.closed.Load() {
		return ErrClosed
	}
	if err := q.claimRole(offProdOwner, offProdStart); err != nil {
		return err
	}
	// Atomic loads: written by the previous producer and by the consumer.
	h := atomic.LoadUint64(q.head)
	t := atomic.LoadUint64(q.tail) // written plainly by the old producer, read atomically
	// The tail may lag the published records (a producer that died
	// between storing a header and the tail): walk forward to the
	// terminator. If the consumer has meanwhile read past the stale tail,
	// its head is a record boundary at or before the terminator: start
	// there.
	if h > t && h-t <= q.geo.capacity {
		t = h
	}
	for i := uint64(0); ; i++ {
		if h > t || t-h > q.geo.capacity || t&7 != 0 || h&7 != 0 || i > q.geo.capacity/8 {
			atomic.StoreUint64(q.u64(offProdOwner), 0) // atomic: give the role back
			return corrupt("head %d, tail %d, capacity %d", h, t, q.geo.capacity)
		}
		w := atomic.LoadUint64(q.hdr(t & q.mask)) // atomic: the consumer reads it concurrently
		if w == 0 {
			break
		}
		_, span, err := q.checkRecord(t, w)
		if err != nil {
			atomic.StoreUint64(q.u64(offProdOwner), 0)
			return err
		}
		t += span
	}
	q.spsc.prod.published, q.spsc.prod.tail, q.spsc.prod.cachedHead = t, t, h
	q.spsc.prod.deferred = false
	q.spsc.prod.puts = atomic.LoadUint64(q.u64(offPuts)) // atomic: written by the previous producer
	q.spsc.prod.owned = true
	return nil
}

// spscClaimConsumer takes the consumer role for this handle, once: it
// starts at the head the previous consumer released.
func (q *Queue) spscClaimConsumer() error {
	if q.spsc.cons.owned {
		return nil
	}
	if q.closed.Load() {
		return ErrClosed
	}
	if err := q.claimRole(offConsOwner, offConsStart); err != nil {
		return err
	}
	h := atomic.LoadUint64(q.head) // atomic: written by the previous consumer
	if h&7 != 0 {
		atomic.StoreUint64(q.u64(offConsOwner), 0) // atomic: give the role back
		return corrupt("head %d", h)
	}
	q.spsc.cons.head, q.spsc.cons.view = h, h
	q.spsc.cons.gets = atomic.LoadUint64(q.u64(offGets)) // atomic: written by the previous consumer
	q.spsc.cons.owned = true
	return nil
}

// setHeader writes header word w at data offset off: the first header of
// a batch is kept back and stored last by spscPublish.
func (q *Queue) setHeader(off, w uint64) {
	if !q.spsc.prod.deferred {
		q.spsc.prod.firstHeader, q.spsc.prod.deferred = w, true
		return
	}
	*q.hdr(off) = w // plain: published by the first header's atomic store
}

// spscRoom finds room for a record of n payload bytes at the write
// position (plus its terminator word), writing a pad record first if the
// record would wrap. It returns the record's offset in the data area and
// the bytes it takes (pad included); ok is false when the ring is full.
func (q *Queue) spscRoom(n int) (off, need uint64, ok bool, err error) {
	c := q.geo.capacity
	span := recHeader + align8(uint64(n))
	off = q.spsc.prod.tail & q.mask
	need = span
	if off+span > c {
		need += c - off
	}
	if q.spsc.prod.tail+need+recHeader-q.spsc.prod.cachedHead > c {
		h, valid := q.spscLoadHead()
		if !valid {
			return 0, 0, false, corrupt("head %d with tail %d", h, q.spsc.prod.published)
		}
		q.spsc.prod.cachedHead = h
		if q.spsc.prod.tail+need+recHeader-h > c {
			return 0, 0, false, nil
		}
	}
	if need != span {
		q.setHeader(off, padLen)
		off = 0
	}
	return off, need, true, nil
}

// spscLoadHead reads the head for the producer, when its cached copy says
// the ring may be full; valid is false for a head that no consumer could
// have stored (past the published records, more than the capacity behind
// them, or unaligned).
func (q *Queue) spscLoadHead() (h uint64, valid bool) {
	// Atomic load (acquire): the consumer stores head only after it has
	// finished reading the bytes we are about to reuse.
	h = atomic.LoadUint64(q.head)
	pub := q.spsc.prod.published
	return h, h <= pub && pub-h <= q.geo.capacity && h&7 == 0
}

// spscRoomAgain is spscRoom for a blocked producer: it also notices a
// close and (slow) a dead pipe peer.
func (q *Queue) spscRoomAgain(slow bool, n int) (off, need uint64, ok bool, err error) {
	if q.closedForWrite() {
		return 0, 0, false, ErrClosed
	}
	off, need, ok, err = q.spscRoom(n)
	if !ok && err == nil && slow && q.peerGone(offConsOwner) {
		err = ErrPeerDied
	}
	return off, need, ok, err
}

// spscWrite writes a record of len(p) bytes at off and advances the
// (unpublished) write position.
func (q *Queue) spscWrite(off, need uint64, p []byte) {
	n := uint64(len(p))
	copyIn(q.spscPayload(off, n), p) // plain: published by spscPublish
	q.setHeader(off, n|(recHeader+align8(n))<<32)
	q.spsc.prod.tail += need
}

// spscPublishWritten publishes the record written since the last
// publication (spscWrite, or a Commit's), with its wrap pad if it has one,
// unless the queue is closed for writing: then it is abandoned, never
// visible.
func (q *Queue) spscPublishWritten() error {
	if q.closedForWrite() {
		q.spsc.prod.tail, q.spsc.prod.deferred = q.spsc.prod.published, false // abandoned, never visible
		return ErrClosed
	}
	q.spsc.prod.deferred = false
	if q.spscPublish(q.spsc.prod.published, q.spsc.prod.firstHeader, q.spsc.prod.tail, 1) {
		return ErrClosed
	}
	return nil
}

// spscPublish makes the records written from position pub (the end of
// the published records) to t visible to the consumer, k messages, by
// storing first, the header word of the first of them, which the writer
// kept back. It reports whether the queue was closed for writing
// meanwhile: then the consumer may have declared EOF already, so the
// messages are not promised (they may still be received by a consumer
// that has not reached EOF). Every SPSC publication, fast or general,
// single or batch, is this.
func (q *Queue) spscPublish(pub, first, t uint64, k int) (closed bool) {
	*(*uint64)(unsafe.Add(q.spsc.data, t&q.mask)) = 0 // plain: the terminator, published below
	// Atomic store, sequentially consistent: (1) a release of the
	// payloads, later headers and terminator written before it; (2)
	// ordered before our loads of getWaiters and of the closed flag below
	// (the Dekker pairings with a sleeping consumer and with CloseWrite).
	raceRelease(q.raceProxy) // for -race: what came before Put happens before the Get; a no-op without -race
	atomic.StoreUint64((*uint64)(unsafe.Add(q.spsc.data, pub&q.mask)), first)
	q.spsc.prod.published, q.spsc.prod.tail = t, t
	q.spsc.prod.puts += uint64(k)
	// Plain stores: the tail hint and a statistics counter, one writer
	// each; an aligned 8-byte store is not torn on the supported
	// architectures, and readers use atomic loads. Atomic stores would
	// cost locked instructions per message.
	*q.tail = t
	*q.spsc.putsCounter = q.spsc.prod.puts
	if atomic.LoadUint32(q.getWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.dataSeq, q.getWaiters, 1)
	}
	return q.closedForWrite() // closed while we published
}

// closedForWrite reports whether the queue is closed for writing.
func (q *Queue) closedForWrite() bool {
	if atomic.LoadUint32(q.closedWord) == 0 { // seq-cst: set by CloseWrite in any process
		return false
	}
	raceAcquire(q.raceProxy) // CloseWrite happens before what follows seeing it
	return true
}

func (q *Queue) spscPut(ctx context.Context, p []byte, wait bool) (bool, error) {
	if err := q.checkSize(len(p)); err != nil {
		return false, err
	}
	if err := q.spscClaimProducer(); err != nil {
		return false, err
	}
	if q.spsc.prod.resvNeed != 0 {
		return false, ErrPending
	}
	off, need, ok, err := q.spscRoom(len(p))
	if !ok && err == nil {
		if q.closedForWrite() {
			return false, ErrClosed
		}
		if !wait {
			return false, nil
		}
		err = q.block(ctx, q.spaceSeq, q.putWaiters, q.putWaits, func(slow bool) (bool, error) {
			off, need, ok, err = q.spscRoomAgain(slow, len(p))
			return ok, err
		})
	}
	if err != nil {
		return false, err
	}
	q.spscWrite(off, need, p)
	return true, q.spscPublishWritten()
}

// spscPutBatch is PutBatch in SPSC mode: the runs of messages the fast
// path takes (spscPutBatchFast), and each message it leaves by Put's
// general code, which waits for room, writes a wrap pad, or reports what
// is wrong; then the fast path again.
func (q *Queue) spscPutBatch(ctx context.Context, msgs [][]byte) (int, error) {
	done := 0
	for {
		k, err := q.spscPutBatchFast(msgs[done:])
		done += k
		if done == len(msgs) || err != nil {
			return done, err
		}
		if _, err := q.spscPut(ctx, msgs[done], true); err != nil {
			return done, err // with ErrClosed after publishing: not promised, not counted
		}
		done++
	}
}

func (q *Queue) spscReserve(ctx context.Context, n int) ([]byte, error) {
	if err := q.checkSize(n); err != nil {
		return nil, err
	}
	if err := q.spscClaimProducer(); err != nil {
		return nil, err
	}
	if q.spsc.prod.resvNeed != 0 {
		return nil, ErrPending
	}
	if q.closedForWrite() {
		return nil, ErrClosed
	}
	off, need, ok, err := q.spscRoom(n)
	if !ok && err == nil {
		err = q.block(ctx, q.spaceSeq, q.putWaiters, q.putWaits, func(slow bool) (bool, error) {
			off, need, ok, err = q.spscRoomAgain(slow, n)
			return ok, err
		})
	}
	if err != nil {
		return nil, err
	}
	q.spsc.prod.resvOff, q.spsc.prod.resvNeed, q.spsc.prod.resvLen = off, need, uint64(n)
	return q.spscPayload(off, uint64(n)), nil
}

func (q *Queue) spscCommit(n int) error {
	if q.spsc.prod.resvNeed == 0 {
		return ErrPending
	}
	if err := q.checkCommit(n, q.spsc.prod.resvLen); err != nil {
		return err
	}
	// The span stays the reserved one; the consumer accepts a span longer
	// than the length needs (up to the span of MaxMessage).
	q.setHeader(q.spsc.prod.resvOff, uint64(n)|(recHeader+align8(q.spsc.prod.resvLen))<<32)
	q.spsc.prod.tail += q.spsc.prod.resvNeed
	q.spsc.prod.resvNeed, q.spsc.prod.resvFast = 0, false
	return q.spscPublishWritten()
}

// spscPeek finds the next record at the read position, skipping a pad.
// It returns io.EOF when the queue is empty and closed for writing.
func (q *Queue) spscPeek() (off, n, span uint64, ok bool, err error) {
	if q.spsc.cons.eof {
		return 0, 0, 0, false, io.EOF
	}
	for range 2 {
		off = q.spsc.cons.view & q.mask
		// Atomic load (acquire): pairs with the producer's store of the
		// header, so the record's payload (and the headers of the rest
		// of its batch) are fully written.
		w := atomic.LoadUint64(q.hdr(off))
		if w == 0 {
			if !q.closedForWrite() {
				q.touchNext(off)
				return 0, 0, 0, false, nil
			}
			// Closed: look again, since a producer that published before
			// the close stores its header before it reads the flag.
			if w = atomic.LoadUint64(q.hdr(off)); w == 0 {
				q.spsc.cons.eof = true
				return 0, 0, 0, false, io.EOF
			}
		}
		n, span, err = q.checkRecord(q.spsc.cons.view, w)
		if err == nil && q.spsc.cons.view+span-q.spsc.cons.head > q.geo.capacity {
			err = corrupt("records past the capacity")
		}
		if err != nil {
			return 0, 0, 0, false, err
		}
		if n == padLen {
			q.spsc.cons.view += span
			continue
		}
		raceAcquire(q.raceProxy) // the Put of this record happens before what follows
		q.spsc.cons.span = span
		return off, n, span, true, nil
	}
	return 0, 0, 0, false, corrupt("pad record after a pad")
}

// touchNext, called when the ring is empty at offset off (a consumer
// polling for the next record), also reads the cache line after off's
// when a record of the last one's span would reach into it. The producer
// writes a record's payload before its header, so when a poll finds the
// header, the payload line arrives with it (the two misses overlap)
// instead of after it: a 64-byte message (a 72-byte record, two lines)
// then costs one cache-line transfer on the critical path instead of two.
// With 8-byte messages (16-byte records, none crossing a line) it does
// nothing. The read is a hint only; what it returns is not used.
func (q *Queue) touchNext(off uint64) {
	if off&63+q.spsc.cons.span > 64 {
		// Atomic load: the producer may be writing that line. The offset
		// is 8-byte aligned and masked into the data area.
		_ = atomic.LoadUint64(q.hdr((off + 64) &^ 63 & q.mask))
	}
}

// spscWaitPeek is spscPeek that blocks (wait) until a record is there.
func (q *Queue) spscWaitPeek(ctx context.Context, wait bool) (off, n, span uint64, ok bool, err error) {
	off, n, span, ok, err = q.spscPeek()
	if ok || err != nil || !wait {
		return
	}
	err = q.block(ctx, q.dataSeq, q.getWaiters, q.getWaits, func(slow bool) (bool, error) {
		off, n, span, ok, err = q.spscPeek()
		if !ok && err == nil && slow && q.peerGone(offProdOwner) {
			// Re-peek: what the peer published before dying comes first.
			if off, n, span, ok, err = q.spscPeek(); !ok && err == nil {
				err = ErrPeerDied
			}
		}
		return ok, err
	})
	return
}

// spscRelease gives the space up to read position v back to the
// producer, counting k messages taken.
func (q *Queue) spscRelease(v uint64, k int) {
	q.spsc.cons.view, q.spsc.cons.head = v, v
	// Atomic store, sequentially consistent: a release of the space we
	// finished reading, ordered before the load of putWaiters (wake's
	// Dekker half).
	atomic.StoreUint64(q.head, v)
	q.spsc.cons.gets += uint64(k)
	*q.spsc.getsCounter = q.spsc.cons.gets    // plain store: single-writer statistic (see spscPublish)
	if atomic.LoadUint32(q.putWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.spaceSeq, q.putWaiters, 1)
	}
}

func (q *Queue) spscGet(ctx context.Context, buf []byte, wait bool) (int, bool, error) {
	if err := q.spscClaimConsumer(); err != nil {
		return 0, false, err
	}
	if q.spsc.cons.held != 0 {
		return 0, false, ErrPending
	}
	off, n, span, ok, err := q.spscWaitPeek(ctx, wait)
	if !ok || err != nil {
		return 0, false, err
	}
	if uint64(len(buf)) < n {
		return 0, false, io.ErrShortBuffer
	}
	copy(buf, q.spscPayload(off, n))
	q.spscRelease(q.spsc.cons.view+span, 1)
	return int(n), true, nil
}

func (q *Queue) spscGetAppend(ctx context.Context, buf []byte) ([]byte, error) {
	if err := q.spscClaimConsumer(); err != nil {
		return buf, err
	}
	if q.spsc.cons.held != 0 {
		return buf, ErrPending
	}
	off, n, span, _, err := q.spscWaitPeek(ctx, true)
	if err != nil {
		return buf, err
	}
	buf = append(buf, q.spscPayload(off, n)...)
	q.spscRelease(q.spsc.cons.view+span, 1)
	return buf, nil
}

// spscGetBatch is GetBatch in SPSC mode: the fast path
// (spscGetBatchFast); when it takes nothing, the first message by Get's
// general code, which claims the role, waits for a message, or reports
// what is wrong, and the ones queued after it by the fast path again.
func (q *Queue) spscGetBatch(ctx context.Context, dst [][]byte) (int, error) {
	if k := q.spscGetBatchFast(dst); k > 0 {
		return k, nil
	}
	if err := q.spscClaimConsumer(); err != nil {
		return 0, err
	}
	if q.spsc.cons.held != 0 {
		return 0, ErrPending
	}
	if len(dst) == 0 {
		return 0, nil
	}
	n, _, err := q.spscGet(ctx, dst[0][:cap(dst[0])], true)
	if err != nil {
		return 0, err
	}
	dst[0] = dst[0][:n]
	k := 1 + q.spscGetBatchFast(dst[1:])
	if k < len(dst) {
		// The fast path stopped at a message that does not fit, at the
		// end of what is queued, or at a record it leaves to the general
		// code: a corrupt one is reported with the messages taken.
		if _, _, _, _, err := q.spscPeek(); err != nil && err != io.EOF {
			return k, err
		}
	}
	return k, nil
}

func (q *Queue) spscNext(ctx context.Context, wait bool) ([]byte, bool, error) {
	if err := q.spscClaimConsumer(); err != nil {
		return nil, false, err
	}
	off, n, span, ok, err := q.spscWaitPeek(ctx, wait)
	if !ok || err != nil {
		return nil, false, err
	}
	q.spscHold(span)
	return q.spscPayload(off, n), true, nil
}

// spscHold moves the read position past the record of the given span
// there, which Next returns: it stays held until Release.
func (q *Queue) spscHold(span uint64) {
	q.spsc.cons.lastPos = q.spsc.cons.view
	q.spsc.cons.view += span
	q.spsc.cons.held++
}

func (q *Queue) spscReleaseHeld() error {
	if q.spsc.cons.held == 0 {
		return ErrPending
	}
	k := q.spsc.cons.held
	q.spsc.cons.held = 0
	q.spscRelease(q.spsc.cons.view, int(k))
	return nil
}
