package sem

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/race"
)

// Semaphore layout (docs/format/sem.md).
const (
	offSemCount   = 0  // uint32: permits available (the futex word)
	offSemWaiters = 4  // uint32: processes/goroutines asleep in Acquire
	offSemMax     = 16 // uint32: upper bound on count, 0 = unbounded
)

// Semaphore is a counting semaphore in shared memory, optionally bounded
// like Python's BoundedSemaphore. Get one from InitSemaphore, SemaphoreAt,
// CreateSemaphore or OpenSemaphore.
//
// A Release happens before the Acquire that takes its permit returns.
//
// Permits held by a process that dies are not given back (as with POSIX
// semaphores): a semaphore has no owner to check.
type Semaphore struct {
	_       noCopy
	count   *uint32
	waiters *uint32
	max     uint32 // fixed at Init; read once and validated at attach
	proxy   unsafe.Pointer
	life    *life
}

// InitSemaphore initialises a Semaphore with initial permits and upper
// bound max (0: unbounded) in the first SemaphoreSize bytes of mem, which
// must be 8-byte aligned and not yet in use.
func InitSemaphore(mem []byte, initial, max uint32) (*Semaphore, error) {
	if max != 0 && initial > max {
		return nil, fmt.Errorf("sem: initial count %d above maximum %d", initial, max)
	}
	o, err := freshObject(mem, SemaphoreSize)
	if err != nil {
		return nil, err
	}
	*o.u32(offSemCount) = initial
	*o.u32(offSemMax) = max
	o.publish(magicSemaphore)
	return newSemaphore(o), nil
}

// SemaphoreAt returns a handle to the Semaphore initialised in the first
// SemaphoreSize bytes of mem. Memory that does not hold a valid Semaphore
// gives ErrCorrupt.
func SemaphoreAt(mem []byte) (*Semaphore, error) {
	o, err := objectAt(mem, SemaphoreSize, magicSemaphore, "semaphore")
	if err != nil {
		return nil, err
	}
	s := newSemaphore(o)
	if c := atomic.LoadUint32(s.count); s.max != 0 && c > s.max { // atomic: peers change it
		return nil, fmt.Errorf("%w: semaphore: count %d above maximum %d", ErrCorrupt, c, s.max)
	}
	return s, nil
}

func newSemaphore(o object) *Semaphore {
	return &Semaphore{
		count:   o.u32(offSemCount),
		waiters: o.u32(offSemWaiters),
		max:     atomic.LoadUint32(o.u32(offSemMax)), // after check: ordered by the magic
		proxy:   race.Proxy(o.base),
		life:    newLife(),
	}
}

// take decrements a positive count. CAS (sequentially consistent) gives
// the acquire ordering that pairs with Release's CAS.
func (s *Semaphore) take() (bool, error) {
	for {
		c := atomic.LoadUint32(s.count) // atomic: read for the CAS below
		if c == 0 {
			return false, nil
		}
		if s.max != 0 && c > s.max {
			return false, fmt.Errorf("%w: semaphore: count %d above maximum %d", ErrCorrupt, c, s.max)
		}
		if atomic.CompareAndSwapUint32(s.count, c, c-1) {
			race.Acquire(s.proxy)
			return true, nil
		}
	}
}

// TryAcquire takes a permit if one is available and reports whether it
// did. It never blocks and makes no system call. It returns (false, nil)
// when no permit is available, (false, ErrClosed) after Close and (false,
// ErrCorrupt) when the count is impossible (above the maximum), as TryLock
// does.
func (s *Semaphore) TryAcquire() (bool, error) {
	if !s.life.enter() {
		return false, ErrClosed
	}
	defer s.life.exit()
	return s.take()
}

// Acquire takes a permit, sleeping until one is available. It returns
// ctx.Err() without a permit when ctx ends first, ErrClosed after Close
// and ErrCorrupt when the count is impossible. An Acquire that can succeed
// without blocking succeeds even if ctx is done.
func (s *Semaphore) Acquire(ctx context.Context) error {
	if !s.life.enter() {
		return ErrClosed
	}
	defer s.life.exit()
	if ok, err := s.take(); ok || err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	for i := 0; i < spinTries/5; i++ {
		runtime.Gosched()
		if ok, err := s.take(); ok || err != nil {
			return err
		}
	}
	sleep := firstSleep()
	for {
		if s.life.closed() {
			s.passWake()
			return ErrClosed
		}
		err := sleepOn(ctx, s.count, 0, s.waiters, &sleep)
		if ok, terr := s.take(); ok || terr != nil {
			return terr
		}
		if err != nil {
			s.passWake()
			return err
		}
	}
}

// passWake hands on a wake-up we may have consumed before giving up (ctx
// done, Close, a futex error): if a permit is there and someone sleeps,
// wake one. Snapshots suffice: an extra wake is harmless.
func (s *Semaphore) passWake() {
	if atomic.LoadUint32(s.count) > 0 && atomic.LoadUint32(s.waiters) > 0 {
		_, _ = futex.Wake(s.count, 1)
	}
}

// Release returns a permit, waking one sleeper if there is any. It returns
// ErrOverRelease, and changes nothing, when the count would pass the
// maximum, and ErrCorrupt for a count already above it. Without sleepers
// it makes no system call; an error from the wake-up call is returned with
// the permit already given back.
func (s *Semaphore) Release() error {
	if !s.life.enter() {
		return ErrClosed
	}
	defer s.life.exit()
	race.ReleaseMerge(s.proxy)
	for {
		c := atomic.LoadUint32(s.count) // atomic: read for the CAS below
		if s.max != 0 && c > s.max {
			return fmt.Errorf("%w: semaphore: count %d above maximum %d", ErrCorrupt, c, s.max)
		}
		if (s.max != 0 && c == s.max) || c == math.MaxUint32 {
			return ErrOverRelease
		}
		// CAS: release ordering for what we did while holding the permit.
		if atomic.CompareAndSwapUint32(s.count, c, c+1) {
			break
		}
	}
	// Load after the CAS (both sequentially consistent): see the note in
	// Acquire.
	if atomic.LoadUint32(s.waiters) > 0 {
		if _, err := futex.Wake(s.count, 1); err != nil {
			return err
		}
	}
	return nil
}

// Value returns the number of permits available now (a snapshot), or 0
// after Close.
func (s *Semaphore) Value() int {
	if !s.life.enter() {
		return 0
	}
	defer s.life.exit()
	return int(atomic.LoadUint32(s.count)) // atomic: peers change it
}

// Max returns the upper bound given to InitSemaphore (0: unbounded).
func (s *Semaphore) Max() int { return int(s.max) }

// Close releases the handle (and unmaps a named Semaphore), after calls in
// flight on it have returned. Permits held are not released.
func (s *Semaphore) Close() error {
	return s.life.close(func() { _, _ = futex.WakeAll(s.count) })
}
