package kv

import (
	"errors"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/race"
)

// ErrIndex is returned for a list index out of range, and by Pop on an
// empty list.
var ErrIndex = errors.New("index out of range")

// Index reads element i of a list without a lock, copying it into dst
// like Get. n is the list's length when read.
//
// The length is loaded again after the copy, and the element counts only
// if it is still below that length. A Pop followed by an Append writes
// the popped slot in place before the Append's commit, so a reader that
// loaded the old length can copy a record not yet committed. The Append
// is the only writer of a slot at or past the length, and slots are
// written before the length that commits them: if the length loaded after
// the copy covers the slot, the record copied was committed by then (or
// was already). The one way a record can be written there and never
// committed is its writer's death, and the repair that follows changes
// the descriptor, which fails the copy's check below.
func (s *Store) Index(i uint64, dst []byte) (vlen int, n uint64, err error) {
	d := s.desc(0)
	cnt := s.u64(s.shards[0].hdr + shCount)
	for try := 0; ; try++ {
		d1 := atomic.LoadUint64(d)
		n = atomic.LoadUint64(cnt)
		hook("read-length")
		vlen, err = s.index(d1, i, n, dst)
		hook("read-copied")
		loadFence()
		if n = atomic.LoadUint64(cnt); err == nil && i >= n {
			err = ErrIndex // popped during the copy
		}
		if atomic.LoadUint64(d) == d1 {
			if err == nil {
				race.Acquire(s.shards[0].proxy)
			}
			return vlen, n, err
		}
		if err := retry(try); err != nil {
			return 0, 0, s.corrupt("%w", err)
		}
	}
}

func (s *Store) index(d, i, n uint64, dst []byte) (int, error) {
	if i >= n {
		return 0, ErrIndex
	}
	sp, err := s.spaceOf(d)
	if err != nil {
		return 0, err
	}
	if n > sp.slots {
		return 0, s.corrupt("list length %d, capacity %d", n, sp.slots)
	}
	w := atomic.LoadUint64(s.slot(sp, i))
	r := w & offMask
	klen, vlen, _, ok := s.record(sp, r)
	if w == SlotFree || w == SlotTomb || !ok {
		return 0, s.corrupt("list slot %d: bad record at %d", i, r)
	}
	copy(dst, s.recVal(sp, r, klen, vlen))
	return int(vlen), nil
}

// Len returns the list's length as the Tx sees it.
func (tx *Tx) Len() uint64 { return atomic.LoadUint64(tx.hdr(shCount)) }

// listLen returns the length, checked against the space.
func (tx *Tx) listLen() (uint64, error) {
	n := tx.Len()
	if n > tx.sp.slots {
		return 0, tx.s.corrupt("list length %d, capacity %d", n, tx.sp.slots)
	}
	return n, nil
}

// At returns element i's bytes (the record's, valid until End).
func (tx *Tx) At(i uint64) ([]byte, error) {
	n, err := tx.listLen()
	if err != nil {
		return nil, err
	}
	if i >= n {
		return nil, ErrIndex
	}
	w := atomic.LoadUint64(tx.s.slot(tx.sp, i))
	r := w & offMask
	klen, vlen, _, ok := tx.s.record(tx.sp, r)
	if w == SlotFree || w == SlotTomb || !ok {
		return nil, tx.s.corrupt("list slot %d: bad record at %d", i, r)
	}
	return tx.s.recVal(tx.sp, r, klen, vlen), nil
}

// Append adds vals at the end of the list, in order, and returns the
// index of the first. One store of the length commits them all: a writer
// killed before it leaves none appended, after it all.
func (tx *Tx) Append(vals ...[]byte) (uint64, error) {
	var rs uint64
	for _, v := range vals {
		if err := tx.s.checkSizes(0, len(v)); err != nil {
			return 0, err
		}
		rs += RecSize(0, uint32(len(v)))
	}
	k := uint64(len(vals))
	if _, err := tx.room(rs, k); err != nil {
		return 0, err
	}
	n, err := tx.listLen()
	if err != nil {
		return 0, err
	}
	if n+k > tx.sp.slots {
		return 0, tx.s.corrupt("list full after making room (internal)")
	}
	for j, v := range vals {
		r, err := tx.write(nil, 0, v)
		if err != nil {
			return 0, err
		}
		atomic.StoreUint64(tx.s.slot(tx.sp, n+uint64(j)), r)
	}
	hook("append-slot")
	race.ReleaseMerge(tx.s.shards[tx.i].proxy)
	atomic.StoreUint64(tx.hdr(shCount), n+k) // the commit
	atomic.AddUint64(tx.hdr(shLive), rs)
	return n, nil
}

// Set replaces element i.
func (tx *Tx) Set(i uint64, val []byte) error {
	if err := tx.s.checkSizes(0, len(val)); err != nil {
		return err
	}
	old, err := tx.At(i)
	if err != nil {
		return err
	}
	oldSize := RecSize(0, uint32(len(old)))
	rs := RecSize(0, uint32(len(val)))
	if _, err := tx.room(rs, 0); err != nil {
		return err
	}
	r, err := tx.write(nil, 0, val)
	if err != nil {
		return err
	}
	race.ReleaseMerge(tx.s.shards[tx.i].proxy)
	atomic.StoreUint64(tx.s.slot(tx.sp, i), r) // the commit
	atomic.AddUint64(tx.hdr(shLive), rs-oldSize)
	return nil
}

// Pop removes the last element and returns its bytes (the record's, valid
// until End).
func (tx *Tx) Pop() ([]byte, error) {
	n, err := tx.listLen()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrIndex
	}
	v, err := tx.At(n - 1)
	if err != nil {
		return nil, err
	}
	atomic.StoreUint64(tx.hdr(shCount), n-1) // the commit
	hook("pop-committed")
	atomic.AddUint64(tx.hdr(shLive), -RecSize(0, uint32(len(v))))
	return v, nil
}

// Snapshot copies the entries of shard i without a lock: for a dict, keys
// and values; for a list, the elements from index lo (keys empty). Each
// entry is one committed record, not the shard at one point in time (a
// writer may commit while the copy runs). A list's copy ends at its length
// loaded after the copy (see Index for why). It appends to buf and
// returns the entries as offsets into it.
func (s *Store) Snapshot(i int, lo uint64, buf []byte, ents []Entry) ([]byte, []Entry, error) {
	d := s.desc(i)
	buf0, ents0 := len(buf), len(ents)
	for try := 0; ; try++ {
		buf, ents = buf[:buf0], ents[:ents0]
		d1 := atomic.LoadUint64(d)
		var err error
		buf, ents, err = s.snapshot(i, d1, lo, buf, ents)
		loadFence()
		if atomic.LoadUint64(d) == d1 {
			if err == nil {
				race.Acquire(s.shards[i].proxy)
			}
			return buf, ents, err
		}
		if err := retry(try); err != nil {
			return buf[:buf0], ents[:ents0], s.corrupt("%w", err)
		}
	}
}

// Entry locates one entry of a Snapshot in its buffer.
type Entry struct {
	Key, Val [2]uint64 // [start, end) in the buffer
}

func (s *Store) snapshot(i int, d, lo uint64, buf []byte, ents []Entry) ([]byte, []Entry, error) {
	sp, err := s.spaceOf(d)
	if err != nil {
		return buf, ents, err
	}
	list := s.Cfg.Magic == MagicList
	n := sp.slots
	if list {
		n = atomic.LoadUint64(s.u64(s.shards[i].hdr + shCount))
		if n > sp.slots {
			return buf, ents, s.corrupt("list length %d, capacity %d", n, sp.slots)
		}
		hook("read-length")
	}
	start, first := len(buf), len(ents)
	for j := lo; j < n; j++ {
		w := atomic.LoadUint64(s.slot(sp, j))
		if !list && (w == SlotFree || w == SlotTomb) {
			continue
		}
		r := w & offMask
		klen, vlen, _, ok := s.record(sp, r)
		if !ok || w == SlotFree || w == SlotTomb {
			return buf, ents, s.corrupt("slot %d: bad record at %d", j, r)
		}
		if uint64(len(buf)-start)+RecSize(klen, vlen) > sp.size {
			// Distinct records fit in the space: slots sharing records.
			return buf, ents, s.corrupt("shard %d: slots reference more record bytes than the space holds", i)
		}
		var e Entry
		e.Key[0] = uint64(len(buf))
		buf = append(buf, s.recKey(sp, r, klen)...)
		e.Key[1] = uint64(len(buf))
		buf = append(buf, s.recVal(sp, r, klen, vlen)...)
		e.Val = [2]uint64{e.Key[1], uint64(len(buf))}
		ents = append(ents, e)
	}
	if list {
		hook("read-copied")
		loadFence()
		// Elements popped during the copy are dropped: a slot at or past
		// this length may hold an Append's record not yet committed.
		if end := atomic.LoadUint64(s.u64(s.shards[i].hdr + shCount)); end < n {
			keep := first + int(max(end, lo)-lo)
			buf = buf[:start]
			if keep > first {
				buf = buf[:ents[keep-1].Val[1]]
			}
			ents = ents[:keep]
		}
	}
	return buf, ents, nil
}

// Shards returns the number of shards.
func (s *Store) Shards() int { return len(s.shards) }
