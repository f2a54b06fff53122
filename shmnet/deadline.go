package shmnet

import (
	"sync"
	"time"
)

// deadline is one direction's deadline, and the context its blocked ring
// calls wait with: Done closes when the deadline passes, when the
// connection is closed, or when the peer is found dead, and Err says
// which. A deadline moved while a call is blocked takes effect for that
// call (net/http interrupts a blocked Read with a deadline in the past).
// It allocates only when a deadline is set.
type deadline struct {
	mu    sync.Mutex
	ch    chan struct{} // closed once the deadline passed (or for good, final)
	err   error         // why ch is closed
	final bool          // closed for good: the connection ended
	gen   uint64        // of the armed timer, so that a stale one does nothing
	timer *time.Timer
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

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
	expired := d.err != nil
	if t.IsZero() {
		if expired {
			d.ch, d.err = make(chan struct{}), nil
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !expired {
			d.err = errTimeout
			close(d.ch)
		}
		return
	}
	if expired {
		d.ch, d.err = make(chan struct{}), nil
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && d.err == nil {
			d.err = errTimeout
			close(d.ch)
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
	if d.err == nil {
		close(d.ch)
	}
	d.err = err
}

// The context.Context methods, for the ring calls.

// Deadline reports none: the timer closes Done instead, so that a moved
// deadline reaches a blocked call.
func (d *deadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done closes when the deadline passes or the connection ends.
func (d *deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Err is nil, errTimeout, or the reason the connection ended.
func (d *deadline) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Value implements context.Context.
func (d *deadline) Value(any) any { return nil }
