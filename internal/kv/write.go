package kv

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/internal/race"
	"github.com/shmkit/shmkit/sem"
)

// Tx is a shard held by a writer: the shard's lock is held and its current
// space validated. Every change a Tx makes is one atomic store, so a
// writer killed between two of them leaves a consistent shard.
type Tx struct {
	s  *Store
	i  int
	sp space
	// Repaired says that the lock was taken over from a dead writer and
	// the shard repaired (Repair) before this Tx began.
	Repaired bool
}

// Hook, when set (by tests, before any store is used), is called at the
// named points of the write path, so that a test can SIGKILL a writer
// exactly there: "put-written" (a record written, not yet committed),
// "put-committed" (committed, counts not yet updated), "delete-committed",
// "rebuild-copying" (half the records copied into the new space),
// "rebuild-published" (the new space published, counts not updated),
// "append-slot" (a list element's slot stored, the length not yet) and
// "pop-committed"; and of a list's lock-free readers (Index, Snapshot):
// "read-length" (the length loaded, no slot yet) and "read-copied" (the
// copy made, the length not checked again).
var Hook func(point string)

func hook(point string) {
	if Hook != nil {
		Hook(point)
	}
}

// Repairs counts the shards this process repaired after a dead writer
// (for tests and diagnostics).
var Repairs atomic.Int64

// Begin locks shard i (ctx bounds the wait; nil means no bound), repairs
// it if its last writer died holding the lock, and returns the Tx. The
// caller must call End.
func (s *Store) Begin(ctx context.Context, i int) (Tx, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	s.life.RLock()
	if s.closed.Load() {
		s.life.RUnlock()
		return Tx{}, ErrClosed
	}
	mu := s.shards[i].mu
	err := mu.Lock(ctx)
	repaired := false
	if errors.Is(err, sem.ErrOwnerDead) {
		Repairs.Add(1)
		if err = s.repair(i); err == nil {
			err = mu.MarkConsistent()
		}
		if err != nil {
			_ = mu.Unlock()
		}
		repaired = true
	}
	if err != nil {
		s.life.RUnlock()
		if errors.Is(err, sem.ErrClosed) {
			return Tx{}, ErrClosed
		}
		return Tx{}, err
	}
	tx := Tx{s: s, i: i, Repaired: repaired}
	if tx.sp, err = s.spaceOf(atomic.LoadUint64(s.desc(i))); err != nil {
		tx.End()
		return Tx{}, err
	}
	return tx, nil
}

// End unlocks the shard.
func (tx *Tx) End() {
	race.ReleaseMerge(tx.s.shards[tx.i].proxy)
	_ = tx.s.shards[tx.i].mu.Unlock()
	tx.s.life.RUnlock()
}

func (tx *Tx) hdr(off uint64) *uint64 { return tx.s.u64(tx.s.shards[tx.i].hdr + off) }

// repair restores shard i's invariants after its writer died: a rebuild
// that died is abandoned (the descriptor made even again, the current
// space untouched), and the counts are recomputed from the slots.
func (s *Store) repair(i int) error {
	d := s.desc(i)
	if w := atomic.LoadUint64(d); (w>>descOffBits)&1 == 1 {
		atomic.AddUint64(d, genOne)
	}
	if s.Cfg.Magic == MagicList {
		// The dead writer may have stored slots past the length for an
		// Append it never committed, the slots a Pop freed included; a
		// reader that copied one checks the length after its copy, which
		// the next Append can raise past that slot again. The new even
		// generation fails such a reader's descriptor check instead.
		atomic.AddUint64(d, 2*genOne)
	}
	sp, err := s.spaceOf(atomic.LoadUint64(d))
	if err != nil {
		return err
	}
	return s.recount(i, sp)
}

// recount recomputes shard i's count, tombstones, live bytes and heap top
// from the slots of sp, validating every committed record.
func (s *Store) recount(i int, sp space) error {
	var count, tombs, live uint64
	top := atomic.LoadUint64(s.u64(sp.off + spTop))
	if top < sp.heapStart() || top > sp.size || top&7 != 0 {
		top = sp.heapStart()
	}
	list := s.Cfg.Magic == MagicList
	n := sp.slots
	if list {
		n = atomic.LoadUint64(s.u64(s.shards[i].hdr + shCount))
		if n > sp.slots {
			return s.corrupt("list length %d, capacity %d", n, sp.slots)
		}
	}
	for j := range n {
		w := atomic.LoadUint64(s.slot(sp, j))
		if w == SlotFree || w == SlotTomb {
			if list {
				return s.corrupt("list slot %d of %d empty", j, n)
			}
			if w == SlotTomb {
				tombs++
			}
			continue
		}
		r := w & offMask
		klen, vlen, _, ok := s.record(sp, r)
		if !ok {
			return s.corrupt("slot %d: bad record at %d", j, r)
		}
		count++
		rs := RecSize(klen, vlen)
		live += rs
		top = max(top, r+rs)
	}
	h := s.shards[i].hdr
	atomic.StoreUint64(s.u64(sp.off+spTop), top)
	if !list {
		atomic.StoreUint64(s.u64(h+shCount), count)
	}
	atomic.StoreUint64(s.u64(h+shTombs), tombs)
	atomic.StoreUint64(s.u64(h+shLive), live)
	return nil
}

// counts returns the shard's count, tombstones and live bytes, checked
// against the current space.
func (tx *Tx) counts() (count, tombs, live uint64, err error) {
	count = atomic.LoadUint64(tx.hdr(shCount))
	tombs = atomic.LoadUint64(tx.hdr(shTombs))
	live = atomic.LoadUint64(tx.hdr(shLive))
	if count > tx.sp.slots || tombs > tx.sp.slots-count || live > tx.sp.size {
		return 0, 0, 0, tx.s.corrupt("shard %d counts %d/%d/%d in a space of %d slots", tx.i, count, tombs, live, tx.sp.slots)
	}
	return count, tombs, live, nil
}

// top returns the heap top of the current space, validated.
func (tx *Tx) top() (uint64, error) {
	t := atomic.LoadUint64(tx.s.u64(tx.sp.off + spTop))
	if t < tx.sp.heapStart() || t > tx.sp.size || t&7 != 0 {
		return 0, tx.s.corrupt("heap top %d in a space of %d bytes", t, tx.sp.size)
	}
	return t, nil
}

// Find looks key (hash h) up in the shard. It returns the slot holding it
// (-1 if absent) and the slot an insertion would use.
func (tx *Tx) find(key []byte, h uint64) (at, ins int64, err error) {
	s, sp := tx.s, tx.sp
	mask := sp.slots - 1
	j := (h >> s.shardBits) & mask
	t := tag(h)
	ins = -1
	for range sp.slots {
		w := atomic.LoadUint64(s.slot(sp, j))
		switch {
		case w == SlotFree:
			if ins < 0 {
				ins = int64(j)
			}
			return -1, ins, nil
		case w == SlotTomb:
			if ins < 0 {
				ins = int64(j)
			}
		case w>>offBits == t:
			r := w & offMask
			klen, _, rh, ok := s.record(sp, r)
			if !ok {
				return 0, 0, s.corrupt("slot %d: bad record at %d", j, r)
			}
			if rh == h && int(klen) == len(key) && string(s.recKey(sp, r, klen)) == string(key) {
				return int64(j), ins, nil
			}
		}
		j = (j + 1) & mask
	}
	return -1, ins, nil
}

// Value returns the value in slot at (a slot Find returned). The bytes are
// the record's, valid until the Tx ends.
func (tx *Tx) value(at int64) []byte {
	w := atomic.LoadUint64(tx.s.slot(tx.sp, uint64(at)))
	r := w & offMask
	klen, vlen, _, _ := tx.s.record(tx.sp, r) // validated by find
	return tx.s.recVal(tx.sp, r, klen, vlen)
}

// Lookup returns key's value (the record's bytes, valid until End) and
// whether it is present.
func (tx *Tx) Lookup(key []byte, h uint64) ([]byte, bool, error) {
	at, _, err := tx.find(key, h)
	if err != nil || at < 0 {
		return nil, false, err
	}
	return tx.value(at), true, nil
}

// write appends a record to the current space's heap (the caller made
// room) and returns its offset. Nothing references it yet.
func (tx *Tx) write(key []byte, h uint64, val []byte) (uint64, error) {
	r, err := tx.top()
	if err != nil {
		return 0, err
	}
	rs := RecSize(uint32(len(key)), uint32(len(val)))
	if rs > tx.sp.size-r {
		return 0, tx.s.corrupt("no room for a record (internal)")
	}
	a := tx.sp.off + r
	s := tx.s
	*s.u32(a) = uint32(len(key))
	*s.u32(a + 4) = uint32(len(val))
	*s.u64(a + 8) = h
	copy(s.bytes(a+RecHdr, uint64(len(key))), key)
	copy(s.bytes(a+RecHdr+pad8(uint64(len(key))), uint64(len(val))), val)
	atomic.StoreUint64(s.u64(tx.sp.off+spTop), r+rs)
	return r, nil
}

// room makes sure the current space has a free slot (when insert) and
// heap for a record of rs bytes, rebuilding the shard if not; rebuilt
// says it did (slots found before are then stale).
func (tx *Tx) room(rs, inserts uint64) (rebuilt bool, err error) {
	count, tombs, live, err := tx.counts()
	if err != nil {
		return false, err
	}
	top, err := tx.top()
	if err != nil {
		return false, err
	}
	slotsOK := inserts == 0 || (count+tombs+inserts)*4 <= tx.sp.slots*3
	if tx.s.Cfg.Magic == MagicList {
		slotsOK = count+inserts <= tx.sp.slots
	}
	if slotsOK && rs <= tx.sp.size-top {
		return false, nil
	}
	return true, tx.rebuild(count+inserts, live+rs)
}

// Put stores val under key (hash h), replacing any value.
func (tx *Tx) Put(key []byte, h uint64, val []byte) error {
	if err := tx.s.checkSizes(len(key), len(val)); err != nil {
		return err
	}
	at, ins, err := tx.find(key, h)
	if err != nil {
		return err
	}
	rs := RecSize(uint32(len(key)), uint32(len(val)))
	var inserts uint64
	if at < 0 {
		inserts = 1
	}
	rebuilt, err := tx.room(rs, inserts)
	if err != nil {
		return err
	}
	if rebuilt {
		if at, ins, err = tx.find(key, h); err != nil { // in the new space
			return err
		}
	}
	var old uint64
	if at >= 0 {
		klen, vlen, _, _ := tx.s.record(tx.sp, atomic.LoadUint64(tx.s.slot(tx.sp, uint64(at)))&offMask)
		old = RecSize(klen, vlen)
	} else if ins < 0 {
		return tx.s.corrupt("shard %d: no free slot after making room", tx.i)
	}
	r, err := tx.write(key, h, val)
	if err != nil {
		return err
	}
	slot := at
	if at < 0 {
		slot = ins
	}
	wasTomb := at < 0 && atomic.LoadUint64(tx.s.slot(tx.sp, uint64(slot))) == SlotTomb
	hook("put-written")
	race.ReleaseMerge(tx.s.shards[tx.i].proxy)
	atomic.StoreUint64(tx.s.slot(tx.sp, uint64(slot)), tag(h)<<offBits|r) // the commit
	hook("put-committed")
	atomic.AddUint64(tx.hdr(shLive), rs-old)
	if at < 0 {
		atomic.AddUint64(tx.hdr(shCount), 1)
		if wasTomb {
			atomic.AddUint64(tx.hdr(shTombs), ^uint64(0))
		}
	}
	return nil
}

// Delete removes key (hash h) and reports whether it was present.
func (tx *Tx) Delete(key []byte, h uint64) (bool, error) {
	at, _, err := tx.find(key, h)
	if err != nil || at < 0 {
		return false, err
	}
	p := tx.s.slot(tx.sp, uint64(at))
	klen, vlen, _, _ := tx.s.record(tx.sp, atomic.LoadUint64(p)&offMask)
	atomic.StoreUint64(p, SlotTomb) // the commit
	hook("delete-committed")
	atomic.AddUint64(tx.hdr(shLive), -RecSize(klen, vlen))
	atomic.AddUint64(tx.hdr(shCount), ^uint64(0))
	atomic.AddUint64(tx.hdr(shTombs), 1)
	return true, nil
}

// Clear empties the shard: an empty space is published in one store
// (for a list, the length is set to zero first).
func (tx *Tx) Clear() error {
	if tx.s.Cfg.Magic == MagicList {
		// The length's store is the commit, as for Pop: a reader that
		// loaded the old length must not find it beyond the new, empty
		// space's capacity.
		atomic.StoreUint64(tx.hdr(shCount), 0)
		atomic.StoreUint64(tx.hdr(shLive), 0)
		// The list is empty now: a fresh space only gives the old
		// records' room back, and a full arena cannot undo the commit.
		if err := tx.rebuildWith(0, 0, false); err != nil && !errors.Is(err, ErrFull) {
			return err
		}
		return nil
	}
	return tx.rebuildWith(0, 0, false)
}

// checkSizes refuses a key or value longer than the store's limits.
func (s *Store) checkSizes(klen, vlen int) error {
	if uint64(klen) > uint64(s.Cfg.MaxKey) {
		return &SizeError{What: "key", Size: klen, Max: int(s.Cfg.MaxKey)}
	}
	if uint64(vlen) > uint64(s.Cfg.MaxVal) {
		return &SizeError{What: "value", Size: vlen, Max: int(s.Cfg.MaxVal)}
	}
	return nil
}

// SizeError reports a key or value longer than the limit the store was
// created with. It matches ErrTooLarge.
type SizeError struct {
	What      string // "key" or "value"
	Size, Max int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("%s of %d bytes, longer than the limit of %d", e.What, e.Size, e.Max)
}

// Unwrap returns ErrTooLarge.
func (e *SizeError) Unwrap() error { return ErrTooLarge }

// FullError reports that the segment has no room for a shard's next
// space. It matches ErrFull.
type FullError struct {
	Need, Free uint64 // bytes the new space needs, bytes left in the arena
	Size       uint64 // the arena's size
}

func (e *FullError) Error() string {
	return fmt.Sprintf("segment full: a shard needs %d bytes, %d of %d left (create it with a larger maximum size)", e.Need, e.Free, e.Size)
}

// Unwrap returns ErrFull.
func (e *FullError) Unwrap() error { return ErrFull }
