package shmnet

import (
	"sync"
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
	mu    sync.Mutex
	cur   *epoch
	final bool   // ended for good: the connection ended
	gen   uint64 // of the armed timer, so that a stale one does nothing
	timer *time.Timer
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

func newDeadline() *deadline { return &deadline{cur: newEpoch()} }

// ctx returns the context a call in this direction waits with.
func (d *deadline) ctx() *epoch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// set arms the deadline at t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.final {
		return
	}
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	expired := d.cur.done()
	if t.IsZero() {
		if expired {
			d.cur = newEpoch()
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !expired {
			d.cur.finish(errTimeout)
		}
		return
	}
	if expired {
		d.cur = newEpoch()
	}
	gen, e := d.gen, d.cur
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !e.done() {
			e.finish(errTimeout)
		}
	})
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
	if d.cur.done() {
		d.cur = newEpoch()
	}
	d.cur.finish(err)
}
