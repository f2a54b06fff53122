package ring

import (
	"context"
	"io"
	"sync/atomic"
	"unsafe"
)

// The fixed-slot SPSC ring (mode Slots). Messages all have the element
// size of the queue's type, so the data area is an array of capacity
// slots of exactly that size, with no header: the message at position p
// (a count of messages since creation) is slot p mod capacity. The
// producer publishes by storing tail, the number of messages published;
// the consumer releases by storing head, the number taken. Each side
// caches the other's word and reads it again only when its copy says the
// ring is full (producer) or empty (consumer), so a consumer that finds
// k messages queued takes all k without reading the tail again, and a
// typed batch (Typed.PutBatch, GetBatch) is one copy (two at the wrap)
// and one store per run of up to a quarter of the ring.
//
// Against the byte ring (spsc.go) this gives up variable sizes and
// in-place records and gains what small messages need: no dependent
// chain of headers, a 64-byte message in one cache line, and batches that
// are one memmove. The protocol, the roles and the sleeping are the
// byte ring's: the same header words, owner words and futex handshake.

// slotsHandle is a Slots handle's state: its producer and consumer sides
// (touched only by the goroutine putting, and getting).
type slotsHandle struct {
	data unsafe.Pointer // the slot array
	size uint64         // bytes per slot: the element size
	prod slotsProducer
	cons slotsConsumer
}

// slotsProducer is a Slots handle's producer side. Positions count
// messages since the queue was created.
type slotsProducer struct {
	owned      bool   // this handle holds the producer role
	tail       uint64 // the next position to publish: the tail word as last stored
	cachedHead uint64 // head as last read; read again only when the ring looks full
	reserved   bool   // Reserve returned the slot at tail; Commit publishes it
}

// slotsConsumer is a Slots handle's consumer side.
type slotsConsumer struct {
	owned      bool   // this handle holds the consumer role
	head       uint64 // the head word as last stored: slots before it are released
	view       uint64 // read position, past the messages Next holds
	cachedTail uint64 // tail as last read; read again only when the ring looks empty
	held       uint64 // messages Next returned and Release has not freed
	eof        bool   // io.EOF was returned: sticky
	lastPos    uint64 // position of the message Next returned last (Position)
}

// slotPtr returns the slot of position pos.
func (q *Queue) slotPtr(pos uint64) unsafe.Pointer {
	return unsafe.Add(q.slots.data, (pos&q.mask)*q.slots.size)
}

// slotBytes returns the slot of position pos as a byte slice.
func (q *Queue) slotBytes(pos uint64) []byte {
	return unsafe.Slice((*byte)(q.slotPtr(pos)), q.slots.size)
}

// slotsQuarter is the longest run a batch publishes or releases at once,
// so that the other side starts on a long batch before all of it is done.
func (q *Queue) slotsQuarter() uint64 { return max(q.geo.capacity/4, 1) }

// slotsClaimProducer takes the producer role for this handle, once. The
// tail word is the publication itself, so a new producer starts exactly
// where its predecessor's last publication ended.
func (q *Queue) slotsClaimProducer() error {
	if q.slots.prod.owned {
		return nil
	}
	h, t, err := q.slotsClaim(offProdOwner, offProdStart)
	if err == nil {
		q.slots.prod = slotsProducer{owned: true, tail: t, cachedHead: h}
	}
	return err
}

// slotsClaimConsumer takes the consumer role for this handle, once: it
// starts at the head its predecessor released.
func (q *Queue) slotsClaimConsumer() error {
	if q.slots.cons.owned {
		return nil
	}
	h, t, err := q.slotsClaim(offConsOwner, offConsStart)
	if err == nil {
		q.slots.cons = slotsConsumer{owned: true, head: h, view: h, cachedTail: t}
	}
	return err
}

// slotsClaim takes the role whose owner word is at ownerOff and returns
// the head and tail to start from, giving the role back if they are not
// ones the peers could have stored.
func (q *Queue) slotsClaim(ownerOff, startOff uint64) (h, t uint64, err error) {
	if q.closed.Load() {
		return 0, 0, ErrClosed
	}
	if err := q.claimRole(ownerOff, startOff); err != nil {
		return 0, 0, err
	}
	// Atomic loads: written by the previous holder and by the peer.
	h, t = atomic.LoadUint64(q.head), atomic.LoadUint64(q.tail)
	if t-h > q.geo.capacity { // also a head past the tail (unsigned)
		atomic.StoreUint64(q.u64(ownerOff), 0) // atomic: give the role back
		return 0, 0, corrupt("head %d, tail %d, capacity %d", h, t, q.geo.capacity)
	}
	return h, t, nil
}

// slotsRoom returns how many slots are free for the producer (at most
// capacity), reading the head again when the cached one shows fewer than
// want.
func (q *Queue) slotsRoom(want uint64) (uint64, error) {
	p := &q.slots.prod
	free := q.geo.capacity - (p.tail - p.cachedHead)
	if free >= want {
		return free, nil
	}
	// Atomic load (acquire): the consumer stores head only after it has
	// finished reading the slots before it, which we are about to reuse.
	h := atomic.LoadUint64(q.head)
	if p.tail-h > q.geo.capacity { // a head past the tail, or too far behind
		return 0, corrupt("head %d with tail %d", h, p.tail)
	}
	p.cachedHead = h
	return q.geo.capacity - (p.tail - h), nil
}

// slotsWaitRoom waits (if wait) until at least one slot is free and
// returns how many are; 0 with a nil error when !wait and the ring is
// full. It notices a close for writing while it waits.
func (q *Queue) slotsWaitRoom(ctx context.Context, wait bool) (uint64, error) {
	free, err := q.slotsRoom(1)
	if free > 0 || err != nil {
		return free, err
	}
	if q.closedForWrite() {
		return 0, ErrClosed
	}
	if !wait {
		return 0, nil
	}
	err = q.block(ctx, q.spaceSeq, q.putWaiters, q.putWaits, func(bool) (bool, error) {
		if q.closedForWrite() {
			return false, ErrClosed
		}
		free, err = q.slotsRoom(1)
		return free > 0, err
	})
	return free, err
}

// slotsPublish makes the k messages written at the producer's tail
// visible: one store of the tail word. Every Slots publication, fast or
// general, single or batch, is this. Closed for writing before it, the
// messages are abandoned, never visible; closed while it published, the
// consumer may have declared EOF already, so they are not promised
// either (as spscPublish); both return ErrClosed.
func (q *Queue) slotsPublish(k uint64) error {
	if q.closedForWrite() {
		return ErrClosed
	}
	t := q.slots.prod.tail + k
	q.slots.prod.tail = t
	raceRelease(q.raceProxy) // for -race: what came before Put happens before the Get; a no-op without -race
	// Atomic store, sequentially consistent: (1) a release of the slots
	// written before it; (2) ordered before our loads of getWaiters and
	// of the closed flag below (the Dekker pairings with a sleeping
	// consumer, see block, and with CloseWrite).
	atomic.StoreUint64(q.tail, t)
	if atomic.LoadUint32(q.getWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.dataSeq, q.getWaiters, 1)
	}
	if q.closedForWrite() {
		return ErrClosed
	}
	return nil
}

func (q *Queue) slotsPut(ctx context.Context, p []byte, wait bool) (bool, error) {
	if err := q.checkSize(len(p)); err != nil {
		return false, err
	}
	if err := q.slotsClaimProducer(); err != nil {
		return false, err
	}
	if q.slots.prod.reserved {
		return false, ErrPending
	}
	free, err := q.slotsWaitRoom(ctx, wait)
	if free == 0 || err != nil {
		return false, err
	}
	copyIn(q.slotBytes(q.slots.prod.tail), p) // plain: published below
	return true, q.slotsPublish(1)
}

// slotsPutBatch writes msgs into the free slots and publishes them in
// runs of at most a quarter of the ring, waiting for room between runs.
// A message of the wrong size ends the batch with its error after the
// messages before it are published.
func (q *Queue) slotsPutBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if err := q.slotsClaimProducer(); err != nil {
		return 0, err
	}
	if q.slots.prod.reserved {
		return 0, ErrPending
	}
	done := 0
	for done < len(msgs) {
		// A wrong size fails at once, not after a wait for room.
		if err := q.checkSize(len(msgs[done])); err != nil {
			return done, err
		}
		free, err := q.slotsWaitRoom(ctx, true)
		if err != nil {
			return done, err
		}
		run := min(free, q.slotsQuarter(), uint64(len(msgs)-done))
		k := uint64(0)
		var sizeErr error
		for ; k < run; k++ {
			m := msgs[done+int(k)]
			if sizeErr = q.checkSize(len(m)); sizeErr != nil {
				break
			}
			copyIn(q.slotBytes(q.slots.prod.tail+k), m) // plain: published below
		}
		if k > 0 {
			if err := q.slotsPublish(k); err != nil {
				return done, err // this run not promised (see slotsPublish)
			}
			done += int(k)
		}
		if sizeErr != nil {
			return done, sizeErr
		}
	}
	return done, nil
}

func (q *Queue) slotsReserve(ctx context.Context, n int) ([]byte, error) {
	if err := q.checkSize(n); err != nil {
		return nil, err
	}
	if err := q.slotsClaimProducer(); err != nil {
		return nil, err
	}
	if q.slots.prod.reserved {
		return nil, ErrPending
	}
	if q.closedForWrite() {
		return nil, ErrClosed
	}
	if _, err := q.slotsWaitRoom(ctx, true); err != nil {
		return nil, err
	}
	q.slots.prod.reserved = true
	return q.slotBytes(q.slots.prod.tail), nil
}

func (q *Queue) slotsCommit(n int) error {
	if !q.slots.prod.reserved {
		return ErrPending
	}
	if err := q.checkCommit(n, q.slots.size); err != nil {
		return err // the reservation stays
	}
	q.slots.prod.reserved = false
	return q.slotsPublish(1)
}

// slotsQueued returns how many messages are queued past the read
// position, reading the tail again when the cached one shows none. A tail
// that no producer could have stored (behind the read position, or more
// than the capacity past the head) is ErrCorrupt.
func (q *Queue) slotsQueued() (uint64, error) {
	c := &q.slots.cons
	if n := c.cachedTail - c.view; n != 0 {
		return n, nil
	}
	// Atomic load (acquire): pairs with the producer's store of the tail,
	// so the slots before it are fully written.
	t := atomic.LoadUint64(q.tail)
	if d := t - c.head; d > q.geo.capacity || d < c.view-c.head {
		return 0, corrupt("tail %d with head %d and read position %d", t, c.head, c.view)
	}
	c.cachedTail = t
	return t - c.view, nil
}

// slotsPeek reports how many messages are queued at the read position,
// or io.EOF when none is and the queue is closed for writing.
func (q *Queue) slotsPeek() (uint64, error) {
	if q.slots.cons.eof {
		return 0, io.EOF
	}
	n, err := q.slotsQueued()
	if n > 0 || err != nil {
		if n > 0 {
			raceAcquire(q.raceProxy) // the Put of these messages happens before what follows
		}
		return n, err
	}
	if !q.closedForWrite() {
		return 0, nil
	}
	// Closed: look again, since a producer that published before the
	// close stored its tail before it read the flag.
	if n, err = q.slotsQueued(); n > 0 || err != nil {
		if n > 0 {
			raceAcquire(q.raceProxy)
		}
		return n, err
	}
	q.slots.cons.eof = true
	return 0, io.EOF
}

// slotsWaitPeek is slotsPeek that blocks (if wait) until a message is
// there.
func (q *Queue) slotsWaitPeek(ctx context.Context, wait bool) (uint64, error) {
	n, err := q.slotsPeek()
	if n > 0 || err != nil || !wait {
		return n, err
	}
	err = q.block(ctx, q.dataSeq, q.getWaiters, q.getWaits, func(bool) (bool, error) {
		n, err = q.slotsPeek()
		return n > 0, err
	})
	return n, err
}

// slotsRelease gives the slots before the read position back to the
// producer. Every Slots release, fast or general, is this.
func (q *Queue) slotsRelease() {
	v := q.slots.cons.view
	q.slots.cons.head = v
	// Atomic store, sequentially consistent: a release of the slots we
	// finished reading, ordered before the load of putWaiters (wake's
	// Dekker half).
	atomic.StoreUint64(q.head, v)
	if atomic.LoadUint32(q.putWaiters) != 0 { // seq-cst: wake's Dekker half
		wake(q.spaceSeq, q.putWaiters, 1)
	}
}

// slotsTake claims the consumer role and waits (if wait) for a message
// at the read position for a copying Get-side call, and returns how many
// are queued: 0 when there is none (!wait) or with an error.
func (q *Queue) slotsTake(ctx context.Context, wait bool) (n uint64, err error) {
	if err := q.slotsClaimConsumer(); err != nil {
		return 0, err
	}
	if q.slots.cons.held != 0 {
		return 0, ErrPending
	}
	return q.slotsWaitPeek(ctx, wait)
}

func (q *Queue) slotsGet(ctx context.Context, buf []byte, wait bool) (int, bool, error) {
	n, err := q.slotsTake(ctx, wait)
	if n == 0 || err != nil {
		return 0, false, err
	}
	if uint64(len(buf)) < q.slots.size {
		return 0, false, io.ErrShortBuffer
	}
	copy(buf, q.slotBytes(q.slots.cons.view))
	q.slots.cons.view++
	q.slotsRelease()
	return int(q.slots.size), true, nil
}

func (q *Queue) slotsGetAppend(ctx context.Context, buf []byte) ([]byte, error) {
	if _, err := q.slotsTake(ctx, true); err != nil {
		return buf, err
	}
	buf = append(buf, q.slotBytes(q.slots.cons.view)...)
	q.slots.cons.view++
	q.slotsRelease()
	return buf, nil
}

// slotsGetBatch copies the queued messages into dst (waiting for the
// first), releasing them in runs of at most a quarter of the ring. It
// stops early at a buffer too small for a message (io.ErrShortBuffer if
// that is the first).
func (q *Queue) slotsGetBatch(ctx context.Context, dst [][]byte) (int, error) {
	if len(dst) == 0 {
		if err := q.slotsClaimConsumer(); err != nil {
			return 0, err
		}
		if q.slots.cons.held != 0 {
			return 0, ErrPending
		}
		return 0, nil
	}
	n, err := q.slotsTake(ctx, true)
	if err != nil {
		return 0, err
	}
	size := q.slots.size
	k, run := 0, uint64(0)
	for k < len(dst) {
		if n == 0 {
			if n, err = q.slotsQueued(); n == 0 {
				break // the end of what is queued (a corrupt tail is reported after the release)
			}
			raceAcquire(q.raceProxy)
		}
		if uint64(cap(dst[k])) < size {
			if k == 0 {
				return 0, io.ErrShortBuffer
			}
			break
		}
		dst[k] = dst[k][:size]
		copy(dst[k], q.slotBytes(q.slots.cons.view))
		q.slots.cons.view++
		k++
		n--
		if run++; run >= q.slotsQuarter() {
			q.slotsRelease()
			run = 0
		}
	}
	if run > 0 {
		q.slotsRelease()
	}
	return k, err
}

func (q *Queue) slotsNext(ctx context.Context, wait bool) ([]byte, bool, error) {
	if err := q.slotsClaimConsumer(); err != nil {
		return nil, false, err
	}
	n, err := q.slotsWaitPeek(ctx, wait)
	if n == 0 || err != nil {
		return nil, false, err
	}
	c := &q.slots.cons
	b := q.slotBytes(c.view)
	c.lastPos = c.view
	c.view++
	c.held++
	return b, true, nil
}

func (q *Queue) slotsReleaseHeld() error {
	if q.slots.cons.held == 0 {
		return ErrPending
	}
	q.slots.cons.held = 0
	q.slotsRelease()
	return nil
}

// The typed fast paths: Typed[T] on a Slots queue copies a value into
// and out of its slot as a T (a few moves, no call), in the common case:
// the role held, nothing reserved or held, room (or a message) per the
// cached word, not closed. Each reports false, having changed nothing,
// for every other case, which the general code above handles.

func slotsPutValue[T any](q *Queue, v *T) (bool, error) {
	p := &q.slots.prod
	if !p.owned || p.reserved || p.tail-p.cachedHead >= q.geo.capacity || q.closed.Load() {
		return false, nil
	}
	*(*T)(q.slotPtr(p.tail)) = *v // plain: published by slotsPublish
	return true, q.slotsPublish(1)
}

func slotsGetValue[T any](q *Queue, v *T) bool {
	c := &q.slots.cons
	if !c.owned || c.held != 0 || c.eof || q.closed.Load() {
		return false
	}
	if c.cachedTail == c.view {
		if n, err := q.slotsQueued(); n == 0 || err != nil {
			return false // the general code waits, or reports the error
		}
	}
	raceAcquire(q.raceProxy) // a no-op without -race
	*v = *(*T)(q.slotPtr(c.view))
	c.view++
	q.slotsRelease()
	return true
}

// slotsPutValues is Typed.PutBatch on a Slots queue (which has checked
// that the handle is open): each run is one copy (two at the wrap) and
// one publication.
func slotsPutValues[T any](ctx context.Context, q *Queue, vs []T) (int, error) {
	if err := q.slotsClaimProducer(); err != nil {
		return 0, err
	}
	if q.slots.prod.reserved {
		return 0, ErrPending
	}
	ring := unsafe.Slice((*T)(q.slots.data), q.geo.capacity)
	done := 0
	for done < len(vs) {
		free, err := q.slotsWaitRoom(ctx, true)
		if err != nil {
			return done, err
		}
		run := int(min(free, q.slotsQuarter(), uint64(len(vs)-done)))
		off := int(q.slots.prod.tail & q.mask)
		k := copy(ring[off:off+min(run, len(ring)-off)], vs[done:done+run]) // plain: published below
		copy(ring[:run-k], vs[done+k:done+run])
		if err := q.slotsPublish(uint64(run)); err != nil {
			return done, err
		}
		done += run
	}
	return done, nil
}

// slotsGetValues is Typed.GetBatch on a Slots queue (the handle checked
// open): it waits for one
// value and takes up to len(dst), one copy (two at the wrap) and one
// release per run.
func slotsGetValues[T any](ctx context.Context, q *Queue, dst []T) (int, error) {
	if len(dst) == 0 {
		return q.slotsGetBatch(ctx, nil) // the role claimed, nothing taken, as Queue.GetBatch
	}
	n, err := q.slotsTake(ctx, true)
	if err != nil {
		return 0, err
	}
	ring := unsafe.Slice((*T)(q.slots.data), q.geo.capacity)
	done := 0
	for done < len(dst) {
		if n == 0 {
			if n, err = q.slotsQueued(); n == 0 {
				break
			}
			raceAcquire(q.raceProxy)
		}
		run := int(min(n, q.slotsQuarter(), uint64(len(dst)-done)))
		off := int(q.slots.cons.view & q.mask)
		k := copy(dst[done:done+run], ring[off:off+min(run, len(ring)-off)])
		copy(dst[done+k:done+run], ring[:run-k])
		q.slots.cons.view += uint64(run)
		q.slotsRelease()
		done += run
		n -= uint64(run)
	}
	return done, err
}
