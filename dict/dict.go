package dict

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

// Map is a hash map from K to V in shared memory. K and V are fixed-size
// and pointer-free (numbers, bools, fixed-size arrays and structs of
// them); keys compare by their bytes, so a K with padding is refused, and
// for floats +0 and -0 are two keys and a NaN finds itself.
//
// Load and Range take no lock; writers lock the key's shard. A Map is safe
// for use by many goroutines and processes at once.
type Map[K, V any] struct {
	h    *kv.Handle
	st   *kv.Store
	name string
}

var (
	_ shm.Shareable = (*Map[int, int])(nil)
	_ shm.Shareable = (*Bytes)(nil)
)

func mapSpec[K, V any](opts []Option) (*kv.Spec, error) {
	kt, vt := reflect.TypeFor[K](), reflect.TypeFor[V]()
	return spec(kt, vt, "dict.Map["+kt.String()+","+vt.String()+"]", opts)
}

func newMap[K, V any](h *kv.Handle, name string) *Map[K, V] {
	return &Map[K, V]{h: h, st: h.St, name: name}
}

// Create creates the named map (a segment of its own, see package shm),
// empty. It fails with shm.ErrExist if the name is taken.
func Create[K, V any](name string, opts ...Option) (*Map[K, V], error) {
	sp, err := mapSpec[K, V](opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Create(name)
	if err != nil {
		return nil, wrap("create", name, err)
	}
	return newMap[K, V](h, name), nil
}

// CreateAnonymous creates an anonymous map, to hand to other processes by
// its File (package proc passes it to workers).
func CreateAnonymous[K, V any](opts ...Option) (*Map[K, V], error) {
	sp, err := mapSpec[K, V](opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.CreateAnonymous()
	if err != nil {
		return nil, wrap("create", "", err)
	}
	return newMap[K, V](h, ""), nil
}

// Open attaches to the named map. ctx bounds the wait for a creator still
// initialising it (nil: no bound). A map of other key or value types fails
// with ErrType.
func Open[K, V any](ctx context.Context, name string, opts ...Option) (*Map[K, V], error) {
	sp, err := mapSpec[K, V](opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Open(ctx, name)
	if err != nil {
		return nil, wrap("open", name, err)
	}
	return newMap[K, V](h, name), nil
}

// OpenOrCreate opens the named map, or creates it empty if it does not
// exist, and reports whether it created it. An existing map keeps the
// options it was created with.
func OpenOrCreate[K, V any](ctx context.Context, name string, opts ...Option) (*Map[K, V], bool, error) {
	sp, err := mapSpec[K, V](opts)
	if err != nil {
		return nil, false, err
	}
	h, created, err := sp.OpenOrCreate(ctx, name)
	if err != nil {
		return nil, false, wrap("open", name, err)
	}
	return newMap[K, V](h, name), created, nil
}

// OpenFile attaches to the map behind f (a descriptor received from
// another process; f stays the caller's). It takes segment options, so
// that it fits proc.Object as the other packages' OpenFile functions do.
func OpenFile[K, V any](ctx context.Context, f *os.File, opts ...shm.Option) (*Map[K, V], error) {
	sp, err := mapSpec[K, V]([]Option{WithSegment(opts...)})
	if err != nil {
		return nil, err
	}
	h, err := sp.OpenFile(ctx, f)
	if err != nil {
		return nil, wrap("open", "", err)
	}
	return newMap[K, V](h, ""), nil
}

// Receive attaches to a map whose segment another process sent over conn
// (shm.Segment.Send).
func Receive[K, V any](ctx context.Context, conn *net.UnixConn, opts ...Option) (*Map[K, V], error) {
	sp, err := mapSpec[K, V](opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Receive(ctx, conn)
	if err != nil {
		return nil, wrap("receive", "", err)
	}
	return newMap[K, V](h, ""), nil
}

// Unlink removes the name of a named map; processes that have it open
// keep using it.
func Unlink(name string) error { return shm.Unlink(name) }

func bytesOf[T any](p *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), unsafe.Sizeof(*p))
}

func (m *Map[K, V]) hash(k *K) uint64 { return kv.Hash(m.st.Cfg.Seed, bytesOf(k)) }

// Load returns the value stored under k and whether it was present. It
// takes no lock and does not allocate; the value is one that some Store
// committed, never a mix of two.
func (m *Map[K, V]) Load(k K) (v V, ok bool, err error) {
	if m.st.Closed() {
		return v, false, ErrClosed
	}
	_, ok, err = m.st.Get(bytesOf(&k), m.hash(&k), bytesOf(&v))
	if err != nil || !ok {
		var zero V
		return zero, false, m.err("load", err)
	}
	return v, true, nil
}

func (m *Map[K, V]) err(op string, err error) error {
	if err == nil || err == ErrClosed {
		return err
	}
	return wrap(op, m.name, err)
}

// do runs fn on k's shard, locked. ctx bounds the wait for the lock (nil:
// no bound); a write that can take the lock at once succeeds even with a
// done ctx.
func (m *Map[K, V]) do(ctx context.Context, op string, k *K, fn func(tx *kv.Tx, key []byte, h uint64) error) error {
	key := bytesOf(k)
	h := m.hash(k)
	tx, err := m.st.Begin(ctx, m.st.ShardOf(h))
	if err != nil {
		return m.err(op, err)
	}
	err = fn(&tx, key, h)
	tx.End()
	return m.err(op, err)
}

// Store sets the value of k.
func (m *Map[K, V]) Store(ctx context.Context, k K, v V) error {
	// Not through do: a closure would move k and v to the heap.
	key := bytesOf(&k)
	h := m.hash(&k)
	tx, err := m.st.Begin(ctx, m.st.ShardOf(h))
	if err != nil {
		return m.err("store", err)
	}
	err = tx.Put(key, h, bytesOf(&v))
	tx.End()
	return m.err("store", err)
}

// LoadOrStore returns the value of k if present (loaded true); otherwise
// it stores v and returns it.
func (m *Map[K, V]) LoadOrStore(ctx context.Context, k K, v V) (actual V, loaded bool, err error) {
	err = m.do(ctx, "store", &k, func(tx *kv.Tx, key []byte, h uint64) error {
		old, ok, err := tx.Lookup(key, h)
		if err != nil {
			return err
		}
		if ok {
			copy(bytesOf(&actual), old)
			loaded = true
			return nil
		}
		actual = v
		return tx.Put(key, h, bytesOf(&v))
	})
	return actual, loaded, err
}

// CompareAndSwap stores new under k if k is present with a value whose
// bytes equal old's, and reports whether it did.
func (m *Map[K, V]) CompareAndSwap(ctx context.Context, k K, old, new V) (swapped bool, err error) {
	err = m.do(ctx, "compare and swap", &k, func(tx *kv.Tx, key []byte, h uint64) error {
		cur, ok, err := tx.Lookup(key, h)
		if err != nil || !ok || string(cur) != string(bytesOf(&old)) {
			return err
		}
		swapped = true
		return tx.Put(key, h, bytesOf(&new))
	})
	return swapped, err
}

// Delete removes k and reports whether it was present.
func (m *Map[K, V]) Delete(ctx context.Context, k K) (deleted bool, err error) {
	err = m.do(ctx, "delete", &k, func(tx *kv.Tx, key []byte, h uint64) error {
		deleted, err = tx.Delete(key, h)
		return err
	})
	return deleted, err
}

// Update calls fn with k's value (and whether k is present) under the
// lock of k's shard, so that no other writer changes k meanwhile, and
// stores what fn returns if keep, or deletes k if not. fn must be quick
// and must not call the Map's writers (the shard's lock is not
// reentrant). It returns the value stored and keep.
func (m *Map[K, V]) Update(ctx context.Context, k K, fn func(old V, ok bool) (new V, keep bool)) (V, bool, error) {
	var nv V
	var keep bool
	err := m.do(ctx, "update", &k, func(tx *kv.Tx, key []byte, h uint64) error {
		cur, ok, err := tx.Lookup(key, h)
		if err != nil {
			return err
		}
		var old V
		copy(bytesOf(&old), cur)
		nv, keep = fn(old, ok)
		if keep {
			return tx.Put(key, h, bytesOf(&nv))
		}
		if ok {
			_, err = tx.Delete(key, h)
		}
		return err
	})
	if err != nil {
		var zero V
		return zero, false, err
	}
	return nv, keep, nil
}

// Clear removes every entry, one shard at a time (each shard's emptying is
// one atomic step; a reader may see some shards emptied and not others).
func (m *Map[K, V]) Clear(ctx context.Context) error { return clearAll(ctx, m.st, m.err) }

func clearAll(ctx context.Context, st *kv.Store, wrapErr func(string, error) error) error {
	for i := range st.Shards() {
		tx, err := st.Begin(ctx, i)
		if err != nil {
			return wrapErr("clear", err)
		}
		err = tx.Clear()
		tx.End()
		if err != nil {
			return wrapErr("clear", err)
		}
	}
	return nil
}

// Len returns the number of entries (a sum over shards, each read
// atomically; with writers at work it is approximate).
func (m *Map[K, V]) Len() int { return m.st.Len() }

// Range calls fn for each entry until fn returns false. It takes no lock:
// each entry is copied as one committed record, and fn runs on the copy;
// the whole is not one snapshot: two stores committed while a shard is
// copied may show the later without the earlier. It returns ErrCorrupt or ErrClosed if it had to stop.
func (m *Map[K, V]) Range(fn func(k K, v V) bool) error {
	return rangeStore(m.st, func(key, val []byte) bool {
		var k K
		var v V
		copy(bytesOf(&k), key)
		copy(bytesOf(&v), val)
		return fn(k, v)
	}, m.err)
}

// All returns an iterator over the entries, as Range does. It stops early
// on an error; call Range to see the error.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) { _ = m.Range(yield) }
}

func rangeStore(st *kv.Store, fn func(key, val []byte) bool, wrapErr func(string, error) error) error {
	var buf []byte
	var ents []kv.Entry
	for i := range st.Shards() {
		var err error
		buf, ents, err = st.Snapshot(i, 0, buf[:0], ents[:0])
		if err != nil {
			return wrapErr("range", err)
		}
		for _, e := range ents {
			if !fn(buf[e.Key[0]:e.Key[1]:e.Key[1]], buf[e.Val[0]:e.Val[1]:e.Val[1]]) {
				return nil
			}
		}
	}
	return nil
}

// Name returns the map's name ("" if anonymous).
func (m *Map[K, V]) Name() string { return m.name }

// File returns the segment's descriptor, to pass to another process.
func (m *Map[K, V]) File() *os.File { return m.h.Seg.File() }

// Segment returns the segment.
func (m *Map[K, V]) Segment() *shm.Segment { return m.h.Seg }

// Close waits for this handle's writes in flight and releases the
// handle. The map lives on in the other processes (and in /dev/shm, until
// Unlink). Calls after Close return ErrClosed.
func (m *Map[K, V]) Close() error { return m.h.Close() }
