package ring

import (
	"context"
	"io"
	"sync/atomic"
)

// MPMC batches: a PutBatch claims a run of free slots with one CAS on the
// tail, a GetBatch a run of published ones with one CAS on the head, each
// after storing an intent that names the whole run (position and count,
// see setIntent). The slots of a run are then written and published (or
// read and released) one by one, and the sleepers woken once. Recovery
// treats every slot of a dead participant's run as it treats a single
// claimed slot: a producer's unpublished ones are skipped, a consumer's
// unreleased ones counted lost.

// maxRun bounds the positions one claim takes: a quarter of the ring (at
// least one), so that other producers and consumers are not starved, and
// at most 1024 (which a consumer killed holding them loses, counted).
func (q *Queue) maxRun() int { return int(min(max(q.geo.capacity/4, 1), 1024)) }

// mpmcClaimPutRun claims up to want free slots from the tail, without
// waiting and without the recovery checks: ok is false when the slot at
// the tail is not free (full, or a run for the single-message path to
// sort out).
func (q *Queue) mpmcClaimPutRun(want int) (pos uint64, k int, ok bool, err error) {
	for range 64 {
		t := atomic.LoadUint64(q.tail) // atomic: moved by every producer's CAS
		if t&closedBit != 0 {
			raceAcquire(q.raceProxy) // CloseWrite happens before what follows
			return 0, 0, false, ErrClosed
		}
		if q.loadSeq(t) != t {
			return 0, 0, false, nil
		}
		k = 1
		for k < want && q.loadSeq(t+uint64(k)) == t+uint64(k) {
			k++
		}
		q.setIntent(entProdIntent, t, uint64(k))
		if testHook != nil {
			testHook("putrun-intent")
		}
		// CAS: claims positions t..t+k-1 among competing producers; fails
		// if the tail moved or CloseWrite set the closed bit.
		if atomic.CompareAndSwapUint64(q.tail, t, t+uint64(k)) {
			q.mpmc.stuckPut = stuck{}
			if testHook != nil {
				testHook("putrun-claimed")
			}
			return t, k, true, nil
		}
		// Lost the race: clear our intent, as mpmcClaimPut does.
		atomic.StoreUint64(q.ent(q.mpmc.entry, entProdIntent), 0)
	}
	return 0, 0, false, nil
}

// mpmcPutBatch is PutBatch in MPMC mode.
func (q *Queue) mpmcPutBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if err := q.attachEntry(); err != nil {
		return 0, err
	}
	q.mpmc.lockPut()
	defer q.mpmc.unlockPut()
	if q.mpmc.reserved {
		return 0, ErrPending
	}
	done := 0
	for done < len(msgs) {
		// The run: the messages from done that are valid, at most maxRun.
		want := min(len(msgs)-done, q.maxRun())
		for i := range want {
			if q.checkSize(len(msgs[done+i])) != nil {
				want = i
				break
			}
		}
		if want > 1 {
			pos, k, ok, err := q.mpmcClaimPutRun(want)
			if err != nil {
				return done, err
			}
			if ok {
				q.mpmcPublishRun(pos, msgs[done:done+k])
				done += k
				continue
			}
		}
		// One message by the single path: it waits for room, recovers a
		// dead consumer's slot, or reports what is wrong with it.
		m := msgs[done]
		if err := q.checkSize(len(m)); err != nil {
			return done, err
		}
		pos, ok, err := q.mpmcWaitClaimPut(ctx, true)
		if !ok || err != nil {
			return done, err
		}
		copyIn(q.bytesAt(q.slot(pos)+slotHeader, uint64(len(m))), m)
		q.mpmcPublish(pos, len(m))
		done++
	}
	return done, nil
}

// mpmcPublishRun writes and publishes the claimed positions from pos, one
// message each, and wakes the consumers once.
func (q *Queue) mpmcPublishRun(pos uint64, msgs [][]byte) {
	raceRelease(q.raceProxy) // for -race: what came before PutBatch happens before the Gets
	for i, m := range msgs {
		copyIn(q.bytesAt(q.slot(pos+uint64(i))+slotHeader, uint64(len(m))), m)
		q.mpmcSeal(pos+uint64(i), len(m), i == len(msgs)-1)
		if i == 0 && testHook != nil {
			testHook("putrun-partial")
		}
	}
	q.mpmcPublished(len(msgs)) // a sleeper per message
}

// mpmcClaimGetRun claims up to len(dst) published slots from the head
// whose messages fit dst's buffers in turn (skipped slots count too),
// without waiting: ok is false when the slot at the head holds no
// published message that fits (empty, a producer's slot to recover, or
// end of stream: the single path sorts it out).
func (q *Queue) mpmcClaimGetRun(dst [][]byte) (pos uint64, k int, ok bool) {
	want := min(len(dst), q.maxRun())
	for range 64 {
		h := atomic.LoadUint64(q.head) // atomic: moved by every consumer's CAS
		k = 0
		fits := 0 // messages (not skipped slots) among the k
		for k < want && fits < len(dst) {
			p := h + uint64(k)
			seq := q.loadSeq(p)
			if seq&^skipBit != p+1 {
				break
			}
			if seq&skipBit == 0 {
				// Plain load, ordered by the acquire of seq; checked again
				// once claimed (a slot that moved on fails the CAS).
				if uint64(*q.u32(q.slot(p) + slotLen)) > uint64(cap(dst[fits])) {
					break
				}
				fits++
			}
			k++
		}
		if k == 0 {
			return 0, 0, false
		}
		q.setIntent(entConsIntent, h, uint64(k))
		if testHook != nil {
			testHook("getrun-intent")
		}
		// CAS: claims positions h..h+k-1 among competing consumers.
		if atomic.CompareAndSwapUint64(q.head, h, h+uint64(k)) {
			q.mpmc.stuckGet = stuck{}
			if testHook != nil {
				testHook("getrun-claimed")
			}
			raceAcquire(q.raceProxy) // the Puts of these positions happen before what follows
			return h, k, true
		}
		atomic.StoreUint64(q.ent(q.mpmc.entry, entConsIntent), 0) // lost the race, as in mpmcClaimGet
	}
	return 0, 0, false
}

// mpmcGetBatch is GetBatch in MPMC mode.
func (q *Queue) mpmcGetBatch(ctx context.Context, dst [][]byte) (int, error) {
	if err := q.attachEntry(); err != nil {
		return 0, err
	}
	q.mpmc.lockGet()
	defer q.mpmc.unlockGet()
	got := 0
	for got < len(dst) {
		if !q.mpmc.held && !q.mpmc.eof {
			pos, k, ok := q.mpmcClaimGetRun(dst[got:])
			if ok {
				n, err := q.mpmcTakeRun(pos, k, dst[got:])
				got += n
				if err != nil {
					return got, err
				}
				continue
			}
		}
		// One message by the single path: the first waits; the ones
		// after it are taken only if they are there.
		b, n, ok, err := q.mpmcGetLocked(ctx, dst[got][:cap(dst[got])], got == 0, false)
		if err != nil || !ok {
			if got > 0 && (err == io.EOF || err == io.ErrShortBuffer) {
				err = nil
			}
			return got, err
		}
		dst[got] = b[:n]
		got++
	}
	return got, nil
}

// mpmcTakeRun copies the claimed positions pos..pos+k-1 into dst in turn
// (passing over the skipped slots), then releases them all, wakes the
// producers once and returns how many messages it delivered. Releasing
// after the copies keeps the accounting exact: a consumer killed before
// the releases holds the whole run, which is counted lost; one killed
// after them has copied every message out, which counts as delivered, as
// for Get.
func (q *Queue) mpmcTakeRun(pos uint64, k int, dst [][]byte) (int, error) {
	j := 0
	var bad error
	for i := range k {
		p := pos + uint64(i)
		if q.loadSeq(p)&skipBit != 0 {
			continue
		}
		n, err := q.mpmcSlotLen(p)
		if err == nil && n > uint64(cap(dst[j])) {
			err = corrupt("message length at position %d changed to %d after it was claimed", p, n)
		}
		if err != nil {
			if bad == nil {
				bad = err // reported after the messages delivered
			}
			continue
		}
		dst[j] = dst[j][:n]
		copy(dst[j], q.bytesAt(q.slot(p)+slotHeader, n))
		j++
		if testHook != nil {
			testHook("getrun-copied")
		}
	}
	skipped := uint64(0)
	for i := range k {
		p := pos + uint64(i)
		if q.loadSeq(p)&skipBit != 0 {
			skipped++
		}
		q.mpmcFree(p, i == k-1)
	}
	if skipped > 0 {
		atomic.AddUint64(q.u64(offSkipped), skipped) // atomic RMW: any consumer may count
	}
	q.mpmcReleased(k, j) // a sleeper per slot
	return j, bad
}
