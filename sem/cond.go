package sem

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/race"
)

// Cond layout (docs/format/sem.md).
const (
	offCondSeq     = 0 // uint32: signal sequence (the futex word)
	offCondWaiters = 4 // uint32: sleepers in Wait
)

// Cond is a condition variable in shared memory bound to a Mutex, like
// Python's multiprocessing.Condition and Go's sync.Cond: processes wait
// in Wait, holding the Mutex, until another signals that what they wait
// for may have changed. Get one from InitCond or CondAt (bound to a Mutex
// of your choosing), or from CreateCond, CreateAnonymousCond, OpenCond,
// OpenCondFile or ReceiveCond (which hold their own Mutex, next to the
// Cond in the segment: Mutex returns it).
//
// A Signal or Broadcast happens before the Wait it ends returns.
//
// Wait may return without a Signal (a Signal may end more than one Wait
// that was about to sleep, and a Close or a context ends Waits): always
// wait in a loop that re-checks the condition, holding the Mutex.
type Cond struct {
	_       noCopy
	seq     *uint32
	waiters *uint32
	m       *Mutex
	proxy   unsafe.Pointer
	life    *life
}

// InitCond initialises a Cond in the first CondSize bytes of mem, which
// must be 8-byte aligned and not yet in use, bound to m (the Cond itself
// does not record m: every process binds its handle to the same Mutex).
func InitCond(mem []byte, m *Mutex) (*Cond, error) {
	if m == nil {
		return nil, errors.New("sem: cond: nil Mutex")
	}
	o, err := freshObject(mem, CondSize)
	if err != nil {
		return nil, err
	}
	o.publish(magicCond)
	return newCond(o, m), nil
}

// CondAt returns a handle, bound to m, to the Cond initialised in the
// first CondSize bytes of mem (ErrCorrupt if there is none).
func CondAt(mem []byte, m *Mutex) (*Cond, error) {
	if m == nil {
		return nil, errors.New("sem: cond: nil Mutex")
	}
	o, err := objectAt(mem, CondSize, magicCond, "cond")
	if err != nil {
		return nil, err
	}
	return newCond(o, m), nil
}

func newCond(o object, m *Mutex) *Cond {
	return &Cond{
		seq:     o.u32(offCondSeq),
		waiters: o.u32(offCondWaiters),
		m:       m,
		proxy:   race.Proxy(o.base),
		life:    newLife(),
	}
}

// Mutex returns the Mutex c is bound to.
func (c *Cond) Mutex() *Mutex { return c.m }

// Wait atomically unlocks c's Mutex, which the calling process must hold,
// and sleeps until Signal or Broadcast, then locks the Mutex again before
// it returns. It returns:
//
//   - nil after a Signal or Broadcast (or spuriously: loop on the
//     condition), holding the Mutex;
//   - ctx.Err() when ctx ends first, holding the Mutex (relocked; the
//     relock itself is not bounded by ctx, as it must return holding the
//     lock). With a ctx already done, Wait returns ctx.Err() at once
//     without unlocking;
//   - an *OwnerDeadError (matching ErrOwnerDead) from the relock, holding
//     the Mutex, when a process died holding it while this one slept:
//     repair and MarkConsistent, as after Lock (joined with ctx.Err()
//     when ctx ended too);
//   - ErrClosed after Close of c (holding the Mutex, relocked), or an
//     error from the relock (ErrClosed when the Mutex handle is closed),
//     then without the Mutex;
//   - the *NotOwnerError of Unlock, without sleeping, when this process
//     does not hold the Mutex.
func (c *Cond) Wait(ctx context.Context) error {
	if !c.life.enter() {
		return ErrClosed
	}
	defer c.life.exit()
	ctx = orBackground(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	// Snapshot before unlocking: a Signal after our Unlock changes seq, so
	// the futex below does not sleep (or wakes). Atomic: peers add to it.
	s := atomic.LoadUint32(c.seq)
	atomic.AddUint32(c.waiters, 1) // before the Unlock: a signaller that saw our state sees us
	if err := c.m.Unlock(); err != nil {
		decSat(c.waiters)
		return err
	}
	werr := c.sleep(ctx, s)
	decSat(c.waiters)
	if lerr := c.m.Lock(context.WithoutCancel(ctx)); lerr != nil {
		if werr != nil {
			return errors.Join(lerr, werr)
		}
		return lerr
	}
	return werr
}

// sleep waits until seq moves from s.
func (c *Cond) sleep(ctx context.Context, s uint32) error {
	sleep := firstSleep()
	for {
		if c.life.closed() {
			return ErrClosed
		}
		err := futex.WaitContext(ctx, c.seq, s, sleep)
		if atomic.LoadUint32(c.seq) != s { // atomic: acquire, pairs with Signal's add
			race.Acquire(c.proxy)
			return nil
		}
		switch {
		case err == nil: // spurious, or a cancellation waking all: sleep again
		case errors.Is(err, futex.ErrTimeout):
			sleep = nextSleep(sleep) // the timeout only lets a Close or garbage be noticed
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return err // the deadline passed before ctx's own timer fired
		default:
			return err
		}
	}
}

// Signal wakes one process or goroutine waiting in Wait, if there is any.
// The caller need not hold the Mutex (holding it is the usual way to make
// sure the waiter sees the change it signals). Without sleepers it makes
// no system call.
func (c *Cond) Signal() error { return c.wake(1) }

// Broadcast wakes every process and goroutine waiting in Wait.
func (c *Cond) Broadcast() error { return c.wake(-1) }

func (c *Cond) wake(n int) error {
	if !c.life.enter() {
		return ErrClosed
	}
	defer c.life.exit()
	race.ReleaseMerge(c.proxy)
	// Sequentially consistent add, then load of waiters: a waiter either
	// shows in waiters or its futex sees the new seq (see sleepOn).
	atomic.AddUint32(c.seq, 1)
	if atomic.LoadUint32(c.waiters) == 0 {
		return nil
	}
	var err error
	if n < 0 {
		_, err = futex.WakeAll(c.seq)
	} else {
		_, err = futex.Wake(c.seq, n)
	}
	if err != nil {
		return fmt.Errorf("sem: cond: %w", err)
	}
	return nil
}

// Close releases the handle (and, for a named or anonymous Cond, its
// Mutex handle, and unmaps the segment) after calls in flight on it have
// returned; a sleeping Wait relocks and returns ErrClosed. It does not
// unlock the Mutex.
func (c *Cond) Close() error {
	return c.life.close(func() { _, _ = futex.WakeAll(c.seq) })
}
