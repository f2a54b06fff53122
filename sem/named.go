package sem

import (
	"context"

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

// CreateMutex creates a named segment holding a new, unlocked Mutex. It
// fails (wrapping fs.ErrExist) if the name is taken. opts may set the mode
// and mapping options; the kind and init function are set here.
func CreateMutex(name string, opts ...shm.Option) (*Mutex, error) {
	seg, err := shm.Create(name, MutexSize, withOpts(opts,
		shm.WithKind(shm.KindMutex),
		shm.WithInit(func(p []byte) error { _, err := InitMutex(p); return err }))...)
	if err != nil {
		return nil, err
	}
	return attachMutex(seg)
}

// OpenMutex opens the named Mutex made by CreateMutex, waiting (bounded by
// ctx) while its creator is still initialising it. A segment of another
// kind gives an error matching shm.ErrKind.
func OpenMutex(ctx context.Context, name string, opts ...shm.Option) (*Mutex, error) {
	seg, err := shm.Open(ctx, name, withOpts(opts, shm.WithKind(shm.KindMutex))...)
	if err != nil {
		return nil, err
	}
	return attachMutex(seg)
}

func attachMutex(seg *shm.Segment) (*Mutex, error) {
	m, err := MutexAt(seg.Bytes())
	if err != nil {
		_ = seg.Close()
		return nil, err
	}
	m.life.release = seg.Close
	return m, nil
}

// CreateSemaphore creates a named segment holding a new Semaphore with
// initial permits and upper bound max (0: unbounded).
func CreateSemaphore(name string, initial, max uint32, opts ...shm.Option) (*Semaphore, error) {
	seg, err := shm.Create(name, SemaphoreSize, withOpts(opts,
		shm.WithKind(shm.KindSemaphore),
		shm.WithParams(uint64(initial), uint64(max)),
		shm.WithInit(func(p []byte) error { _, err := InitSemaphore(p, initial, max); return err }))...)
	if err != nil {
		return nil, err
	}
	return attachSemaphore(seg)
}

// OpenSemaphore opens the named Semaphore made by CreateSemaphore.
func OpenSemaphore(ctx context.Context, name string, opts ...shm.Option) (*Semaphore, error) {
	seg, err := shm.Open(ctx, name, withOpts(opts, shm.WithKind(shm.KindSemaphore))...)
	if err != nil {
		return nil, err
	}
	return attachSemaphore(seg)
}

func attachSemaphore(seg *shm.Segment) (*Semaphore, error) {
	s, err := SemaphoreAt(seg.Bytes())
	if err != nil {
		_ = seg.Close()
		return nil, err
	}
	s.life.release = seg.Close
	return s, nil
}

// CreateEvent creates a named segment holding a new, clear Event.
func CreateEvent(name string, opts ...shm.Option) (*Event, error) {
	seg, err := shm.Create(name, EventSize, withOpts(opts,
		shm.WithKind(shm.KindEvent),
		shm.WithInit(func(p []byte) error { _, err := InitEvent(p); return err }))...)
	if err != nil {
		return nil, err
	}
	return attachEvent(seg)
}

// OpenEvent opens the named Event made by CreateEvent.
func OpenEvent(ctx context.Context, name string, opts ...shm.Option) (*Event, error) {
	seg, err := shm.Open(ctx, name, withOpts(opts, shm.WithKind(shm.KindEvent))...)
	if err != nil {
		return nil, err
	}
	return attachEvent(seg)
}

func attachEvent(seg *shm.Segment) (*Event, error) {
	e, err := EventAt(seg.Bytes())
	if err != nil {
		_ = seg.Close()
		return nil, err
	}
	e.life.release = seg.Close
	return e, nil
}
