package ring

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestKillAtRun kills a participant at each crash point of an MPMC batch
// (a run of four positions claimed with one CAS) and checks the exact
// accounting: a producer's unpublished slots are skipped and its published
// ones delivered; a consumer's claimed run is counted lost, all of it,
// against that consumer; the survivors get past whatever is left.
func TestKillAtRun(t *testing.T) {
	for _, tc := range []struct {
		point         string
		skipped, lost uint64
		delivered     []string // of the dead producer's, or the parent's first four
	}{
		{"putrun-intent", 0, 0, nil},
		{"putrun-claimed", 4, 0, nil},
		{"putrun-partial", 3, 0, []string{"dead-0"}},
		{"getrun-intent", 0, 0, []string{"first-0", "first-1", "first-2", "first-3"}},
		{"getrun-claimed", 0, 4, nil},
		{"getrun-copied", 0, 4, nil},
	} {
		t.Run(tc.point, func(t *testing.T) {
			const n = 16 // maxRun: 4
			q := newQueue(t, Config{Mode: MPMC, MaxMessage: 32, Capacity: n})
			var lost []Lost
			q.SetLostHandler(func(l Lost) { lost = append(lost, l) })
			ctx := context.Background()
			isGet := tc.point[:3] == "get"
			if isGet {
				for i := range 4 {
					if err := q.Put(ctx, fmt.Appendf(nil, "first-%d", i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			p := startWith(t, q, newBoard(t, 1, 1), "die-at", tc.point)
			p.Expect(t, "at "+tc.point)
			pid := p.Pid()
			p.Kill()
			// Fill the ring three times over and drain it, in batches
			// and one by one.
			var got []string
			dst := make([][]byte, 3)
			for i := range dst {
				dst[i] = make([]byte, 32)
			}
			for i := range 3 * n {
				if i%3 == 0 {
					if _, err := q.PutBatch(ctx, [][]byte{{byte('a' + i)}}); err != nil {
						t.Fatal(err)
					}
				} else if err := q.Put(ctx, []byte{byte('a' + i)}); err != nil {
					t.Fatal(err)
				}
				if i%3 == 2 {
					k, err := q.GetBatch(ctx, dst)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range dst[:k] {
						got = append(got, string(m))
					}
					for i := range dst {
						dst[i] = dst[i][:cap(dst[i])]
					}
				}
			}
			if err := q.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			for {
				k, err := q.GetBatch(ctx, dst)
				if err != nil {
					break
				}
				for _, m := range dst[:k] {
					got = append(got, string(m))
				}
				for i := range dst {
					dst[i] = dst[i][:cap(dst[i])]
				}
			}
			s := q.Stats()
			if s.Lost != tc.lost || s.Skipped != tc.skipped {
				t.Fatalf("stats %+v, want lost %d skipped %d", s, tc.lost, tc.skipped)
			}
			if tc.lost > 0 && s.LastLost.Pid != pid {
				t.Fatalf("lost by %+v, want pid %d", s.LastLost, pid)
			}
			// The handler saw each lost message: the parent's first four,
			// held by the victim, with their bytes and their producer.
			if uint64(len(lost)) != tc.lost {
				t.Fatalf("%d messages reported lost, want %d: %+v", len(lost), tc.lost, lost)
			}
			for i, l := range lost {
				if l.Position != uint64(i) || string(l.Message) != fmt.Sprintf("first-%d", i) ||
					l.Consumer.Pid != pid || l.ProducerPid != os.Getpid() {
					t.Errorf("lost[%d] = %+v (%q), want position %d, first-%d, consumer %d, producer %d",
						i, l, l.Message, i, i, pid, os.Getpid())
				}
			}
			want := append([]string(nil), tc.delivered...)
			for i := range 3 * n {
				want = append(want, string([]byte{byte('a' + i)}))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %q\nwant %q", got, want)
			}
		})
	}
}

// TestKillRunRecoveryFast kills a consumer holding a run of 1024 slots
// and times the producers that need them: the whole run is recovered in
// one pass, not one slot per slow check (which took 20 s).
func TestKillRunRecoveryFast(t *testing.T) {
	const n, run = 4096, 1024
	q := newQueue(t, Config{Mode: MPMC, MaxMessage: 16, Capacity: n})
	ctx := context.Background()
	for i := range n {
		if err := q.Put(ctx, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	p := startWith(t, q, newBoard(t, 1, 1), "die-at", "getrun-claimed", fmt.Sprint(run))
	p.Expect(t, "at getrun-claimed")
	p.Kill()
	buf := make([]byte, 16)
	for range n - run { // positions 1024..4095
		if _, err := q.Get(ctx, buf); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for i := range run { // each needs a slot the dead consumer held
		if err := q.Put(ctx, []byte("again")); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	d := time.Since(start)
	if s := q.Stats(); s.Lost != run {
		t.Fatalf("lost %d, want %d", s.Lost, run)
	}
	t.Logf("%d puts past a dead consumer's run of %d in %v", run, run, d.Round(time.Millisecond))
	if d > 2*time.Second {
		t.Errorf("recovering the run took %v", d)
	}
}

func TestZeroCopyBatch(t *testing.T) {
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 8, Capacity: 8})
	ctx := context.Background()
	for i := range 4 {
		b, err := q.Reserve(ctx, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[0] = byte(i)
		if err := q.Commit(1); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		m, err := q.Next(ctx)
		if err != nil || len(m) != 1 || m[0] != byte(i) {
			t.Fatal(i, m, err)
		}
	}
	if _, ok, _ := q.TryNext(); ok {
		t.Fatal("TryNext on empty")
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Gets != 4 || s.Len != 0 {
		t.Fatalf("%+v", s)
	}
}
