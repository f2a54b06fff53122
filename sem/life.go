package sem

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/shm"
)

// life makes Close safe while other goroutines are inside a method: every
// method enters and exits, and Close waits until the last one has left
// before it unmaps anything. Sleeping methods see the closed bit when they
// wake (Close wakes them) and return ErrClosed.
type life struct {
	n    atomic.Int64 // in-flight calls * 2, plus 1 once closed
	once sync.Once
	done chan struct{} // closed when closed and nothing is in flight
	// release, if set, runs once after the last call has left (unmaps a
	// named object's segment).
	release func() error
	// seg is the segment the object is the payload of (named or
	// anonymous), nil for an object placed with Init or At.
	seg *shm.Segment
}

// file returns the file of the object's segment, nil if it has none or
// after Close.
func (l *life) file() *os.File {
	if l.seg == nil || l.closed() {
		return nil
	}
	return l.seg.File()
}

func newLife() *life { return &life{done: make(chan struct{})} }

// enter registers a call; false means the object is closed. Add is a full
// barrier, so Close either sees this call or this call sees Close's bit.
func (l *life) enter() bool {
	if l.n.Add(2)&1 != 0 {
		l.exit()
		return false
	}
	return true
}

// exit ends a call; the last call out after Close lets Close go on.
func (l *life) exit() {
	if l.n.Add(-2) == 1 {
		l.once.Do(func() { close(l.done) })
	}
}

// closed reports whether Close has started (sleepers poll it after waking).
func (l *life) closed() bool { return l.n.Load()&1 != 0 }

// close marks the object closed, runs wake so that sleepers notice, waits
// for in-flight calls to leave and then runs release. A second close
// returns ErrClosed.
func (l *life) close(wake func()) error {
	old := l.n.Or(1)
	if old&1 != 0 {
		return ErrClosed
	}
	if old == 0 {
		l.once.Do(func() { close(l.done) })
	} else if wake != nil {
		wake()
	}
	<-l.done
	if l.release != nil {
		return l.release()
	}
	return nil
}

// sleepOn is one sleep of a Semaphore or Event waiter: it counts the
// caller in *waiters, sleeps while *word == val for at most *sleep, and
// counts it out again. It returns nil after a wake-up or a timeout (the
// caller re-checks its condition; *sleep doubles after a timeout, up to
// sleepMax), and ctx.Err() or a futex error when the caller must give up.
//
// The Add comes before the futex re-checks *word; both are sequentially
// consistent, so a waker that changes *word and then loads *waiters either
// sees this sleeper or the kernel sees the new value (Dekker-style): no
// wake-up is lost.
func sleepOn(ctx context.Context, word *uint32, val uint32, waiters *uint32, sleep *time.Duration) error {
	atomic.AddUint32(waiters, 1)
	err := futex.WaitContext(ctx, word, val, *sleep)
	decSat(waiters) // awake: no longer a sleeper
	switch {
	case err == nil:
		return nil
	case errors.Is(err, futex.ErrTimeout):
		*sleep = nextSleep(*sleep)
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return err
	}
}

// decSat decrements a waiters count without wrapping below zero (a peer
// may have corrupted it).
func decSat(p *uint32) {
	for {
		v := atomic.LoadUint32(p) // atomic: other sleepers update it
		if v == 0 || atomic.CompareAndSwapUint32(p, v, v-1) {
			return
		}
	}
}
