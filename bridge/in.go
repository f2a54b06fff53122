package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shmkit/shmkit/ring"
)

// InConfig configures an In bridge.
type InConfig struct {
	// Queue is the local SPSC queue the bridge puts into (it takes the
	// producer role; a dead In bridge's role is taken over by the next).
	Queue *ring.Queue
	// JetStream is the JetStream context to consume through.
	JetStream jetstream.JetStream
	// Stream names the stream to consume; it must exist.
	Stream string
	// Consumer names the durable pull consumer. It is created when it does
	// not exist (explicit acknowledgement, FilterSubject, AckWait,
	// MaxDeliver, MaxAckPending = 4 × Batch); an existing one is used as it is
	// and must acknowledge explicitly.
	Consumer string
	// FilterSubject restricts a created consumer to a subject.
	FilterSubject string
	// State names the state segment that lets a restarted bridge tell
	// which redelivered messages it already put (default: the queue's
	// name + ".bridge-in"). It must outlive the bridge process.
	State string
	// Batch is the most messages fetched at once (default 256).
	Batch int
	// AckWait is a created consumer's redelivery delay (default 5 s): how
	// long a restarted bridge may wait for the messages its dead
	// predecessor had fetched.
	AckWait time.Duration
	// MaxDeliver is a created consumer's delivery limit (default 10): a
	// message whose Put keeps failing is given up after that many
	// deliveries and counted lost.
	MaxDeliver int
	// Logger receives what the bridge does (default slog.Default()).
	Logger *slog.Logger
}

// In moves messages from JetStream into a local queue.
type In struct {
	cfg    InConfig
	log    *slog.Logger
	cons   jetstream.Consumer
	stream jetstream.Stream
	state  *state
	stats  Stats
	adv    *nats.Subscription

	pull   int            // messages a pull asks for: the consumer's MaxAckPending, so that a burst of redeliveries fits the client's buffer
	ackers chan struct{}  // bounds the acknowledgements in flight
	acks   sync.WaitGroup // the acknowledgements in flight

	unconfirmed sync.Map // stream sequences put whose acknowledgement was never confirmed (kept until redelivered)
	maxed       sync.Map // stream sequences JetStream gave up after MaxDeliver (its advisory)

	seen    map[uint64]bool // stream sequences put (or known put), recent ones
	seenLog []uint64        // their order, to forget the oldest
}

// NewIn checks the configuration, the stream and the consumer (creating
// it if needed) and opens the state segment.
func NewIn(ctx context.Context, cfg InConfig) (*In, error) {
	switch {
	case cfg.Queue == nil:
		return nil, fmt.Errorf("%w: no queue", ErrConfig)
	case cfg.JetStream == nil:
		return nil, fmt.Errorf("%w: no JetStream context", ErrConfig)
	case cfg.Stream == "" || cfg.Consumer == "":
		return nil, fmt.Errorf("%w: stream and consumer are required", ErrConfig)
	case cfg.Batch < 0 || cfg.MaxDeliver < 0 || cfg.AckWait < 0:
		return nil, fmt.Errorf("%w: negative Batch, MaxDeliver or AckWait", ErrConfig)
	}
	if cfg.Queue.Mode() != ring.SPSC {
		return nil, fmt.Errorf("%w: the In bridge's queue is %v", ErrQueueKind, cfg.Queue.Mode())
	}
	if cfg.Batch == 0 {
		cfg.Batch = 256
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 5 * time.Second
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.State == "" {
		seg := cfg.Queue.Segment()
		if seg == nil || seg.Name() == "" {
			return nil, fmt.Errorf("%w: an anonymous queue needs InConfig.State", ErrConfig)
		}
		cfg.State = seg.Name() + ".bridge-in"
	}
	st, err := cfg.JetStream.Stream(ctx, cfg.Stream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrNoStream, cfg.Stream)
		}
		return nil, fmt.Errorf("bridge: stream %q: %w", cfg.Stream, err)
	}
	cons, err := st.Consumer(ctx, cfg.Consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       cfg.Consumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxDeliver:    cfg.MaxDeliver,
			MaxAckPending: 4 * cfg.Batch,
			FilterSubject: cfg.FilterSubject,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: consumer %q of stream %q: %w", cfg.Consumer, cfg.Stream, err)
	}
	pull := 4 * cfg.Batch
	if ci := cons.CachedInfo(); ci != nil {
		c := ci.Config
		pull = c.MaxAckPending
		switch {
		case c.AckPolicy != jetstream.AckExplicitPolicy:
			return nil, fmt.Errorf("%w: consumer %q does not acknowledge explicitly (%v)", ErrConfig, cfg.Consumer, c.AckPolicy)
		case c.DeliverSubject != "":
			return nil, fmt.Errorf("%w: consumer %q is a push consumer; the In bridge pulls", ErrConfig, cfg.Consumer)
		case c.MaxAckPending <= 0 || c.MaxAckPending > stateEntries:
			return nil, fmt.Errorf("%w: consumer %q allows %d unacknowledged messages; the In bridge needs 1 to %d", ErrConfig, cfg.Consumer, c.MaxAckPending, stateEntries)
		case c.MaxRequestBatch > 0 && c.MaxRequestBatch < cfg.Batch:
			return nil, fmt.Errorf("%w: consumer %q takes pulls of at most %d messages, Batch is %d", ErrConfig, cfg.Consumer, c.MaxRequestBatch, cfg.Batch)
		case cfg.FilterSubject != "" && c.FilterSubject != cfg.FilterSubject:
			return nil, fmt.Errorf("%w: consumer %q filters %q, not %q", ErrConfig, cfg.Consumer, c.FilterSubject, cfg.FilterSubject)
		}
		// The consumer's own timing is what JetStream applies.
		if c.AckWait > 0 {
			cfg.AckWait = c.AckWait
		}
		if c.MaxDeliver > 0 {
			cfg.MaxDeliver = c.MaxDeliver
		}
	}
	var qpid int
	var qstart uint64
	if seg := cfg.Queue.Segment(); seg != nil {
		qpid, qstart = seg.Creator()
	}
	s, err := openState(cfg.State, cfg.Stream, cfg.Consumer, qpid, qstart)
	if err != nil {
		return nil, err
	}
	in := &In{
		cfg:    cfg,
		log:    cfg.Logger.With("bridge", "in", "stream", cfg.Stream, "consumer", cfg.Consumer),
		cons:   cons,
		stream: st,
		state:  s,
		seen:   map[uint64]bool{},
		pull:   pull,
		ackers: make(chan struct{}, 64),
	}
	if nc := cfg.JetStream.Conn(); nc != nil {
		subj := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + cfg.Stream + "." + cfg.Consumer
		in.adv, err = nc.Subscribe(subj, in.advisory)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("bridge: subscribing to %s: %w", subj, err)
		}
	}
	return in, nil
}

// Stats returns the bridge's counters.
func (in *In) Stats() *Stats { return &in.stats }

// Close releases the state segment and the advisory subscription (not the
// queue).
func (in *In) Close() error {
	if in.adv != nil {
		_ = in.adv.Unsubscribe()
	}
	return in.state.close()
}

// advisory counts a message given up by JetStream after MaxDeliver.
func (in *In) advisory(m *nats.Msg) {
	var a struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	_ = json.Unmarshal(m.Data, &a)
	if a.StreamSeq != 0 {
		in.maxed.Store(a.StreamSeq, true) // never delivered again: the sequencer does not wait for it
	}
	in.stats.lost.Add(1)
	in.log.Error("message given up after its maximum deliveries, counted lost", "stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
}

func (in *In) remember(seq uint64) {
	if in.seen[seq] {
		return
	}
	in.seen[seq] = true
	in.seenLog = append(in.seenLog, seq)
	if keep := 4*in.cfg.Batch + stateEntries; len(in.seenLog) > 2*keep {
		for _, s := range in.seenLog[:len(in.seenLog)-keep] {
			delete(in.seen, s)
		}
		in.seenLog = append(in.seenLog[:0], in.seenLog[len(in.seenLog)-keep:]...)
	}
}

// Run moves messages until ctx ends (returning its error) or the queue
// is closed (returning ring.ErrClosed).
func (in *In) Run(ctx context.Context) error {
	defer in.acked()
	q := in.cfg.Queue
	end, err := q.WritePosition() // takes the producer role: past everything a dead predecessor published
	if err != nil {
		return err
	}
	for _, s := range in.state.put(end) {
		in.remember(s)
	}
	info, err := in.cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("bridge: consumer info: %w", err)
	}
	floor := info.AckFloor.Stream
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	// Messages a dead predecessor fetched and did not acknowledge come back
	// after AckWait, older than what is delivered meanwhile: the sequencer
	// holds the newer ones until they are back.
	o := newSequencer(in, in.log, streamLookup(in.stream, filters), floor, 2*in.cfg.AckWait+2*time.Second)
	in.log.Info("started", "ack_floor", floor, "pending", info.NumAckPending, "known_put", len(in.seen))
	it, err := in.cons.Messages(jetstream.PullMaxMessages(in.pull))
	if err != nil {
		return fmt.Errorf("bridge: consuming %s/%s: %w", in.cfg.Stream, in.cfg.Consumer, err)
	}
	defer func() { it.Stop() }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := it.Next(jetstream.NextMaxWait(200 * time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case errors.Is(err, nats.ErrConnectionClosed):
				return fmt.Errorf("bridge: %w", err)
			case errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted):
				// The pull ended for good (the consumer deleted, a
				// refused request): start a new one, after a pause.
				in.stats.retries.Add(1)
				in.log.Warn("pull ended, starting again", "err", err)
				o.forgetDeliveries() // a recreated consumer numbers its deliveries anew
				it.Stop()
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
				if it, err = in.cons.Messages(jetstream.PullMaxMessages(in.pull)); err != nil {
					return fmt.Errorf("bridge: consuming %s/%s: %w", in.cfg.Stream, in.cfg.Consumer, err)
				}
				continue
			case !errors.Is(err, nats.ErrTimeout):
				in.stats.retries.Add(1)
				in.log.Warn("fetch failed, retrying", "err", err)
			}
			if err := o.advance(ctx); err != nil { // waits that ran out
				return err
			}
			continue
		}
		meta, err := m.Metadata()
		if err != nil {
			in.log.Error("message without JetStream metadata, terminated", "err", err)
			_ = m.Term()
			continue
		}
		if err := o.arrive(ctx, m, meta.Sequence.Stream, meta.Sequence.Consumer, meta.NumDelivered); err != nil {
			return err
		}
	}
}

var debugPuts = os.Getenv("SHMKIT_BRIDGE_DEBUG_PUTS") != ""

// put records the message, puts it into the queue (telling JetStream it
// is in progress while the queue is full) and acknowledges it.
func (in *In) put(ctx context.Context, m jetstream.Msg, seq uint64) error {
	q := in.cfg.Queue
	pos, err := q.WritePosition()
	if err != nil {
		return err
	}
	in.state.record(seq, pos)
	if debugPuts {
		meta, _ := m.Metadata()
		in.log.Debug("put", "seq", seq, "deliveries", meta.NumDelivered, "consumer_seq", meta.Sequence.Consumer, "head", fmt.Sprintf("%x", m.Data()[:min(8, len(m.Data()))]))
	}
	in.stats.inFlight.Store(1)
	ok, err := q.TryPut(m.Data())
	if err == nil && !ok {
		// The queue is full: wait, telling JetStream the message is in
		// progress so that it neither redelivers it nor counts deliveries
		// towards MaxDeliver meanwhile.
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(in.cfg.AckWait / 3)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					_ = m.InProgress()
				case <-done:
					return
				}
			}
		}()
		err = q.Put(ctx, m.Data())
		close(done)
	}
	if err != nil {
		in.state.undo()
	}
	if errors.Is(err, ring.ErrTooLarge) || errors.Is(err, ring.ErrType) {
		// It can never be put: give it up now rather than after MaxDeliver
		// deliveries, and say so.
		in.stats.inFlight.Store(0)
		in.stats.lost.Add(1)
		in.log.Error("message does not fit the queue, counted lost", "stream_seq", seq, "bytes", len(m.Data()), "err", err)
		_ = m.Term()
		return nil
	}
	if err != nil {
		// Not put: JetStream redelivers it (to us or a successor), up to
		// MaxDeliver times.
		in.stats.inFlight.Store(0)
		_ = m.Nak()
		return err
	}
	in.remember(seq)
	in.stats.messages.Add(1)
	in.stats.bytes.Add(uint64(len(m.Data())))
	in.ack(ctx, m, false)
	in.stats.inFlight.Store(0)
	return nil
}

// ack double-acknowledges m, retrying a few times; a message whose
// acknowledgement is lost is redelivered and recognised as put. Unless
// wait, it does so in the background, at most ackers at a time (the
// round trips overlap); acked waits for them all.
func (in *In) ack(ctx context.Context, m jetstream.Msg, wait bool) {
	if wait {
		in.ackSync(ctx, m)
		return
	}
	in.ackers <- struct{}{}
	in.acks.Add(1)
	go func() {
		defer in.acks.Done()
		in.ackSync(ctx, m)
		<-in.ackers
	}()
}

// acked waits for the background acknowledgements.
func (in *In) acked() { in.acks.Wait() }

func (in *In) ackSync(ctx context.Context, m jetstream.Msg) {
	for i := range 5 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := m.DoubleAck(actx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			break
		}
		in.log.Warn("acknowledgement failed", "attempt", i+1, "err", err)
		select { // a disconnection fails at once: give the reconnection time
		case <-time.After(time.Duration(i+1) * 200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	// Not confirmed: JetStream may redeliver it any time later, however
	// many messages come in between; remember it until then.
	if meta, err := m.Metadata(); err == nil {
		in.unconfirmed.Store(meta.Sequence.Stream, true)
	}
}

// duplicate acknowledges a delivery of a message put already.
func (in *In) duplicate(ctx context.Context, m jetstream.Msg) {
	in.stats.duplicates.Add(1)
	in.ack(ctx, m, false)
}

// knownPut reports, without changing anything, what wasPut reports.
func (in *In) knownPut(seq uint64) bool {
	if in.seen[seq] {
		return true
	}
	_, ok := in.unconfirmed.Load(seq)
	return ok
}

// lostSeq reports whether JetStream gave stream sequence seq up after
// MaxDeliver deliveries.
func (in *In) lostSeq(seq uint64) bool {
	_, ok := in.maxed.Load(seq)
	return ok
}

// wasPut reports whether stream sequence seq was put already (by this
// bridge, or by a predecessor as its state says), for a delivery of it:
// an unconfirmed acknowledgement is then confirmed by the one that
// follows.
func (in *In) wasPut(seq uint64) bool {
	if in.seen[seq] {
		return true
	}
	if _, ok := in.unconfirmed.Load(seq); ok {
		in.unconfirmed.Delete(seq) // acknowledged again now
		return true
	}
	return false
}
