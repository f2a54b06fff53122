package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/ring"
)

// OutConfig configures an Out bridge.
type OutConfig struct {
	// Queue is the local SPSC queue the bridge consumes (it takes the
	// consumer role, as any consumer would; a dead Out bridge's role is
	// taken over by the next one).
	Queue *ring.Queue
	// JetStream is the JetStream context to publish through. Give it a
	// publish timeout (jetstream.WithPublishAsyncTimeout) of a few times
	// AckTimeout: the client keeps the acknowledgement of a publish the
	// bridge gave up on and republished until it times out, and stalls
	// once 4000 are pending.
	JetStream jetstream.JetStream
	// Subject is the subject messages are published to; a stream must
	// capture it.
	Subject string
	// ID names the queue in message ids (default: the queue's segment
	// name, or "anonymous"). Two Out bridges publishing to one stream need
	// different IDs, or queues with different incarnations.
	ID string
	// MaxInFlight bounds the publishes awaiting acknowledgement (default
	// 256). It is also the most messages the bridge holds in the ring.
	MaxInFlight int
	// RetryWait is the first wait before a failed publish is retried; it
	// doubles up to 5 s (default 50 ms).
	RetryWait time.Duration
	// AckTimeout bounds the wait for one publish acknowledgement before
	// the publish is retried (default 5 s).
	AckTimeout time.Duration
	// Unordered turns off the chaining of publishes. By default every
	// publish carries the id of the message before it as the stream's
	// expected last message id, so that JetStream stores the messages in
	// ring order even when a connection breaks with some of them lost in a
	// dying server and others buffered for the reconnection (those are
	// refused and published again, in order). That needs a stream only this
	// bridge publishes to; with Unordered, several publishers may share a
	// stream, and ring order is lost whenever a connection breaks mid-batch.
	Unordered bool
	// Logger receives what the bridge does (default slog.Default()).
	Logger *slog.Logger
}

// Out moves messages from a local queue to JetStream.
type Out struct {
	cfg    OutConfig
	log    *slog.Logger
	prefix string // message id prefix: ID.start.pid.
	stats  Stats
	stream string
	last   string // chaining: the id of the last message published and not lost
	batch  []held // the messages held, until their release

	rechain    bool   // the next publish expects streamLast, not the message before it
	streamLast string // the stream's last message id, read by resync
}

// NewOut checks the configuration and that a stream captures the subject,
// and returns a bridge ready to Run.
func NewOut(ctx context.Context, cfg OutConfig) (*Out, error) {
	switch {
	case cfg.Queue == nil:
		return nil, fmt.Errorf("%w: no queue", ErrConfig)
	case cfg.JetStream == nil:
		return nil, fmt.Errorf("%w: no JetStream context", ErrConfig)
	case cfg.Subject == "":
		return nil, fmt.Errorf("%w: no subject", ErrConfig)
	case cfg.MaxInFlight < 0:
		return nil, fmt.Errorf("%w: MaxInFlight %d", ErrConfig, cfg.MaxInFlight)
	}
	if cfg.Queue.Mode() != ring.SPSC {
		return nil, fmt.Errorf("%w: the Out bridge's queue is %v", ErrQueueKind, cfg.Queue.Mode())
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 50 * time.Millisecond
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	seg := cfg.Queue.Segment()
	if cfg.ID == "" {
		cfg.ID = "anonymous"
		if seg != nil && seg.Name() != "" {
			cfg.ID = seg.Name()
		}
	}
	var pid int
	var start uint64
	if seg != nil {
		pid, start = seg.Creator()
	}
	name, err := cfg.JetStream.StreamNameBySubject(ctx, cfg.Subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: none captures subject %q", ErrNoStream, cfg.Subject)
		}
		return nil, fmt.Errorf("bridge: looking up the stream of %q: %w", cfg.Subject, err)
	}
	o := &Out{
		cfg:    cfg,
		log:    cfg.Logger.With("bridge", "out", "subject", cfg.Subject, "stream", name),
		prefix: cfg.ID + "." + strconv.FormatUint(start, 36) + "." + strconv.Itoa(pid) + ".",
		stream: name,
	}
	return o, nil
}

// Stats returns the bridge's counters.
func (o *Out) Stats() *Stats { return &o.stats }

// MsgID returns the JetStream message id of the message at ring position
// pos (see ring.Queue.Position).
func (o *Out) MsgID(pos uint64) string { return o.prefix + strconv.FormatUint(pos, 10) }

// held is one message held in the ring while its publish is in flight.
type held struct {
	msg  *nats.Msg
	id   string
	fut  jetstream.PubAckFuture
	done bool
	lost bool
}

// Run moves messages until ctx ends (it then returns ctx's error, leaving
// unacknowledged messages in the ring for the next bridge, or for the next
// Run of this one, which publishes them first) or the queue
// is closed and drained (it returns nil). Errors of the queue are
// returned as they are; JetStream errors are retried.
func (o *Out) Run(ctx context.Context) error {
	q := o.cfg.Queue
	if !o.cfg.Unordered {
		if err := o.lastInStream(ctx); err != nil {
			return err
		}
	}
	o.log.Info("started", "max_in_flight", o.cfg.MaxInFlight, "id_prefix", o.prefix)
	for {
		// A batch an earlier Run left held (its ctx ended before the
		// acknowledgements) goes first, as it is: the handle still holds
		// those messages, and Next would return the ones after them.
		if len(o.batch) == 0 {
			// The first message waits; the rest of the batch is what is
			// already there.
			msg, err := q.Next(ctx)
			if err != nil {
				return o.stop(err)
			}
			o.batch = append(o.batch, o.held(msg))
			for len(o.batch) < o.cfg.MaxInFlight {
				msg, ok, err := q.TryNext()
				if err != nil || !ok {
					break
				}
				o.batch = append(o.batch, o.held(msg))
			}
		}
		batch := o.batch
		dups := o.stats.duplicates.Load()
		if err := o.publish(ctx, batch); err != nil {
			return o.stop(err)
		}
		if o.log.Enabled(ctx, slog.LevelDebug) {
			o.log.Debug("batch acknowledged", "n", len(batch), "first", batch[0].id,
				"last", batch[len(batch)-1].id, "duplicates", o.stats.duplicates.Load()-dups)
		}
		if err := q.Release(); err != nil {
			return err
		}
		clear(o.batch)
		o.batch = o.batch[:0]
	}
}

func (o *Out) stop(err error) error {
	if errors.Is(err, io.EOF) {
		o.log.Info("queue closed and drained")
		return nil
	}
	return err
}

// held copies nothing: the nats.Msg's Data aliases the ring until Release,
// which comes only after every publish of the batch was acknowledged.
func (o *Out) held(p []byte) held {
	m := nats.NewMsg(o.cfg.Subject)
	m.Data = p
	id := o.MsgID(o.cfg.Queue.Position())
	m.Header.Set(jetstream.MsgIDHeader, id)
	return held{msg: m, id: id}
}

// publish publishes every message of batch and waits until each is
// acknowledged (stored or a duplicate) or refused for good (counted lost),
// retrying the rest. It returns only ctx's error.
func (o *Out) publish(ctx context.Context, batch []held) error {
	wait := o.cfg.RetryWait
	for attempt := 0; ; attempt++ {
		pending := 0
		prev := o.last
		for i := range batch {
			h := &batch[i]
			if h.lost {
				continue // the next one follows the one before it
			}
			expect := prev
			prev = h.id
			if h.done {
				continue
			}
			if o.rechain {
				// After a resync that found another last message: the
				// first message not yet stored follows it.
				expect, o.rechain = o.streamLast, false
			}
			if !o.cfg.Unordered {
				h.msg.Header.Del(jetstream.ExpectedLastMsgIDHeader)
				if expect != "" {
					h.msg.Header.Set(jetstream.ExpectedLastMsgIDHeader, expect)
				}
			}
			if attempt > 0 {
				o.stats.retries.Add(1)
			}
			fut, err := o.cfg.JetStream.PublishMsgAsync(h.msg)
			if err != nil {
				h.fut = nil
				if errors.Is(err, nats.ErrMaxPayload) {
					h.done, h.lost = true, true
					o.stats.lost.Add(1)
					o.log.Error("message larger than the server's max_payload, counted lost", "msg_id", h.id, "bytes", len(h.msg.Data), "max_payload", o.cfg.JetStream.Conn().MaxPayload())
					continue
				}
				if errors.Is(err, nats.ErrConnectionClosed) {
					return fmt.Errorf("bridge: %w", err)
				}
				o.log.Debug("publish failed", "err", err)
				continue
			}
			h.fut = fut
			pending++
		}
		o.stats.inFlight.Store(int64(pending))
		timeout := time.NewTimer(o.cfg.AckTimeout)
		timedOut := false
		resync := false // the stream's last id is not what the chain expected
		serverLast := ""
		failed := 0
		for i := range batch {
			h := &batch[i]
			if h.done {
				continue
			}
			if h.fut == nil {
				failed++
				continue
			}
			var ack *jetstream.PubAck
			var err error
			if timedOut {
				select { // what has come in meanwhile, without waiting
				case ack = <-h.fut.Ok():
				case err = <-h.fut.Err():
				default:
					failed++
					continue
				}
			} else {
				select {
				case ack = <-h.fut.Ok():
				case err = <-h.fut.Err():
				case <-timeout.C:
					timedOut = true
					failed++
					continue
				case <-ctx.Done():
					timeout.Stop()
					o.stats.inFlight.Store(0)
					return ctx.Err()
				}
			}
			switch {
			case ack != nil:
				h.done = true
				o.stats.messages.Add(1)
				o.stats.bytes.Add(uint64(len(h.msg.Data)))
				if ack.Duplicate {
					o.stats.duplicates.Add(1)
				}
			case permanent(err):
				h.done, h.lost = true, true
				o.stats.lost.Add(1)
				o.log.Error("message refused by the stream, counted lost", "msg_id", h.id, "bytes", len(h.msg.Data), "err", err)
			case wrongLast(err):
				if !resync {
					resync, serverLast = true, lastFromError(err)
				}
				failed++
			default:
				failed++
			}
		}
		timeout.Stop()
		o.stats.inFlight.Store(0)
		if failed == 0 {
			for _, h := range batch {
				if !h.lost {
					o.last = h.id
				}
			}
			return nil
		}
		if resync {
			o.resync(batch, serverLast)
		}
		o.log.Warn("publishes failed, retrying", "failed", failed, "attempt", attempt+1, "wait", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// lastInStream finds the id of the stream's last message, which the first
// publish of a chaining bridge expects.
func (o *Out) lastInStream(ctx context.Context) error {
	st, err := o.cfg.JetStream.Stream(ctx, o.stream)
	if err != nil {
		return fmt.Errorf("bridge: stream %q: %w", o.stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("bridge: stream %q: %w", o.stream, err)
	}
	if info.State.LastSeq == 0 {
		return nil
	}
	m, err := st.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		return fmt.Errorf("bridge: the last message of stream %q: %w", o.stream, err)
	}
	o.last = m.Header.Get(jetstream.MsgIDHeader)
	return nil
}

// wrongLast reports a publish refused because the stream's last message
// id is not the one it expected (the chain of a bridge that is not
// Unordered).
func wrongLast(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == 10070 // JSStreamWrongLastMsgIDErrF
}

// lastFromError returns the stream's last message id as a "wrong last
// msg ID" refusal states it.
func lastFromError(err error) string {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		if _, id, ok := strings.Cut(api.Description, "wrong last msg ID:"); ok {
			return strings.TrimSpace(id)
		}
	}
	return ""
}

// resync handles a chained publish refused because the stream's last
// message id (last, from the refusal) is not the one expected. If it is
// one of batch's messages, that one and those before it are stored (their
// acknowledgements were lost) and the chain goes on from it. Otherwise
// (the stream lost or removed its last message, or another publisher
// wrote after it) the chain starts again from last.
func (o *Out) resync(batch []held, last string) {
	prev := o.last
	for j := range batch {
		if batch[j].id == last {
			for i := 0; i <= j; i++ {
				if !batch[i].done {
					batch[i].done = true
					o.stats.messages.Add(1)
					o.stats.bytes.Add(uint64(len(batch[i].msg.Data)))
				}
			}
			return
		}
	}
	o.log.Warn("the stream's last message is not this bridge's: starting the chain again", "last_msg_id", last, "expected", prev)
	o.streamLast, o.rechain = last, true
}

// permanent reports whether a publish error will not go away by retrying:
// the stream refused this message itself.
func permanent(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// A stream that is full (DiscardNew) is back-pressure, retried;
		// a message too large for it will never fit.
		switch api.ErrorCode {
		case jetstream.JSErrCodeStreamMessageExceedsMaximum, jetstream.JSErrCodeBadRequest:
			return true
		}
	}
	return false
}
