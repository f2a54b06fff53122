package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// batchMode says how a batch's results are consumed.
type batchMode int

const (
	mapAll    batchMode = iota // all at the end (Map, Submit)
	ordered                    // in index order as they come (Imap)
	unordered                  // in completion order (MapUnordered)
)

// batch is the tasks of one Map, Imap, MapUnordered or Submit call. Its
// fields are guarded by the pool's mutex, except in (immutable) and the
// channels.
type batch[In, Out any] struct {
	in        []In
	out       []Out         // allocated after the tasks are queued: use outLocked
	outReady  chan struct{} // closed once submit has allocated out
	errs      map[int]error // *TaskError by index
	answered  []uint64      // bit per task: its result arrived
	attempts  map[int]int   // starts that ended with the worker's death
	chunk     int
	mode      batchMode
	remaining int
	completed []int // unordered: indexes in completion order
	next      int   // unordered: the consumer's position in completed
	canceled  error // the batch was given up on (ctx, early stop)
	finished  bool  // every task answered, or canceled

	finishedCh chan struct{} // closed with finished
	notify     chan struct{} // a task was answered (ordered, unordered)
	stop       func() bool   // stops the ctx watch
}

func newBatch[In, Out any](p *Pool[In, Out], in []In, mode batchMode) *batch[In, Out] {
	b := &batch[In, Out]{
		in:         in,
		answered:   make([]uint64, (len(in)+63)/64),
		chunk:      p.chunkFor(len(in)),
		mode:       mode,
		remaining:  len(in),
		finishedCh: make(chan struct{}),
		outReady:   make(chan struct{}),
	}
	if mode != mapAll {
		b.notify = make(chan struct{}, 1)
	}
	if len(in) == 0 {
		b.out = []Out{}
		close(b.outReady)
	}
	return b
}

// outLocked returns the batch's results, allocating them if submit has
// not yet (a result reader waits for submit's instead: see awaitOut).
func (b *batch[In, Out]) outLocked() []Out {
	if b.out == nil {
		b.out = make([]Out, len(b.in))
	}
	return b.out
}

func (b *batch[In, Out]) closeLocked() {
	if !b.finished {
		b.finished = true
		close(b.finishedCh)
	}
}

func (b *batch[In, Out]) stopWatch() {
	if b.stop != nil {
		b.stop()
	}
}

// waitIndex waits for task i's result; ok is false (with the reason) when
// the batch was given up on first.
func (b *batch[In, Out]) waitIndex(p *Pool[In, Out], i int) (v Out, err error, ok bool) {
	for {
		p.mu.Lock()
		if b.canceled != nil {
			err := b.canceled
			p.mu.Unlock()
			return v, err, false
		}
		if b.answered[i/64]&(1<<(i%64)) != 0 {
			out := b.outLocked()
			v, err = out[i], b.errs[i]
			var zero Out
			out[i] = zero // the consumer has it now
			p.mu.Unlock()
			return v, err, true
		}
		p.mu.Unlock()
		select {
		case <-b.notify:
		case <-b.finishedCh:
		}
	}
}

// waitNext waits for the next result in completion order.
func (b *batch[In, Out]) waitNext(p *Pool[In, Out]) (i int, v Out, err error, ok bool) {
	for {
		p.mu.Lock()
		if b.canceled != nil {
			err := b.canceled
			p.mu.Unlock()
			return -1, v, err, false
		}
		if b.next < len(b.completed) {
			i = b.completed[b.next]
			b.next++
			out := b.outLocked()
			v, err = out[i], b.errs[i]
			var zero Out
			out[i] = zero
			p.mu.Unlock()
			return i, v, err, true
		}
		p.mu.Unlock()
		select {
		case <-b.notify:
		case <-b.finishedCh:
		}
	}
}

// slot is one place in the pool, filled by a worker process and, when it
// dies or retires, by the next one. Its goroutine (loop) feeds the worker
// and handles its exit; the worker's reader goroutine takes its results.
type slot[In, Out any] struct {
	p         *Pool[In, Out]
	id        int
	w         *worker[In, Out] // written by the slot goroutine under p.mu
	needToken bool             // the last worker crashed: restarts are rate limited
	ins       []In
	buf       []byte
}

// worker is one worker process and its rings.
type worker[In, Out any] struct {
	proc          *Process
	jobs, results *ring.Queue
	seq           uint64 // the next job's sequence number (slot goroutine only)

	// Guarded by p.mu.
	ready      bool              // it sent its ready message: it may be given jobs
	inflight   []*chunk[In, Out] // sent and not wholly answered, in order
	given      int               // tasks given (MaxTasksPerWorker)
	retiring   bool              // its job ring is closed: it exits when done
	deliberate bool              // the pool killed it: its tasks are not to blame
	feeding    bool              // a goroutine is in feedLocked (it may unlock p.mu): the job ring's one producer

	startTimer *time.Timer   // kills it if it is not ready in time (PoolConfig.StartTimeout)
	wake       chan struct{} // a chunk was answered
	readerStop context.CancelFunc
	readerDone chan struct{}
}

// chunk is one job message's tasks, in flight.
type chunk[In, Out any] struct {
	seq      uint64
	work     work[In, Out]
	answered int  // tasks answered, a prefix (results come in order)
	retry    bool // a retried task: its worker holds nothing else
}

// holds reports whether w holds unanswered tasks of b.
func (w *worker[In, Out]) holds(b *batch[In, Out]) bool {
	for _, c := range w.inflight {
		for j := c.answered; j < c.work.len(); j++ {
			if c.work.at(j).b == b {
				return true
			}
		}
	}
	return false
}

var jobRingConfig = ring.Config{Mode: ring.SPSC, Capacity: 2 * inFlight}

// resultSpinShared is how long a reader polls its result ring before it
// sleeps, when the pool outnumbers the CPUs (PoolConfig.Workers+1 >
// runtime.NumCPU()); otherwise the ring's default.
const resultSpinShared = 10 * time.Microsecond

// start starts a worker process for the slot.
func (s *slot[In, Out]) start() (*worker[In, Out], error) {
	p := s.p
	rc := jobRingConfig
	rc.MaxMessage = p.cfg.MaxMessage
	jobs, err := ring.CreateAnonymous(rc)
	if err != nil {
		return nil, err
	}
	results, err := ring.CreateAnonymous(rc)
	if err != nil {
		_ = jobs.Close()
		return nil, err
	}
	if p.params.NoSpin {
		// The workers' CPUs are the parent's: its reader polls the
		// result ring for a short while only, so as not to take them
		// from the worker it waits for (50 µs measured slower, 0 too).
		results.SetSpinTime(resultSpinShared)
	}
	cfg := p.cfg.Process
	cfg.Name = fmt.Sprintf("%s-%d", cfg.Name, s.id)
	pr, err := p.t.f.StartWith(p.ctx, cfg, jobs, results, p.params.String())
	if err != nil {
		_ = jobs.Close()
		_ = results.Close()
		return nil, err
	}
	w := &worker[In, Out]{proc: pr, jobs: jobs, results: results, wake: make(chan struct{}, 1), readerDone: make(chan struct{})}
	w.startTimer = time.AfterFunc(p.cfg.StartTimeout, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !w.ready { // under p.mu: readied cannot mark it ready meanwhile
			poolLogger(p.cfg.Process).Error("proc: pool worker not ready in time; killing it",
				"pid", pr.Pid(), "worker", pr.Name(), "timeout", p.cfg.StartTimeout)
			_ = pr.Kill()
		}
	})
	var rctx context.Context
	rctx, w.readerStop = context.WithCancel(context.Background())
	go s.read(rctx, w)
	return w, nil
}

// stopReader lets the reader take what the (dead) worker published, then
// waits for it to return.
func (w *worker[In, Out]) stopReader() {
	w.readerStop()
	<-w.readerDone
}

func (w *worker[In, Out]) close() {
	_ = w.jobs.Close()
	_ = w.results.Close()
}

// read takes w's result messages until stopped (and drained) or broken.
// A message is read in place and released once delivered: plain results
// go from the ring to the batch's results in one memmove.
func (s *slot[In, Out]) read(ctx context.Context, w *worker[In, Out]) {
	defer close(w.readerDone)
	var r resultReader[Out]
	for {
		msg, err := w.results.Next(ctx)
		if err != nil && ctx.Err() != nil {
			// Stopped (the worker exited): a Next woken by the stop may
			// not look again, so take what is left without waiting.
			var ok bool
			if msg, ok, err = w.results.TryNext(); !ok && err == nil {
				return
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				s.broken(w, err)
			}
			return
		}
		err = s.handle(w, &r, msg)
		if rerr := w.results.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			s.broken(w, err)
			return
		}
	}
}

// resultReader is a reader goroutine's scratch space.
type resultReader[Out any] struct {
	ready bool // the worker's ready message has come
	vals  []Out
	exc   []exception
}

// handle parses and delivers one result message.
func (s *slot[In, Out]) handle(w *worker[In, Out], r *resultReader[Out], msg []byte) error {
	p := s.p
	if !r.ready {
		return s.readied(w, r, msg)
	}
	m, err := parseMessage(msg, magicResult, p.outC.n)
	if err != nil {
		return err
	}
	if r.exc, err = parseExceptions(m, r.exc[:0]); err != nil {
		return err
	}
	defer clear(r.exc)
	var vals []Out // nil: every task is an exception
	switch {
	case p.outC.n > 0 && len(m.payload) > 0:
		vals = viewPlain(m.payload, int(m.n), &r.vals)
	case p.outC.n == 0:
		if r.vals, err = decodeValues(p.outC, m, r.exc, r.vals); err != nil {
			return err
		}
		vals = r.vals
		defer clear(r.vals)
	}
	p.mu.Lock()
	var b *batch[In, Out] // the batch of the chunk answered, when not finished yet
	if len(w.inflight) > 0 && w.inflight[0].work.refs == nil && !w.inflight[0].work.b.finished {
		b = w.inflight[0].work.b
		if b.out == nil {
			// The first results of a Map can come back while submit is
			// still allocating its results (a large slice, page faults
			// and all): wait for that one rather than allocate a second,
			// which would double the Map's garbage and its faults. Only
			// this goroutine removes w's chunks, so b is still the one.
			p.mu.Unlock()
			<-b.outReady
			p.mu.Lock()
		}
	}
	err = s.deliverLocked(w, m, vals, r.exc)
	last := b != nil && b.finished
	p.mu.Unlock()
	if last {
		// The batch's waiter (Map) is runnable, in this P's next slot:
		// let it run now rather than after this goroutine's spin on the
		// result ring, or after another P's thread is scheduled to steal it.
		runtime.Gosched()
	}
	return err
}

// readied handles a worker's first message, which must be its ready
// message: from now on it is given jobs. Until then its slot gives it
// none, so that the first tasks of a new pool, or those that arrive while
// a worker is being replaced, go to workers that can run them at once
// rather than wait (milliseconds) in the job ring of one still starting.
func (s *slot[In, Out]) readied(w *worker[In, Out], r *resultReader[Out], msg []byte) error {
	if err := parseReady(msg, s.p.outC.n); err != nil {
		return fmt.Errorf("worker's first message: %w", err)
	}
	r.ready = true
	p := s.p
	w.startTimer.Stop()
	p.mu.Lock()
	w.ready = true
	s.feedLocked(w)
	p.mu.Unlock()
	select { // the slot goroutine now waits for work for it
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// broken kills a worker whose result ring cannot be read (a corrupt
// message): its tasks end as if it had died.
func (s *slot[In, Out]) broken(w *worker[In, Out], err error) {
	poolLogger(s.p.cfg.Process).Error("proc: pool worker sent a bad result; killing it",
		"pid", w.proc.Pid(), "worker", w.proc.Name(), "err", err)
	_ = w.proc.Kill()
}

// deliverLocked hands the results of message m to their tasks: vals (nil
// when every task is an exception) and exc.
func (s *slot[In, Out]) deliverLocked(w *worker[In, Out], m message, vals []Out, exc []exception) error {
	if len(w.inflight) == 0 {
		return fmt.Errorf("%w: result for job %d, none in flight", errCorruptMsg, m.seq)
	}
	c := w.inflight[0]
	n := int(m.n)
	if m.seq != c.seq || int(m.off) != c.answered || n > c.work.len()-c.answered || n == 0 {
		return fmt.Errorf("%w: results %d..%d of job %d, want from %d of job %d (%d tasks)",
			errCorruptMsg, m.off, int(m.off)+n, m.seq, c.answered, c.seq, c.work.len())
	}
	if c.work.refs != nil || !s.p.bulkLocked(c.work.b, c.work.lo+c.answered, n, vals, exc) {
		k := 0
		for j := range n {
			ref := c.work.at(c.answered + j)
			if k < len(exc) && exc[k].i == j {
				s.p.finishLocked(ref, nil, exc[k].err())
				k++
				continue
			}
			if vals == nil {
				s.p.finishLocked(ref, nil, nil)
			} else {
				s.p.finishLocked(ref, &vals[j], nil)
			}
		}
	}
	c.answered += n
	if c.answered == c.work.len() {
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
		// Refill the worker from here, the reader goroutine, while it
		// runs its other chunk: a hand-off to the slot goroutine would
		// cost a scheduling delay per chunk, during which the worker may
		// run dry. The slot goroutine is woken only when the worker still
		// has room (it then waits for work, or retires it).
		s.feedLocked(w)
		if len(w.inflight) < inFlight || w.retiring {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// loop runs the slot: start a worker, feed it, handle its exit, again,
// until the pool is closed and drained or terminated.
func (s *slot[In, Out]) loop() {
	p := s.p
	defer p.wg.Done()
	for {
		if s.w == nil {
			if !s.restart() {
				return
			}
			continue
		}
		w := s.w
		p.mu.Lock()
		s.feedLocked(w)
		var work <-chan struct{}
		if w.ready && len(w.inflight) < inFlight && !w.retiring {
			work = p.workAvail
		}
		p.mu.Unlock()
		select {
		case <-w.wake:
		case <-work:
		case <-w.proc.Done():
			s.exited(w)
		}
	}
}

// restart starts the slot's next worker, if the pool still needs one. It
// returns false when the slot is done.
func (s *slot[In, Out]) restart() bool {
	p := s.p
	p.mu.Lock()
	if p.terminated != nil || (p.closed && !p.pendingLocked()) {
		p.mu.Unlock()
		return false
	}
	var wait time.Duration
	if s.needToken {
		wait = p.restartWaitLocked()
	}
	changed := p.workAvail
	p.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-changed: // terminated, or closed: look again
		}
		t.Stop()
		return true
	}
	w, err := s.start()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// Fail one chunk with the reason, so that callers hear of it
		// rather than wait for a worker that cannot start.
		s.needToken = true
		c, _ := p.takeLocked(math.MaxInt, true)
		for j := range c.len() {
			p.finishLocked(c.at(j), nil, fmt.Errorf("proc: start a pool worker: %w", err))
		}
		return true
	}
	s.needToken = false
	if p.terminated != nil {
		w.deliberate = true
		_ = w.proc.Kill()
	}
	s.w = w
	return true
}

// feedLocked gives w chunks of pending work until it holds inFlight. The
// slot goroutine and w's reader both call it; it may unlock p.mu, so only
// one of them at a time writes w's job ring (w.feeding), and the one
// inside sees any work that arrives meanwhile when it takes the next chunk.
// A worker that has exited is not fed: the slot goroutine is about to
// account for what it held.
func (s *slot[In, Out]) feedLocked(w *worker[In, Out]) {
	if w.feeding {
		return
	}
	select {
	case <-w.proc.Done():
		return
	default:
	}
	if !w.ready {
		return // it is given jobs once it says it is ready (readied)
	}
	w.feeding = true
	defer func() { w.feeding = false }()
	p := s.p
	for !w.retiring && !w.deliberate && p.terminated == nil && len(w.inflight) < inFlight {
		if len(w.inflight) > 0 && w.inflight[0].retry {
			return // a retried task is held alone
		}
		limit := math.MaxInt
		if m := p.cfg.MaxTasksPerWorker; m > 0 {
			limit = m - w.given
			if limit <= 0 {
				s.retireLocked(w)
				return
			}
		}
		c, retried := p.takeLocked(limit, len(w.inflight) == 0)
		if c.len() == 0 {
			if p.closed && len(w.inflight) == 0 && !p.pendingLocked() {
				s.retireLocked(w)
			}
			return
		}
		if w.given == 0 {
			p.unstarted = 0 // a worker got going (diedUnstartedLocked)
		}
		if sz := p.inC.n; sz > 0 && c.refs == nil && headerSize+c.len()*sz <= p.cfg.MaxMessage {
			// Plain inputs of one batch: the message is written in place
			// in the job ring, one memmove. The chunk is in flight first,
			// so that a death or a cancellation meanwhile accounts for it.
			w.given += c.len()
			w.inflight = append(w.inflight, &chunk[In, Out]{seq: w.seq, work: c})
			seq := w.seq
			w.seq++
			p.mu.Unlock()
			err := s.putPlain(w, seq, c)
			p.mu.Lock()
			if err != nil {
				poolLogger(p.cfg.Process).Error("proc: pool job ring refused a job; killing the worker",
					"pid", w.proc.Pid(), "err", err)
				_ = w.proc.Kill()
				return
			}
			continue
		}
		p.mu.Unlock()
		msg, c, rest, failed := s.encode(w.seq, c)
		p.mu.Lock()
		for _, f := range failed {
			p.finishLocked(f.ref, nil, f.err)
		}
		p.putBackLocked(rest)
		if c.finished() {
			continue
		}
		if p.terminated != nil {
			for j := range c.len() {
				p.finishLocked(c.at(j), nil, p.terminated)
			}
			return
		}
		w.given += c.len()
		w.inflight = append(w.inflight, &chunk[In, Out]{seq: w.seq, work: c, retry: retried})
		w.seq++
		// The ring has room (see putPlain).
		if ok, err := w.jobs.TryPut(msg); !ok || err != nil {
			poolLogger(p.cfg.Process).Error("proc: pool job ring refused a job; killing the worker",
				"pid", w.proc.Pid(), "ok", ok, "err", err)
			_ = w.proc.Kill()
			return
		}
	}
}

// putPlain writes the job message of c, a range of plain inputs that fits
// in a message, in place in w's job ring. The ring has room: it holds at
// most inFlight+1 messages of MaxMessage (the worker releases a job after
// its results are sent) and Cap is at least 2*inFlight.
func (s *slot[In, Out]) putPlain(w *worker[In, Out], seq uint64, c work[In, Out]) error {
	p := s.p
	size := headerSize + c.len()*p.inC.n
	b, err := w.jobs.Reserve(p.ctx, size)
	if err != nil {
		return err
	}
	b, _, _ = appendMessage(p.inC, b[:0], header{magic: magicJob, seq: seq}, c.b.in[c.lo:c.hi], nil)
	if len(b) != size {
		return fmt.Errorf("proc: job message of %d bytes, reserved %d", len(b), size)
	}
	return w.jobs.Commit(size)
}

// retireLocked closes w's job ring: it finishes what it holds and exits.
func (s *slot[In, Out]) retireLocked(w *worker[In, Out]) {
	if !w.retiring {
		w.retiring = true
		_ = w.jobs.CloseWrite()
	}
}

type failedTask[In, Out any] struct {
	ref taskRef[In, Out]
	err error
}

// encode makes the job message for c, cutting it to fit in a message:
// it returns the message and the tasks in it, the rest of c (to put back)
// and the tasks that cannot be sent at all.
func (s *slot[In, Out]) encode(seq uint64, c work[In, Out]) (msg []byte, sent, rest work[In, Out], failed []failedTask[In, Out]) {
	p := s.p
	encErr := func(r taskRef[In, Out], err error) failedTask[In, Out] {
		return failedTask[In, Out]{r, &EncodeError{Index: r.i, Type: fmt.Sprintf("%T", r.b.in[r.i]), Err: err}}
	}
	for c.len() > 0 {
		var vs []In
		if c.refs == nil {
			vs = c.b.in[c.lo:c.hi] // b.in is not written after submit
		} else {
			s.ins = grow(s.ins, len(c.refs))
			for j, r := range c.refs {
				s.ins[j] = r.b.in[r.i]
			}
			vs = s.ins
		}
		b, exc, err := appendMessage(p.inC, s.buf[:0], header{magic: magicJob, seq: seq}, vs, nil)
		clear(s.ins)
		if hasStatus(exc, stEncode) {
			// Some inputs cannot be encoded: fail them, try the others.
			keep := []taskRef[In, Out]{}
			k := 0
			for j := range c.len() {
				if k < len(exc) && exc[k].i == j {
					k++
					if exc[k-1].status == stEncode {
						failed = append(failed, encErr(c.at(j), errors.New(exc[k-1].text)))
						continue
					}
				}
				keep = append(keep, c.at(j))
			}
			c = work[In, Out]{refs: keep}
			continue
		}
		if err == nil && len(b) <= p.cfg.MaxMessage {
			s.buf = b[:0]
			return b, c, rest, failed
		}
		if c.len() == 1 {
			if err == nil {
				failed = append(failed, failedTask[In, Out]{c.at(0), fmt.Errorf("%w: an input of %d bytes encoded (PoolConfig.MaxMessage %d)",
					ring.ErrTooLarge, len(b)-headerSize, p.cfg.MaxMessage)})
			} else {
				failed = append(failed, encErr(c.at(0), err))
			}
			return nil, work[In, Out]{}, rest, failed
		}
		h := c.len() / 2
		rest = joinWork(c.slice(h, c.len()), rest)
		c = c.slice(0, h)
	}
	return nil, work[In, Out]{}, rest, failed
}

// joinWork puts a and b (which follows it) back together.
func joinWork[In, Out any](a, b work[In, Out]) work[In, Out] {
	if b.len() == 0 {
		return a
	}
	if a.refs == nil && b.refs == nil && a.b == b.b && a.hi == b.lo {
		return work[In, Out]{b: a.b, lo: a.lo, hi: b.hi}
	}
	refs := make([]taskRef[In, Out], 0, a.len()+b.len())
	for j := range a.len() {
		refs = append(refs, a.at(j))
	}
	for j := range b.len() {
		refs = append(refs, b.at(j))
	}
	return work[In, Out]{refs: refs}
}

// exited handles the exit of w: what it published is delivered, the tasks
// it still held end with a *WorkerDiedError (or are retried, or put back
// when the pool killed it), and the slot is emptied for the next worker.
func (s *slot[In, Out]) exited(w *worker[In, Out]) {
	p := s.p
	w.startTimer.Stop()
	w.stopReader()
	werr := w.proc.Wait()
	code, sig := 0, syscall.Signal(0)
	var ee *ExitError
	if errors.As(werr, &ee) {
		code, sig = ee.Code, ee.Signal
	}
	p.mu.Lock()
	if ee != nil && !w.deliberate && (ee.Err != "" || ee.Panic != "") {
		// The worker's own loop failed (not a task): say why.
		poolLogger(p.cfg.Process).Error("proc: pool worker failed", "pid", ee.Pid, "worker", ee.Name, "err", ee.Err, "panic", ee.Panic)
	}
	retired := w.retiring && werr == nil // told to go, and went cleanly
	if w.given == 0 && !w.deliberate && !retired && p.terminated == nil && p.ctx.Err() == nil {
		s.diedUnstartedLocked(w, werr, code, sig)
	}
	for _, c := range w.inflight {
		left := c.work.slice(c.answered, c.work.len())
		switch {
		case p.terminated != nil:
			for j := range left.len() {
				p.finishLocked(left.at(j), nil, p.terminated)
			}
		case w.deliberate || p.ctx.Err() != nil:
			// Killed by the pool, or by its context's end before terminate
			// ran (it fails what is pending once it takes the lock).
			p.putBackLocked(left)
		default:
			for j := range left.len() {
				ref := left.at(j)
				b := ref.b
				if b.finished {
					continue
				}
				if b.attempts == nil {
					b.attempts = map[int]int{}
				}
				b.attempts[ref.i]++
				if a := b.attempts[ref.i]; a <= p.cfg.Retries {
					p.retry = append(p.retry, ref)
				} else {
					p.finishLocked(ref, nil, &WorkerDiedError{Pid: w.proc.Pid(), Code: code, Signal: sig, Index: ref.i, Attempts: a})
				}
			}
			p.broadcastLocked()
		}
	}
	w.inflight = nil
	s.needToken = !w.deliberate && !retired
	s.w = nil
	p.mu.Unlock()
	w.close()
}

// diedUnstartedLocked handles the death of w before it was given a task
// (while starting, or ready and idle). One such death costs nothing: its
// tasks wait for the next worker. But workers that keep dying before they
// take a task (a crash in an init function, a bad ready message) would be
// replaced for ever while every task waited, so once maxUnstarted(p) of
// them have died in a row, with no worker given its first task between
// them, each further one fails a chunk of the pending tasks with a
// *WorkerDiedError, not retried: they never ran, and a retry would only
// wait for another start that fails.
func (s *slot[In, Out]) diedUnstartedLocked(w *worker[In, Out], werr error, code int, sig syscall.Signal) {
	p := s.p
	p.unstarted++
	if p.unstarted <= maxUnstarted(len(p.slots)) {
		return
	}
	c, _ := p.takeLocked(math.MaxInt, true)
	if c.len() == 0 {
		return
	}
	poolLogger(p.cfg.Process).Error("proc: pool workers keep dying before they take a task; failing tasks",
		"pid", w.proc.Pid(), "worker", w.proc.Name(), "err", werr, "deaths", p.unstarted, "tasks", c.len())
	for j := range c.len() {
		ref := c.at(j)
		if ref.b.finished {
			continue
		}
		p.finishLocked(ref, nil, &WorkerDiedError{Pid: w.proc.Pid(), Code: code, Signal: sig, Index: ref.i,
			Attempts: ref.b.attempts[ref.i], BeforeStart: true})
	}
}

// maxUnstarted is how many workers of a pool of n may die in a row before
// they take a task without costing one (diedUnstartedLocked).
func maxUnstarted(n int) int { return 2 * n }

func poolLogger(c Config) *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func hasStatus(exc []exception, st byte) bool {
	for i := range exc {
		if exc[i].status == st {
			return true
		}
	}
	return false
}
