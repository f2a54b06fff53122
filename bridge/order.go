package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// sequencer puts messages into the queue in stream order, exactly: next
// is the lowest stream sequence not yet settled, and a message above it
// is held until every sequence below it is settled. A sequence is settled
// when its message is put (or known put: a predecessor's, per the state
// segment), when it is known to hold nothing for this consumer, or when
// its message was waited for too long (then it is put late, when it
// comes, and the wait is logged as an error).
//
// Knowing that a sequence holds nothing comes first from the deliveries
// themselves: JetStream delivers a consumer's messages for the first time
// in stream order, one consumer sequence each, so two first deliveries
// with consecutive consumer sequences prove that the stream sequences
// between them hold nothing for this consumer (other subjects' messages,
// deleted ones). That covers every sequence in steady operation, in
// whatever order the client hands the deliveries over. Only a sequence
// that no such pair covers, after deliveries were lost in transit (a
// broken connection, a server restart, a client buffer overflow) or left
// unacknowledged by a dead predecessor, is looked up in the stream
// (stream.GetMsg): absent, or of a subject the consumer does not take, it
// is settled; present, its redelivery (after AckWait) is awaited.
//
// Deliveries are counted by stream sequence, not by consumer sequence:
// after a reconnection the client may hand over redeliveries and first
// deliveries interleaved, which defeats any reasoning on consumer
// sequence gaps alone.
type sequencer struct {
	in     seqSink
	log    *slog.Logger
	lookup func(ctx context.Context, seq uint64) (present bool, err error)
	wait   time.Duration

	next     uint64                   // lowest stream sequence not settled
	held     map[uint64]jetstream.Msg // messages above next, by stream sequence
	maxHeld  uint64                   // highest sequence held (0: none)
	fresh    map[uint64]uint64        // first deliveries: consumer sequence -> stream sequence
	skipTo   map[uint64]uint64        // proven empty: after stream sequence s, the next message is skipTo[s]
	awaited  map[uint64]missingWait   // sequences missing while a later one is held
	givenUp  map[uint64]bool          // sequences waited for in vain, to be put late if they come
	warnedAt uint64                   // the sequence whose wait was last logged
}

// seqSink is what the sequencer does with messages: *In.
type seqSink interface {
	put(ctx context.Context, m jetstream.Msg, seq uint64) error
	duplicate(ctx context.Context, m jetstream.Msg) // acknowledges a message not put again
	wasPut(seq uint64) bool                         // for a delivery of seq (confirms an unconfirmed acknowledgement)
	knownPut(seq uint64) bool                       // likewise, changing nothing
	lostSeq(seq uint64) bool                        // given up by JetStream after MaxDeliver
}

// newSequencer starts after stream sequence floor (everything at or
// below it is acknowledged), looking missing sequences up with lookup.
func newSequencer(in seqSink, log *slog.Logger, lookup func(context.Context, uint64) (bool, error), floor uint64, wait time.Duration) *sequencer {
	return &sequencer{in: in, log: log, lookup: lookup, wait: wait, next: floor + 1,
		held: map[uint64]jetstream.Msg{}, fresh: map[uint64]uint64{}, skipTo: map[uint64]uint64{},
		awaited: map[uint64]missingWait{}, givenUp: map[uint64]bool{}}
}

// streamLookup returns the sequencer's lookup for a stream whose consumer
// takes the subjects matching filters (every subject when there are
// none): whether the stream holds a message at a sequence that the
// consumer takes.
func streamLookup(stream jetstream.Stream, filters []string) func(context.Context, uint64) (bool, error) {
	return func(ctx context.Context, seq uint64) (bool, error) {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		m, err := stream.GetMsg(lctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("bridge: looking up stream sequence %d: %w", seq, err)
		}
		if len(filters) == 0 {
			return true, nil
		}
		for _, f := range filters {
			if subjectMatches(m.Subject, f) {
				return true, nil
			}
		}
		return false, nil
	}
}

// arrive takes a delivery of stream sequence seq (consumer sequence
// cseq, delivered the n-th time): a duplicate is acknowledged, a message
// late past its wait is put at once, and any other is put in order.
func (s *sequencer) arrive(ctx context.Context, m jetstream.Msg, seq, cseq, n uint64) error {
	if n == 1 {
		s.proveEmpty(seq, cseq)
	}
	switch {
	case s.givenUp[seq]:
		delete(s.givenUp, seq)
		if s.in.wasPut(seq) {
			s.in.duplicate(ctx, m)
			return nil
		}
		s.log.Warn("a message waited for in vain came, put out of order", "stream_seq", seq)
		return s.in.put(ctx, m, seq)
	case seq < s.next || s.in.wasPut(seq) || s.held[seq] != nil:
		s.in.duplicate(ctx, m)
		return nil
	}
	s.held[seq] = m
	s.maxHeld = max(s.maxHeld, seq)
	delete(s.awaited, seq)
	return s.advance(ctx)
}

// proveEmpty records what the first delivery of stream sequence seq with
// consumer sequence cseq proves together with its neighbours.
func (s *sequencer) proveEmpty(seq, cseq uint64) {
	s.fresh[cseq] = seq
	if prev, ok := s.fresh[cseq-1]; ok && prev < seq {
		s.skipTo[prev] = seq
	}
	if next, ok := s.fresh[cseq+1]; ok && seq < next {
		s.skipTo[seq] = next
	}
}

// advance puts the held messages that are next in stream order, settling
// the sequences between them as far as it can.
func (s *sequencer) advance(ctx context.Context) error {
	for {
		if m, ok := s.held[s.next]; ok {
			delete(s.held, s.next)
			if err := s.in.put(ctx, m, s.next); err != nil {
				return err
			}
			s.next++
			continue
		}
		if to, ok := s.skipTo[s.next-1]; ok && to > s.next {
			s.next = to
			continue
		}
		if s.in.knownPut(s.next) || s.in.lostSeq(s.next) {
			s.next++
			continue
		}
		if s.maxHeld < s.next {
			s.maxHeld = 0
			s.prune()
			return nil // nothing held above: nothing waits on next
		}
		settled, err := s.missing(ctx, s.next)
		if err != nil {
			return err
		}
		if !settled {
			return nil
		}
		s.next++
	}
}

// missingWait is a missing sequence's wait: since when, and whether a lookup
// found its message present (false: the lookup failed, retried on each
// pass).
type missingWait struct {
	since   time.Time
	present bool
}

// missing handles sequence seq, not delivered while a later one is held:
// it reports whether seq is settled (holds nothing for this consumer, or
// was waited for long enough).
func (s *sequencer) missing(ctx context.Context, seq uint64) (bool, error) {
	w, waiting := s.awaited[seq]
	if !waiting {
		w.since = time.Now()
	}
	if !w.present {
		present, err := s.lookup(ctx, seq)
		switch {
		case err != nil && ctx.Err() != nil:
			return false, ctx.Err()
		case err != nil:
			// The server is out of reach: wait as for a present message,
			// and look again on the next pass.
			s.log.Debug("looking up a missing message failed", "stream_seq", seq, "err", err)
		case !present:
			delete(s.awaited, seq)
			return true, nil
		default:
			w.present = true
			if s.warnedAt+1 != seq && s.warnedAt != seq {
				s.log.Warn("a message was lost in transit: holding later ones until it is redelivered", "stream_seq", seq, "held", len(s.held))
			}
			s.warnedAt = seq
		}
		s.awaited[seq] = w
	}
	if time.Since(w.since) < s.wait {
		return false, nil
	}
	delete(s.awaited, seq)
	s.givenUp[seq] = true
	s.log.Error("gave up waiting for a redelivery: it will arrive out of order", "stream_seq", seq, "waited", s.wait)
	return true, nil
}

// forgetDeliveries drops what first deliveries proved, when the consumer
// may number its deliveries anew (a pull that ended for good).
func (s *sequencer) forgetDeliveries() {
	clear(s.fresh)
}

// prune forgets the proofs about sequences already settled.
func (s *sequencer) prune() {
	if len(s.fresh)+len(s.skipTo) < 4096 {
		return
	}
	for c, seq := range s.fresh {
		if seq+1 < s.next {
			delete(s.fresh, c)
		}
	}
	for from := range s.skipTo {
		if from+1 < s.next {
			delete(s.skipTo, from)
		}
	}
}

// subjectMatches reports whether subject matches the NATS filter subject
// f, where a "*" token matches any one token and a final ">" one or more.
func subjectMatches(subject, f string) bool {
	st, ft := strings.Split(subject, "."), strings.Split(f, ".")
	for i, t := range ft {
		if t == ">" && i == len(ft)-1 {
			return len(st) > i
		}
		if i >= len(st) || (t != "*" && t != st[i]) {
			return false
		}
	}
	return len(st) == len(ft)
}
