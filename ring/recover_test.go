package ring

import (
	"context"
	"testing"
	"time"
)

// TestTryRecovers checks that Try calls alone get past a dead
// participant, as blocked calls do: a TryGet loop behind a slot a dead
// producer claimed and never published skips it, and a TryPut loop on a
// full queue whose oldest slot a dead consumer holds recovers it. The
// loops are bounded by a deadline, not by sleeps.
func TestTryRecovers(t *testing.T) {
	for _, point := range []string{"put-claimed", "get-claimed"} {
		t.Run(point, func(t *testing.T) {
			const n = 4
			q := newQueue(t, Config{Mode: MPMC, MaxMessage: 16, Capacity: n})
			ctx := context.Background()
			if point == "get-claimed" {
				if err := q.Put(ctx, []byte("held")); err != nil {
					t.Fatal(err)
				}
			}
			p := startWith(t, q, newBoard(t, 1, 1), "die-at", point)
			p.Expect(t, "at "+point)
			p.Kill()
			if err := p.Wait(); err == nil {
				t.Fatal("the victim exited cleanly")
			}
			deadline := time.Now().Add(20 * time.Second)
			buf := make([]byte, 16)
			if point == "put-claimed" {
				// Messages behind the dead producer's slot.
				for i := range n - 1 {
					if err := q.Put(ctx, []byte{byte('a' + i)}); err != nil {
						t.Fatal(err)
					}
				}
				for i := range n - 1 {
					for {
						k, ok, err := q.TryGet(buf)
						if err != nil {
							t.Fatal(err)
						}
						if ok {
							if string(buf[:k]) != string(rune('a'+i)) {
								t.Fatalf("got %q, want %q", buf[:k], rune('a'+i))
							}
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("TryGet never got past the dead producer's slot: %+v", q.Stats())
						}
					}
				}
				if s := q.Stats(); s.Skipped != 1 || s.Lost != 0 {
					t.Fatalf("stats %+v, want 1 skipped", s)
				}
				return
			}
			// Fill the rest of the ring; the next TryPut needs the slot the
			// dead consumer holds.
			for i := range n - 1 {
				if ok, err := q.TryPut([]byte{byte('a' + i)}); !ok || err != nil {
					t.Fatal(i, ok, err)
				}
			}
			for {
				ok, err := q.TryPut([]byte("last"))
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("TryPut never recovered the dead consumer's slot: %+v", q.Stats())
				}
			}
			if s := q.Stats(); s.Lost != 1 || s.Skipped != 0 {
				t.Fatalf("stats %+v, want 1 lost", s)
			}
		})
	}
}

// TestLostRaceLeavesNoIntent checks that a consumer that loses the race
// for a slot does not leave an intent naming it: otherwise, while that
// consumer is alive and idle, the slot's real claimant dying holding it
// would never be recovered and producers would block for ever. Here the
// test process's consumer announces its intent for the oldest message,
// another process claims that message first and is killed holding it,
// and a Put into the full queue must still recover the slot.
func TestLostRaceLeavesNoIntent(t *testing.T) {
	const n = 4
	q := newQueue(t, Config{Mode: MPMC, MaxMessage: 16, Capacity: n})
	q.SetSpin(0)
	ctx := context.Background()
	if err := q.Put(ctx, []byte("contested")); err != nil {
		t.Fatal(err)
	}
	b := newBoard(t, 1, 1)
	var victimPid int
	testHook = func(p string) {
		if p != "get-intent" || victimPid != 0 {
			return
		}
		// Our intent is stored, our CAS not yet tried: let another
		// process claim the message first.
		v := startWith(t, q, b, "die-at", "get-claimed")
		v.Expect(t, "at get-claimed")
		victimPid = v.Pid()
		v.Kill()
		if err := v.Wait(); err == nil {
			t.Error("the victim exited cleanly")
		}
	}
	defer func() { testHook = nil }()
	if _, ok, err := q.TryGet(make([]byte, 16)); ok || err != nil {
		t.Fatalf("TryGet = %v, %v; the other process should have won the message", ok, err)
	}
	testHook = nil
	if victimPid == 0 {
		t.Fatal("the hook never ran")
	}
	// n-1 more fill the ring; the next needs the dead victim's slot.
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for i := range n {
		if err := q.Put(pctx, []byte{byte('a' + i)}); err != nil {
			t.Fatalf("Put %d: %v (stats %+v)", i, err, q.Stats())
		}
	}
	s := q.Stats()
	if s.Lost != 1 || s.LastLost.Pid != victimPid {
		t.Fatalf("stats %+v, want 1 lost by pid %d", s, victimPid)
	}
}
