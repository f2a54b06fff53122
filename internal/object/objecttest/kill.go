//go:build linux

package objecttest

import (
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/testproc"
)

// Counter is one round's shared counter for KillCounter.
type Counter struct {
	Name  string                                  // segment name, the helper's first argument
	Total func(ctx context.Context) int64         // the counter's value after the run
	After func(ctx context.Context, t *testing.T) // checks the lock still works (may be nil)
}

// KillCounter runs rounds of four "count-ack" helper processes counting
// into a Counter: each applies m updates and acknowledges each one in a
// shared array; the last counts until it is SIGKILLed at a random moment
// of its run (holding the lock or not). The others must finish, and the
// total must be what every process acknowledged, plus at most the one
// update the killed process applied but had not acknowledged yet.
//
// The helper, registered by the caller's package, is started as
// count-ack COUNTER ACKS ID M GATE (M = 0: until killed) and prints
// "done N" with N the takeovers it was told of.
func KillCounter(t *testing.T, prefix string, rounds, m int, newCounter func(t *testing.T, round int) Counter) {
	const procs = 4 // the last one is killed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range rounds {
		suffix := "-" + strconv.Itoa(round)
		c := newCounter(t, round)
		acks, err := array.Create[int64](SegName(t, prefix, suffix, "-acks"), procs)
		Must(t, err)
		defer acks.Close()
		gate := NewGate(t, SegName(t, prefix, suffix, "-gate"))
		var ps []*testproc.Proc
		for i := range procs {
			mi := m
			if i == procs-1 {
				mi = 0 // until killed
			}
			ps = append(ps, testproc.Start(t, "count-ack", c.Name, acks.Name(), strconv.Itoa(i), strconv.Itoa(mi), gate.Name))
		}
		gate.Open(t, ps)
		victim := ps[procs-1]
		target := int64(1 + rand.IntN(m/2))
		for acks.At(procs-1) < target {
			if ctx.Err() != nil {
				t.Fatalf("round %d: the victim acknowledged %d updates, not %d, by the deadline", round, acks.At(procs-1), target)
			}
			runtime.Gosched()
		}
		victim.Kill()
		if err := victim.Wait(); !testproc.Killed(err) {
			t.Fatalf("round %d: victim: %v", round, err)
		}
		tookOver := 0
		for _, p := range ps[:procs-1] {
			line := p.Line(t)
			k, err := strconv.Atoi(strings.TrimPrefix(line, "done "))
			if err != nil {
				t.Fatalf("round %d: survivor printed %q", round, line)
			}
			tookOver += k
			Must(t, p.Wait())
		}
		var acked int64
		for i := range procs {
			acked += acks.At(i)
		}
		got := c.Total(ctx)
		t.Logf("round %d: victim killed after %d acknowledged updates (target %d); total %d, acknowledged %d; %d takeovers",
			round, acks.At(procs-1), target, got, acked, tookOver)
		if got != acked && got != acked+1 {
			t.Fatalf("round %d: total %d, acknowledged %d: want the acknowledged total plus at most 1", round, got, acked)
		}
		if want := int64((procs - 1) * m); acked-acks.At(procs-1) != want {
			t.Fatalf("round %d: survivors acknowledged %d, want %d", round, acked-acks.At(procs-1), want)
		}
		if c.After != nil {
			c.After(ctx, t)
		}
	}
}
