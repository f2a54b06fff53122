package list

import (
	"context"
	"iter"
	"net"
	"os"
	"reflect"
	"unsafe"

	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/shm"
)

// List is a growable list of T in shared memory: the analogue of a
// Manager().list() (and of a ShareableList that can grow), with no server
// process. T is fixed-size and pointer-free. Get, Len and Range take no
// lock; Append, Set, Pop and Clear take the list's robust lock. A List is
// safe for use by many goroutines and processes at once.
type List[T any] struct{ core }

var (
	_ shm.Shareable = (*List[int])(nil)
	_ shm.Shareable = (*Bytes)(nil)
)

func listSpec[T any](opts []Option) (*kv.Spec, error) {
	t := reflect.TypeFor[T]()
	return spec(t, "list.List["+t.String()+"]", opts)
}

func bytesOf[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

// Create creates the named list, empty. It fails with shm.ErrExist if
// the name is taken.
func Create[T any](name string, opts ...Option) (*List[T], error) {
	sp, err := listSpec[T](opts)
	c, err := open(sp, err, "create", name, func(sp *kv.Spec) (*kv.Handle, error) { return sp.Create(name) })
	return newList[T](c, err)
}

func newList[T any](c core, err error) (*List[T], error) {
	if err != nil {
		return nil, err
	}
	return &List[T]{c}, nil
}

// CreateAnonymous creates an anonymous list, to hand to other processes
// by its File.
func CreateAnonymous[T any](opts ...Option) (*List[T], error) {
	sp, err := listSpec[T](opts)
	c, err := open(sp, err, "create", "", (*kv.Spec).CreateAnonymous)
	return newList[T](c, err)
}

// Open attaches to the named list. ctx bounds the wait for a creator
// still initialising it (nil: no bound).
func Open[T any](ctx context.Context, name string, opts ...Option) (*List[T], error) {
	sp, err := listSpec[T](opts)
	c, err := open(sp, err, "open", name, func(sp *kv.Spec) (*kv.Handle, error) { return sp.Open(ctx, name) })
	return newList[T](c, err)
}

// OpenOrCreate opens the named list or creates it empty, and reports
// whether it created it.
func OpenOrCreate[T any](ctx context.Context, name string, opts ...Option) (*List[T], bool, error) {
	sp, err := listSpec[T](opts)
	created := false
	c, err := open(sp, err, "open", name, func(sp *kv.Spec) (h *kv.Handle, err error) {
		h, created, err = sp.OpenOrCreate(ctx, name)
		return h, err
	})
	l, err := newList[T](c, err)
	return l, created, err
}

// OpenFile attaches to the list behind f (f stays the caller's). It
// takes segment options, so that it fits proc.Object.
func OpenFile[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*List[T], error) {
	sp, err := listSpec[T]([]Option{WithSegment(opts...)})
	c, err := open(sp, err, "open", "", func(sp *kv.Spec) (*kv.Handle, error) { return sp.OpenFile(ctx, f) })
	return newList[T](c, err)
}

// Receive attaches to a list whose segment was sent over conn.
func Receive[T any](ctx context.Context, conn *net.UnixConn, opts ...Option) (*List[T], error) {
	sp, err := listSpec[T](opts)
	c, err := open(sp, err, "receive", "", func(sp *kv.Spec) (*kv.Handle, error) { return sp.Receive(ctx, conn) })
	return newList[T](c, err)
}

// Unlink removes the name of a named list.
func Unlink(name string) error { return shm.Unlink(name) }

// Get returns element i. It takes no lock and does not allocate.
func (l *List[T]) Get(i int) (T, error) {
	var v T
	if _, err := l.get(i, bytesOf(&v)); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Append adds vs at the end, in order, and returns the index of the first.
// The whole call is one atomic step: one store of the length commits
// every element, so a writer killed in the middle leaves all of vs
// appended or none, and an error (ErrFull, ErrTooLarge) appends none.
func (l *List[T]) Append(ctx context.Context, vs ...T) (int, error) {
	bs := make([][]byte, len(vs))
	for i := range vs {
		bs[i] = bytesOf(&vs[i])
	}
	return l.append(ctx, bs...)
}

// Set replaces element i.
func (l *List[T]) Set(ctx context.Context, i int, v T) error { return l.set(ctx, i, bytesOf(&v)) }

// Pop removes and returns the last element (ErrIndex if the list is
// empty).
func (l *List[T]) Pop(ctx context.Context) (T, error) {
	var v T
	err := l.pop(ctx, func(b []byte) { copy(bytesOf(&v), b) })
	return v, err
}

// Slice returns a copy of elements [lo, hi), taken without a lock: each
// element is one committed value, the whole not one point in time (two
// Sets committed during the copy may show the later without the earlier).
// The copy ends at the length loaded after it: if Pops shortened the list
// below hi meanwhile, Slice returns ErrIndex.
func (l *List[T]) Slice(lo, hi int) ([]T, error) {
	buf, ents, err := l.slice(lo, hi)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(ents))
	for i, e := range ents {
		copy(bytesOf(&out[i]), buf[e.Val[0]:e.Val[1]])
	}
	return out, nil
}

// Range calls fn with each index and element until fn returns false, on a
// copy of the list taken without a lock, as Slice's (elements popped
// during the copy are left out).
func (l *List[T]) Range(fn func(i int, v T) bool) error {
	buf, ents, err := l.snapshot(0)
	if err != nil {
		return err
	}
	for i, e := range ents {
		var v T
		copy(bytesOf(&v), buf[e.Val[0]:e.Val[1]])
		if !fn(i, v) {
			break
		}
	}
	return nil
}

// All returns an iterator over the elements, as Range does. It stops
// early on an error; call Range to see the error.
func (l *List[T]) All() iter.Seq2[int, T] {
	return func(yield func(int, T) bool) { _ = l.Range(yield) }
}

// Clear removes every element, in one atomic step.
func (l *List[T]) Clear(ctx context.Context) error { return l.clear(ctx) }

// File returns the segment's descriptor, to pass to another process.
func (l *List[T]) File() *os.File { return l.h.Seg.File() }

// Close waits for this handle's writes in flight and releases it.
func (l *List[T]) Close() error { return l.h.Close() }

// Bytes is a growable list of byte strings in shared memory, each up to
// the limit set at creation (WithMaxValue). It has List's operations and
// promises.
type Bytes struct{ core }

const bytesType = "list.Bytes"

func newBytes(c core, err error) (*Bytes, error) {
	if err != nil {
		return nil, err
	}
	return &Bytes{c}, nil
}

// CreateBytes creates the named Bytes list, empty.
func CreateBytes(name string, opts ...Option) (*Bytes, error) {
	sp, err := spec(nil, bytesType, opts)
	return newBytes(open(sp, err, "create", name, func(sp *kv.Spec) (*kv.Handle, error) { return sp.Create(name) }))
}

// CreateAnonymousBytes creates an anonymous Bytes list.
func CreateAnonymousBytes(opts ...Option) (*Bytes, error) {
	sp, err := spec(nil, bytesType, opts)
	return newBytes(open(sp, err, "create", "", (*kv.Spec).CreateAnonymous))
}

// OpenBytes attaches to the named Bytes list.
func OpenBytes(ctx context.Context, name string, opts ...Option) (*Bytes, error) {
	sp, err := spec(nil, bytesType, opts)
	return newBytes(open(sp, err, "open", name, func(sp *kv.Spec) (*kv.Handle, error) { return sp.Open(ctx, name) }))
}

// OpenOrCreateBytes opens the named Bytes list or creates it empty, and
// reports whether it created it.
func OpenOrCreateBytes(ctx context.Context, name string, opts ...Option) (*Bytes, bool, error) {
	sp, err := spec(nil, bytesType, opts)
	created := false
	c, err := open(sp, err, "open", name, func(sp *kv.Spec) (h *kv.Handle, err error) {
		h, created, err = sp.OpenOrCreate(ctx, name)
		return h, err
	})
	b, err := newBytes(c, err)
	return b, created, err
}

// ReceiveBytes attaches to a Bytes list whose segment was sent over conn.
func ReceiveBytes(ctx context.Context, conn *net.UnixConn, opts ...Option) (*Bytes, error) {
	sp, err := spec(nil, bytesType, opts)
	return newBytes(open(sp, err, "receive", "", func(sp *kv.Spec) (*kv.Handle, error) { return sp.Receive(ctx, conn) }))
}

// OpenBytesFile attaches to the Bytes list behind f.
func OpenBytesFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Bytes, error) {
	sp, err := spec(nil, bytesType, []Option{WithSegment(opts...)})
	return newBytes(open(sp, err, "open", "", func(sp *kv.Spec) (*kv.Handle, error) { return sp.OpenFile(ctx, f) }))
}

// Get returns a copy of element i.
func (b *Bytes) Get(i int) ([]byte, error) { return b.AppendGet(nil, i) }

// AppendGet appends element i to dst: with room in dst it does not
// allocate.
func (b *Bytes) AppendGet(dst []byte, i int) ([]byte, error) {
	n0 := len(dst)
	for {
		n, err := b.get(i, dst[n0:cap(dst)])
		if err != nil {
			return dst[:n0], err
		}
		if n0+n <= cap(dst) {
			return dst[:n0+n], nil
		}
		dst = append(dst[:cap(dst)], make([]byte, n0+n-cap(dst))...)[:n0]
	}
}

// Append adds copies of vs at the end, in order, and returns the index of
// the first; as List.Append, all of vs or none.
func (b *Bytes) Append(ctx context.Context, vs ...[]byte) (int, error) { return b.append(ctx, vs...) }

// Set replaces element i with a copy of v.
func (b *Bytes) Set(ctx context.Context, i int, v []byte) error { return b.set(ctx, i, v) }

// Pop removes and returns the last element.
func (b *Bytes) Pop(ctx context.Context) ([]byte, error) {
	var v []byte
	err := b.pop(ctx, func(p []byte) { v = append([]byte(nil), p...) })
	return v, err
}

// Slice returns copies of elements [lo, hi), taken without a lock, as
// List.Slice.
func (b *Bytes) Slice(lo, hi int) ([][]byte, error) {
	buf, ents, err := b.slice(lo, hi)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ents))
	for i, e := range ents {
		out[i] = buf[e.Val[0]:e.Val[1]:e.Val[1]]
	}
	return out, nil
}

// Range calls fn with each index and element until fn returns false, on a
// copy taken without a lock, as List.Range.
func (b *Bytes) Range(fn func(i int, v []byte) bool) error {
	buf, ents, err := b.snapshot(0)
	if err != nil {
		return err
	}
	for i, e := range ents {
		if !fn(i, buf[e.Val[0]:e.Val[1]:e.Val[1]]) {
			break
		}
	}
	return nil
}

// All returns an iterator over the elements, as Range does.
func (b *Bytes) All() iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) { _ = b.Range(yield) }
}

// Clear removes every element, in one atomic step.
func (b *Bytes) Clear(ctx context.Context) error { return b.clear(ctx) }

// File returns the segment's descriptor.
func (b *Bytes) File() *os.File { return b.h.Seg.File() }

// Close waits for this handle's writes in flight and releases it.
func (b *Bytes) Close() error { return b.h.Close() }
