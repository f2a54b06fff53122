package ring

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// The MPMC ring: Vyukov's bounded MPMC queue over fixed slots, each with a
// sequence word. Slot i holds positions i, i+N, i+2N...; for position p
// its sequence reads p when the slot is free for p's producer, p+1 once
// p's message is published (with skipBit when a consumer found p's
// producer dead and skipped it), and p+N once p's consumer released it.
//
// Crash safety comes from the participant table: before a producer
// claims position p by CAS on the tail it stores p+1 as its intent, and a
// consumer likewise before it claims p by CAS on the head. Whoever is
// stuck behind an unpublished or unreleased slot looks for the
// participant whose intent names it and checks whether that process is
// alive. docs/format/ring.md walks through every crash point.

// testHook, when set (by tests only), is called at the crash points the
// kill tests aim at: "put-intent", "put-claimed", "get-intent" and
// "get-claimed". A nil check of a global is all it costs otherwise.
var testHook func(point string)

// mpmcHandle is an MPMC handle's state: its participant entry, claimed on
// first use, and for each side the lock that serialises the handle's calls
// on it (unless the handle is exclusive), its statistics counter, its
// reservation or held message and the trackers of the recovery checks.
type mpmcHandle struct {
	exclusive bool // SetExclusive: one goroutine per side, no locks

	entryOnce sync.Once   // attachEntry claims the entry once
	entryErr  error       // why the entry could not be claimed
	entry     int         // the entry's index (-1 if it could not be claimed)
	entryOK   atomic.Bool // the entry is claimed (Close gives it back)
	prodCount uint64      // the count last stored in the entry's prodCount (0: unknown)
	consCount uint64      // likewise consCount

	// Put side, under putMu.
	putMu    sync.Mutex
	puts     uint64   // messages put through the entry, as stored in its puts counter
	reserved bool     // a reservation is pending (Reserve without Commit)
	resvPos  uint64   // its position
	resvLen  uint64   // its size
	stuckPut stuck    // the put side's last stall that no participant explains
	tryPut   tryStall // TryPut/TryReserve: when to run the slow checks

	// Get side, under getMu.
	getMu     sync.Mutex
	gets      uint64   // messages taken through the entry, as stored in its gets counter
	held      bool     // a message is held: Next returned it, or Get could not fit it
	heldPos   uint64   // its position (Position)
	heldShort bool     // the held message is one Get could not fit, for the next call
	eof       bool     // io.EOF returned: sticky (closed and drained for good)
	stuckGet  stuck    // likewise on the get side
	tryGet    tryStall // TryGet/TryNext, likewise
}

// lockPut takes the put side's lock, unless the handle is exclusive.
func (h *mpmcHandle) lockPut() {
	if !h.exclusive {
		h.putMu.Lock()
	}
}

// unlockPut gives back what lockPut took.
func (h *mpmcHandle) unlockPut() {
	if !h.exclusive {
		h.putMu.Unlock()
	}
}

// lockGet takes the get side's lock, unless the handle is exclusive.
func (h *mpmcHandle) lockGet() {
	if !h.exclusive {
		h.getMu.Lock()
	}
}

// unlockGet gives back what lockGet took.
func (h *mpmcHandle) unlockGet() {
	if !h.exclusive {
		h.getMu.Unlock()
	}
}

// tryStall decides when a run of failing Try calls on an MPMC queue runs
// the slow checks (is the participant blocking us dead?) that a blocked
// call runs while it waits, so that a Try loop behind a dead producer's
// slot, or a full queue behind a dead consumer's, is not stuck for ever.
// They run by the clock, every spinSlowPeriod of failing calls, read
// every 256 failures.
type tryStall struct {
	fails int       // failed Try calls since the last success
	since time.Time // when the slow checks last ran (or the clock was first read)
}

// failed counts a failed Try call and reports whether this one should
// retry with the slow checks.
func (s *tryStall) failed() bool {
	s.fails++
	if s.fails&255 != 0 {
		return false
	}
	now := time.Now()
	if s.since.IsZero() {
		s.since = now
		return false
	}
	if now.Sub(s.since) < spinSlowPeriod {
		return false
	}
	s.since = now
	return true
}

// stuck remembers an unexplained stall, so that one that persists is
// reported as corruption instead of waited on for ever.
type stuck struct {
	pos, seq uint64 // the stalled position and the sequence its slot showed
	seen     int    // slow checks in a row that found the same stall
}

// attachEntry claims this handle's participant entry on first use.
func (q *Queue) attachEntry() error {
	q.mpmc.entryOnce.Do(func() {
		q.mpmc.entry, q.mpmc.entryErr = q.claimEntry()
		q.mpmc.entryOK.Store(q.mpmc.entryErr == nil)
	})
	return q.mpmc.entryErr
}

// entryClaimed reports whether attachEntry claimed the entry.
func (q *Queue) entryClaimed() bool { return q.mpmc.entryOK.Load() }

// claimEntry takes a free participant entry, or one whose owner died and
// whose intents need no recovery (entryStale), and returns its index.
func (q *Queue) claimEntry() (int, error) {
	if q.closed.Load() {
		return -1, ErrClosed
	}
	me := ownerWord(q.self)
	for pass := range 2 {
		for i := range int(q.geo.parts) {
			p := q.ent(i, entOwner)
			w := atomic.LoadUint64(p) // atomic: entries are claimed by CAS from any process
			if pass == 0 && w != 0 {
				continue
			}
			if pass == 1 && (w == 0 || ownerAlive(w) || !q.entryStale(i)) {
				continue
			}
			if atomic.CompareAndSwapUint64(p, w, me) {
				// Atomic stores: other processes scan these words.
				atomic.StoreUint64(q.ent(i, entStart), q.self.Start)
				atomic.StoreUint64(q.ent(i, entProdIntent), 0)
				atomic.StoreUint64(q.ent(i, entConsIntent), 0)
				atomic.StoreUint64(q.ent(i, entProdCount), 0)
				atomic.StoreUint64(q.ent(i, entConsCount), 0)
				q.mpmc.prodCount, q.mpmc.consCount = 0, 0
				q.mpmc.puts = atomic.LoadUint64(q.ent(i, entPuts))
				q.mpmc.gets = atomic.LoadUint64(q.ent(i, entGets))
				return i, nil
			}
		}
	}
	return -1, &BusyError{Role: "participant", Participants: int(q.geo.parts)}
}

// entryStale reports whether entry i's intents (of a dead owner) name no
// slot that still needs recovering, so that the entry may be reused.
//
// Atomic loads throughout: the words are written by other processes.
func (q *Queue) entryStale(i int) bool {
	if v := atomic.LoadUint64(q.ent(i, entProdIntent)); v != 0 {
		tail := atomic.LoadUint64(q.tail) &^ closedBit
		for k := range q.intentCount(i, entProdCount) {
			p := v - 1 + k
			if tail > p && q.loadSeq(p) == p {
				return false // p claimed (maybe by this entry) and never published
			}
		}
	}
	if v := atomic.LoadUint64(q.ent(i, entConsIntent)); v != 0 {
		head := atomic.LoadUint64(q.head)
		for k := range q.intentCount(i, entConsCount) {
			c := v - 1 + k
			if head > c && q.loadSeq(c)&^skipBit == c+1 {
				return false // c claimed (maybe by this entry) and never released
			}
		}
	}
	return true
}

// intentCount reads how many positions entry i's intent names (field is
// entProdCount or entConsCount): 1 for 0, at most the longest run a
// claim takes (maxRun), so that a hostile count cannot make a scan long.
func (q *Queue) intentCount(i int, field uint64) uint64 {
	n := atomic.LoadUint64(q.ent(i, field)) // atomic: written by the entry's owner
	return min(max(n, 1), uint64(q.maxRun()))
}

// setIntent records in this handle's entry that it claims the k positions
// from pos (field is entProdIntent or entConsIntent). The count is stored
// first, and only when it changes: a reader that sees the new intent sees
// its count too (both seq-cst), and the handle's previous range, all
// published or released before it claims again, is never the subject of
// a recovery check.
func (q *Queue) setIntent(field, pos, k uint64) {
	countField, last := uint64(entProdCount), &q.mpmc.prodCount
	if field == entConsIntent {
		countField, last = entConsCount, &q.mpmc.consCount
	}
	if *last != k {
		atomic.StoreUint64(q.ent(q.mpmc.entry, countField), k) // atomic: read by findIntent in other processes
		*last = k
	}
	// A release store before the claiming CAS is enough: whoever later
	// sees the tail (head) past pos also sees that we may hold pos. The
	// observers (recoverHeld, skipDead, entryStale) load the tail (head)
	// before they read intents; that acquire load reads our CAS, or a
	// later one of the same word, which continues its release sequence
	// (every later move of the word is a read-modify-write), and the CAS
	// orders this store before it (it is seq-cst, a full barrier on amd64
	// and arm64). An observer that reads the tail before our CAS does not
	// consider pos claimed. No Dekker pairing needs the store itself to
	// be seq-cst: the sleeper handshake uses the sequence words (mpmcSeal,
	// mpmcFree). On amd64 this saves a locked instruction per claim.
	atomicx.StoreRelease(q.ent(q.mpmc.entry, field), pos+1)
}

// findIntent looks for the participants whose intent (field, with its
// count) names position pos: alive reports a live one; otherwise dead is
// a dead one, or -1.
func (q *Queue) findIntent(field, pos uint64) (alive bool, dead int) {
	dead = -1
	countField := uint64(entProdCount)
	if field == entConsIntent {
		countField = entConsCount
	}
	// Atomic loads: intents and owners are written by other processes.
	for i := range int(q.geo.parts) {
		v := atomic.LoadUint64(q.ent(i, field))
		if v == 0 || pos < v-1 || pos-(v-1) >= q.intentCount(i, countField) {
			continue
		}
		w := atomic.LoadUint64(q.ent(i, entOwner))
		if w == 0 {
			continue // closed cleanly: Close refuses while a slot is held, so the intent is stale
		}
		if ownerAlive(w) {
			return true, -1
		}
		dead = i
	}
	return false, dead
}

// check records an unexplained stall at (pos, seq) and reports ErrCorrupt
// once the same one has been seen in several slow checks in a row.
func (s *stuck) check(pos, seq uint64) error {
	if s.pos == pos && s.seq == seq {
		s.seen++
		if s.seen >= 4 {
			s.seen = 0
			return corrupt("slot of position %d stuck at sequence %d with no participant holding it", pos, seq)
		}
		return nil
	}
	*s = stuck{pos: pos, seq: seq, seen: 1}
	return nil
}

// recoverHeld frees slot c (published as seq, claimed by a consumer, never
// released) when the consumer that claimed it is dead, counting the
// message as lost unless it was a skipped slot. It reports whether the
// slot changed.
func (q *Queue) recoverHeld(c, seq uint64, st *stuck) (bool, error) {
	if atomic.LoadUint64(q.head) <= c {
		return false, nil // nobody claimed it: the queue is just full
	}
	alive, dead := q.findIntent(entConsIntent, c)
	if alive {
		return false, nil
	}
	if dead < 0 {
		if q.loadSeq(c) != seq {
			return true, nil // released meanwhile
		}
		return false, st.check(c, seq)
	}
	q.releaseDead(dead, c, seq)
	// The rest of the dead consumer's run, in the same pass: otherwise
	// each of its slots would cost the producer that needs it one more
	// slow check (20 ms), a run of 1024 twenty seconds.
	if v := atomic.LoadUint64(q.ent(dead, entConsIntent)); v != 0 {
		head := atomic.LoadUint64(q.head)
		for k := range q.intentCount(dead, entConsCount) {
			x := v - 1 + k
			if x == c || head <= x {
				continue
			}
			s := q.loadSeq(x)
			if s&^skipBit != x+1 {
				continue // released, or not this round's
			}
			if alive, d := q.findIntent(entConsIntent, x); !alive && d >= 0 {
				q.releaseDead(d, x, s)
			}
		}
	}
	return true, nil
}

// releaseDead frees slot c (seen with sequence seq), held by the dead
// entry dead, counting the message lost (unless the slot was a skipped
// one) with that consumer's identity.
func (q *Queue) releaseDead(dead int, c, seq uint64) {
	// Atomic loads: entries are rewritten by processes that take them over.
	w := atomic.LoadUint64(q.ent(dead, entOwner))
	start := atomic.LoadUint64(q.ent(dead, entStart))
	var lost Lost
	if q.lostFn != nil && seq&skipBit == 0 {
		// Copy the message before the CAS frees the slot for a producer.
		lost = q.lostMessage(c, w, start)
	}
	// CAS: only one recoverer wins, and only if the slot is still in the
	// state we judged; the new sequence frees it for position c+N.
	if !atomic.CompareAndSwapUint64(q.u64(q.slot(c)+slotSeq), seq, c+q.geo.capacity) {
		return
	}
	if seq&skipBit == 0 {
		// Atomic RMW and stores: recovery is rare and any process may do
		// it concurrently for different slots.
		atomic.AddUint64(q.u64(offLost), 1)
		atomic.StoreUint64(q.u64(offLostOwner), w)
		atomic.StoreUint64(q.u64(offLostStart), start)
		atomic.StoreUint64(q.u64(offLostPos), c)
		if q.lostFn != nil {
			q.lostFn(lost)
		}
	}
	// CAS: clear the dead entry's intent only if it still names c alone,
	// so the entry can be reused (a run's intent stays until every slot it
	// names is recovered: entryStale).
	if q.intentCount(dead, entConsCount) == 1 {
		atomic.CompareAndSwapUint64(q.ent(dead, entConsIntent), c+1, 0)
	}
	wake(q.spaceSeq, q.putWaiters, 1)
}

// lostMessage describes the message at position c, held by the dead
// consumer whose owner word and start time are w and start, with a copy
// of its bytes (empty if its length is corrupt).
func (q *Queue) lostMessage(c, w, start uint64) Lost {
	off := q.slot(c)
	l := Lost{Position: c, Consumer: Participant{Pid: ownerPid(w), Start: start, Position: c},
		ProducerPid: int(*q.u32(off + slotPid))} // plain: ordered by the acquire of the sequence
	if n := uint64(*q.u32(off + slotLen)); n <= q.geo.maxMsg {
		l.Message = append([]byte(nil), q.bytesAt(off+slotHeader, n)...)
	}
	return l
}

// skipDead marks position p (claimed, never published) skipped when the
// producer that claimed it is dead. It reports whether the slot changed.
func (q *Queue) skipDead(p uint64) (bool, error) {
	alive, dead := q.findIntent(entProdIntent, p)
	if alive {
		return false, nil
	}
	if dead < 0 {
		if q.loadSeq(p) != p {
			return true, nil // published meanwhile
		}
		return false, q.mpmc.stuckGet.check(p, p)
	}
	q.skipSlot(dead, p)
	// The rest of the dead producer's run, in the same pass.
	if v := atomic.LoadUint64(q.ent(dead, entProdIntent)); v != 0 {
		tail := atomic.LoadUint64(q.tail) &^ closedBit
		for k := range q.intentCount(dead, entProdCount) {
			x := v - 1 + k
			if x == p || tail <= x || q.loadSeq(x) != x {
				continue
			}
			if alive, d := q.findIntent(entProdIntent, x); !alive && d >= 0 {
				q.skipSlot(d, x)
			}
		}
	}
	return true, nil
}

// skipSlot marks position p, claimed by the dead producer entry dead and
// never published, skipped.
func (q *Queue) skipSlot(dead int, p uint64) {
	// CAS: only if still unpublished; the skip bit tells the consumer
	// that claims it that it carries no message.
	if atomic.CompareAndSwapUint64(q.u64(q.slot(p)+slotSeq), p, (p+1)|skipBit) {
		if q.intentCount(dead, entProdCount) == 1 {
			atomic.CompareAndSwapUint64(q.ent(dead, entProdIntent), p+1, 0) // CAS: only if it still names p alone
		}
	}
}

// mpmcClaimPut claims the slot at the tail for a new message. ok is false
// when the queue is full (or a slot ahead is being recovered).
func (q *Queue) mpmcClaimPut(slow bool) (pos uint64, ok bool, err error) {
	n := q.geo.capacity
	for range 64 {
		t := atomic.LoadUint64(q.tail) // atomic: moved by every producer's CAS
		if t&closedBit != 0 {
			raceAcquire(q.raceProxy) // CloseWrite happens before what follows
			return 0, false, ErrClosed
		}
		seq := q.loadSeq(t)
		s := seq &^ skipBit
		switch {
		case seq == t:
			q.setIntent(entProdIntent, t, 1)
			if testHook != nil {
				testHook("put-intent")
			}
			// CAS: claims position t among competing producers; fails if
			// the tail moved or CloseWrite set the closed bit.
			if atomic.CompareAndSwapUint64(q.tail, t, t+1) {
				q.mpmc.stuckPut = stuck{}
				if testHook != nil {
					testHook("put-claimed")
				}
				return t, true, nil
			}
			// Lost the race: our intent names a position another
			// producer holds, and would hide that producer's death from
			// skipDead while we are idle. Atomic: read by findIntent.
			atomic.StoreUint64(q.ent(q.mpmc.entry, entProdIntent), 0)
		case s+n == t+1:
			// Position t-N published and not yet released.
			if !slow {
				return 0, false, nil
			}
			changed, err := q.recoverHeld(t-n, seq, &q.mpmc.stuckPut)
			if err != nil || !changed {
				return 0, false, err
			}
		case seq+n == t:
			// Position t-N still being written; its consumers deal with
			// a dead producer.
			return 0, false, nil
		case s > t:
			// Atomic reload: a slot ahead of the tail is only possible
			// if the tail moved since we read it.
			if atomic.LoadUint64(q.tail) == t {
				return 0, false, corrupt("slot of tail %d has sequence %d", t, seq)
			}
		default:
			if atomic.LoadUint64(q.tail) == t { // atomic reload, as above
				return 0, false, corrupt("slot of tail %d has sequence %d", t, seq)
			}
		}
	}
	return 0, false, nil
}

// mpmcPublish publishes position pos with a message of n bytes already
// written: the single-message case of mpmcPublishRun.
func (q *Queue) mpmcPublish(pos uint64, n int) {
	raceRelease(q.raceProxy) // for -race: what came before Put happens before the Get
	q.mpmcSeal(pos, n, true)
	q.mpmcPublished(1)
}

// mpmcSeal makes claimed position pos, whose n payload bytes are written,
// visible to consumers: the length and the producer's pid, then the
// sequence. The sequence store is a release store (payload and length
// become visible with it, slot by slot, so consumers start on the first
// message of a run while the rest are written), except for the last of a
// run (last), which is sequentially consistent: it orders every
// publication before wake's load of the sleeper count in mpmcPublished
// (the Dekker pairing in block).
func (q *Queue) mpmcSeal(pos uint64, n int, last bool) {
	off := q.slot(pos)
	*q.u32(off + slotLen) = uint32(n)          // plain: published by the store below
	*q.u32(off + slotPid) = uint32(q.self.Pid) // plain, likewise
	if last {
		atomic.StoreUint64(q.u64(off+slotSeq), pos+1)
	} else {
		atomicx.StoreRelease(q.u64(off+slotSeq), pos+1)
	}
}

// mpmcPublished counts k messages published (after the last mpmcSeal)
// and wakes a sleeping consumer for each.
func (q *Queue) mpmcPublished(k int) {
	q.mpmc.puts += uint64(k)
	*q.ent(q.mpmc.entry, entPuts) = q.mpmc.puts // plain: single-writer statistic (see spscPublish)
	wake(q.dataSeq, q.getWaiters, k)            // seq-cst: after the last publication
}

func (q *Queue) mpmcWaitClaimPut(ctx context.Context, wait bool) (uint64, bool, error) {
	pos, ok, err := q.mpmcClaimPut(false)
	if !ok && err == nil && !wait && q.mpmc.tryPut.failed() {
		pos, ok, err = q.mpmcClaimPut(true)
	}
	if ok {
		q.mpmc.tryPut = tryStall{}
	}
	if ok || err != nil || !wait {
		return pos, ok, err
	}
	err = q.block(ctx, q.spaceSeq, q.putWaiters, q.putWaits, func(slow bool) (bool, error) {
		pos, ok, err = q.mpmcClaimPut(slow)
		return ok, err
	})
	return pos, ok, err
}

func (q *Queue) mpmcPut(ctx context.Context, p []byte, wait bool) (bool, error) {
	if err := q.checkSize(len(p)); err != nil {
		return false, err
	}
	if err := q.attachEntry(); err != nil {
		return false, err
	}
	q.mpmc.lockPut()
	defer q.mpmc.unlockPut()
	if q.mpmc.reserved {
		return false, ErrPending
	}
	pos, ok, err := q.mpmcWaitClaimPut(ctx, wait)
	if !ok || err != nil {
		return false, err
	}
	copyIn(q.bytesAt(q.slot(pos)+slotHeader, uint64(len(p))), p)
	q.mpmcPublish(pos, len(p))
	return true, nil
}

func (q *Queue) mpmcReserve(ctx context.Context, n int) ([]byte, error) {
	if err := q.checkSize(n); err != nil {
		return nil, err
	}
	if err := q.attachEntry(); err != nil {
		return nil, err
	}
	q.mpmc.lockPut()
	defer q.mpmc.unlockPut()
	if q.mpmc.reserved {
		return nil, ErrPending
	}
	pos, _, err := q.mpmcWaitClaimPut(ctx, true)
	if err != nil {
		return nil, err
	}
	q.mpmc.reserved, q.mpmc.resvPos, q.mpmc.resvLen = true, pos, uint64(n)
	return q.bytesAt(q.slot(pos)+slotHeader, uint64(n))[:n:n], nil
}

func (q *Queue) mpmcCommit(n int) error {
	q.mpmc.lockPut()
	defer q.mpmc.unlockPut()
	if !q.mpmc.reserved {
		return ErrPending
	}
	if err := q.checkCommit(n, q.mpmc.resvLen); err != nil {
		return err
	}
	q.mpmc.reserved = false
	q.mpmcPublish(q.mpmc.resvPos, n)
	return nil
}

// mpmcClaimGet claims the next published slot at the head. It returns
// io.EOF once the queue is closed and drained.
func (q *Queue) mpmcClaimGet(slow bool) (pos, seq uint64, ok bool, err error) {
	n := q.geo.capacity
	for range 64 {
		h := atomic.LoadUint64(q.head) // atomic: moved by every consumer's CAS
		seq = q.loadSeq(h)
		s := seq &^ skipBit
		switch {
		case s == h+1:
			q.setIntent(entConsIntent, h, 1)
			if testHook != nil {
				testHook("get-intent")
			}
			// CAS: claims position h among competing consumers.
			if atomic.CompareAndSwapUint64(q.head, h, h+1) {
				if seq&skipBit != 0 {
					q.releaseSlot(h)
					atomic.AddUint64(q.u64(offSkipped), 1) // atomic RMW: any consumer may count
					continue
				}
				q.mpmc.stuckGet = stuck{}
				if testHook != nil {
					testHook("get-claimed")
				}
				raceAcquire(q.raceProxy) // the Put of position h happens before what follows
				return h, seq, true, nil
			}
			// Lost the race, as in mpmcClaimPut: our intent would hide
			// the death of the consumer that holds h from recoverHeld.
			atomic.StoreUint64(q.ent(q.mpmc.entry, entConsIntent), 0)
		case seq == h:
			// Not published. Empty, or a producer is writing it.
			t := atomic.LoadUint64(q.tail) // atomic: read after the head, so t >= h
			tc := t &^ closedBit
			if tc < h {
				if atomic.LoadUint64(q.head) == h { // atomic reload: did the head move?
					return 0, 0, false, corrupt("head %d beyond tail %d", h, tc)
				}
				continue
			}
			if tc == h {
				if t&closedBit != 0 {
					q.recoverAll()
					raceAcquire(q.raceProxy) // CloseWrite happens before io.EOF
					return 0, 0, false, io.EOF
				}
				return 0, 0, false, nil
			}
			if !slow {
				return 0, 0, false, nil
			}
			changed, err := q.skipDead(h)
			if err != nil || !changed {
				return 0, 0, false, err
			}
		case s+n == h+1:
			// Position h-N is still held by a consumer: nothing for h yet.
			t := atomic.LoadUint64(q.tail)
			if t&closedBit != 0 && t&^closedBit == h {
				q.recoverAll()
				raceAcquire(q.raceProxy) // CloseWrite happens before io.EOF
				return 0, 0, false, io.EOF
			}
			return 0, 0, false, nil
		default:
			if atomic.LoadUint64(q.head) == h { // atomic reload: did the head move?
				return 0, 0, false, corrupt("slot of head %d has sequence %d", h, seq)
			}
		}
	}
	return 0, 0, false, nil
}

// releaseSlot frees the slot of position pos, which delivered no
// message (a skipped slot), for position pos+N.
func (q *Queue) releaseSlot(pos uint64) {
	q.mpmcFree(pos, true)
	q.mpmcReleased(1, 0)
}

// mpmcFree frees the slot of claimed position pos for position pos+N,
// once we finished reading it. The store is a release store (the reads
// happen before a producer may reuse the slot), except for the last of a
// run (last), which is sequentially consistent: it orders every release
// before wake's load of the sleeper count in mpmcReleased.
func (q *Queue) mpmcFree(pos uint64, last bool) {
	seqWord := q.u64(q.slot(pos) + slotSeq)
	if last {
		atomic.StoreUint64(seqWord, pos+q.geo.capacity)
	} else {
		atomicx.StoreRelease(seqWord, pos+q.geo.capacity)
	}
}

// mpmcReleased counts the delivered messages among k slots freed (after
// the last mpmcFree) and wakes a sleeping producer for each slot.
func (q *Queue) mpmcReleased(k, delivered int) {
	if delivered > 0 {
		q.mpmc.gets += uint64(delivered)
		*q.ent(q.mpmc.entry, entGets) = q.mpmc.gets // plain: single-writer statistic (see spscPublish)
	}
	wake(q.spaceSeq, q.putWaiters, k) // seq-cst: after the last release
}

// recoverAll recovers every slot in the last N positions that a dead
// consumer claimed and never released, so that Stats.Lost is complete
// when the consumers drain the queue (no producer may come along to need
// those slots).
func (q *Queue) recoverAll() {
	h := atomic.LoadUint64(q.head) // atomic: moved by every consumer
	n := q.geo.capacity
	lo := uint64(0)
	if h > n {
		lo = h - n
	}
	for c := lo; c < h; c++ {
		seq := q.loadSeq(c)
		if seq&^skipBit == c+1 {
			var st stuck
			_, _ = q.recoverHeld(c, seq, &st)
		}
	}
}

// mpmcSlotLen reads and validates the length of claimed position pos.
func (q *Queue) mpmcSlotLen(pos uint64) (uint64, error) {
	n := uint64(*q.u32(q.slot(pos) + slotLen)) // plain: ordered by the acquire of the sequence
	if n > q.geo.maxMsg {
		return 0, corrupt("message length %d at position %d", n, pos)
	}
	return n, nil
}

func (q *Queue) mpmcWaitClaimGet(ctx context.Context, wait bool) (uint64, bool, error) {
	if q.mpmc.eof {
		return 0, false, io.EOF
	}
	pos, _, ok, err := q.mpmcClaimGet(false)
	if !ok && err == nil && !wait && q.mpmc.tryGet.failed() {
		pos, _, ok, err = q.mpmcClaimGet(true)
	}
	if ok {
		q.mpmc.tryGet = tryStall{}
	}
	q.mpmc.eof = err == io.EOF
	if ok || err != nil || !wait {
		return pos, ok, err
	}
	err = q.block(ctx, q.dataSeq, q.getWaiters, q.getWaits, func(slow bool) (bool, error) {
		pos, _, ok, err = q.mpmcClaimGet(slow)
		return ok, err
	})
	q.mpmc.eof = err == io.EOF
	return pos, ok, err
}

// mpmcDone releases a consumed position and counts it.
func (q *Queue) mpmcDone(pos uint64) {
	q.mpmcFree(pos, true)
	q.mpmcReleased(1, 1)
}

func (q *Queue) mpmcGet(ctx context.Context, buf []byte, wait bool, grow bool) ([]byte, int, bool, error) {
	if err := q.attachEntry(); err != nil {
		return buf, 0, false, err
	}
	q.mpmc.lockGet()
	defer q.mpmc.unlockGet()
	return q.mpmcGetLocked(ctx, buf, wait, grow)
}

// mpmcGetLocked is mpmcGet's work, under getMu.
func (q *Queue) mpmcGetLocked(ctx context.Context, buf []byte, wait bool, grow bool) ([]byte, int, bool, error) {
	var pos uint64
	switch {
	case q.mpmc.held && q.mpmc.heldShort:
		// A message an earlier call could not fit: deliver it first.
		pos, q.mpmc.held, q.mpmc.heldShort = q.mpmc.heldPos, false, false
	case q.mpmc.held:
		return buf, 0, false, ErrPending
	default:
		p, ok, err := q.mpmcWaitClaimGet(ctx, wait)
		if !ok || err != nil {
			return buf, 0, false, err
		}
		pos = p
	}
	n, err := q.mpmcSlotLen(pos)
	if err != nil {
		q.mpmcDone(pos) // give the slot back so the queue keeps moving
		return buf, 0, false, err
	}
	src := q.bytesAt(q.slot(pos)+slotHeader, n)
	if grow {
		buf = append(buf, src...)
	} else if uint64(len(buf)) < n {
		// The slot is claimed: it cannot be handed back to other
		// consumers, so the message is kept for this handle's next call.
		q.mpmc.held, q.mpmc.heldPos, q.mpmc.heldShort = true, pos, true
		return buf, 0, false, io.ErrShortBuffer
	} else {
		copy(buf, src)
	}
	q.mpmcDone(pos)
	return buf, int(n), true, nil
}

func (q *Queue) mpmcNext(ctx context.Context, wait bool) ([]byte, bool, error) {
	if err := q.attachEntry(); err != nil {
		return nil, false, err
	}
	q.mpmc.lockGet()
	defer q.mpmc.unlockGet()
	var pos uint64
	switch {
	case q.mpmc.held && q.mpmc.heldShort:
		pos, q.mpmc.heldShort = q.mpmc.heldPos, false
	case q.mpmc.held:
		return nil, false, ErrPending
	default:
		p, ok, err := q.mpmcWaitClaimGet(ctx, wait)
		if !ok || err != nil {
			return nil, false, err
		}
		pos = p
	}
	n, err := q.mpmcSlotLen(pos)
	if err != nil {
		q.mpmc.held = false
		q.mpmcDone(pos)
		return nil, false, err
	}
	q.mpmc.held, q.mpmc.heldPos = true, pos
	return unsafe.Slice((*byte)(unsafe.Add(q.base, q.slot(pos)+slotHeader)), n)[:n:n], true, nil
}

func (q *Queue) mpmcRelease() error {
	q.mpmc.lockGet()
	defer q.mpmc.unlockGet()
	if !q.mpmc.held || q.mpmc.heldShort {
		return ErrPending
	}
	q.mpmc.held = false
	q.mpmcDone(q.mpmc.heldPos)
	return nil
}
