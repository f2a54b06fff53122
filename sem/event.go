package sem

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/race"
)

// Event layout (docs/format/sem.md).
const (
	offEventState   = 0 // uint32: bit 0 set flag, bits 1-31 generation (the futex word)
	offEventWaiters = 4 // uint32: sleepers in Wait
)

// Event is a flag in shared memory that processes can wait for, like
// Python's multiprocessing.Event. Get one from InitEvent, EventAt,
// CreateEvent or OpenEvent.
//
// A Set happens before every Wait that it ends returns, and before IsSet
// returns true because of it.
//
// Every Set that finds the flag clear starts a new generation; a waiter
// returns when the flag is set or when the generation has moved since it
// went to sleep, so a Set followed at once by Clear still wakes every
// process that was waiting.
type Event struct {
	_       noCopy
	state   *uint32
	waiters *uint32
	proxy   unsafe.Pointer
	life    *life
}

// InitEvent initialises a clear Event in the first EventSize bytes of mem,
// which must be 8-byte aligned and not yet in use.
func InitEvent(mem []byte) (*Event, error) {
	o, err := freshObject(mem, EventSize)
	if err != nil {
		return nil, err
	}
	o.publish(magicEvent)
	return newEvent(o), nil
}

// EventAt returns a handle to the Event initialised in the first
// EventSize bytes of mem (ErrCorrupt if there is none).
func EventAt(mem []byte) (*Event, error) {
	o, err := objectAt(mem, EventSize, magicEvent, "event")
	if err != nil {
		return nil, err
	}
	return newEvent(o), nil
}

func newEvent(o object) *Event {
	return &Event{
		state:   o.u32(offEventState),
		waiters: o.u32(offEventWaiters),
		proxy:   race.Proxy(o.base),
		life:    newLife(),
	}
}

// Set sets the flag and wakes every waiter. Setting a set Event does
// nothing. An error from the wake-up call is returned with the flag
// already set.
func (e *Event) Set() error {
	if !e.life.enter() {
		return ErrClosed
	}
	defer e.life.exit()
	race.ReleaseMerge(e.proxy)
	for {
		s := atomic.LoadUint32(e.state) // atomic: peers Set and Clear concurrently
		if s&1 != 0 {
			return nil
		}
		// Next generation, flag set; CAS gives release ordering.
		if atomic.CompareAndSwapUint32(e.state, s, (s+2)|1) {
			break
		}
	}
	// After the CAS (both sequentially consistent): a waiter either shows
	// in waiters or its futex sees the new state.
	if atomic.LoadUint32(e.waiters) > 0 {
		if _, err := futex.WakeAll(e.state); err != nil {
			return err
		}
	}
	return nil
}

// Clear clears the flag.
func (e *Event) Clear() error {
	if !e.life.enter() {
		return ErrClosed
	}
	defer e.life.exit()
	for {
		s := atomic.LoadUint32(e.state) // atomic: read for the CAS below
		if s&1 == 0 || atomic.CompareAndSwapUint32(e.state, s, s&^1) {
			return nil
		}
	}
}

// IsSet reports whether the flag is set (false after Close). It makes no
// system call.
func (e *Event) IsSet() bool {
	if !e.life.enter() {
		return false
	}
	defer e.life.exit()
	// Atomic load: acquire ordering pairs with Set's CAS.
	if atomic.LoadUint32(e.state)&1 != 0 {
		race.Acquire(e.proxy)
		return true
	}
	return false
}

// Wait returns nil once the flag is set (at once if it is set now), or
// ctx.Err() when ctx ends first, or ErrClosed after Close.
func (e *Event) Wait(ctx context.Context) error {
	if !e.life.enter() {
		return ErrClosed
	}
	defer e.life.exit()
	s := atomic.LoadUint32(e.state) // acquire: pairs with Set's CAS
	if s&1 != 0 {
		race.Acquire(e.proxy)
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	sleep := firstSleep()
	for {
		if e.life.closed() {
			return ErrClosed
		}
		err := sleepOn(ctx, e.state, s, e.waiters, &sleep)
		// Acquire load: pairs with Set's CAS.
		if now := atomic.LoadUint32(e.state); now != s {
			// Set now, or a Set (and Clear) happened while we slept:
			// state only changes from a clear s by a Set.
			race.Acquire(e.proxy)
			return nil
		}
		if err != nil {
			return err // Set wakes all, so there is no wake-up to pass on
		}
	}
}

// Close releases the handle (and unmaps a named Event) after calls in
// flight on it have returned.
func (e *Event) Close() error {
	return e.life.close(func() { _, _ = futex.WakeAll(e.state) })
}
