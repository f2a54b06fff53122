package kv

import (
	"sync/atomic"
)

// rebuild copies the shard's live entries into a space with room for n
// entries and need bytes of records.
func (tx *Tx) rebuild(n, need uint64) error { return tx.rebuildWith(n, need, true) }

// rebuildWith publishes a new current space for the shard, sized for n
// entries and need bytes of records, holding a copy of the live entries
// when keep (else empty). It writes only the spare space (or fresh arena),
// which no reader uses, between making the descriptor odd and publishing
// the new space with an even one; a writer killed inside it leaves the
// current space as it was (Repair makes the descriptor even again).
func (tx *Tx) rebuildWith(n, need uint64, keep bool) error {
	s := tx.s
	list := s.Cfg.Magic == MagicList
	slots := pow2(max(minSlots, 2*n))
	heap := max(minHeap, 2*need)
	size := (SpaceHdr + 8*slots + heap + 63) &^ 63
	// The smallest space that would do, if the arena cannot give size.
	least := (SpaceHdr + 8*pow2(max(minSlots, n*4/3+1)) + need + 63) &^ 63
	if list {
		least = (SpaceHdr + 8*pow2(max(minSlots, n)) + need + 63) &^ 63
	}
	target, tsize, err := tx.spare(size, least)
	if err != nil {
		return err
	}
	minSl := pow2(max(minSlots, n*4/3+1))
	if list {
		minSl = pow2(max(minSlots, n))
	}
	for slots > minSl && SpaceHdr+8*slots+need > tsize {
		slots /= 2
	}
	d := s.desc(tx.i)
	old := atomic.AddUint64(d, genOne) // odd: rebuilding
	sp := space{off: target, size: tsize, slots: slots}
	mem := s.bytes(target, tsize)
	// Written with plain stores: no reader looks at this space until the
	// descriptor's store below publishes it.
	formatSpace(mem, tsize, slots)
	top := sp.heapStart()
	var count, live uint64
	if keep {
		cur := tx.sp
		limit := cur.slots
		if list {
			limit = atomic.LoadUint64(tx.hdr(shCount))
		}
		for j := range min(limit, cur.slots) {
			w := atomic.LoadUint64(s.slot(cur, j))
			if w == SlotFree || w == SlotTomb {
				continue
			}
			r := w & offMask
			klen, vlen, rh, ok := s.record(cur, r)
			if !ok {
				atomic.AddUint64(d, genOne) // even again, the current space kept
				return s.corrupt("slot %d: bad record at %d", j, r)
			}
			rs := RecSize(klen, vlen)
			if rs > tsize-top || count >= slots || !list && count >= slots-1 {
				// More live records than the counts the space was sized
				// for: a hostile or broken shard (probing a full table
				// would never end; a list may fill every slot).
				atomic.AddUint64(d, genOne)
				return s.corrupt("shard %d: live records exceed their count", tx.i)
			}
			copy(mem[top:top+rs], s.bytes(cur.off+r, rs))
			at := j
			if !list {
				at = (rh >> s.shardBits) & (slots - 1)
				for *s.slot(sp, at) != SlotFree {
					at = (at + 1) & (slots - 1)
				}
			}
			*s.slot(sp, at) = tag(rh)<<offBits | top
			top += rs
			count++
			live += rs
			if count == max(1, atomic.LoadUint64(tx.hdr(shCount))/2) {
				hook("rebuild-copying")
			}
		}
	}
	*s.u64(target + spTop) = top
	gen := (old>>descOffBits + 1) << descOffBits
	atomic.StoreUint64(d, gen|target/64) // the commit: even, the new space
	hook("rebuild-published")
	// A spare that is the current space is ignored (rebuild killed here).
	atomic.StoreUint64(tx.hdr(shOther), tx.sp.off)
	if !list {
		atomic.StoreUint64(tx.hdr(shCount), count)
	} else if !keep {
		atomic.StoreUint64(tx.hdr(shCount), 0)
	}
	atomic.StoreUint64(tx.hdr(shTombs), 0)
	atomic.StoreUint64(tx.hdr(shLive), live)
	tx.sp = sp
	return nil
}

// spare returns a space of at least want bytes (or, when the arena has no
// room for that, of at least least bytes) that no reader uses: the shard's
// spare space when big enough, else fresh arena.
func (tx *Tx) spare(want, least uint64) (off, size uint64, err error) {
	s := tx.s
	var spareOff, spareSize uint64
	if o := atomic.LoadUint64(tx.hdr(shOther)); o != 0 && o != tx.sp.off && o%64 == 0 && o >= s.arena && o < s.end && s.end-o >= SpaceHdr {
		if sz := atomic.LoadUint64(s.u64(o + spSize)); sz >= SpaceHdr && sz <= s.end-o {
			spareOff, spareSize = o, sz
		}
	}
	if spareSize >= want {
		return spareOff, spareSize, nil
	}
	brk := s.u64(offBrk)
	for {
		b := atomic.LoadUint64(brk)
		if b%64 != 0 || b < s.arena || b > s.end {
			return 0, 0, s.corrupt("arena break %d outside [%d, %d]", b, s.arena, s.end)
		}
		size = want
		if s.end-b < want {
			if spareSize >= least {
				return spareOff, spareSize, nil
			}
			size = least
		}
		if s.end-b < size {
			return 0, 0, &FullError{Need: least, Free: s.end - b, Size: s.end - s.arena}
		}
		if atomic.CompareAndSwapUint64(brk, b, b+size) {
			// Recorded at once, so that a rebuild killed from here on
			// leaves this space to the next one as the spare.
			atomic.StoreUint64(tx.hdr(shOther), b)
			*s.u64(b + spSize) = size
			return b, size, nil
		}
	}
}
