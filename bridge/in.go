package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
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
	cfg   InConfig
	log   *slog.Logger
	cons  jetstream.Consumer
	state *state
	stats Stats
	adv   *nats.Subscription

	pull   int            // messages a pull asks for: the consumer's MaxAckPending, so that a burst of redeliveries fits the client's buffer
	ackers chan struct{}  // bounds the acknowledgements in flight
	acks   sync.WaitGroup // the acknowledgements in flight

	unconfirmed sync.Map // stream sequences put whose acknowledgement was never confirmed (kept until redelivered)

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
	o := orderer{in: in, wait: 2*in.cfg.AckWait + 2*time.Second, lastPut: floor}
	// Messages a dead predecessor fetched and did not acknowledge come back
	// after AckWait, older than what is delivered meanwhile: a gap.
	if info.NumAckPending > 0 {
		o.add(floor, info.Delivered.Stream, info.NumAckPending)
	}
	lastDelivery := info.Delivered.Consumer
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
			if err := o.release(ctx); err != nil { // gaps past their wait
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
		seq := meta.Sequence.Stream
		// Deliveries are numbered (the consumer sequence). A gap means
		// deliveries that never reached us (a connection lost with them in
		// flight, a server restart): JetStream redelivers them after
		// AckWait, and they are older than this message.
		// (Redeliveries lost in transit count too: what they carried is
		// not put yet, so it lies above the highest sequence put.)
		if d := meta.Sequence.Consumer; d > lastDelivery+1 && lastDelivery > 0 && seq > o.lastPut+1 {
			lost := int(d - lastDelivery - 1)
			in.log.Warn("deliveries lost in transit, waiting for their redelivery", "deliveries", lost, "stream_seqs", fmt.Sprintf("(%d,%d)", o.lastPut, seq))
			o.add(o.lastPut, seq-1, lost)
		}
		lastDelivery = max(lastDelivery, meta.Sequence.Consumer)
		o.arrived(seq)
		if seq <= floor || in.wasPut(seq) {
			in.stats.duplicates.Add(1)
			in.ack(ctx, m, false)
			continue
		}
		if err := o.put(ctx, m, seq); err != nil {
			return err
		}
	}
}

// A gap is a range of stream sequences (lo, hi] in which count messages
// were delivered and are awaited again.
type gap struct {
	lo, hi uint64
	left   int
	back   map[uint64]bool
	until  time.Time
}

// orderer puts messages into the queue in stream order across gaps:
// a message above an open gap's lower bound waits until the gap has
// filled (or its wait ran out).
type orderer struct {
	in      *In
	wait    time.Duration
	gaps    []*gap
	later   []jetstream.Msg
	last    uint64 // highest stream sequence delivered
	lastPut uint64 // highest stream sequence put
}

func (o *orderer) add(lo, hi uint64, count int) {
	g := &gap{lo: lo, hi: hi, left: count, back: map[uint64]bool{}, until: time.Now().Add(o.wait)}
	// Gaps that overlap are one: their missing messages are told apart by
	// nothing but their number.
	open := o.gaps[:0]
	for _, h := range o.gaps {
		if h.left > 0 && h.lo <= g.hi && g.lo <= h.hi {
			g.lo, g.hi, g.left = min(g.lo, h.lo), max(g.hi, h.hi), g.left+h.left
			for s := range h.back {
				g.back[s] = true
			}
			continue
		}
		open = append(open, h)
	}
	// What is held already is not missing: its redeliveries do not count.
	for _, m := range o.later {
		if meta, err := m.Metadata(); err == nil {
			g.back[meta.Sequence.Stream] = true
		}
	}
	// Lost deliveries may include redeliveries of the same messages: no
	// more can be awaited than the range holds.
	if free := int(g.hi-g.lo) - len(g.back); g.hi > g.lo && g.left > free {
		g.left = max(free, 0)
	}
	o.gaps = append(open, g)
}

// arrived counts seq towards the gap it falls in.
func (o *orderer) arrived(seq uint64) {
	o.last = max(o.last, seq)
	for _, g := range o.gaps {
		if g.lo < seq && seq <= g.hi && !g.back[seq] {
			g.back[seq] = true // counted once, however often it comes back
			g.left--
		}
	}
}

// floor is the lowest open gap's lower bound: everything at or below it
// may go.
func (o *orderer) floor() (uint64, bool) {
	now := time.Now()
	open := o.gaps[:0]
	for _, g := range o.gaps {
		switch {
		case g.left <= 0:
		case !now.Before(g.until):
			o.in.log.Error("gave up waiting for redeliveries: they will arrive out of order", "missing", g.left, "stream_seqs", fmt.Sprintf("(%d,%d]", g.lo, g.hi))
		default:
			open = append(open, g)
		}
	}
	o.gaps = open
	if len(open) == 0 {
		return 0, false
	}
	f := open[0].lo
	for _, g := range open[1:] {
		f = min(f, g.lo)
	}
	return f, true
}

func (o *orderer) put(ctx context.Context, m jetstream.Msg, seq uint64) error {
	if _, open := o.floor(); !open && len(o.later) == 0 {
		return o.putOne(ctx, m, seq)
	}
	o.later = append(o.later, m)
	return o.release(ctx)
}

func (o *orderer) putOne(ctx context.Context, m jetstream.Msg, seq uint64) error {
	if err := o.in.put(ctx, m, seq); err != nil {
		return err
	}
	o.lastPut = max(o.lastPut, seq)
	return nil
}

// release puts, in stream order, the kept-back messages no open gap holds.
func (o *orderer) release(ctx context.Context) error {
	if len(o.later) == 0 {
		o.floor() // expire gaps
		return nil
	}
	seqOf := func(m jetstream.Msg) uint64 {
		meta, _ := m.Metadata() // checked when it was kept back
		return meta.Sequence.Stream
	}
	slices.SortFunc(o.later, func(a, b jetstream.Msg) int { return cmp.Compare(seqOf(a), seqOf(b)) })
	f, open := o.floor()
	i := 0
	for ; i < len(o.later); i++ {
		m := o.later[i]
		seq := seqOf(m)
		if open && seq > f {
			break
		}
		if o.in.wasPut(seq) {
			o.in.ack(ctx, m, false)
		} else if err := o.putOne(ctx, m, seq); err != nil {
			return err
		}
	}
	o.later = append(o.later[:0], o.later[i:]...)
	return nil
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

// put reports whether stream sequence seq was put already (by this
// bridge, or by a predecessor as its state says).
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
