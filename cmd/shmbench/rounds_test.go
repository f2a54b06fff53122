package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestRounds runs the plan three times (-rounds 3): one record per
// measurement, the median round's, whose notes list the three rounds'
// rates; the config says how many rounds ran.
func TestRounds(t *testing.T) {
	t.Parallel() // subprocesses, or a coordinator of its own: no shared state
	cmd := command(t, "-json", "-rounds", "3", "-transports", "unix,queue", "-sizes", "64", "-duration", "10ms",
		"-reps", "1", "-patterns", "throughput", "-python", "")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, errb.String())
	}
	doc, results := decodeDoc(t, out.Bytes())
	if r := fmt.Sprint(doc["config"].(map[string]any)["rounds"]); r != "3" {
		t.Errorf("config rounds = %s, want 3", r)
	}
	seen := map[string]int{}
	for i, r := range results {
		rec := checkRecord(t, i, r)
		what := fmt.Sprint(rec["transport"], "/", rec["pattern"], "/", rec["size"])
		seen[what]++
		if rec["status"] != StatusOK {
			t.Errorf("%s: %v: %v", what, rec["status"], rec["notes"])
			continue
		}
		notes := fmt.Sprint(rec["notes"])
		_, list, ok := strings.Cut(notes, "median of 3 rounds, msgs/s by round: ")
		if !ok {
			t.Errorf("%s: notes %q name no rounds", what, notes)
			continue
		}
		if n := len(strings.Split(strings.SplitN(list, ";", 2)[0], ", ")); n != 3 {
			t.Errorf("%s: %d rates in %q, want 3", what, n, notes)
		}
		if v, _ := rec["msgs_per_sec"].(json.Number).Float64(); v <= 0 {
			t.Errorf("%s: rate %v", what, v)
		}
	}
	for _, want := range []string{"unix/throughput/64", "queue/throughput/64"} {
		if seen[want] != 1 {
			t.Errorf("%s reported %d times, want once", want, seen[want])
		}
	}
	if got := strings.Count(errb.String(), "queue "); got < 3 {
		t.Errorf("progress shows queue %d times, want a line per round:\n%s", got, errb.String())
	}
}

// medianRound picks the round of median rate, and a failed round over any
// median.
func TestMedianRound(t *testing.T) {
	recs := []Record{{Status: StatusOK, MsgsPerSec: 30}, {Status: StatusOK, MsgsPerSec: 10}, {Status: StatusOK, MsgsPerSec: 20}}
	if got := medianRound(recs, 3); got.MsgsPerSec != 20 || !strings.Contains(got.Notes, "median of 3 rounds") {
		t.Errorf("median of 30, 10, 20 = %v (%q)", got.MsgsPerSec, got.Notes)
	}
	if got := medianRound(recs[:2], 2); got.MsgsPerSec != 10 {
		t.Errorf("median of 30, 10 = %v, want the lower middle, 10", got.MsgsPerSec)
	}
	recs[2].Status = StatusFailed
	if got := medianRound(recs, 3); got.Status != StatusFailed || !strings.Contains(got.Notes, "round 3 of 3") {
		t.Errorf("with round 3 failed: %v %q", got.Status, got.Notes)
	}
	one := Record{Status: StatusOK, MsgsPerSec: 5, Notes: "x"}
	if got := medianRound([]Record{one}, 1); got.Notes != "x" {
		t.Errorf("a single round gained notes: %q", got.Notes)
	}
}
