package ring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/shm"
)

var writeSeeds = flag.Bool("ring.writeseeds", false, "rewrite the crafted FuzzConsumer seeds in testdata")

// Owner words for crafted rings: a pid no process can have (above any
// pid_max) and pid 1 with start time 0, which matches whatever process 1
// is: dead and alive, whatever machine the test runs on.
const (
	deadOwner = uint64(0x7fff_fff0)<<32 | 1
	liveOwner = uint64(1) << 32
)

// craftedRing is a ring damaged in one chosen way, one per check of the
// validation code (or state a recovery path handles): a seed of
// FuzzConsumer (testdata/fuzz/FuzzConsumer/crafted-NAME, written by
// TestCraftedSeeds), and a case of TestCorruptRings, where check makes
// the calls that must meet the damage and says what was wrong.
type craftedRing struct {
	name  string
	mode  byte
	image []byte // the ring, then pokes for FuzzConsumer's body
	check func(r *fuzzRing) error
	atErr error // At refuses the ring with this (check is then nil)
}

// Offsets in the fuzz rings (fuzzConfig).
const (
	fzData  = headerSize                 // SPSC data area
	fzSlots = headerSize + 2*entrySize   // MPMC slots (2 participants)
	fzEnt   = headerSize                 // MPMC participant table
	fzSlot  = 64                         // MPMC slot size (align64(16 + 40))
	fzRec   = uint64(8) | uint64(16)<<32 // a valid SPSC record: 8 bytes, span 16
)

func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }

// rec is an SPSC record header word.
func rec(n, span uint64) uint64 { return n | span<<32 }

// pokes returns n pokes of word off with v, after skip steps without.
func pokes(skip, n int, off int, v uint64) []byte {
	var b []byte
	for i := range skip + n {
		o := uint64(off)
		if i < skip {
			o = 1 << 63
		}
		b = binary.LittleEndian.AppendUint64(b, o)
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// wantErr checks that err matches target.
func wantErr(what string, err, target error) error {
	if !errors.Is(err, target) {
		return fmt.Errorf("%s = %v, want %v", what, err, target)
	}
	return nil
}

// liveCtx is a context for a blocking call in a check: long enough for
// the slow checks to run many times, short enough for a test.
func liveCtx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func craftedRings(tb testing.TB) []craftedRing {
	spsc := func(edit func(b []byte)) []byte {
		b := fuzzImage(tb, 0, 0, 0)
		edit(b)
		return b
	}
	mpmc := func(edit func(b []byte)) []byte {
		b := fuzzImage(tb, 1, 0, 0)
		edit(b)
		return b
	}
	tryGet := func(r *fuzzRing) error {
		_, _, err := r.q.TryGet(make([]byte, 64))
		return wantErr("TryGet", err, ErrCorrupt)
	}
	tryPut := func(r *fuzzRing) error {
		_, err := r.q.TryPut([]byte("x"))
		return wantErr("TryPut", err, ErrCorrupt)
	}
	// fullMPMC: positions 0..3 published, head 1 (position 0 claimed by a
	// consumer, never released), tail 4: the next Put needs slot 0.
	fullMPMC := func(b []byte) {
		put64(b, offTail, 4)
		put64(b, offHead, 1)
		for i := range 4 {
			put64(b, fzSlots+i*fzSlot, uint64(i)+1)
		}
	}
	// unpublished: position 0 claimed by a producer (tail 1), never published.
	unpublished := func(b []byte) { put64(b, offTail, 1) }
	return []craftedRing{
		// SPSC records: checkRecord's bounds, then the read position's.
		{"spsc-length", 0, spsc(func(b []byte) { put64(b, fzData, rec(41, 56)) }), tryGet, nil},
		{"spsc-length-in-span", fuzzChecksum, spsc(func(b []byte) {
			// MaxMessage 36: a 39-byte record spans 48 bytes, as a 36-byte
			// one does; only the length check refuses it.
			put32(b, offMaxMsg, 36)
			put64(b, fzData, rec(39, 48))
		}), func(r *fuzzRing) error {
			if err := tryGet(r); err != nil {
				return err
			}
			_, err := r.q.GetBatch(context.Background(), [][]byte{make([]byte, 64)})
			return wantErr("GetBatch", err, ErrCorrupt)
		}, nil},
		{"spsc-span-short", 0, spsc(func(b []byte) { put64(b, fzData, rec(16, 16)) }), tryGet, nil},
		{"spsc-span-long", 0, spsc(func(b []byte) { put64(b, fzData, rec(8, 56)) }), tryGet, nil},
		{"spsc-span-unaligned", 0, spsc(func(b []byte) { put64(b, fzData, rec(8, 20)) }), tryGet, nil},
		{"spsc-past-end", 0, spsc(func(b []byte) {
			put64(b, offHead, 240)
			put64(b, offTail, 240)
			put64(b, fzData+240, rec(16, 24)) // 240 + 24 > 256: its payload would run past the ring's end
		}), tryGet, nil},
		{"spsc-pad-at-zero", 0, spsc(func(b []byte) { put64(b, fzData, rec(padLen, 16)) }), tryGet, nil},
		{"spsc-no-terminator", 0, spsc(func(b []byte) {
			// Valid records all round the ring and no terminator: the
			// producer's takeover walk and a consumer holding them all
			// (Next after Next) must both stop at the capacity.
			for off := 0; off < 256; off += 16 {
				put64(b, fzData+off, fzRec)
			}
		}), func(r *fuzzRing) error {
			if err := tryPut(r); err != nil {
				return err
			}
			for i := range 40 {
				_, ok, err := r.q.TryNext()
				if err != nil {
					return wantErr(fmt.Sprintf("TryNext %d", i), err, ErrCorrupt)
				}
				if !ok {
					return fmt.Errorf("TryNext %d: empty", i)
				}
			}
			return errors.New("TryNext read past the capacity")
		}, nil},
		{"spsc-walk-bad-record", 0, spsc(func(b []byte) {
			put64(b, fzData, fzRec)
			put64(b, fzData+16, rec(41, 56))
		}), tryPut, nil},
		{"spsc-head-far", 0, spsc(func(b []byte) { put64(b, offHead, 1024) }), tryPut, nil},
		{"spsc-head-unaligned", 0, spsc(func(b []byte) { put64(b, offHead, 4) }), tryGet, nil},
		{"spsc-room-head", 0, append(spsc(func([]byte) {}),
			// FuzzConsumer's fifth call takes the producer role over;
			// from the sixth on, the head is far past the tail whenever
			// the producer reloads it.
			pokes(5, 80, offHead, 1<<20)...), func(r *fuzzRing) error {
			if _, err := r.q.TryPut([]byte("x")); err != nil {
				return err
			}
			atomic.StoreUint64(r.q.head, 1<<20)
			for range 64 {
				if _, err := r.q.TryPut([]byte("x")); err != nil {
					return wantErr("TryPut with the head past the tail", err, ErrCorrupt)
				}
			}
			return errors.New("the producer never looked at the head")
		}, nil},
		{"spsc-pipe-peer-dead", fuzzPipe, spsc(func(b []byte) { put64(b, offProdOwner, deadOwner) }), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(10 * time.Second)
			defer cancel()
			_, err := (&Conn{in: r.q, out: r.q}).Recv(ctx, make([]byte, 64))
			return wantErr("Recv from a dead peer", err, ErrPeerDied)
		}, nil},

		{"spsc-pipe-reader-dead", fuzzPipe, append(spsc(func(b []byte) {
			// Empty records up to a terminator at 248: after two are read
			// a 7-byte record needs a wrap pad and there is no room.
			for off := 0; off < 248; off += 8 {
				put64(b, fzData+off, rec(0, 8))
			}
			put64(b, offTail, 248)
		}),
			// FuzzConsumer's third call (Send) meets a full ring whose
			// reader, by then, is recorded as a dead process.
			pokes(2, 1, offConsOwner, deadOwner)...), func(r *fuzzRing) error {
			c := &Conn{in: r.q, out: r.q}
			ctx, cancel := liveCtx(10 * time.Second)
			defer cancel()
			for range 2 {
				if _, err := c.Recv(ctx, make([]byte, 64)); err != nil {
					return err
				}
			}
			atomic.StoreUint64(r.q.u64(offConsOwner), deadOwner)
			return wantErr("Send to a dead reader", c.Send(ctx, make([]byte, 7)), ErrPeerDied)
		}, nil},

		// MPMC slots and indices.
		{"mpmc-length", 1, mpmc(func(b []byte) {
			put64(b, offTail, 1)
			put64(b, fzSlots, 1)
			put32(b, fzSlots+slotLen, 41)
		}), tryGet, nil},
		{"mpmc-get-seq", 1, mpmc(func(b []byte) { put64(b, fzSlots, 7) }), tryGet, nil},
		{"mpmc-head-beyond-tail", 1, mpmc(func(b []byte) {
			put64(b, offHead, 2)
			put64(b, offTail, 1)
		}), tryGet, nil},
		{"mpmc-put-seq-ahead", 1, mpmc(func(b []byte) { put64(b, fzSlots, 9) }), tryPut, nil},
		{"mpmc-put-seq-behind", 1, mpmc(func(b []byte) {
			put64(b, offHead, 5)
			put64(b, offTail, 5)
			put64(b, fzSlots+fzSlot, 3) // slot 1, for position 5: neither 5, 2 nor 1
		}), tryPut, nil},

		// MPMC recovery: a claimed slot never published (its producer
		// dead, alive, or named by no participant at all: corruption once
		// it persists), a published one never released (likewise its
		// consumer), the participant table, and recovery at io.EOF.
		{"mpmc-skip-dead", 1, mpmc(func(b []byte) {
			unpublished(b)
			put64(b, fzEnt+entOwner, deadOwner)
			put64(b, fzEnt+entProdIntent, 1)
		}), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(100 * time.Millisecond)
			defer cancel()
			if _, err := r.q.Get(ctx, make([]byte, 64)); !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("Get past a dead producer's slot = %v, want the deadline (nothing else queued)", err)
			}
			if s := r.q.Stats(); s.Skipped != 1 {
				return fmt.Errorf("stats %+v, want 1 skipped", s)
			}
			return nil
		}, nil},
		{"mpmc-try-skip-dead", 1, mpmc(func(b []byte) {
			unpublished(b)
			put64(b, fzEnt+entOwner, deadOwner)
			put64(b, fzEnt+entProdIntent, 1)
		}), func(r *fuzzRing) error {
			// Failing TryGets run the dead-producer check every few
			// milliseconds, as a blocked Get does after each sleep.
			return tryUntil(r, func() (bool, error) {
				_, _, err := r.q.TryGet(make([]byte, 64))
				return r.q.Stats().Skipped == 1, err
			})
		}, nil},
		{"mpmc-skip-none", 1, mpmc(func(b []byte) {
			unpublished(b)
			// Entry 1 is free (entry 0 is the one a handle takes) with a
			// stale intent naming the slot: a participant that closed.
			put64(b, fzEnt+entrySize+entProdIntent, 1)
		}), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(10 * time.Second)
			defer cancel()
			_, err := r.q.Get(ctx, make([]byte, 64))
			return wantErr("Get behind a slot nobody claimed", err, ErrCorrupt)
		}, nil},
		{"mpmc-skip-live", 1, mpmc(func(b []byte) {
			unpublished(b)
			put64(b, fzEnt+entOwner, liveOwner)
			put64(b, fzEnt+entProdIntent, 1)
		}), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(50 * time.Millisecond)
			defer cancel()
			_, err := r.q.Get(ctx, make([]byte, 64))
			if err := wantErr("Get behind a live producer's slot", err, context.DeadlineExceeded); err != nil {
				return err
			}
			if s := r.q.Stats(); s.Skipped != 0 {
				return fmt.Errorf("a live producer's slot skipped: %+v", s)
			}
			return nil
		}, nil},
		{"mpmc-recover-dead", 1, mpmc(func(b []byte) {
			fullMPMC(b)
			put64(b, fzEnt+entOwner, deadOwner)
			put64(b, fzEnt+entStart, 77)
			put64(b, fzEnt+entConsIntent, 1)
		}), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(10 * time.Second)
			defer cancel()
			if err := r.q.Put(ctx, []byte("x")); err != nil {
				return fmt.Errorf("Put past a dead consumer's slot = %v", err)
			}
			s := r.q.Stats()
			if s.Lost != 1 || s.LastLost != (Participant{Pid: ownerPid(deadOwner), Start: 77, Position: 0}) {
				return fmt.Errorf("stats %+v, want 1 lost at position 0 by the dead owner", s)
			}
			return nil
		}, nil},
		{"mpmc-try-recover-dead", 1, mpmc(func(b []byte) {
			fullMPMC(b)
			put64(b, fzEnt+entOwner, deadOwner)
			put64(b, fzEnt+entConsIntent, 1)
		}), func(r *fuzzRing) error {
			return tryUntil(r, func() (bool, error) {
				ok, err := r.q.TryPut([]byte("x"))
				return ok && r.q.Stats().Lost == 1, err
			})
		}, nil},
		{"mpmc-recover-none", 1, mpmc(fullMPMC), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(10 * time.Second)
			defer cancel()
			return wantErr("Put behind a slot nobody holds", r.q.Put(ctx, []byte("x")), ErrCorrupt)
		}, nil},
		{"mpmc-recover-live", 1, mpmc(func(b []byte) {
			fullMPMC(b)
			put64(b, fzEnt+entOwner, liveOwner)
			put64(b, fzEnt+entConsIntent, 1)
		}), func(r *fuzzRing) error {
			ctx, cancel := liveCtx(50 * time.Millisecond)
			defer cancel()
			if err := wantErr("Put behind a live consumer's slot", r.q.Put(ctx, []byte("x")), context.DeadlineExceeded); err != nil {
				return err
			}
			if s := r.q.Stats(); s.Lost != 0 {
				return fmt.Errorf("a live consumer's message lost: %+v", s)
			}
			return nil
		}, nil},
		{"mpmc-entries-dead", 1, mpmc(func(b []byte) {
			for e := range 2 {
				put64(b, fzEnt+e*entrySize+entOwner, deadOwner)
				put64(b, fzEnt+e*entrySize+entProdIntent, 3) // stale: position 2 was never claimed
			}
		}), func(r *fuzzRing) error {
			if _, err := r.q.TryPut([]byte("x")); err != nil {
				return fmt.Errorf("TryPut with only dead participants = %v, want an entry taken over", err)
			}
			return nil
		}, nil},
		{"mpmc-entries-dead-holding", 1, mpmc(func(b []byte) {
			// Position 0 published and claimed by entry 1's consumer,
			// position 1 claimed by entry 0's producer: neither released.
			put64(b, offTail, 2)
			put64(b, offHead, 1)
			put64(b, fzSlots, 1)
			for e := range 2 {
				put64(b, fzEnt+e*entrySize+entOwner, deadOwner)
			}
			put64(b, fzEnt+entProdIntent, 2)
			put64(b, fzEnt+entrySize+entConsIntent, 1)
		}), func(r *fuzzRing) error {
			_, err := r.q.TryPut([]byte("x"))
			return wantErr("TryPut with dead participants holding slots", err, ErrBusy)
		}, nil},
		{"mpmc-entries-live", 1, mpmc(func(b []byte) {
			for e := range 2 {
				put64(b, fzEnt+e*entrySize+entOwner, liveOwner)
			}
		}), func(r *fuzzRing) error {
			_, err := r.q.TryPut([]byte("x"))
			return wantErr("TryPut with live participants", err, ErrBusy)
		}, nil},
		{"mpmc-eof-recover", 1, mpmc(func(b []byte) {
			put64(b, offTail, 5|closedBit)
			put32(b, offClosed, 1)
			put64(b, offHead, 5)
			put64(b, fzSlots, 5)        // position 4 published, claimed by the dead entry 0
			put64(b, fzSlots+fzSlot, 5) // slot 1 free for position 5: empty
			put64(b, fzEnt+entOwner, deadOwner)
			put64(b, fzEnt+entConsIntent, 5)
		}), func(r *fuzzRing) error {
			_, _, err := r.q.TryGet(make([]byte, 64))
			if err != io.EOF {
				return fmt.Errorf("TryGet of a closed, drained queue = %v, want io.EOF", err)
			}
			if s := r.q.Stats(); s.Lost != 1 {
				return fmt.Errorf("stats %+v: the message the dead consumer held not counted at io.EOF", s)
			}
			return nil
		}, nil},

		// The geometry, fuzzed past the checksum (mode bit 2).
		{"geometry-spsc-smaller", fuzzChecksum, spsc(func(b []byte) { put64(b, offCapacity, 128) }), func(r *fuzzRing) error {
			if r.q.geo.size != headerSize+128 || len(r.mem) != int(r.q.geo.size) {
				return fmt.Errorf("ring of %d bytes in %d", r.q.geo.size, len(r.mem))
			}
			return roundTrip(r.q)
		}, nil},
		{"geometry-mpmc-fewer-parts", 1 | fuzzChecksum, mpmc(func(b []byte) {
			put32(b, offParts, 1)
			// The slots move down by one entry: make theirs fresh.
			for i := range 4 {
				put64(b, headerSize+entrySize+i*fzSlot, uint64(i))
			}
		}), func(r *fuzzRing) error {
			if r.q.geo.parts != 1 || len(r.mem) != int(r.q.geo.size) {
				return fmt.Errorf("geometry %+v in %d bytes", r.q.geo, len(r.mem))
			}
			return roundTrip(r.q)
		}, nil},
		{"geometry-spsc-maxmsg", fuzzChecksum, spsc(func(b []byte) { put32(b, offMaxMsg, 8) }), func(r *fuzzRing) error {
			if r.q.MaxMessage() != 8 {
				return fmt.Errorf("MaxMessage %d", r.q.MaxMessage())
			}
			return roundTrip(r.q)
		}, nil},
		{"geometry-spsc-capacity", fuzzChecksum, spsc(func(b []byte) { put64(b, offCapacity, 100) }), nil, ErrCorrupt},
		{"geometry-spsc-too-big", fuzzChecksum, spsc(func(b []byte) { put64(b, offCapacity, 1024) }), nil, ErrCorrupt},
		{"geometry-mpmc-slot-size", 1 | fuzzChecksum, mpmc(func(b []byte) { put32(b, offSlotSize, 128) }), nil, ErrCorrupt},
		{"geometry-mpmc-no-parts", 1 | fuzzChecksum, mpmc(func(b []byte) { put32(b, offParts, 0) }), nil, ErrCorrupt},
		{"geometry-mode", fuzzChecksum, spsc(func(b []byte) { put32(b, offMode, 3) }), nil, ErrCorrupt},
		{"geometry-flags", fuzzChecksum, spsc(func(b []byte) { put32(b, offFlags, 1) }), nil, ErrCorrupt},
		{"geometry-version", fuzzChecksum, spsc(func(b []byte) { put32(b, offVersion, 1) }), nil, shm.ErrVersion},   // version 1: intents without counts
		{"geometry-version-2", fuzzChecksum, spsc(func(b []byte) { put32(b, offVersion, 2) }), nil, shm.ErrVersion}, // version 2: sleeper words on the tail and head lines
	}
}

// tryUntil calls try until it reports done (or fails), for at most a
// few seconds.
func tryUntil(r *fuzzRing, try func() (bool, error)) error {
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		done, err := try()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("Try calls never recovered: %+v", r.q.Stats())
}

// roundTrip puts a message and gets it back.
func roundTrip(q *Queue) error {
	if ok, err := q.TryPut([]byte("abc")); !ok || err != nil {
		return fmt.Errorf("TryPut = %v, %v", ok, err)
	}
	buf := make([]byte, q.MaxMessage())
	if n, ok, err := q.TryGet(buf); !ok || err != nil || string(buf[:n]) != "abc" {
		return fmt.Errorf("TryGet = %q, %v, %v", buf[:n], ok, err)
	}
	return nil
}

// TestCorruptRings attaches to each crafted ring and checks that the
// calls meeting its damage report it (ErrCorrupt where it is corruption;
// the recovery paths' results where it is a state they handle), without
// a panic or a hang (every blocking call has a deadline). The rings live
// in guarded memory, as in FuzzConsumer.
func TestCorruptRings(t *testing.T) {
	for _, c := range craftedRings(t) {
		t.Run(c.name, func(t *testing.T) {
			size, _ := SizeOf(fuzzConfig(c.mode))
			r, err := newFuzzRing(t, c.mode, c.image[:size]) // no pokes: the checks write what they need
			if c.atErr != nil || err != nil {
				if !errors.Is(err, c.atErr) || err == nil {
					t.Fatalf("At = %v, want %v", err, c.atErr)
				}
				return
			}
			// A watchdog for loops that no context bounds: a hang ends the
			// run with every goroutine's stack (the stuck one's among
			// them) instead of stalling it; a plain test failure would
			// unmap the ring under the goroutine still spinning on it.
			done := make(chan error, 1)
			go func() { done <- c.check(r) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				panic(c.name + ": hung in a loop no context bounds")
			}
		})
	}
}

// seedFile is the corpus file of a FuzzConsumer input, as go test -fuzz
// writes them.
func seedFile(mode byte, image []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", mode, image)
}

// TestCraftedSeeds checks that testdata/fuzz/FuzzConsumer holds every
// crafted ring as a seed, up to date; with -ring.writeseeds it writes them.
func TestCraftedSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzConsumer")
	for _, c := range craftedRings(t) {
		path := filepath.Join(dir, "crafted-"+c.name)
		want := seedFile(c.mode, c.image)
		if *writeSeeds {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s missing or stale (%v): go test ./ring -run TestCraftedSeeds -args -ring.writeseeds", path, err)
		}
	}
}

// TestCorruptHeader checks that At refuses damaged headers.
func TestCorruptHeader(t *testing.T) {
	cfg := Config{MaxMessage: 16}
	size, _ := SizeOf(cfg)
	mem := alignedMem(size)
	if _, err := New(mem, cfg); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{offMagic, offMode, offMaxMsg, offCapacity, offChecksum} {
		bad := alignedMem(size)
		copy(bad, mem)
		bad[off] ^= 1
		if _, err := At(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("header byte %d flipped: At = %v", off, err)
		}
	}
	if _, err := At(mem[:100]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("At of short memory = %v", err)
	}
}
