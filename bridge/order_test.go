package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeMsg stands for a delivery; the sequencer only stores it.
type fakeMsg struct {
	jetstream.Msg
	seq uint64
}

// fakeSink records what the sequencer puts and acknowledges.
type fakeSink struct {
	puts, dups []uint64
	put0       map[uint64]bool // put before the test (a predecessor's)
	lost       map[uint64]bool
}

func (f *fakeSink) put(_ context.Context, m jetstream.Msg, seq uint64) error {
	if m.(*fakeMsg).seq != seq {
		panic("message put under another sequence")
	}
	f.puts = append(f.puts, seq)
	return nil
}
func (f *fakeSink) duplicate(_ context.Context, m jetstream.Msg) {
	f.dups = append(f.dups, m.(*fakeMsg).seq)
}
func (f *fakeSink) wasPut(seq uint64) bool   { return f.knownPut(seq) }
func (f *fakeSink) knownPut(seq uint64) bool { return f.put0[seq] || slices.Contains(f.puts, seq) }
func (f *fakeSink) lostSeq(seq uint64) bool  { return f.lost[seq] }

// delivery is one arrival: stream sequence, consumer sequence, delivery count.
type delivery struct{ seq, cseq, n uint64 }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runSequencer feeds deliveries to a sequencer over a stream in which
// present names the sequences holding a message for the consumer, and
// returns the sequences it looked up.
func runSequencer(t *testing.T, present map[uint64]bool, ds []delivery, sink *fakeSink) []uint64 {
	t.Helper()
	var looked []uint64
	lookup := func(_ context.Context, seq uint64) (bool, error) {
		looked = append(looked, seq)
		return present[seq], nil
	}
	s := newSequencer(sink, quietLog(), lookup, 0, time.Hour)
	for _, d := range ds {
		if err := s.arrive(context.Background(), &fakeMsg{seq: d.seq}, d.seq, d.cseq, d.n); err != nil {
			t.Fatal(err)
		}
	}
	return looked
}

func TestSequencerInOrder(t *testing.T) {
	sink := &fakeSink{}
	looked := runSequencer(t, nil, []delivery{{1, 1, 1}, {2, 2, 1}, {3, 3, 1}}, sink)
	if !slices.Equal(sink.puts, []uint64{1, 2, 3}) || len(looked) != 0 {
		t.Fatalf("puts %v, lookups %v", sink.puts, looked)
	}
}

// A consumer filtered to some subjects: its first deliveries skip stream
// sequences, with consecutive consumer sequences, which prove that the
// sequences between them hold nothing for it: no lookup but for the
// sequence before the first delivery.
func TestSequencerFilteredNoLookups(t *testing.T) {
	sink := &fakeSink{}
	looked := runSequencer(t, nil, []delivery{{2, 1, 1}, {5, 2, 1}, {9, 3, 1}, {10, 4, 1}}, sink)
	if !slices.Equal(sink.puts, []uint64{2, 5, 9, 10}) || !slices.Equal(looked, []uint64{1}) {
		t.Fatalf("puts %v, lookups %v", sink.puts, looked)
	}
}

// Deliveries lost in transit: later messages are held until the lost
// ones are redelivered, whatever their consumer sequences say; absent
// sequences in between are settled by lookup.
func TestSequencerHoldsUntilRedelivered(t *testing.T) {
	sink := &fakeSink{}
	present := map[uint64]bool{3: true, 5: true} // 4 holds another subject's message
	looked := runSequencer(t, present, []delivery{
		{1, 1, 1}, {2, 2, 1}, // then 3 and 5 lost in transit (consumer sequences 3 and 4)
		{6, 5, 1}, {7, 6, 1},
		{5, 7, 2}, // redelivered, before 3
		{3, 8, 2},
	}, sink)
	if !slices.Equal(sink.puts, []uint64{1, 2, 3, 5, 6, 7}) {
		t.Fatalf("puts %v", sink.puts)
	}
	if !slices.Equal(looked, []uint64{3, 4}) {
		t.Fatalf("lookups %v, want 3 then 4", looked)
	}
}

// The client may hand deliveries over out of consumer order after a
// reconnection (first deliveries and redeliveries interleaved): the
// puts follow the stream's order regardless.
func TestSequencerInterleavedHandOver(t *testing.T) {
	sink := &fakeSink{}
	present := map[uint64]bool{1: true, 2: true, 3: true, 4: true}
	runSequencer(t, present, []delivery{{3, 9, 2}, {1, 1, 1}, {4, 4, 1}, {2, 10, 2}}, sink)
	if !slices.Equal(sink.puts, []uint64{1, 2, 3, 4}) {
		t.Fatalf("puts %v", sink.puts)
	}
}

// Redeliveries of what was put are acknowledged as duplicates, never put
// twice; so are sequences a predecessor put.
func TestSequencerDuplicates(t *testing.T) {
	sink := &fakeSink{put0: map[uint64]bool{2: true}}
	runSequencer(t, map[uint64]bool{2: true}, []delivery{
		{1, 1, 1}, {1, 2, 2}, {3, 4, 1}, {2, 5, 2}, {3, 6, 2},
	}, sink)
	if !slices.Equal(sink.puts, []uint64{1, 3}) || !slices.Equal(sink.dups, []uint64{1, 2, 3}) {
		t.Fatalf("puts %v, duplicates %v", sink.puts, sink.dups)
	}
}

// A missing message that never comes is waited for, then let go: the
// held ones are put, and it is put late if it comes after all. One that
// JetStream gave up after MaxDeliver is not waited for.
func TestSequencerGivesUp(t *testing.T) {
	sink := &fakeSink{lost: map[uint64]bool{4: true}}
	present := map[uint64]bool{2: true, 4: true}
	var looked []uint64
	lookup := func(_ context.Context, seq uint64) (bool, error) {
		looked = append(looked, seq)
		return present[seq], nil
	}
	s := newSequencer(sink, quietLog(), lookup, 0, 20*time.Millisecond)
	ctx := context.Background()
	for _, d := range []delivery{{1, 1, 1}, {3, 3, 1}, {5, 5, 1}} {
		if err := s.arrive(ctx, &fakeMsg{seq: d.seq}, d.seq, d.cseq, d.n); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(sink.puts, []uint64{1}) {
		t.Fatalf("before the wait: puts %v", sink.puts)
	}
	time.Sleep(30 * time.Millisecond)
	if err := s.advance(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sink.puts, []uint64{1, 3, 5}) {
		t.Fatalf("after the wait: puts %v", sink.puts)
	}
	if err := s.arrive(ctx, &fakeMsg{seq: 2}, 2, 6, 2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sink.puts, []uint64{1, 3, 5, 2}) {
		t.Fatalf("late: puts %v", sink.puts)
	}
	if slices.Contains(looked, 4) {
		t.Fatal("looked up a sequence JetStream gave up")
	}
}

// A lookup that fails (the server out of reach) leaves the sequence
// awaited and is tried again on the next pass.
func TestSequencerLookupFails(t *testing.T) {
	sink := &fakeSink{}
	fail, calls := true, 0
	lookup := func(_ context.Context, seq uint64) (bool, error) {
		calls++
		if fail {
			return false, errors.New("no server")
		}
		return false, nil // absent after all
	}
	s := newSequencer(sink, quietLog(), lookup, 0, time.Hour)
	ctx := context.Background()
	if err := s.arrive(ctx, &fakeMsg{seq: 2}, 2, 2, 1); err != nil {
		t.Fatal(err)
	}
	if len(sink.puts) != 0 {
		t.Fatalf("put %v while 1 was unknown", sink.puts)
	}
	fail = false
	if err := s.advance(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sink.puts, []uint64{2}) || calls != 2 {
		t.Fatalf("puts %v after %d lookups", sink.puts, calls)
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		subject, filter string
		want            bool
	}{
		{"br.x", "br.x", true},
		{"br.x", "br.y", false},
		{"br.x", "br.*", true},
		{"br.x.y", "br.*", false},
		{"br.x.y", "br.>", true},
		{"br", "br.>", false},
		{"br.x", ">", true},
		{"a.b.c", "a.*.c", true},
		{"a.b", "a.b.c", false},
		{"a.b.c", "a.b", false},
	} {
		if got := subjectMatches(c.subject, c.filter); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v", c.subject, c.filter, got)
		}
	}
}
