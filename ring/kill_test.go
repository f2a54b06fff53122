package ring

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

var killIters = flag.Int("ring.killiters", 0, "iterations of TestKill (default 4; 100 with SHMKIT_STRESS=1)")

// TestKill SIGKILLs producers and consumers of an MPMC queue and checks
// that the survivors finish and that the accounting holds: no message is
// delivered twice, every acknowledged message is delivered or counted
// lost, and nothing a producer did not attempt appears.
//
// Even iterations kill at chosen points, with exact accounting: a
// producer stopped inside a Put between claiming its slot and publishing
// it (Skipped is exactly 1, that message never appears), and a consumer
// stopped holding a message between Next and Release (Lost is exactly 1,
// that message is never delivered, LastLost names the consumer). Odd
// iterations kill at random instants of a running victim, where lost
// messages can only be bounded by the consumers killed (each holds at
// most one) and skipped slots by the producers killed.
func TestKill(t *testing.T) {
	killIterations(t, 4, 100, 1, func(rng *rand.Rand, it int) { killOnce(t, rng, it, false) })
}

// killIterations runs iter n times (short, or stress under SHMKIT_STRESS,
// or the -kill.iters flag) with a logged random seed, stopping at the
// first failure.
func killIterations(t *testing.T, short, stress int, stream uint64, iter func(rng *rand.Rand, it int)) {
	iters := short
	if os.Getenv("SHMKIT_STRESS") != "" {
		iters = stress
	}
	if *killIters > 0 {
		iters = *killIters
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, stream))
	for it := range iters {
		iter(rng, it)
		if t.Failed() {
			return
		}
	}
}

// TestKillBatch is TestKill's random iterations with every producer
// using PutBatch and every consumer GetBatch: a producer killed in a batch
// may have published part of it (those may be delivered, the rest are
// skipped), and a consumer killed holding a claimed run loses all of it
// (counted lost, against it).
func TestKillBatch(t *testing.T) {
	killIterations(t, 3, 50, 2, func(rng *rand.Rand, it int) { killOnce(t, rng, 2*it+1, true) })
}

// killBatch is the producers' batch in "batch" mode (helpers_test.go).
const killBatch = 8

func killOnce(t *testing.T, rng *rand.Rand, it int, batch bool) {
	const np, nc, lo, hi = 3, 3, 8, 64
	per := 1500
	if batch {
		per = 20000 // batches run fast: enough for a random kill to land mid-run
	}
	capacity := 8
	if batch {
		capacity = 64 // runs of up to 16 slots (consumers take 8 at a time)
	}
	q := newQueue(t, Config{Mode: MPMC, MaxMessage: hi, Capacity: capacity, Participants: np + nc})
	b := newBoard(t, np, per)
	exact := it%2 == 0 && !batch
	putHow, getHow := "put", "next"
	inFlight := 1 // messages a killed producer may have published without their Put returning
	run := 1      // messages a killed consumer may hold
	if batch {
		putHow, getHow = "batch", "batch"
		inFlight, run = killBatch, q.maxRun()
	}
	if it%4 >= 2 {
		putHow, getHow = putHow+"+x", getHow+"+x" // SetExclusive handles: the same recovery
	}
	victimP := rng.IntN(np + 1) // np: no producer is killed
	victimC := rng.IntN(nc + 1)
	if it == 1 || exact {
		victimP, victimC = rng.IntN(np), rng.IntN(nc) // always exercise both
	}
	spin := []int{0, 100}[rng.IntN(2)]
	stopAt := rng.IntN(per / 4)
	var cons []*testproc.Proc
	prods := make([]*testproc.Proc, np)
	for i := range nc {
		args := []string{itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), getHow, itoa(spin)}
		switch {
		case i == victimC && exact:
			args[5] = "hold"
		case i == victimC:
			args = append(args, itoa(rng.IntN(np*per/nc/2)))
		}
		cons = append(cons, startWith(t, q, b, "consumer", args...))
	}
	// The victim producer starts first: when it stops (exact iterations)
	// the others are behind it, so plenty of messages are still to come
	// for the victim consumer to hold one of.
	order := []int{}
	if victimP < np {
		order = append(order, victimP)
	}
	for id := range np {
		if id != victimP {
			order = append(order, id)
		}
	}
	for _, id := range order {
		args := []string{itoa(np), itoa(per), itoa(id), itoa(lo), itoa(hi), putHow, itoa(spin)}
		switch {
		case id == victimP && exact:
			args = append(args, itoa(stopAt), "stop")
		case id == victimP:
			args = append(args, itoa(rng.IntN(per)))
		}
		prods[id] = startWith(t, q, b, "producer", args...)
	}
	killedC, killedP := 0, 0
	pidP, pidC := 0, 0
	heldID, heldSeq := -1, -1
	if exact {
		// The producer first (the consumers stall at its slot until it is
		// found dead), then the consumer, told to hold its next message.
		prods[victimP].Expect(t, "at put-claimed")
		pidP = prods[victimP].Pid()
		prods[victimP].Kill()
		killedP++
		atomic.StoreUint32(b.flag, 1) // atomic: read by the "hold" consumer
		line := cons[victimC].Line(t)
		if _, err := fmtSscanf(line, "holding %d %d", &heldID, &heldSeq); err != nil {
			t.Fatalf("iteration %d: victim consumer: %q\n%s", it, line, cons[victimC].Stderr())
		}
		pidC = cons[victimC].Pid()
		cons[victimC].Kill()
		killedC++
		cons[victimC] = startWith(t, q, b, "consumer", itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), "retry", itoa(spin))
	} else {
		if victimC < nc {
			// At its kill point (holding a message), or once the
			// producers are all done if it never got that far; after a
			// random delay, while it runs on.
			cons[victimC].Expect(t, "kill-me")
			randomPause(rng)
			cons[victimC].Kill()
			killedC++
			// A replacement, which must reuse an entry of the full table.
			cons[victimC] = startWith(t, q, b, "consumer", itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), "retry", itoa(spin))
		}
		if victimP < np {
			prods[victimP].Expect(t, "kill-me")
			randomPause(rng)
			prods[victimP].Kill() // it may have finished meanwhile: then nothing is killed
			killedP++
		}
	}
	// Wait for the other producers, watching the consumers (a consumer's
	// error is the one to report, not the producers' silence once it left).
	consLines, prodLines := make(chan procLine, nc), make(chan procLine, np)
	for _, c := range cons {
		watchLine(c, consLines)
	}
	for id, p := range prods {
		if id != victimP {
			watchLine(p, prodLines)
		}
	}
	for id := range prods {
		if id == victimP {
			continue
		}
		select {
		case l := <-prodLines:
			if l.fail != "" || l.line != "done" {
				t.Fatalf("iteration %d: producer: %q %s\n%s", it, l.line, l.fail, l.p.Stderr())
			}
		case l := <-consLines:
			t.Fatalf("iteration %d: consumer before the producers finished: %q %s\n%s", it, l.line, l.fail, l.p.Stderr())
		}
	}
	for id, p := range prods {
		if id == victimP {
			continue
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for range cons {
		if l := <-consLines; l.fail != "" || len(l.line) < 4 || l.line[:4] != "got " {
			t.Fatalf("iteration %d: consumer: %q %s\n%s", it, l.line, l.fail, l.p.Stderr())
		}
	}
	for _, c := range cons {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	s := q.Stats()
	missing := uint64(0)
	for id := range np {
		acked := int(b.acked[id])
		if id != victimP && acked != per {
			t.Fatalf("iteration %d: producer %d acknowledged %d of %d", it, id, acked, per)
		}
		for seq := range per {
			c := b.counts[id*per+seq]
			switch {
			case c > 1:
				t.Fatalf("iteration %d: message %d/%d delivered %d times", it, id, seq, c)
			case c == 1 && seq >= acked+inFlight:
				// Only the messages in flight when the producer died (Put
				// or PutBatch may have published them without returning)
				// may appear.
				t.Fatalf("iteration %d: message %d/%d delivered but never attempted (acked %d)", it, id, seq, acked)
			case c == 0 && seq < acked:
				missing++
			}
		}
	}
	// A consumer killed after GetBatch returned and before it counted the
	// messages on the board had them delivered, but the board cannot
	// tell: in batch mode up to a batch per killed consumer is missing
	// beyond Lost (TestKillAtRun accounts for the crash points exactly).
	unseen := uint64(0)
	if batch {
		unseen = uint64(killedC * killBatch)
	}
	if missing > s.Lost+unseen || s.Lost > uint64(killedC*run) || s.Skipped > uint64(killedP*run) {
		t.Fatalf("iteration %d: %d acknowledged messages missing; stats %+v (killed %d consumers, %d producers)", it, missing, s, killedC, killedP)
	}
	if s.Lost > 0 && s.LastLost.Pid == 0 {
		t.Fatalf("iteration %d: lost without a culprit: %+v", it, s)
	}
	if exact {
		// The producer stopped before publishing message stopAt: its Put
		// never returned, the slot was skipped, the message never seen.
		// The consumer held one message and died: it alone is lost, and
		// counted against that consumer.
		if acked := int(b.acked[victimP]); acked != stopAt || b.counts[victimP*per+stopAt] != 0 {
			t.Fatalf("iteration %d: producer stopped at %d: acknowledged %d, message delivered %d times", it, stopAt, acked, b.counts[victimP*per+stopAt])
		}
		if heldID < 0 || heldID >= np || heldSeq < 0 || heldSeq >= per || heldSeq >= int(b.acked[heldID]) {
			t.Fatalf("iteration %d: held message %d/%d was never acknowledged", it, heldID, heldSeq)
		}
		if c := b.counts[heldID*per+heldSeq]; c != 0 {
			t.Fatalf("iteration %d: message %d/%d, held by the killed consumer, delivered %d times", it, heldID, heldSeq, c)
		}
		if s.Skipped != 1 || s.Lost != 1 || missing != 1 || s.LastLost.Pid != pidC {
			t.Fatalf("iteration %d: stats %+v, %d missing; want 1 skipped (pid %d), 1 lost by pid %d", it, s, missing, pidP, pidC)
		}
	}
	t.Logf("iteration %d (exact %v): killed %dP %dC: missing %d, lost %d, skipped %d", it, exact, killedP, killedC, missing, s.Lost, s.Skipped)
}

// randomPause waits up to a millisecond (busy, since the instant matters):
// a random point in the victim's run at which to kill it.
func randomPause(rng *rand.Rand) {
	end := time.Now().Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
	for time.Now().Before(end) {
	}
}

func init() {
	// die-at POINT: attach (fd 3) and stop for ever at POINT of the next
	// MPMC operation (a batch of 4, PutBatch or GetBatch, for the run
	// points), for the parent to SIGKILL it there.
	testproc.Register("die-at", func(args []string) int {
		q, _, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		point := args[0]
		testHook = func(p string) {
			if p == point {
				testproc.Printf("at %s", p)
				select {}
			}
		}
		testproc.Printf("ready")
		ctx := context.Background()
		switch {
		case strings.HasPrefix(point, "putrun"):
			_, err = q.PutBatch(ctx, [][]byte{[]byte("dead-0"), []byte("dead-1"), []byte("dead-2"), []byte("dead-3")})
		case strings.HasPrefix(point, "getrun"):
			k := 4
			if len(args) > 1 {
				k = atoi(args[1])
			}
			dst := make([][]byte, k)
			for i := range dst {
				dst[i] = make([]byte, q.MaxMessage())
			}
			_, err = q.GetBatch(ctx, dst)
		case point[:3] == "put":
			err = q.Put(ctx, []byte("from the dead"))
		default:
			_, err = q.Get(ctx, make([]byte, q.MaxMessage()))
		}
		return fail("%s: returned %v", point, err)
	})
}

// TestKillAt kills a participant at each chosen crash point of the MPMC
// protocol and checks what the survivors see.
func TestKillAt(t *testing.T) {
	for _, point := range []string{"put-intent", "put-claimed", "get-intent", "get-claimed"} {
		t.Run(point, func(t *testing.T) {
			const n = 8
			q := newQueue(t, Config{Mode: MPMC, MaxMessage: 32, Capacity: n})
			ctx := context.Background()
			isGet := point[:3] == "get"
			if isGet {
				if err := q.Put(ctx, []byte("first")); err != nil {
					t.Fatal(err)
				}
			}
			p := startWith(t, q, newBoard(t, 1, 1), "die-at", point)
			p.Expect(t, "at "+point)
			pid := p.Pid()
			p.Kill()
			// Fill the ring twice over and drain it: survivors must get
			// past whatever the dead process left behind.
			buf := make([]byte, 32)
			var got []string
			for i := range 3 * n {
				if err := q.Put(ctx, []byte{byte('a' + i)}); err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					for range 2 {
						k, err := q.Get(ctx, buf)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, string(buf[:k]))
					}
				}
			}
			s := q.Stats()
			want := struct{ lost, skipped uint64 }{}
			switch point {
			case "put-claimed":
				want.skipped = 1
			case "get-claimed":
				want.lost = 1 // "first", held by the dead consumer
			}
			if s.Lost != want.lost || s.Skipped != want.skipped {
				t.Fatalf("stats %+v, want lost %d skipped %d", s, want.lost, want.skipped)
			}
			if want.lost == 1 && s.LastLost.Pid != pid {
				t.Fatalf("lost by %+v, want pid %d", s.LastLost, pid)
			}
			// What is left: "first" unless it was lost or taken, then in order.
			start := 0
			if point == "get-intent" {
				if got[0] != "first" {
					t.Fatalf("got %q first", got[0])
				}
				start = 1
			}
			for i, g := range got[start:] {
				if g != string(rune('a'+i)) {
					t.Fatalf("message %d = %q; all %q", i, g, got)
				}
			}
		})
	}
}

// TestSPSCTakeover kills an SPSC producer mid-stream and lets a new one
// take its role over: the consumer sees a prefix of the first producer's
// messages, then all of the second one's, intact and in order.
func TestSPSCTakeover(t *testing.T) {
	const per, lo, hi = 2000, 8, 100
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: hi, Capacity: 4})
	b := newBoard(t, 2, per)
	p0 := startWith(t, q, b, "producer", "2", itoa(per), "0", itoa(lo), itoa(hi), "batch", "100", itoa(per/2))
	ctx := context.Background()
	buf := make([]byte, hi)
	next := [2]int{}
	take := func() int {
		n, err := q.Get(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		id, seq, err := checkMsg(buf[:n], 0, 0, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		if id > 1 || seq != next[id] {
			t.Fatalf("message %d/%d, want seq %d", id, seq, next[id])
		}
		next[id]++
		return id
	}
	for next[0] < per/2 {
		take()
	}
	p0.Expect(t, "kill-me")
	// Let it publish beyond what we took (it fills the ring, then waits),
	// then kill it and make its tail hint lag: the hint is a plain store
	// after each publication, and a producer killed between the two leaves
	// records published past it. Rewinding the hint to the head is the
	// most such a death can leave (every unread record past the hint); the
	// next producer must walk over them to the terminator, or it would
	// write over published messages.
	for atomic.LoadUint64(q.u64(offPuts)) <= uint64(per/2) { // atomic: the producer's counter
	}
	p0.Kill()
	published := atomic.LoadUint64(q.u64(offPuts)) // published at least these (the counter follows the header)
	atomic.StoreUint64(q.tail, atomic.LoadUint64(q.head))
	p1 := startWith(t, q, b, "producer", "2", itoa(per), "1", itoa(lo), itoa(hi), "put", "100")
	for next[1] < per {
		if id := take(); id == 0 && next[1] > 0 {
			t.Fatal("old producer's message after the new one's")
		}
	}
	p1.Expect(t, "done")
	if err := p1.Wait(); err != nil {
		t.Fatal(err)
	}
	if next[0] < int(b.acked[0]) {
		t.Fatalf("got %d messages of the dead producer, it had %d acknowledged", next[0], b.acked[0])
	}
	if uint64(next[0]) < published {
		t.Fatalf("got %d messages of the dead producer, it had published %d", next[0], published)
	}
}

func init() {
	// spsc-hold K H: attach (fd 3) as the consumer of an SPSC queue, Get
	// messages 0..K-1, take K..K+H-1 with Next, print "holding" and stop
	// for ever without releasing them, for the parent to SIGKILL.
	testproc.Register("spsc-hold", func(args []string) int {
		k, h := atoi(args[0]), atoi(args[1])
		q, _, err := openChild(1, 1)
		if err != nil {
			return fail("open: %v", err)
		}
		testproc.Printf("ready")
		ctx := context.Background()
		buf := make([]byte, q.MaxMessage())
		for i := range k + h {
			var m []byte
			if i < k {
				var n int
				n, err = q.Get(ctx, buf)
				m = buf[:n]
			} else {
				m, err = q.Next(ctx)
			}
			if err != nil {
				return fail("message %d: %v", i, err)
			}
			if _, seq, err := checkMsg(m, 0, i, 8, 64); err != nil || seq != i {
				return fail("message %d: seq %d, %v", i, seq, err)
			}
		}
		testproc.Printf("holding")
		stopForever()
		return 0
	})
}

// TestSPSCConsumerKill kills an SPSC consumer that holds messages it took
// with Next and never released: they were never delivered to a live
// consumer, so the next consumer (taking the dead one's role over)
// receives them, then the rest, all in order; nothing is lost.
func TestSPSCConsumerKill(t *testing.T) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
	for round := range 3 {
		q := newQueue(t, Config{Mode: SPSC, MaxMessage: 64, Capacity: 16})
		k, h := rng.IntN(50), 1+rng.IntN(8)
		m := k + h + rng.IntN(q.Cap()-h+1) // the victim leaves at most Cap unread: every Put returns
		p := startWith(t, q, newBoard(t, 1, 1), "spsc-hold", itoa(k), itoa(h))
		ctx := context.Background()
		buf := make([]byte, 64)
		for i := range m {
			fillMsg(buf, 0, i)
			if err := q.Put(ctx, buf[:msgLen(0, i, 8, 64)]); err != nil {
				t.Fatal(err)
			}
		}
		p.Expect(t, "holding")
		p.Kill()
		for i := k; i < m; i++ {
			n, err := q.Get(ctx, buf)
			if err != nil {
				t.Fatalf("round %d (took %d, held %d of %d): Get %d: %v", round, k, h, m, i, err)
			}
			if _, seq, err := checkMsg(buf[:n], 0, i, 8, 64); err != nil || seq != i {
				t.Fatalf("round %d (took %d, held %d of %d): got %d, want %d (%v)", round, k, h, m, seq, i, err)
			}
		}
		if _, ok, err := q.TryGet(buf); ok || err != nil {
			t.Fatalf("round %d: a message after the last one (%v)", round, err)
		}
		if s := q.Stats(); s.Lost != 0 || s.Puts != uint64(m) || s.Gets != uint64(m) || s.Len != 0 {
			t.Fatalf("round %d: stats %+v, want %d put and taken, none lost", round, s, m)
		}
	}
}
