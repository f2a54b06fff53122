package proc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// PoolConfig configures a Pool. The zero value is a pool of
// runtime.NumCPU() workers with automatic chunking and no retries.
type PoolConfig struct {
	// Workers is the number of worker processes; default runtime.NumCPU().
	Workers int

	// ChunkSize is how many tasks travel in one job message. 0 chooses
	// one per call: len(inputs)/(4*Workers) (Python's rule), at least 1
	// and at most 1024, or 8192 for plain inputs (as many as fit in
	// MaxMessage), so that a million tiny tasks are a hundred ring
	// round trips, not a million, while a worker's death costs at most
	// two chunks. A chunk is also cut where its encoding would exceed
	// MaxMessage.
	ChunkSize int

	// MaxTasksPerWorker, when positive, retires a worker after it has been
	// given that many tasks: it finishes them and exits, and a new worker
	// takes its place (Python's maxtasksperchild). 0 means no limit.
	MaxTasksPerWorker int

	// Retries is how many more times a task is started after the worker
	// running it died (only for idempotent functions: the task may have
	// run partly, or wholly, before the death). A retried task travels
	// alone, to a worker that holds nothing else until it answers, so a
	// task that kills its worker every time takes only itself down: the
	// tasks that shared the worker with its first attempt lose that
	// attempt, never a retry. 0 (the default): the task ends with a
	// *WorkerDiedError.
	Retries int

	// Codec encodes inputs and outputs that are not fixed-size plain
	// values; nil means the task's codec (ring.Gob unless the task was
	// registered WithCodec). The workers must find the same codec, so it
	// must be ring.Gob, ring.JSON or the task's own.
	Codec ring.Codec

	// MaxMessage bounds one job or result message in bytes (default 256
	// KiB): a chunk is cut to fit, and a single input or result that does
	// not fit fails its task with an error wrapping ring.ErrTooLarge.
	MaxMessage int

	// StartTimeout bounds how long a worker may take from its start to
	// its ready message (its exec, its Go runtime and package
	// initialisation, opening its rings) before the pool kills it, as
	// one that died before it took a task: a worker stuck in an init
	// function does not hold a Map, Close or Wait for ever. 0 means 30 s.
	StartTimeout time.Duration

	// Process configures the worker processes: their output, their
	// logger, their environment. Name defaults to the task's name; each
	// worker is named Name-N.
	Process Config
}

const (
	defaultMaxMessage   = 256 << 10
	defaultStartTimeout = 30 * time.Second
	maxAutoChunk        = 1024 // encoded values
	maxAutoChunkPlain   = 8192 // raw bytes: cheap to cut and copy
	inFlight            = 2    // chunks a worker holds at once: one running, one queued
	killGrace           = 20 * time.Millisecond
	restartBurst        = 10
	restartEvery        = 100 * time.Millisecond // 10 restarts a second after the burst
)

// Pool is a pool of worker processes running one Task, the analogue of
// Python's multiprocessing.Pool. Its methods are safe for concurrent use;
// any number of Map, Imap, MapUnordered and Submit calls may run at once
// and share the workers (first come, first served, a chunk at a time).
//
// Each worker has two SPSC rings of its own in anonymous segments, one
// for jobs and one for results, and holds at most two chunks at a time,
// so the pool always knows which tasks a worker holds: when it dies,
// exactly those end with a *WorkerDiedError (or are retried), it is
// replaced, and everything else goes on.
type Pool[In, Out any] struct {
	t       *Task[In, Out]
	cfg     PoolConfig
	inC     valueCodec[In]
	outC    valueCodec[Out]
	params  taskParams
	ctx     context.Context // the pool's life: cancelling it kills the workers
	cancel  context.CancelFunc
	stopCtx func() bool

	mu         sync.Mutex
	runs       []run[In, Out]     // pending work, first come first served
	retry      []taskRef[In, Out] // tasks to start again, one per chunk, before runs
	workAvail  chan struct{}      // closed (and replaced) when work arrives or the pool closes
	closed     bool               // Close or Terminate: no new work
	terminated error              // Terminate, or the pool's context: why
	slots      []*slot[In, Out]
	tokens     float64 // restart budget
	tokensAt   time.Time
	duplicates int // results for tasks already answered (never, unless a bug)
	unstarted  int // workers dead in a row before they were given a task

	wg   sync.WaitGroup // slot goroutines
	done chan struct{}  // closed when every slot goroutine has returned
}

// run is a range of pending tasks of one batch.
type run[In, Out any] struct {
	b      *batch[In, Out]
	lo, hi int
}

// taskRef names one task.
type taskRef[In, Out any] struct {
	b *batch[In, Out]
	i int
}

// NewPool starts cfg.Workers worker processes running t, in parallel, and
// returns when they are all started (their execs done; tasks go to each
// worker once it is ready, so a Map need not wait for the slowest). ctx bounds the pool's life: cancelling it
// terminates the pool as Terminate does. A worker that cannot be started
// is an error, and the others are killed.
func NewPool[In, Out any](ctx context.Context, t *Task[In, Out], cfg PoolConfig) (*Pool[In, Out], error) {
	if t == nil {
		return nil, errors.New("proc: NewPool with a nil Task")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	switch {
	case cfg.Workers < 0:
		return nil, fmt.Errorf("proc: PoolConfig.Workers %d is negative", cfg.Workers)
	case cfg.ChunkSize < 0:
		return nil, fmt.Errorf("proc: PoolConfig.ChunkSize %d is negative", cfg.ChunkSize)
	case cfg.MaxTasksPerWorker < 0:
		return nil, fmt.Errorf("proc: PoolConfig.MaxTasksPerWorker %d is negative", cfg.MaxTasksPerWorker)
	case cfg.Retries < 0:
		return nil, fmt.Errorf("proc: PoolConfig.Retries %d is negative", cfg.Retries)
	case cfg.StartTimeout < 0:
		return nil, fmt.Errorf("proc: PoolConfig.StartTimeout %v is negative", cfg.StartTimeout)
	case cfg.MaxMessage < 0 || (cfg.MaxMessage > 0 && cfg.MaxMessage < 4<<10):
		return nil, fmt.Errorf("proc: PoolConfig.MaxMessage %d: want 0 (default) or at least 4096", cfg.MaxMessage)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = defaultMaxMessage
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.Process.Name == "" {
		cfg.Process.Name = t.Name()
	}
	name, err := t.codecName(cfg.Codec)
	if err != nil {
		return nil, err
	}
	codec, _ := t.codecNamed(name)
	p := &Pool[In, Out]{
		t:         t,
		cfg:       cfg,
		inC:       codecFor[In](codec),
		outC:      codecFor[Out](codec),
		params:    taskParams{Codec: name, NoSpin: cfg.Workers+1 > runtime.NumCPU()},
		workAvail: make(chan struct{}),
		tokens:    restartBurst,
		tokensAt:  time.Now(),
		done:      make(chan struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.slots = make([]*slot[In, Out], cfg.Workers)
	errs := make([]error, cfg.Workers)
	var wg sync.WaitGroup
	for i := range p.slots {
		s := &slot[In, Out]{p: p, id: i}
		p.slots[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.w, errs[i] = s.start()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.cancel()
		for _, s := range p.slots {
			if s.w != nil {
				s.w.startTimer.Stop()
				_ = s.w.proc.Kill()
				<-s.w.proc.Done()
				s.w.stopReader()
				s.w.close()
			}
		}
		return nil, fmt.Errorf("proc: start pool of %s: %w", t.Name(), err)
	}
	p.wg.Add(len(p.slots))
	for _, s := range p.slots {
		go s.loop()
	}
	go func() {
		p.wg.Wait()
		close(p.done)
	}()
	p.stopCtx = context.AfterFunc(p.ctx, func() { p.terminate(context.Cause(p.ctx)) })
	return p, nil
}

// Workers returns the process ids of the pool's live workers, in no
// particular order.
func (p *Pool[In, Out]) Workers() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, s := range p.slots {
		if s.w != nil {
			select {
			case <-s.w.proc.Done():
			default:
				pids = append(pids, s.w.proc.Pid())
			}
		}
	}
	return pids
}

// Close stops the pool from taking new work, as Python's Pool.close():
// tasks already given (by Map, Imap, MapUnordered, Submit calls that
// returned or are running) all run and their results are delivered as
// usual; then the workers exit. Calls that give work afterwards fail with
// ErrClosed. Close does not wait: Wait does.
func (p *Pool[In, Out]) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.broadcastLocked()
	}
	return nil
}

// Wait waits, after Close or Terminate, until every worker has exited and
// the pool's goroutines have returned, as Python's Pool.join(). Every task
// given before Close has its result by then (results live in the parent:
// nothing is lost by closing with results pending). Wait before Close
// returns an error at once instead of waiting for ever.
func (p *Pool[In, Out]) Wait() error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		return errors.New("proc: Pool.Wait before Close or Terminate")
	}
	<-p.done
	p.stopCtx()
	p.cancel()
	return nil
}

// Terminate kills the workers now, as Python's Pool.terminate(), and
// returns when they are reaped and the pool's goroutines have returned.
// Tasks not finished end with an error wrapping ErrClosed; Map calls in
// progress return them.
func (p *Pool[In, Out]) Terminate() error {
	p.terminate(ErrClosed)
	<-p.done
	p.stopCtx()
	p.cancel()
	return nil
}

func (p *Pool[In, Out]) terminate(why error) {
	p.mu.Lock()
	if p.terminated == nil {
		if !errors.Is(why, ErrClosed) {
			why = fmt.Errorf("%w: %w", ErrClosed, why)
		}
		p.terminated, p.closed = why, true
		for _, r := range p.runs {
			for i := r.lo; i < r.hi; i++ {
				p.finishLocked(taskRef[In, Out]{r.b, i}, nil, why)
			}
		}
		p.runs = nil
		for _, ref := range p.retry {
			p.finishLocked(ref, nil, why)
		}
		p.retry = nil
		for _, s := range p.slots {
			if s.w != nil {
				s.w.deliberate = true
				_ = s.w.proc.Kill()
			}
		}
		p.broadcastLocked()
	}
	p.mu.Unlock()
}

// broadcastLocked wakes every slot waiting for work.
func (p *Pool[In, Out]) broadcastLocked() {
	close(p.workAvail)
	p.workAvail = make(chan struct{})
}

// chunkFor is the automatic chunk size for n inputs.
func (p *Pool[In, Out]) chunkFor(n int) int {
	if p.cfg.ChunkSize > 0 {
		return p.cfg.ChunkSize
	}
	c := n / (4 * p.cfg.Workers)
	limit := maxAutoChunk
	if p.inC.size() > 0 {
		limit = maxAutoChunkPlain
	}
	return max(1, min(c, limit))
}

// submit queues the tasks of in as a new batch.
func (p *Pool[In, Out]) submit(ctx context.Context, in []In, mode batchMode) (*batch[In, Out], error) {
	if ctx == nil {
		ctx = context.Background()
	}
	b := newBatch(p, in, mode)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if len(in) == 0 {
		b.closeLocked()
		p.mu.Unlock()
		return b, nil
	}
	p.runs = append(p.runs, run[In, Out]{b: b, lo: 0, hi: len(in)})
	p.broadcastLocked()
	p.mu.Unlock()
	if ctx.Done() != nil { // a context that is never done needs no watch
		b.stop = context.AfterFunc(ctx, func() { p.cancelBatch(b, context.Cause(ctx)) })
	}
	// The results are allocated (and zeroed) now, while the workers run
	// the first chunks, not before: for a large Map that is tens of
	// microseconds off the critical path, more when its pages must be
	// faulted in. A result reader that gets there first waits for this
	// allocation (handle); other paths allocate them themselves (outLocked).
	out := make([]Out, len(in))
	p.mu.Lock()
	if b.out == nil {
		b.out = out
	}
	p.mu.Unlock()
	close(b.outReady)
	return b, nil
}

// cancelBatch gives up on the rest of b: its pending tasks are dropped,
// its waiters released with err, and the workers still running its tasks
// after a short grace are killed (and replaced; the other tasks they held
// are started again elsewhere, not counted as attempts).
func (p *Pool[In, Out]) cancelBatch(b *batch[In, Out], err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b.finished {
		return
	}
	b.canceled = err
	b.closeLocked()
	held := false
	for _, s := range p.slots {
		if s.w != nil && s.w.holds(b) {
			held = true
		}
	}
	if !held {
		return
	}
	time.AfterFunc(killGrace, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, s := range p.slots {
			if s.w != nil && s.w.holds(b) {
				s.w.deliberate = true
				_ = s.w.proc.Kill()
			}
		}
	})
}

// work is a chunk's tasks: a range of one batch, or single retried tasks.
type work[In, Out any] struct {
	b      *batch[In, Out]
	lo, hi int
	refs   []taskRef[In, Out] // when not nil: these tasks instead of the range
}

func (w work[In, Out]) len() int {
	if w.refs != nil {
		return len(w.refs)
	}
	return w.hi - w.lo
}

func (w work[In, Out]) at(j int) taskRef[In, Out] {
	if w.refs != nil {
		return w.refs[j]
	}
	return taskRef[In, Out]{w.b, w.lo + j}
}

// finished reports whether no task of w is wanted any more: w is empty,
// or every batch it holds tasks of has ended (cancelled, for one).
func (w work[In, Out]) finished() bool {
	if w.refs == nil {
		return w.len() == 0 || w.b.finished
	}
	for _, r := range w.refs {
		if !r.b.finished {
			return false
		}
	}
	return true
}

// slice returns tasks j..k of w.
func (w work[In, Out]) slice(j, k int) work[In, Out] {
	if w.refs != nil {
		return work[In, Out]{refs: w.refs[j:k:k]}
	}
	return work[In, Out]{b: w.b, lo: w.lo + j, hi: w.lo + k}
}

// takeLocked removes the next chunk of pending work, at most limit tasks,
// and returns it (empty when there is none). Retried tasks come first,
// one per chunk, and only for an idle worker (one that holds nothing):
// retried is true for such a chunk, which its worker must hold alone
// until it is answered, so that a task that kills its worker only ever
// takes itself down again. A busy worker gets nothing while a retry
// waits: it drains, and takes the retry once idle.
func (p *Pool[In, Out]) takeLocked(limit int, idle bool) (w work[In, Out], retried bool) {
	for len(p.retry) > 0 {
		ref := p.retry[0]
		if ref.b.finished {
			p.retry = p.retry[1:]
			continue
		}
		if !idle {
			return work[In, Out]{}, false
		}
		p.retry = p.retry[1:]
		return work[In, Out]{refs: []taskRef[In, Out]{ref}}, true
	}
	for len(p.runs) > 0 {
		r := &p.runs[0]
		if r.b.finished || r.lo == r.hi {
			p.runs[0] = run[In, Out]{}
			p.runs = p.runs[1:]
			continue
		}
		k := min(limit, r.b.chunk, r.hi-r.lo)
		if sz := p.inC.size(); sz > 0 {
			// Inputs and (plain) results fit in a message each.
			k = min(k, max(1, (p.cfg.MaxMessage-headerSize)/max(sz, p.outC.size())))
		}
		w := work[In, Out]{b: r.b, lo: r.lo, hi: r.lo + k}
		r.lo += k
		if r.lo == r.hi {
			p.runs[0] = run[In, Out]{}
			p.runs = p.runs[1:]
		}
		return w, false
	}
	return work[In, Out]{}, false
}

// pendingLocked reports whether work waits for a worker.
func (p *Pool[In, Out]) pendingLocked() bool {
	for _, r := range p.retry {
		if !r.b.finished {
			return true
		}
	}
	for _, r := range p.runs {
		if !r.b.finished && r.lo < r.hi {
			return true
		}
	}
	return false
}

// putBackLocked returns tasks to the front of the pending work: the rest
// of a chunk cut short to fit in a message, or the tasks of a worker the
// pool killed. Retried tasks go back to the retry list.
func (p *Pool[In, Out]) putBackLocked(w work[In, Out]) {
	if w.len() == 0 {
		return
	}
	if p.terminated != nil {
		for j := range w.len() {
			p.finishLocked(w.at(j), nil, p.terminated)
		}
		return
	}
	if w.refs != nil {
		p.retry = append(append([]taskRef[In, Out](nil), w.refs...), p.retry...)
	} else {
		p.runs = append([]run[In, Out]{{b: w.b, lo: w.lo, hi: w.hi}}, p.runs...)
	}
	p.broadcastLocked()
}

// restartWaitLocked takes a restart token, or says how long to wait for one.
func (p *Pool[In, Out]) restartWaitLocked() time.Duration {
	now := time.Now()
	p.tokens = min(restartBurst, p.tokens+float64(now.Sub(p.tokensAt))/float64(restartEvery))
	p.tokensAt = now
	if p.tokens >= 1 {
		p.tokens--
		return 0
	}
	return time.Duration((1 - p.tokens) * float64(restartEvery))
}

// finishLocked records a task's end: its value (nil: zero) or its error.
func (p *Pool[In, Out]) finishLocked(ref taskRef[In, Out], v *Out, err error) {
	b := ref.b
	if b.finished {
		return
	}
	if b.answered[ref.i/64]&(1<<(ref.i%64)) != 0 {
		p.duplicates++
		return
	}
	b.answered[ref.i/64] |= 1 << (ref.i % 64)
	if v != nil {
		b.outLocked()[ref.i] = *v
	}
	if err != nil {
		if b.errs == nil {
			b.errs = map[int]error{}
		}
		b.errs[ref.i] = &TaskError{Index: ref.i, Err: err}
	}
	if b.mode == unordered {
		b.completed = append(b.completed, ref.i)
	}
	b.doneLocked(1)
}

// doneLocked counts n tasks of b as answered: the batch closes with its
// last one, and a streaming caller (Imap, MapUnordered, Submit) is told
// that there is something to take.
func (b *batch[In, Out]) doneLocked(n int) {
	b.remaining -= n
	if b.remaining == 0 {
		b.closeLocked()
	} else if b.mode != mapAll {
		select {
		case b.notify <- struct{}{}:
		default:
		}
	}
}

// Map runs the task on every input and returns the results in input
// order, as Python's Pool.map. Every task runs, whatever the others do;
// the error is nil, or errors.Join of one *TaskError per failed task in
// index order (whose result is Out's zero value). When ctx is done first,
// Map stops at once: it returns ctx's error (and the results that had
// arrived), its pending tasks are dropped and the workers still running
// its tasks are killed and replaced. After Close, Map returns ErrClosed.
//
// For a function of several arguments (Python's starmap), make In a
// struct, or a Pair.
func (p *Pool[In, Out]) Map(ctx context.Context, in []In) ([]Out, error) {
	b, err := p.submit(ctx, in, mapAll)
	if err != nil {
		return nil, err
	}
	<-b.finishedCh
	b.stopWatch()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := b.outLocked()
	if b.canceled != nil {
		return out, b.canceled
	}
	if len(b.errs) == 0 {
		return out, nil
	}
	errs := make([]error, 0, len(b.errs))
	for i := range out {
		if e, ok := b.errs[i]; ok {
			errs = append(errs, e)
		}
	}
	return out, errors.Join(errs...)
}

// Imap runs the task on every input and yields the results in input order
// as they become available, as Python's Pool.imap: each with nil or its
// *TaskError. The tasks are given to the pool when the iteration starts.
// When ctx is done (or the pool is closed before the tasks could be
// given), the iteration yields the zero Out with that error once and
// stops. Stopping the iteration early gives up on the remaining tasks as a
// cancelled ctx does.
func (p *Pool[In, Out]) Imap(ctx context.Context, in []In) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		b, err := p.submit(ctx, in, ordered)
		if err != nil {
			yield(zero, err)
			return
		}
		defer p.giveUp(b)
		for i := range in {
			v, err, ok := b.waitIndex(p, i)
			if !ok {
				yield(zero, err)
				return
			}
			if !yield(v, err) {
				return
			}
		}
	}
}

// Result is one task's outcome from MapUnordered: its value, or its error
// (a *TaskError).
type Result[Out any] struct {
	Value Out
	Err   error
}

// MapUnordered runs the task on every input and yields each result as soon
// as it arrives, with the index of its input, as Python's
// Pool.imap_unordered: every index exactly once. When ctx is done (or the
// pool is closed before the tasks could be given), it yields index -1 with
// that error once and stops. Stopping the iteration early gives up on the
// remaining tasks as a cancelled ctx does.
func (p *Pool[In, Out]) MapUnordered(ctx context.Context, in []In) iter.Seq2[int, Result[Out]] {
	return func(yield func(int, Result[Out]) bool) {
		b, err := p.submit(ctx, in, unordered)
		if err != nil {
			yield(-1, Result[Out]{Err: err})
			return
		}
		defer p.giveUp(b)
		for range in {
			i, v, err, ok := b.waitNext(p)
			if !ok {
				yield(-1, Result[Out]{Err: err})
				return
			}
			if !yield(i, Result[Out]{Value: v, Err: err}) {
				return
			}
		}
	}
}

// giveUp ends an iteration: tasks it did not wait for are abandoned.
func (p *Pool[In, Out]) giveUp(b *batch[In, Out]) {
	b.stopWatch()
	p.cancelBatch(b, errStopped)
}

// Submit gives one task to the pool and returns its Future at once, as
// Python's Pool.apply_async. Cancelling ctx abandons the task (killing its
// worker if it is running). After Close the Future holds ErrClosed.
func (p *Pool[In, Out]) Submit(ctx context.Context, in In) *Future[Out] {
	f := &Future[Out]{done: make(chan struct{})}
	b, err := p.submit(ctx, []In{in}, mapAll)
	if err != nil {
		f.err = err
		close(f.done)
		return f
	}
	go func() {
		<-b.finishedCh
		b.stopWatch()
		p.mu.Lock()
		switch {
		case b.canceled != nil:
			f.err = b.canceled
		case b.errs[0] != nil:
			f.err = b.errs[0].(*TaskError).Err
		default:
			f.v = b.outLocked()[0]
		}
		p.mu.Unlock()
		close(f.done)
	}()
	return f
}

// Future is the pending result of a task given with Submit.
type Future[Out any] struct {
	done chan struct{}
	v    Out
	err  error
}

// Done returns a channel closed when the result is ready.
func (f *Future[Out]) Done() <-chan struct{} { return f.done }

// Get waits for the task's result and returns it: its value, or its error
// (a *WorkerDiedError, a *PanicError, the function's error, ErrClosed
// after Terminate, or Submit's ctx's error when that was cancelled).
// When ctx is done first, Get returns ctx's error; the task goes on.
func (f *Future[Out]) Get(ctx context.Context) (Out, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-f.done:
		return f.v, f.err
	default:
	}
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// Pair is two arguments as one input, for Starmap-style tasks of two
// arguments:
//
//	var multiply = proc.RegisterTask("multiply", func(ctx context.Context, p proc.Pair[int, int]) (int, error) {
//		return p.A * p.B, nil
//	})
//	out, err := pool.Map(ctx, []proc.Pair[int, int]{{1, 2}, {3, 4}, {5, 6}}) // [2 12 30]
//
// A Pair of plain types is plain, so it travels as raw bytes.
type Pair[A, B any] struct {
	A A
	B B
}

// bulkLocked is finishLocked for tasks lo..lo+n of b all at once: vals
// are their values (nil: none), exc the tasks among them that have none
// (indexed from lo). The bitmap is handled a word at a time, the values
// copied in one go, and no per-task channel operation is made. It returns
// false (doing nothing) when a task was answered already: the general path
// then counts the duplicate.
func (p *Pool[In, Out]) bulkLocked(b *batch[In, Out], lo, n int, vals []Out, exc []exception) bool {
	if b.finished {
		return true
	}
	hi := lo + n
	if anyBit(b.answered, lo, hi) {
		return false
	}
	setBits(b.answered, lo, hi)
	dst := b.outLocked()[lo:hi]
	if vals != nil {
		copy(dst, vals)
	} else {
		clear(dst)
	}
	for i := range exc {
		var zero Out
		dst[exc[i].i] = zero
		if err := exc[i].err(); err != nil {
			if b.errs == nil {
				b.errs = map[int]error{}
			}
			b.errs[lo+exc[i].i] = &TaskError{Index: lo + exc[i].i, Err: err}
		}
	}
	if b.mode == unordered {
		for i := lo; i < hi; i++ {
			b.completed = append(b.completed, i)
		}
	}
	b.doneLocked(n)
	return true
}

// anyBit reports whether any of bits lo..hi-1 of bm is set.
func anyBit(bm []uint64, lo, hi int) bool {
	for lo < hi {
		w, b := lo/64, lo%64
		k := min(64-b, hi-lo)
		mask := ^uint64(0) >> (64 - k) << b
		if bm[w]&mask != 0 {
			return true
		}
		lo += k
	}
	return false
}

// setBits sets bits lo..hi-1 of bm.
func setBits(bm []uint64, lo, hi int) {
	for lo < hi {
		w, b := lo/64, lo%64
		k := min(64-b, hi-lo)
		bm[w] |= ^uint64(0) >> (64 - k) << b
		lo += k
	}
}
