package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/shmkit/shmkit/ring"
)

// Task is a function registered for pools with RegisterTask: typed input
// and output, run by the workers of a Pool.
type Task[In, Out any] struct {
	f     *Func
	fn    func(ctx context.Context, in In) (Out, error)
	codec ring.Codec
}

// RegisterTask registers fn under name for pools, with the same rules as
// Register: call it at package level or in init, before Main runs, so that
// the re-executed worker knows it too:
//
//	var square = proc.RegisterTask("square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
// In and Out that are fixed-size plain values (no pointers, strings,
// slices, maps, interfaces: see package internal/typeinfo's rules, the same
// as ring.Typed's) travel through the pool's rings as their raw bytes; any
// other type is encoded, a chunk of values at a time, with the task's codec
// (ring.Gob unless WithCodec says otherwise, or PoolConfig.Codec). The
// worker calls fn once per input, under recover: a panic becomes that
// task's *PanicError and the worker goes on with the next task.
func RegisterTask[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error)) *Task[In, Out] {
	if fn == nil {
		panic("proc: RegisterTask with a nil function")
	}
	t := &Task[In, Out]{fn: fn, codec: ring.Gob}
	t.f = Register(name, t.serve)
	return t
}

// Name returns the name t was registered under.
func (t *Task[In, Out]) Name() string { return t.f.Name() }

// WithCodec sets the codec for the task's non-plain inputs and outputs and
// returns t. Call it where the task is registered, at package level, so
// that the workers (which re-run that code) use the same codec:
//
//	var parse = proc.RegisterTask("parse", parseFn).WithCodec(ring.JSON)
func (t *Task[In, Out]) WithCodec(c ring.Codec) *Task[In, Out] {
	if c == nil {
		c = ring.Gob
	}
	t.codec = c
	return t
}

// taskParams is the worker's third argument, passed as the string String
// returns: a string is the one value gob decodes without building a
// decoder for a type by reflection, which in a new process (a worker
// about to start) costs tens of microseconds.
type taskParams struct {
	Codec string // "gob", "json" or "task" (the codec set with WithCodec)

	// NoSpin: the worker sleeps at once when its job ring is empty
	// instead of polling it first (ring.DefaultSpinTime). The pool sets
	// it when its workers and the parent outnumber the CPUs: a worker
	// waits for a job only while the parent is sending it, and polling
	// would take the CPU the parent needs to do so.
	NoSpin bool
}

// String returns p as the worker receives it: the codec's name, then
// " nospin" when NoSpin is set.
func (p taskParams) String() string {
	if p.NoSpin {
		return p.Codec + " nospin"
	}
	return p.Codec
}

// parseTaskParams parses what String returned.
func parseTaskParams(s string) (taskParams, error) {
	var p taskParams
	f := strings.Split(s, " ")
	switch {
	case len(f) == 2 && f[1] == "nospin":
		p.NoSpin = true
	case len(f) != 1:
		return p, fmt.Errorf("proc: bad task parameters %q", s)
	}
	if f[0] == "" {
		return p, fmt.Errorf("proc: bad task parameters %q: no codec", s)
	}
	p.Codec = f[0]
	return p, nil
}

// codecName names c for a worker, which must find the same codec: one of
// the ring package's, or the task's own.
func (t *Task[In, Out]) codecName(c ring.Codec) (string, error) {
	switch {
	case c == nil:
		return "task", nil
	case sameCodec(c, t.codec):
		return "task", nil
	case sameCodec(c, ring.Gob):
		return "gob", nil
	case sameCodec(c, ring.JSON):
		return "json", nil
	}
	return "", fmt.Errorf("proc: PoolConfig.Codec %T is neither ring.Gob, ring.JSON nor the task's codec: "+
		"set it with Task.WithCodec where the task is registered, so that the workers use it too", c)
}

func sameCodec(a, b ring.Codec) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	if !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

func (t *Task[In, Out]) codecNamed(name string) (ring.Codec, error) {
	switch name {
	case "task", "":
		return t.codec, nil
	case "gob":
		return ring.Gob, nil
	case "json":
		return ring.JSON, nil
	}
	return nil, fmt.Errorf("proc: unknown codec %q", name)
}

// serve is the worker's side of a pool: it takes job messages from its
// job ring (argument 0) until the parent closes it, runs each task and
// puts the results on its result ring (argument 1).
func (t *Task[In, Out]) serve(ctx context.Context, a *Args) error {
	jobs, err := Object(ctx, a, 0, ring.OpenFile)
	if err != nil {
		return err
	}
	defer jobs.Close()
	results, err := Object(ctx, a, 1, ring.OpenFile)
	if err != nil {
		return err
	}
	defer results.Close()
	var ps string
	if err := a.Decode(2, &ps); err != nil {
		return err
	}
	params, err := parseTaskParams(ps)
	if err != nil {
		return err
	}
	if params.NoSpin {
		jobs.SetSpinTime(0)
	}
	codec, err := t.codecNamed(params.Codec)
	if err != nil {
		return err
	}
	w := taskWorker[In, Out]{
		t:       t,
		inC:     codecFor[In](codec),
		outC:    codecFor[Out](codec),
		results: results,
		max:     results.MaxMessage(),
	}
	// Ready: the parent sends no job before this, so that a job goes to
	// a worker that can run it now rather than wait for this one's start.
	if err := results.Put(ctx, readyMessage(w.outC.n)); err != nil {
		return err
	}
	for {
		// The job is read in place and released once its results are
		// sent: plain inputs are not even copied.
		msg, err := jobs.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		err = w.job(ctx, msg)
		if rerr := jobs.Release(); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
}

type taskWorker[In, Out any] struct {
	t       *Task[In, Out]
	inC     valueCodec[In]
	outC    valueCodec[Out]
	results *ring.Queue
	max     int

	ins  []In
	outs []Out
	exc  []exception // the job's failed tasks, by increasing index
	buf  []byte
}

// job runs the tasks of one job message and sends their results. The
// success path is a tight loop over the inputs writing the outputs in
// place: no per-task record, allocation or byte; a failed task adds an
// exception.
func (w *taskWorker[In, Out]) job(ctx context.Context, msg []byte) error {
	m, err := parseMessage(msg, magicJob, w.inC.n)
	if err != nil {
		return err
	}
	if w.exc, err = parseExceptions(m, w.exc[:0]); err != nil {
		return fmt.Errorf("proc: job %d: %w", m.seq, err)
	}
	for i := range w.exc {
		if w.exc[i].status != stZero {
			return fmt.Errorf("%w: job %d task %d has status %d", errCorruptMsg, m.seq, w.exc[i].i, w.exc[i].status)
		}
	}
	n := int(m.n)
	var ins []In
	if w.inC.n > 0 {
		ins = viewPlain(m.payload, n, &w.ins)
	} else {
		// stZero inputs decode as the zero value and run as any other.
		if w.ins, err = decodeValues(w.inC, m, w.exc, w.ins); err != nil {
			return fmt.Errorf("proc: job %d: %w", m.seq, err)
		}
		ins = w.ins
	}
	w.outs = grow(w.outs, n)
	w.exc = w.exc[:0]
	for i := 0; i < n; {
		i = w.runFrom(ctx, ins, i)
	}
	if w.inC.n == 0 {
		clear(w.ins) // drop references to the inputs
	}
	err = w.send(ctx, m.seq, 0, w.outs, w.exc)
	if w.outC.n == 0 {
		clear(w.outs)
	}
	for i := range w.exc {
		w.exc[i] = exception{}
	}
	return err
}

// runFrom runs tasks i.. of the job under one recover (a defer per task
// would cost more than a tiny task): a panic ends task i with a stPanic
// exception and returns i+1 for the caller to go on from.
func (w *taskWorker[In, Out]) runFrom(ctx context.Context, ins []In, i int) (next int) {
	outs := w.outs[:len(ins)]
	defer func() {
		if r := recover(); r != nil {
			var zero Out
			outs[i] = zero
			w.exc = append(w.exc, exception{i: i, status: stPanic, text: panicText(r), stack: string(debug.Stack())})
			next = i + 1
		}
	}()
	fn := w.t.fn
	for ; i < len(outs); i++ {
		out, err := fn(ctx, ins[i])
		if err != nil {
			var zero Out
			outs[i] = zero
			w.exc = append(w.exc, exception{i: i, status: stError, text: err.Error()})
			continue
		}
		outs[i] = out
	}
	return i
}

func panicText(r any) string {
	if err, ok := r.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(r)
}

// send puts the results of tasks off.. of job seq (exc indexed from off),
// in as many messages as it takes: a run that does not fit is split in
// halves, and a single result that does not fit becomes a stTooLarge
// exception. Plain results are written in place in the ring: one memmove.
func (w *taskWorker[In, Out]) send(ctx context.Context, seq uint64, off int, outs []Out, exc []exception) error {
	h := header{magic: magicResult, seq: seq, off: uint32(off)}
	if sz := w.outC.n; sz > 0 {
		size := headerSize + excBytes(exc)
		if len(exc) < len(outs) {
			size += len(outs) * sz
		}
		if size <= w.max {
			b, err := w.results.Reserve(ctx, size)
			if err != nil {
				return err
			}
			b, _, _ = appendMessage(w.outC, b[:0], h, outs, exc)
			if len(b) != size {
				return fmt.Errorf("proc: result message of %d bytes, reserved %d", len(b), size)
			}
			return w.results.Commit(size)
		}
	} else {
		b, exc2, err := appendMessage(w.outC, w.buf[:0], h, outs, exc)
		if b != nil {
			w.buf = b[:0]
		}
		if err == nil && len(b) <= w.max {
			return w.results.Put(ctx, b)
		}
		exc = exc2 // with the values the codec refused
		if len(outs) == 1 {
			why := fmt.Sprintf("result of %d bytes exceeds the pool's MaxMessage (%d)", len(b), w.max)
			if err != nil {
				why = "cannot encode the result: " + err.Error()
			}
			return w.sendOne(ctx, h, exception{status: stTooLarge, text: why})
		}
	}
	if len(outs) > 1 {
		k := len(outs) / 2
		j := 0
		for j < len(exc) && exc[j].i < k {
			j++
		}
		if err := w.send(ctx, seq, off, outs[:k], exc[:j]); err != nil {
			return err
		}
		rest := make([]exception, len(exc)-j)
		for i, e := range exc[j:] {
			e.i -= k
			rest[i] = e
		}
		return w.send(ctx, seq, off+k, outs[k:], rest)
	}
	if len(exc) == 1 {
		return w.sendOne(ctx, h, exc[0])
	}
	return w.sendOne(ctx, h, exception{status: stTooLarge,
		text: fmt.Sprintf("a result of %d bytes exceeds the pool's MaxMessage (%d)", w.outC.n, w.max)})
}

// sendOne sends the result of one task that has no value, its texts cut
// to fit in a message.
func (w *taskWorker[In, Out]) sendOne(ctx context.Context, h header, e exception) error {
	e.i = 0
	room := max(0, (w.max-headerSize-excMin-8)/2)
	if len(e.text) > room {
		e.text = e.text[:room]
	}
	if len(e.stack) > room {
		e.stack = e.stack[:room]
	}
	var zero [1]Out
	b, _, err := appendMessage(w.outC, w.buf[:0], h, zero[:], []exception{e})
	if err != nil {
		return err
	}
	w.buf = b[:0]
	return w.results.Put(ctx, b)
}

var errStopped = errors.New("proc: iteration stopped early")
