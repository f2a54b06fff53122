package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"

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

// taskParams is the worker's third argument.
type taskParams struct {
	Codec string // "gob", "json" or "task" (the codec set with WithCodec)
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
	var params taskParams
	if err := a.Decode(2, &params); err != nil {
		return err
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
	buf := make([]byte, jobs.MaxMessage())
	for {
		n, err := jobs.Get(ctx, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.job(ctx, buf[:n]); err != nil {
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

	ins   []In
	inSt  []outcome
	outs  []Out
	outSt []outcome
	buf   []byte
}

// job runs the tasks of one job message and sends their results.
func (w *taskWorker[In, Out]) job(ctx context.Context, msg []byte) error {
	m, err := parseMessage(msg, magicJob)
	if err != nil {
		return err
	}
	n := int(m.n)
	w.ins = grow(w.ins, n)
	w.inSt = grow(w.inSt, n)
	if err := decodeValues(w.inC, m, w.ins, w.inSt); err != nil {
		return fmt.Errorf("proc: job %d: %w", m.seq, err)
	}
	w.outs = grow(w.outs, n)
	w.outSt = grow(w.outSt, n)
	for i := range n {
		if st := w.inSt[i].status; st != stOK && st != stZero {
			return fmt.Errorf("%w: job %d task %d has status %d", errCorruptMsg, m.seq, i, st)
		}
	}
	for i := 0; i < n; {
		i = w.runFrom(ctx, i)
	}
	clear(w.ins) // drop references to the inputs
	err = w.send(ctx, m.seq, 0, w.outs, w.outSt)
	clear(w.outs)
	return err
}

// runFrom runs tasks i.. of the job under one recover (a defer per task
// would cost more than a tiny task): a panic ends task i with its
// *PanicError outcome and returns i+1 for the caller to go on from.
func (w *taskWorker[In, Out]) runFrom(ctx context.Context, i int) (next int) {
	defer func() {
		if r := recover(); r != nil {
			var zero Out
			w.outs[i], w.outSt[i] = zero, outcome{status: stPanic, text: panicText(r), stack: string(debug.Stack())}
			next = i + 1
		}
	}()
	fn := w.t.fn
	for ; i < len(w.outs); i++ {
		out, err := fn(ctx, w.ins[i])
		if err != nil {
			var zero Out
			w.outs[i], w.outSt[i] = zero, outcome{status: stError, text: err.Error()}
			continue
		}
		w.outs[i], w.outSt[i] = out, outcome{}
	}
	return i
}

func panicText(r any) string {
	if err, ok := r.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(r)
}

// send puts the results of tasks off.. of job seq, in as many messages as
// it takes: a run that does not fit is split in halves, and a single
// result that does not fit becomes a stTooLarge outcome.
func (w *taskWorker[In, Out]) send(ctx context.Context, seq uint64, off int, outs []Out, st []outcome) error {
	b, st2, err := encodeValues(w.outC, w.buf[:0], header{magic: magicResult, seq: seq, off: uint32(off)}, outs, st)
	if err == nil && len(b) <= w.max {
		w.buf = b[:0]
		return w.results.Put(ctx, b)
	}
	if b != nil {
		w.buf = b[:0]
	}
	if len(outs) > 1 {
		h := len(outs) / 2
		if st2 == nil {
			st2 = st
		}
		if err := w.send(ctx, seq, off, outs[:h], st2[:h]); err != nil {
			return err
		}
		return w.send(ctx, seq, off+h, outs[h:], st2[h:])
	}
	why := fmt.Sprintf("result of %d bytes exceeds the pool's MaxMessage (%d)", len(b), w.max)
	if err != nil {
		why = "cannot encode the result: " + err.Error()
	}
	var zero [1]Out
	b, _, err = encodeValues(w.outC, w.buf[:0], header{magic: magicResult, seq: seq, off: uint32(off)},
		zero[:], []outcome{{status: stTooLarge, text: why}})
	if err != nil {
		return err
	}
	w.buf = b[:0]
	return w.results.Put(ctx, b)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

var errStopped = errors.New("proc: iteration stopped early")
