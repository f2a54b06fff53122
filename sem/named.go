package sem

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/shmkit/shmkit/shm"
)

// Named and anonymous objects are segments of their own kind
// (shm.KindMutex, shm.KindSemaphore, shm.KindEvent, shm.KindBarrier,
// shm.KindCond) whose payload is the object (docs/format/sem.md gives the
// payload of each). The object is initialised by shm.WithInit, before the
// segment becomes visible, so an Open, OpenFile or Receive never sees a
// half-made object.

// Every handle can be handed to another process.
var (
	_ shm.Shareable = (*Mutex)(nil)
	_ shm.Shareable = (*Semaphore)(nil)
	_ shm.Shareable = (*Event)(nil)
	_ shm.Shareable = (*Barrier)(nil)
	_ shm.Shareable = (*Cond)(nil)
)

// withOpts appends ours after the caller's options (so that ours win)
// without writing into the caller's slice.
func withOpts(opts []shm.Option, more ...shm.Option) []shm.Option {
	return append(opts[:len(opts):len(opts)], more...)
}

// handle is a *Mutex, *Semaphore, *Event, *Barrier or *Cond.
type handle interface{ lifetime() *life }

func (m *Mutex) lifetime() *life     { return m.life }
func (s *Semaphore) lifetime() *life { return s.life }
func (e *Event) lifetime() *life     { return e.life }
func (b *Barrier) lifetime() *life   { return b.life }
func (c *Cond) lifetime() *life      { return c.life }

// File returns the file of the segment holding m, to pass m to a child
// (exec.Cmd.ExtraFiles, then OpenMutexFile there). m owns it: do not close
// it. It is nil for a Mutex placed with InitMutex or MutexAt (in memory
// that m does not own: pass that memory's segment instead) and after
// Close.
func (m *Mutex) File() *os.File { return m.life.file() }

// Segment returns the segment whose payload is m (named or anonymous), to
// Send it over a Unix socket (ReceiveMutex attaches). It is nil for a
// Mutex placed with InitMutex or MutexAt, and for the Mutex of a named or
// anonymous Cond (hand over the Cond instead). After Close the segment is
// closed too.
func (m *Mutex) Segment() *shm.Segment { return m.life.seg }

// File returns the file of the segment holding s, as Mutex.File does.
func (s *Semaphore) File() *os.File { return s.life.file() }

// Segment returns the segment whose payload is s, as Mutex.Segment does.
func (s *Semaphore) Segment() *shm.Segment { return s.life.seg }

// File returns the file of the segment holding e, as Mutex.File does.
func (e *Event) File() *os.File { return e.life.file() }

// Segment returns the segment whose payload is e, as Mutex.Segment does.
func (e *Event) Segment() *shm.Segment { return e.life.seg }

// File returns the file of the segment holding b, as Mutex.File does.
func (b *Barrier) File() *os.File { return b.life.file() }

// Segment returns the segment whose payload is b, as Mutex.Segment does.
func (b *Barrier) Segment() *shm.Segment { return b.life.seg }

// File returns the file of the segment holding c and its Mutex, as
// Mutex.File does (nil for a Cond placed with InitCond or CondAt).
func (c *Cond) File() *os.File { return c.life.file() }

// Segment returns the segment whose payload is c and its Mutex, as
// Mutex.Segment does (nil for a Cond placed with InitCond or CondAt).
func (c *Cond) Segment() *shm.Segment { return c.life.seg }

// kindSpec says how to make and attach one kind of object as a segment.
type kindSpec[T handle] struct {
	kind shm.Kind
	at   func(payload []byte) (T, error) // validates a whole payload
}

var (
	mutexSpec     = kindSpec[*Mutex]{shm.KindMutex, exactly(MutexSize, MutexAt)}
	semaphoreSpec = kindSpec[*Semaphore]{shm.KindSemaphore, exactly(SemaphoreSize, SemaphoreAt)}
	eventSpec     = kindSpec[*Event]{shm.KindEvent, exactly(EventSize, EventAt)}
	barrierSpec   = kindSpec[*Barrier]{shm.KindBarrier, barrierPayloadAt}
	condSpec      = kindSpec[*Cond]{shm.KindCond, condPayloadAt}
)

// exactly wraps an At function for a payload that must be size bytes.
func exactly[T handle](size int, at func([]byte) (T, error)) func([]byte) (T, error) {
	return func(p []byte) (T, error) {
		if len(p) != size {
			var zero T
			return zero, fmt.Errorf("%w: %d-byte payload, want %d", ErrCorrupt, len(p), size)
		}
		return at(p)
	}
}

// create makes a named (name != "") or anonymous segment holding one
// object made by init, and attaches to it.
func (k kindSpec[T]) create(name string, size int, init func([]byte) error, opts []shm.Option) (T, error) {
	opts = withOpts(opts, shm.WithKind(k.kind), shm.WithInit(init))
	var seg *shm.Segment
	var err error
	if name == "" {
		seg, err = shm.CreateAnonymous(size, opts...)
	} else {
		seg, err = shm.Create(name, size, opts...)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return k.attach(seg)
}

// open runs an shm open function with ctx (nil is Background). shm
// follows the package's context rule (doc.go): with a done ctx, an object
// that can be attached without waiting still is; otherwise the error
// matches ctx.Err().
func (k kindSpec[T]) open(ctx context.Context, opts []shm.Option,
	open func(context.Context, []shm.Option) (*shm.Segment, error)) (T, error) {
	seg, err := open(orBackground(ctx), withOpts(opts, shm.WithKind(k.kind)))
	if err != nil {
		var zero T
		return zero, err
	}
	return k.attach(seg)
}

// attach validates the object in seg's payload; the handle's Close then
// closes seg.
func (k kindSpec[T]) attach(seg *shm.Segment) (T, error) {
	h, err := k.at(seg.Bytes())
	if err != nil {
		_ = seg.Close()
		var zero T
		return zero, fmt.Errorf("sem: %s segment %q: %w", seg.Kind(), seg.Name(), err)
	}
	l := h.lifetime()
	l.seg = seg
	if l.release == nil {
		l.release = seg.Close
	} else {
		rel := l.release // a Cond's Mutex
		l.release = func() error { return errors.Join(rel(), seg.Close()) }
	}
	return h, nil
}

func (k kindSpec[T]) openName(ctx context.Context, name string, opts []shm.Option) (T, error) {
	return k.open(ctx, opts, func(ctx context.Context, o []shm.Option) (*shm.Segment, error) {
		return shm.Open(ctx, name, o...)
	})
}

func (k kindSpec[T]) openFile(ctx context.Context, f *os.File, opts []shm.Option) (T, error) {
	return k.open(ctx, opts, func(ctx context.Context, o []shm.Option) (*shm.Segment, error) {
		return shm.OpenFile(ctx, f, o...)
	})
}

func (k kindSpec[T]) receive(ctx context.Context, conn *net.UnixConn, opts []shm.Option) (T, error) {
	return k.open(ctx, opts, func(ctx context.Context, o []shm.Option) (*shm.Segment, error) {
		if conn == nil {
			return nil, fmt.Errorf("sem: receive: nil connection")
		}
		return shm.Receive(ctx, conn, o...)
	})
}

// Unlink removes the named object (any kind made by this package) from
// /dev/shm, as shm.Unlink does. Processes that have it open keep using
// it. A missing name gives an error matching fs.ErrNotExist.
func Unlink(name string) error { return shm.Unlink(name) }

func initMutex(p []byte) error { _, err := InitMutex(p); return err }
func initEvent(p []byte) error { _, err := InitEvent(p); return err }

// CreateMutex creates a named segment holding a new, unlocked Mutex. It
// fails (wrapping fs.ErrExist) if the name is taken. opts may set the mode
// and mapping options; the kind and init function are set here.
func CreateMutex(name string, opts ...shm.Option) (*Mutex, error) {
	if err := namedOnly(name); err != nil {
		return nil, err
	}
	return mutexSpec.create(name, MutexSize, initMutex, opts)
}

// namedOnly refuses the empty name, which would otherwise make an
// anonymous object (use CreateAnonymousX for that).
func namedOnly(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name (use a CreateAnonymous function)", shm.ErrInvalidName)
	}
	return nil
}

// CreateAnonymousMutex creates a new, unlocked Mutex in an anonymous
// segment (memfd). Hand it to a child with File (exec.Cmd.ExtraFiles;
// OpenMutexFile there) or to any process with Segment().Send
// (ReceiveMutex there).
func CreateAnonymousMutex(opts ...shm.Option) (*Mutex, error) {
	return mutexSpec.create("", MutexSize, initMutex, opts)
}

// OpenMutex opens the named Mutex made by CreateMutex, waiting (bounded by
// ctx) while its creator is still initialising it. A segment of another
// kind gives an error matching shm.ErrKind.
func OpenMutex(ctx context.Context, name string, opts ...shm.Option) (*Mutex, error) {
	return mutexSpec.openName(ctx, name, opts)
}

// OpenMutexFile attaches to the Mutex in the segment behind f, typically
// one made by CreateAnonymousMutex and inherited through
// exec.Cmd.ExtraFiles (os.NewFile(3, "mutex") in the child). f is
// duplicated: the caller keeps it. Validation is as for shm.OpenFile.
func OpenMutexFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Mutex, error) {
	return mutexSpec.openFile(ctx, f, opts)
}

// ReceiveMutex reads one segment sent with shm.Segment.Send from conn and
// attaches to the Mutex in it, as shm.Receive does.
func ReceiveMutex(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Mutex, error) {
	return mutexSpec.receive(ctx, conn, opts)
}

func initSemaphore(initial, max uint32) func([]byte) error {
	return func(p []byte) error { _, err := InitSemaphore(p, initial, max); return err }
}

// CreateSemaphore creates a named segment holding a new Semaphore with
// initial permits and upper bound max (0: unbounded). The segment's
// params record initial and max (informational).
func CreateSemaphore(name string, initial, max uint32, opts ...shm.Option) (*Semaphore, error) {
	if err := namedOnly(name); err != nil {
		return nil, err
	}
	return semaphoreSpec.create(name, SemaphoreSize, initSemaphore(initial, max),
		withOpts(opts, shm.WithParams(uint64(initial), uint64(max))))
}

// CreateAnonymousSemaphore creates a new Semaphore (as CreateSemaphore)
// in an anonymous segment; see CreateAnonymousMutex for handing it over.
func CreateAnonymousSemaphore(initial, max uint32, opts ...shm.Option) (*Semaphore, error) {
	return semaphoreSpec.create("", SemaphoreSize, initSemaphore(initial, max),
		withOpts(opts, shm.WithParams(uint64(initial), uint64(max))))
}

// OpenSemaphore opens the named Semaphore made by CreateSemaphore, waiting
// (bounded by ctx) while its creator is still initialising it.
func OpenSemaphore(ctx context.Context, name string, opts ...shm.Option) (*Semaphore, error) {
	return semaphoreSpec.openName(ctx, name, opts)
}

// OpenSemaphoreFile attaches to the Semaphore in the segment behind f, as
// OpenMutexFile does.
func OpenSemaphoreFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Semaphore, error) {
	return semaphoreSpec.openFile(ctx, f, opts)
}

// ReceiveSemaphore reads one segment from conn and attaches to the
// Semaphore in it, as ReceiveMutex does.
func ReceiveSemaphore(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Semaphore, error) {
	return semaphoreSpec.receive(ctx, conn, opts)
}

// CreateEvent creates a named segment holding a new, clear Event.
func CreateEvent(name string, opts ...shm.Option) (*Event, error) {
	if err := namedOnly(name); err != nil {
		return nil, err
	}
	return eventSpec.create(name, EventSize, initEvent, opts)
}

// CreateAnonymousEvent creates a new, clear Event in an anonymous segment;
// see CreateAnonymousMutex for handing it over.
func CreateAnonymousEvent(opts ...shm.Option) (*Event, error) {
	return eventSpec.create("", EventSize, initEvent, opts)
}

// OpenEvent opens the named Event made by CreateEvent, waiting (bounded by
// ctx) while its creator is still initialising it.
func OpenEvent(ctx context.Context, name string, opts ...shm.Option) (*Event, error) {
	return eventSpec.openName(ctx, name, opts)
}

// OpenEventFile attaches to the Event in the segment behind f, as
// OpenMutexFile does.
func OpenEventFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Event, error) {
	return eventSpec.openFile(ctx, f, opts)
}

// ReceiveEvent reads one segment from conn and attaches to the Event in
// it, as ReceiveMutex does.
func ReceiveEvent(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Event, error) {
	return eventSpec.receive(ctx, conn, opts)
}

func initBarrier(parties int) func([]byte) error {
	return func(p []byte) error { _, err := InitBarrier(p, parties); return err }
}

// barrierSegSize validates parties and returns the payload size.
func barrierSegSize(parties int) (int, error) {
	if parties < 1 || parties > MaxParties {
		return 0, fmt.Errorf("sem: barrier: %d parties, want 1 to %d", parties, MaxParties)
	}
	return BarrierSize(parties), nil
}

// CreateBarrier creates a named segment holding a new Barrier for parties
// processes or goroutines (1 to MaxParties). The segment's params record
// parties (p0, informational).
func CreateBarrier(name string, parties int, opts ...shm.Option) (*Barrier, error) {
	if err := namedOnly(name); err != nil {
		return nil, err
	}
	size, err := barrierSegSize(parties)
	if err != nil {
		return nil, err
	}
	return barrierSpec.create(name, size, initBarrier(parties),
		withOpts(opts, shm.WithParams(uint64(parties), 0)))
}

// CreateAnonymousBarrier creates a new Barrier for parties in an anonymous
// segment; see CreateAnonymousMutex for handing it over.
func CreateAnonymousBarrier(parties int, opts ...shm.Option) (*Barrier, error) {
	size, err := barrierSegSize(parties)
	if err != nil {
		return nil, err
	}
	return barrierSpec.create("", size, initBarrier(parties),
		withOpts(opts, shm.WithParams(uint64(parties), 0)))
}

// OpenBarrier opens the named Barrier made by CreateBarrier, waiting
// (bounded by ctx) while its creator is still initialising it.
func OpenBarrier(ctx context.Context, name string, opts ...shm.Option) (*Barrier, error) {
	return barrierSpec.openName(ctx, name, opts)
}

// OpenBarrierFile attaches to the Barrier in the segment behind f, as
// OpenMutexFile does.
func OpenBarrierFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Barrier, error) {
	return barrierSpec.openFile(ctx, f, opts)
}

// ReceiveBarrier reads one segment from conn and attaches to the Barrier
// in it, as ReceiveMutex does.
func ReceiveBarrier(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Barrier, error) {
	return barrierSpec.receive(ctx, conn, opts)
}

// barrierPayloadAt attaches to a Barrier that is a whole payload: the
// payload must be exactly BarrierSize(parties).
func barrierPayloadAt(p []byte) (*Barrier, error) {
	b, err := BarrierAt(p)
	if err != nil {
		return nil, err
	}
	if want := BarrierSize(b.parties); len(p) != want {
		_ = b.Close()
		return nil, fmt.Errorf("%w: barrier: %d-byte payload for %d parties, want %d", ErrCorrupt, len(p), b.parties, want)
	}
	return b, nil
}

// condPayloadSize is the payload of a named or anonymous Cond: its Mutex
// (bytes 0-63), then the Cond (64-127).
const condPayloadSize = MutexSize + CondSize

func initCondPayload(p []byte) error {
	m, err := InitMutex(p[:MutexSize])
	if err != nil {
		return err
	}
	defer m.Close()
	c, err := InitCond(p[MutexSize:], m)
	if err != nil {
		return err
	}
	return c.Close()
}

// condPayloadAt attaches to the Mutex and Cond of a Cond segment; the
// Cond's Close closes the Mutex handle too.
func condPayloadAt(p []byte) (*Cond, error) {
	if len(p) != condPayloadSize {
		return nil, fmt.Errorf("%w: %d-byte payload, want %d", ErrCorrupt, len(p), condPayloadSize)
	}
	m, err := MutexAt(p[:MutexSize])
	if err != nil {
		return nil, err
	}
	c, err := CondAt(p[MutexSize:], m)
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	c.life.release = m.Close
	return c, nil
}

// CreateCond creates a named segment holding a new Cond together with
// the unlocked Mutex it is bound to (Cond.Mutex returns it), like
// Python's Condition() with its own lock.
func CreateCond(name string, opts ...shm.Option) (*Cond, error) {
	if err := namedOnly(name); err != nil {
		return nil, err
	}
	return condSpec.create(name, condPayloadSize, initCondPayload, opts)
}

// CreateAnonymousCond creates a new Cond and its Mutex in an anonymous
// segment; see CreateAnonymousMutex for handing it over.
func CreateAnonymousCond(opts ...shm.Option) (*Cond, error) {
	return condSpec.create("", condPayloadSize, initCondPayload, opts)
}

// OpenCond opens the named Cond made by CreateCond (and its Mutex),
// waiting (bounded by ctx) while its creator is still initialising it.
func OpenCond(ctx context.Context, name string, opts ...shm.Option) (*Cond, error) {
	return condSpec.openName(ctx, name, opts)
}

// OpenCondFile attaches to the Cond (and its Mutex) in the segment behind
// f, as OpenMutexFile does.
func OpenCondFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Cond, error) {
	return condSpec.openFile(ctx, f, opts)
}

// ReceiveCond reads one segment from conn and attaches to the Cond (and
// its Mutex) in it, as ReceiveMutex does.
func ReceiveCond(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Cond, error) {
	return condSpec.receive(ctx, conn, opts)
}
