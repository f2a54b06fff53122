package ring

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"unsafe"

	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/shm"
)

// Typed is a queue of fixed-size, pointer-free values of type T (checked
// by reflection: no pointers, strings, slices, maps, interfaces, channels
// or funcs anywhere inside). A value travels as its bytes: Put and Get
// copy it once and do not allocate. The element type is recorded in the
// queue, with T's Go type name where the segment has room for it
// (shm.WithTypeName); attaching with another T fails with ErrType, and
// so does putting a message of another size through the untyped Queue.
//
// On a queue created with Mode Slots, Put and Get copy the value straight
// into and out of its slot, and PutBatch and GetBatch move a run of values
// with one copy.
type Typed[T any] struct {
	q     *Queue
	size  int
	slots bool // q is a Slots queue: the typed fast paths apply
}

// TypeOf returns the descriptor recorded for T, or an error wrapping
// typeinfo.ErrNotPlain naming the offending field.
func TypeOf[T any]() (shm.TypeDesc, error) {
	size, align, fp, err := typeinfo.Of[T]()
	if err != nil {
		return shm.TypeDesc{}, err
	}
	return shm.TypeDesc{Size: size, Align: align, Fingerprint: fp}, nil
}

// TypedConfig returns cfg set up for elements of type T (Type and
// MaxMessage filled in), for Create, CreateAnonymous or New.
func TypedConfig[T any](cfg Config) (Config, error) {
	td, err := TypeOf[T]()
	if err != nil {
		return cfg, err
	}
	cfg.Type, cfg.MaxMessage = td, int(td.Size)
	return cfg, nil
}

// typeName is the Go type name recorded for T (reflect's String).
func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// typedOptions puts T's type (descriptor and name) before the caller's
// options, for creating (want false) or attaching (want true).
func typedOptions[T any](want bool, opts []shm.Option) ([]shm.Option, error) {
	td, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	o := []shm.Option{shm.WithTypeName(typeName[T]())}
	if want {
		o = append(o, shm.WithType(td))
	}
	return append(o, opts...), nil
}

// CreateTyped creates a named queue of T values, recording T's type name
// in the segment.
func CreateTyped[T any](name string, cfg Config, opts ...shm.Option) (*Typed[T], error) {
	cfg, err := TypedConfig[T](cfg)
	if err != nil {
		return nil, err
	}
	o, _ := typedOptions[T](false, opts) // T checked by TypedConfig
	return typed[T](Create(name, cfg, o...))
}

// CreateAnonymousTyped creates a queue of T values in an anonymous
// segment (see CreateAnonymous); attach in another process with
// OpenFileTyped or ReceiveTyped.
func CreateAnonymousTyped[T any](cfg Config, opts ...shm.Option) (*Typed[T], error) {
	cfg, err := TypedConfig[T](cfg)
	if err != nil {
		return nil, err
	}
	o, _ := typedOptions[T](false, opts)
	return typed[T](CreateAnonymous(cfg, o...))
}

// OpenTyped opens a named queue of T values; a queue created for another
// type fails with a *shm.MismatchError matching ErrType that names both
// Go types (where the creator recorded its own).
func OpenTyped[T any](ctx context.Context, name string, opts ...shm.Option) (*Typed[T], error) {
	o, err := typedOptions[T](true, opts)
	if err != nil {
		return nil, err
	}
	return typed[T](Open(ctx, name, o...))
}

// OpenFileTyped attaches to a queue of T values in the segment behind f
// (see OpenFile), checking the type as OpenTyped does.
func OpenFileTyped[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*Typed[T], error) {
	o, err := typedOptions[T](true, opts)
	if err != nil {
		return nil, err
	}
	return typed[T](OpenFile(ctx, f, o...))
}

// ReceiveTyped attaches to a queue of T values whose segment another
// process sent over conn (see Receive), checking the type as OpenTyped
// does.
func ReceiveTyped[T any](ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Typed[T], error) {
	o, err := typedOptions[T](true, opts)
	if err != nil {
		return nil, err
	}
	return typed[T](Receive(ctx, conn, o...))
}

// typed wraps the queue a constructor returned, closing it if it is not
// a queue of T.
func typed[T any](q *Queue, err error) (*Typed[T], error) {
	if err != nil {
		return nil, err
	}
	t, err := NewTyped[T](q)
	if err != nil {
		q.Close()
		return nil, err
	}
	return t, nil
}

// NewTyped wraps q, which must have been created for T (TypedConfig).
// Otherwise it returns a *shm.MismatchError matching ErrType.
func NewTyped[T any](q *Queue) (*Typed[T], error) {
	td, err := TypeOf[T]()
	if err != nil {
		return nil, err
	}
	if q.Type() != td || q.MaxMessage() != int(td.Size) {
		var name, got string
		if q.seg != nil {
			name, got = q.seg.Name(), q.seg.TypeName()
		}
		return nil, &shm.MismatchError{Name: name, What: "type", Want: td, Got: q.Type(), Err: ErrType,
			WantType: typeName[T](), GotType: got}
	}
	return &Typed[T]{q: q, size: int(td.Size), slots: q.geo.mode == Slots}, nil
}

func bytesOf[T any](v *T, size int) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(v)), size) }

// Queue returns the underlying queue (for Stats, CloseWrite, Close...).
func (t *Typed[T]) Queue() *Queue { return t.q }

// File returns the file behind the queue's segment (see Queue.File).
func (t *Typed[T]) File() *os.File { return t.q.File() }

// Segment returns the segment holding the queue (see Queue.Segment).
func (t *Typed[T]) Segment() *shm.Segment { return t.q.Segment() }

// Put appends a copy of v, waiting while the queue is full.
func (t *Typed[T]) Put(ctx context.Context, v T) error {
	if t.slots {
		if done, err := slotsPutValue(t.q, &v); done {
			return err
		}
	}
	return t.q.Put(ctx, bytesOf(&v, t.size))
}

// TryPut is Put that does not wait.
func (t *Typed[T]) TryPut(v T) (bool, error) {
	if t.slots {
		if done, err := slotsPutValue(t.q, &v); done {
			return true, err
		}
	}
	return t.q.TryPut(bytesOf(&v, t.size))
}

// typedBatch is how many values PutBatch and GetBatch hand the untyped
// queue at a time outside Slots mode (views kept on the stack).
const typedBatch = 64

// PutBatch puts every value of vs in order, waiting for room as Put does,
// and returns how many it put (see Queue.PutBatch). On a Slots queue each
// run of free slots is filled with one copy and published with one store.
func (t *Typed[T]) PutBatch(ctx context.Context, vs []T) (int, error) {
	if t.q.closed.Load() {
		return 0, ErrClosed
	}
	if t.slots {
		return slotsPutValues(ctx, t.q, vs)
	}
	var views [typedBatch][]byte
	done := 0
	for done < len(vs) {
		n, err := t.q.PutBatch(ctx, t.viewsOf(&views, vs[done:]))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// GetBatch waits for at least one value and then takes as many as are
// queued, up to len(dst), returning how many it took (see
// Queue.GetBatch). On a Slots queue each run is one copy and one release.
func (t *Typed[T]) GetBatch(ctx context.Context, dst []T) (int, error) {
	if t.q.closed.Load() {
		return 0, ErrClosed
	}
	if t.slots {
		return slotsGetValues(ctx, t.q, dst)
	}
	var views [typedBatch][]byte
	done := 0
	for done < len(dst) {
		v := t.viewsOf(&views, dst[done:])
		k := len(v)
		var n int
		var err error
		if done == 0 {
			n, err = t.q.GetBatch(ctx, v)
		} else {
			// Only what is queued: the first call waited.
			n, err = t.getQueued(v)
		}
		for i := range n {
			if len(views[i]) != t.size {
				err = corrupt("typed message of %d bytes, want %d", len(views[i]), t.size)
				n = i
				break
			}
		}
		done += n
		if err != nil || n < k {
			return done, err
		}
	}
	return done, nil
}

// viewsOf fills views with the bytes of vs's first values (at most
// typedBatch) and returns them.
func (t *Typed[T]) viewsOf(views *[typedBatch][]byte, vs []T) [][]byte {
	k := min(len(vs), typedBatch)
	for i := range k {
		views[i] = bytesOf(&vs[i], t.size)
	}
	return views[:k]
}

// getQueued takes what is queued into views without waiting.
func (t *Typed[T]) getQueued(views [][]byte) (int, error) {
	k := 0
	for k < len(views) {
		n, ok, err := t.q.TryGet(views[k][:cap(views[k])])
		if err == io.EOF {
			return k, nil // the next call reports it
		}
		if !ok || err != nil {
			return k, err
		}
		views[k] = views[k][:n]
		k++
	}
	return k, nil
}

// Get takes the next value, waiting while the queue is empty; io.EOF once
// it is closed and drained. With an error the value is T's zero value,
// never a partly filled one.
func (t *Typed[T]) Get(ctx context.Context) (T, error) {
	var v T
	if t.slots && slotsGetValue(t.q, &v) {
		return v, nil
	}
	n, err := t.q.Get(ctx, bytesOf(&v, t.size))
	if err == nil && n != t.size {
		err = corrupt("typed message of %d bytes, want %d", n, t.size)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// TryGet is Get that does not wait: ok is false when the queue is empty.
// With an error (or !ok) the value is T's zero value.
func (t *Typed[T]) TryGet() (v T, ok bool, err error) {
	if t.slots && slotsGetValue(t.q, &v) {
		return v, true, nil
	}
	n, ok, err := t.q.TryGet(bytesOf(&v, t.size))
	if err == nil && ok && n != t.size {
		err = corrupt("typed message of %d bytes, want %d", n, t.size)
	}
	if err != nil || !ok {
		var zero T
		return zero, false, err
	}
	return v, true, nil
}

// Close releases the handle (see Queue.Close).
func (t *Typed[T]) Close() error { return t.q.Close() }

// String describes the queue for debugging.
func (t *Typed[T]) String() string {
	return fmt.Sprintf("ring.Typed[%s] (%v)", typeName[T](), t.q.Type())
}
