package ring

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

var killIters = flag.Int("ring.killiters", 0, "iterations of TestKill (default 3; 100 with SHMKIT_STRESS=1)")

// TestKill SIGKILLs producers and consumers of an MPMC queue at random
// points and checks that the survivors finish and that the accounting
// holds exactly: no message is delivered twice, every acknowledged
// message is delivered or counted lost, lost messages are no more than the
// consumers killed (each holds at most one), skipped slots no more than
// the producers killed, and nothing a producer did not attempt appears.
func TestKill(t *testing.T) {
	iters := 3
	if os.Getenv("SHMKIT_STRESS") != "" {
		iters = 100
	}
	if *killIters > 0 {
		iters = *killIters
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for it := range iters {
		killOnce(t, rng, it)
		if t.Failed() {
			return
		}
	}
}

func killOnce(t *testing.T, rng *rand.Rand, it int) {
	const np, nc, per, lo, hi = 3, 3, 1500, 8, 64
	q := newQueue(t, Config{Mode: MPMC, MaxMessage: hi, Capacity: 8, Participants: np + nc})
	b := newBoard(t, np, per)
	victimP := rng.IntN(np + 1) // np: no producer is killed
	victimC := rng.IntN(nc + 1)
	if it == 0 {
		victimP, victimC = 0, 0 // always exercise both once
	}
	spin := []int{0, 100}[rng.IntN(2)]
	var cons, prods []*testproc.Proc
	for i := range nc {
		args := []string{itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), "next", itoa(spin)}
		if i == victimC {
			args = append(args, itoa(rng.IntN(np*per/nc/2)))
		}
		cons = append(cons, startWith(t, q, b, "consumer", args...))
	}
	for id := range np {
		args := []string{itoa(np), itoa(per), itoa(id), itoa(lo), itoa(hi), "put", itoa(spin)}
		if id == victimP {
			args = append(args, itoa(rng.IntN(per)))
		}
		prods = append(prods, startWith(t, q, b, "producer", args...))
	}
	killedC, killedP := 0, 0
	if victimC < nc {
		// At its kill point (holding a message), or once the producers
		// are all done if it never got that far.
		cons[victimC].Expect(t, "kill-me")
		cons[victimC].Kill()
		killedC++
		// A replacement, which must reuse an entry of the full table.
		cons[victimC] = startWith(t, q, b, "consumer", itoa(np), itoa(nc), itoa(per), itoa(lo), itoa(hi), "retry", itoa(spin))
	}
	if victimP < np {
		prods[victimP].Expect(t, "kill-me")
		prods[victimP].Kill() // it may have finished meanwhile: then nothing is killed
		killedP++
	}
	for id, p := range prods {
		if id == victimP {
			continue
		}
		p.Expect(t, "done")
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cons {
		if l := c.Line(t); len(l) < 4 || l[:4] != "got " {
			t.Fatalf("consumer: %s\n%s", l, c.Stderr())
		}
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
			case c == 1 && seq > acked:
				// Only the message in flight when the producer died (Put
				// may have published it without returning) may appear.
				t.Fatalf("iteration %d: message %d/%d delivered but never attempted (acked %d)", it, id, seq, acked)
			case c == 0 && seq < acked:
				missing++
			}
		}
	}
	if missing > s.Lost || s.Lost > uint64(killedC) || s.Skipped > uint64(killedP) {
		t.Fatalf("iteration %d: %d acknowledged messages missing; stats %+v (killed %d consumers, %d producers)", it, missing, s, killedC, killedP)
	}
	if s.Lost > 0 && s.LastLost.Pid == 0 {
		t.Fatalf("iteration %d: lost without a culprit: %+v", it, s)
	}
	t.Logf("iteration %d: killed %dP %dC: missing %d, lost %d, skipped %d", it, killedP, killedC, missing, s.Lost, s.Skipped)
}

func init() {
	// die-at POINT: attach (fd 3) and stop for ever at POINT of the next
	// MPMC operation, for the parent to SIGKILL it there.
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
		if point[:3] == "put" {
			err = q.Put(ctx, []byte("from the dead"))
		} else {
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
	p0.Kill()
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
}
