package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// The close race: a producer process puts sequence-numbered messages as
// fast as it can while the test process calls CloseWrite at a random
// moment, and a consumer process takes them until io.EOF. The package doc
// promises: a Put that returned nil is delivered (exactly once, before
// io.EOF); a Put racing with CloseWrite either succeeds or returns
// ErrClosed, and in SPSC mode only may the message of one that returned
// ErrClosed still be delivered; later Puts (those that started after
// CloseWrite returned) return ErrClosed, their messages never delivered.
//
// Many trials run over one ring in one segment with the same two helper
// processes; the segment also holds the control words and the tallies.

const (
	closeMaxSeq = 1 << 15 // messages a producer may attempt in one trial
	closeMaxMsg = 1024
)

// closeCfg is the ring of the close race: messages big enough that
// copying one takes a while (the window between a producer's first look
// at the closed flag and its publication), in a ring of a few.
func closeCfg(mode Mode) Config {
	return Config{Mode: mode, MaxMessage: closeMaxMsg, Capacity: 4, Participants: 4}
}

// closeCtl is the control block after the ring in the segment. Every word
// is accessed atomically: all three processes use them.
//
// The tallies are plain memory: written by one helper during a trial,
// cleared and read by the parent only while both helpers wait for the
// next trial (ordered by the atomics that start and end a trial).
type closeCtl struct {
	trial    uint32 // trial number + 1 the helpers run; closeQuit: exit
	prodDone uint32 // last trial + 1 the producer finished
	consDone uint32 // likewise the consumer
	consErr  uint32 // the consumer's trial failed (its stderr says why)
	started  uint64 // past the last message of the producer's current call, stored before it
	put, get uint32 // the trial's producer and consumer calls (closePut..., closeGet...)
	lo, hi   uint32 // the trial's message lengths
	maxSeen  uint32 // highest message number the consumer received + 1
	status   [closeMaxSeq]uint8
	counts   [closeMaxSeq]uint8
}

const (
	closeQuit = ^uint32(0)

	stNone   = 0 // not attempted
	stOK     = 1 // Put returned nil
	stClosed = 2 // Put returned ErrClosed

	closePut, closeReserve, closeBatch = 0, 1, 2
	closeGet, closeNext, closeGetBatch = 0, 1, 2
)

// closeLayout returns the ring's size and a view of the segment.
func closeLayout(mode Mode, mem []byte) (ring []byte, ctl *closeCtl) {
	size, err := SizeOf(closeCfg(mode))
	if err != nil {
		panic(err)
	}
	off := align64(uint64(size))
	return mem[:size:size], (*closeCtl)(unsafe.Pointer(&mem[off]))
}

func closeSegSize(mode Mode) int {
	size, _ := SizeOf(closeCfg(mode))
	return int(align64(uint64(size))) + int(unsafe.Sizeof(closeCtl{}))
}

// closeWait waits until *w reaches want (or closeQuit), sleeping on it as
// a futex word (closeSet wakes it), so that a waiting process leaves the
// CPUs to the two that race; false after a deadline.
func closeWait(w *uint32, want uint32) (uint32, bool) {
	end := time.Now().Add(20 * time.Second)
	for {
		v := atomic.LoadUint32(w)
		if v == want || v == closeQuit {
			return v, true
		}
		left := time.Until(end)
		if left <= 0 {
			return v, false
		}
		_ = futex.Wait(w, v, left)
	}
}

// closeSet stores v in *w and wakes its waiters.
func closeSet(w *uint32, v uint32) {
	atomic.StoreUint32(w, v)
	_, _ = futex.WakeAll(w)
}

func init() {
	// close-side MODE SIDE: attach the segment on fd 3 and, for each trial
	// the parent starts, attach a new handle to the (re-initialised) ring
	// and play SIDE, producer or consumer, in the way the trial number
	// picks; then report the trial done.
	testproc.Register("close-side", func(args []string) int {
		mode, side := Mode(atoi(args[0])), args[1]
		seg, err := shm.OpenFile(context.Background(), os.NewFile(3, "close"))
		if err != nil {
			return fail("open: %v", err)
		}
		ringMem, ctl := closeLayout(mode, seg.Bytes())
		testproc.Printf("ready")
		for trial := uint32(0); ; trial++ {
			v, ok := closeWait(&ctl.trial, trial+1)
			if !ok {
				return fail("trial %d never started", trial)
			}
			if v == closeQuit {
				return 0
			}
			q, err := At(ringMem)
			if err != nil {
				return fail("trial %d: %v", trial, err)
			}
			if side == "producer" {
				if err := closeProduce(q, ctl); err != nil {
					return fail("trial %d: producer: %v", trial, err)
				}
				closeSet(&ctl.prodDone, trial+1)
			} else {
				if err := closeConsume(q, ctl); err != nil {
					closeSet(&ctl.consErr, 1)
					closeSet(&ctl.consDone, closeQuit)
					return fail("trial %d: consumer: %v", trial, err)
				}
				closeSet(&ctl.consDone, trial+1)
			}
		}
	})
}

// closeProduce puts messages 0, 1, ... until a Put returns ErrClosed, then
// tries a few more (which must fail too), recording each outcome, with the
// call the trial says: Put, Reserve/Commit or PutBatch.
func closeProduce(q *Queue, ctl *closeCtl) error {
	ctx := context.Background()
	how := atomic.LoadUint32(&ctl.put)
	lo, hi := int(atomic.LoadUint32(&ctl.lo)), int(atomic.LoadUint32(&ctl.hi))
	q.SetSpin(-1)
	buf := make([]byte, closeMaxMsg)
	batch := make([][]byte, 3)
	for i := range batch {
		batch[i] = make([]byte, closeMaxMsg)
	}
	after := 0 // calls after the first ErrClosed
	for seq := 0; seq < closeMaxSeq && after < 3; {
		k := 1
		if how == closeBatch {
			k = min(3, closeMaxSeq-seq)
		}
		// Past every message of this call, before it starts.
		atomic.StoreUint64(&ctl.started, uint64(seq+k))
		var err error
		switch how {
		case closePut:
			m := buf[:msgLen(0, seq, lo, hi)]
			fillMsg(m, 0, seq)
			err = q.Put(ctx, m)
		case closeReserve:
			var b []byte
			n := msgLen(0, seq, lo, hi)
			if b, err = q.Reserve(ctx, n); err == nil {
				fillMsg(b, 0, seq)
				err = q.Commit(n)
			}
		case closeBatch:
			for j := range k {
				batch[j] = batch[j][:msgLen(0, seq+j, lo, hi)]
				fillMsg(batch[j], 0, seq+j)
			}
			var n int
			n, err = q.PutBatch(ctx, batch[:k])
			if (err == nil) != (n == k) {
				return fmt.Errorf("PutBatch of %d = %d, %v", k, n, err)
			}
			for j := range n {
				ctl.status[seq+j] = stOK
			}
			seq, k = seq+n, k-n
		}
		st := uint32(stOK)
		if err != nil {
			if !errors.Is(err, ErrClosed) {
				return fmt.Errorf("message %d: %v", seq, err)
			}
			st = stClosed
			after++
		}
		for j := range k {
			ctl.status[seq+j] = uint8(st)
		}
		seq += k
	}
	return nil
}

// closeConsume takes messages until io.EOF, counting each on the tally
// and checking it is intact and later than the one before, with the call
// the trial says: Get, Next/Release or GetBatch.
func closeConsume(q *Queue, ctl *closeCtl) error {
	how := atomic.LoadUint32(&ctl.get)
	lo, hi := int(atomic.LoadUint32(&ctl.lo)), int(atomic.LoadUint32(&ctl.hi))
	ctx := context.Background()
	q.SetSpin(-1) // on the flag, at once: the races are at memory speed
	buf := make([]byte, closeMaxMsg)
	bufs := [][]byte{make([]byte, closeMaxMsg), make([]byte, closeMaxMsg)}
	last := -1
	take := func(m []byte) error {
		seq, err := checkSampled(m, lo, hi)
		if err != nil {
			return err
		}
		if seq <= last || seq >= closeMaxSeq {
			return fmt.Errorf("message %d after %d", seq, last)
		}
		last = seq
		ctl.counts[seq]++
		return nil
	}
	defer func() { atomic.StoreUint32(&ctl.maxSeen, uint32(last+1)) }()
	for {
		var err error
		switch how {
		case closeGet:
			var n int
			if n, err = q.Get(ctx, buf); err == nil {
				err = take(buf[:n])
			}
		case closeNext:
			var m []byte
			if m, err = q.Next(ctx); err == nil {
				err = errors.Join(take(m), q.Release())
			}
		case closeGetBatch:
			var n int
			if n, err = q.GetBatch(ctx, bufs); err == nil {
				for _, m := range bufs[:n] {
					err = errors.Join(err, take(m))
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checkSampled is checkMsg (producer 0, lengths lo..hi) reading
// only the header and a few bytes, so that the consumer outpaces the
// producer (which writes every byte) and is usually waiting on an empty
// queue, polling, when CloseWrite lands in the middle of a Put: the case
// where the consumer may reach io.EOF before that Put's publication.
func checkSampled(m []byte, lo, hi int) (int, error) {
	if len(m) < 8 {
		return 0, fmt.Errorf("message of %d bytes", len(m))
	}
	id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
	if want := msgLen(0, seq, lo, hi); id != 0 || len(m) != want {
		return seq, fmt.Errorf("message %d/%d has %d bytes, want %d", id, seq, len(m), want)
	}
	for j := 8; j < len(m); j += 1 + len(m)/8 {
		if m[j] != byte(seq*7+j) {
			return seq, fmt.Errorf("message %d: byte %d corrupt", seq, j)
		}
	}
	if j := len(m) - 1; j >= 8 && m[j] != byte(seq*7+j) {
		return seq, fmt.Errorf("message %d: byte %d corrupt", seq, j)
	}
	return seq, nil
}

// TestCloseRace runs the close race in both modes and checks each trial
// against the promises above.
func TestCloseRace(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			trials := 500
			if mode == MPMC {
				trials = 150 // no window of this kind: the closed bit fails the claim
			}
			closeRace(t, mode, trials)
		})
	}
}

func closeRace(t *testing.T, mode Mode, trials int) {
	seg, err := shm.CreateAnonymous(closeSegSize(mode))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	ringMem, ctl := closeLayout(mode, seg.Bytes())
	var helpers []*testproc.Proc
	for _, side := range []string{"producer", "consumer"} {
		cmd := testproc.Command(t, "close-side", itoa(int(mode)), side)
		cmd.ExtraFiles = []*os.File{seg.File()}
		p := testproc.StartCmd(t, "close-side", cmd)
		p.Expect(t, "ready")
		helpers = append(helpers, p)
	}
	stderr := func() string { return helpers[0].Stderr() + helpers[1].Stderr() }
	defer func() {
		closeSet(&ctl.trial, closeQuit)
		for _, p := range helpers {
			if err := p.Wait(); err != nil {
				t.Error(err)
			}
		}
	}()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 3))
	var promised, closedSeen, closedDelivered int
	for trial := range trials {
		clear(ringMem)
		if _, err := New(ringMem, closeCfg(mode)); err != nil {
			t.Fatal(err)
		}
		clear(ctl.status[:])
		clear(ctl.counts[:])
		atomic.StoreUint64(&ctl.started, 0)
		// The calls: every combination; small messages (quick calls, so
		// that a random instant falls more often between a call's last
		// look at the closed flag and its publication) or large ones (a
		// long copy before that last look).
		// Reserve/Commit half the time: there the window is only the few
		// instructions between spscPublish's last look and its store.
		put, get := uint32([]int{closePut, closeReserve, closeReserve, closeBatch}[rng.IntN(4)]), uint32(rng.IntN(3))
		lo, hi := 8, closeMaxMsg
		if rng.IntN(2) == 0 {
			hi = 64
		}
		atomic.StoreUint32(&ctl.put, put)
		atomic.StoreUint32(&ctl.get, get)
		atomic.StoreUint32(&ctl.lo, uint32(lo))
		atomic.StoreUint32(&ctl.hi, uint32(hi))
		closer, err := At(ringMem)
		if err != nil {
			t.Fatal(err)
		}
		closeSet(&ctl.trial, uint32(trial)+1) // go
		// Close at a random moment: after a random number of attempts,
		// then a random pause of up to 20 µs.
		wait := uint64(rng.IntN(40))
		for atomic.LoadUint64(&ctl.started) < wait && atomic.LoadUint32(&ctl.prodDone) != uint32(trial)+1 &&
			atomic.LoadUint32(&ctl.consErr) == 0 {
		}
		randomPauseNs(rng, 20000)
		if err := closer.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		// Every message the producer starts after this is a later Put.
		later := atomic.LoadUint64(&ctl.started)
		for _, w := range []*uint32{&ctl.prodDone, &ctl.consDone} {
			if _, ok := closeWait(w, uint32(trial)+1); !ok || atomic.LoadUint32(&ctl.consErr) != 0 {
				t.Fatalf("%v trial %d (seed %d): helpers did not finish; stderr:\n%s", mode, trial, seed, stderr())
			}
		}
		end := max(int(atomic.LoadUint64(&ctl.started)), int(atomic.LoadUint32(&ctl.maxSeen)))
		for seq := range min(end+8, closeMaxSeq) {
			st, n := ctl.status[seq], ctl.counts[seq]
			fault := ""
			switch {
			case n > 1:
				fault = "delivered more than once"
			case st == stOK && n != 1:
				fault = "Put returned nil, never delivered"
			case st == stNone && n != 0:
				fault = "delivered, never attempted"
			case st == stOK && uint64(seq) >= later:
				fault = "Put started after CloseWrite returned and succeeded"
			case st == stClosed && n == 1 && mode == MPMC:
				fault = "Put returned ErrClosed (MPMC), delivered"
			case st == stClosed && n == 1 && uint64(seq) >= later:
				fault = "Put started after CloseWrite returned, delivered"
			}
			if fault != "" {
				t.Fatalf("%v trial %d (seed %d; put %d get %d, %d..%d bytes): message %d: %s (status %d, delivered %d, started after close: %d)",
					mode, trial, seed, put, get, lo, hi, seq, fault, st, n, later)
			}
			switch st {
			case stOK:
				promised++
			case stClosed:
				closedSeen++
				closedDelivered += int(n)
			}
		}
	}
	t.Logf("%d trials: %d promised messages, %d ErrClosed (%d of them delivered)", trials, promised, closedSeen, closedDelivered)
}

// randomPauseNs busy-waits up to max nanoseconds.
func randomPauseNs(rng *rand.Rand, max int) {
	end := time.Now().Add(time.Duration(rng.IntN(max)))
	for time.Now().Before(end) {
	}
}

func TestCloseDrainEOF(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 8})
			ctx := context.Background()
			for i := range 5 {
				if err := q.Put(ctx, []byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, []byte{9}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put after CloseWrite = %v", err)
			}
			if _, err := q.Reserve(ctx, 1); !errors.Is(err, ErrClosed) {
				t.Fatalf("Reserve after CloseWrite = %v", err)
			}
			buf := make([]byte, 16)
			for i := range 5 {
				n, err := q.Get(ctx, buf)
				if err != nil || n != 1 || buf[0] != byte(i) {
					t.Fatal(i, n, err)
				}
			}
			for range 2 {
				if _, err := q.Get(ctx, buf); err != io.EOF {
					t.Fatalf("Get after drain = %v", err)
				}
			}
			if _, _, err := q.TryGet(buf); err != io.EOF {
				t.Fatalf("TryGet after drain = %v", err)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Put on closed handle = %v", err)
			}
		})
	}
}
