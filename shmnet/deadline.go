package shmnet

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is one direction's deadline. Its current epoch is the context
// that direction's ring calls wait with: Done closes when the deadline
// passes, when the connection is closed, or when the peer is found dead,
// and Err says which. A deadline moved while a call is blocked reaches
// that call (net/http interrupts a blocked Read with a deadline in the
// past); a deadline set again after it expired starts a new epoch, since a
// context, once done, stays done. It allocates only when a deadline is
// set.
type deadline struct {
	mu       sync.Mutex
	cur      atomic.Pointer[epoch] // read without the lock on every call
	final    bool                  // ended for good: the connection ended
	at       time.Time             // the deadline the timer is armed for (zero: none)
	timer    *time.Timer
	onFinish func() // called (locked) whenever an epoch finishes: wakes a parked Read
}

// epoch is a context.Context that is done once its channel is closed,
// with err (set before the close) its reason.
type epoch struct {
	ch  chan struct{}
	err error
}

func newEpoch() *epoch { return &epoch{ch: make(chan struct{})} }

func (e *epoch) done() bool {
	select {
	case <-e.ch:
		return true
	default:
		return false
	}
}

// finish closes e with err; the caller holds the deadline's lock.
func (e *epoch) finish(err error) {
	e.err = err
	close(e.ch)
}

// Deadline reports none: the deadline's timer closes Done instead, so
// that a moved deadline reaches a blocked call.
func (e *epoch) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done closes when the deadline passes or the connection ends.
func (e *epoch) Done() <-chan struct{} { return e.ch }

// Err is nil until Done is closed, then the reason.
func (e *epoch) Err() error {
	select {
	case <-e.ch:
		return e.err // written before the close
	default:
		return nil
	}
}

// Value implements context.Context.
func (e *epoch) Value(any) any { return nil }

func newDeadline(onFinish func()) *deadline {
	d := &deadline{onFinish: onFinish}
	d.cur.Store(newEpoch())
	return d
}

// ctx returns the context a call in this direction waits with.
func (d *deadline) ctx() *epoch { return d.cur.Load() }

// finish ends the current epoch with err; the caller holds the lock.
func (d *deadline) finish(err error) {
	d.cur.Load().finish(err)
	if d.onFinish != nil {
		d.onFinish()
	}
}

// set arms the deadline at t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	d.at = time.Time{}
	expired := d.cur.Load().done()
	if t.IsZero() {
		if expired {
			d.cur.Store(newEpoch())
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !expired {
			d.finish(errTimeout)
		}
		return
	}
	if expired {
		d.cur.Store(newEpoch())
	}
	d.at = t
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur) // one timer for the connection's life (net/http sets a deadline per request)
	}
}

// fire ends the current epoch if its deadline has come: a firing left
// over from a deadline since moved later finds it has not, and does
// nothing (the timer is armed again for the new one).
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.final && !d.at.IsZero() && !time.Now().Before(d.at) && !d.cur.Load().done() {
		d.finish(errTimeout)
	}
}

// end closes the deadline for good with err (the connection closed, or
// its peer died).
func (d *deadline) end(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final {
		return
	}
	d.final = true
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.cur.Load().done() {
		d.cur.Store(newEpoch())
	}
	d.finish(err)
}
