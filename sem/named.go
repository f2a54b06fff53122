package sem

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/shm"
)

// Named objects are segments of their own kind (shm.KindMutex,
// shm.KindSemaphore, shm.KindEvent) whose payload is the 64-byte object.
// The object is initialised by shm.WithInit, before the segment becomes
// visible, so OpenX never sees a half-made object.

// withOpts appends ours after the caller's options (so that ours win)
// without writing into the caller's slice.
func withOpts(opts []shm.Option, more ...shm.Option) []shm.Option {
	return append(opts[:len(opts):len(opts)], more...)
}

// handle is a *Mutex, *Semaphore or *Event.
type handle interface{ lifetime() *life }

func (m *Mutex) lifetime() *life     { return m.life }
func (s *Semaphore) lifetime() *life { return s.life }
func (e *Event) lifetime() *life     { return e.life }

// createNamed creates a segment of kind holding one object made by init
// and attaches to it with at.
func createNamed[T handle](name string, kind shm.Kind, init func([]byte) error,
	at func([]byte) (T, error), opts []shm.Option) (T, error) {
	seg, err := shm.Create(name, objectSize, withOpts(opts, shm.WithKind(kind), shm.WithInit(init))...)
	if err != nil {
		var zero T
		return zero, err
	}
	return attachNamed(seg, at)
}

// openNamed opens a segment of kind and attaches to its object with at.
func openNamed[T handle](ctx context.Context, name string, kind shm.Kind,
	at func([]byte) (T, error), opts []shm.Option) (T, error) {
	seg, err := shm.Open(ctx, name, withOpts(opts, shm.WithKind(kind))...)
	if err != nil {
		var zero T
		return zero, err
	}
	return attachNamed(seg, at)
}

// attachNamed validates the object in seg's payload; the handle's Close
// then closes seg.
func attachNamed[T handle](seg *shm.Segment, at func([]byte) (T, error)) (T, error) {
	var h T
	err := fmt.Errorf("%w: %s segment %q has a %d-byte payload, want %d",
		ErrCorrupt, seg.Kind(), seg.Name(), seg.Size(), objectSize)
	if seg.Size() == objectSize {
		h, err = at(seg.Bytes())
	}
	if err != nil {
		_ = seg.Close()
		var zero T
		return zero, err
	}
	h.lifetime().release = seg.Close
	return h, nil
}

// CreateMutex creates a named segment holding a new, unlocked Mutex. It
// fails (wrapping fs.ErrExist) if the name is taken. opts may set the mode
// and mapping options; the kind and init function are set here.
func CreateMutex(name string, opts ...shm.Option) (*Mutex, error) {
	init := func(p []byte) error { _, err := InitMutex(p); return err }
	return createNamed(name, shm.KindMutex, init, MutexAt, opts)
}

// OpenMutex opens the named Mutex made by CreateMutex, waiting (bounded by
// ctx) while its creator is still initialising it. A segment of another
// kind gives an error matching shm.ErrKind.
func OpenMutex(ctx context.Context, name string, opts ...shm.Option) (*Mutex, error) {
	return openNamed(ctx, name, shm.KindMutex, MutexAt, opts)
}

// CreateSemaphore creates a named segment holding a new Semaphore with
// initial permits and upper bound max (0: unbounded). The segment's
// params record initial and max (informational).
func CreateSemaphore(name string, initial, max uint32, opts ...shm.Option) (*Semaphore, error) {
	init := func(p []byte) error { _, err := InitSemaphore(p, initial, max); return err }
	return createNamed(name, shm.KindSemaphore, init, SemaphoreAt,
		withOpts(opts, shm.WithParams(uint64(initial), uint64(max))))
}

// OpenSemaphore opens the named Semaphore made by CreateSemaphore, waiting
// (bounded by ctx) while its creator is still initialising it.
func OpenSemaphore(ctx context.Context, name string, opts ...shm.Option) (*Semaphore, error) {
	return openNamed(ctx, name, shm.KindSemaphore, SemaphoreAt, opts)
}

// CreateEvent creates a named segment holding a new, clear Event.
func CreateEvent(name string, opts ...shm.Option) (*Event, error) {
	init := func(p []byte) error { _, err := InitEvent(p); return err }
	return createNamed(name, shm.KindEvent, init, EventAt, opts)
}

// OpenEvent opens the named Event made by CreateEvent, waiting (bounded by
// ctx) while its creator is still initialising it.
func OpenEvent(ctx context.Context, name string, opts ...shm.Option) (*Event, error) {
	return openNamed(ctx, name, shm.KindEvent, EventAt, opts)
}
