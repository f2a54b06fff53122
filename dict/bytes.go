package dict

import (
	"context"
	"iter"
	"net"
	"os"
	"unsafe"

	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/shm"
)

// Bytes is a hash map from string keys to byte-string values in shared
// memory, both of any length up to the limits set at creation
// (WithMaxKey, WithMaxValue): the form for string keys and encoded
// values. It has the Map's operations and promises.
type Bytes struct {
	h    *kv.Handle
	st   *kv.Store
	name string
}

const bytesType = "dict.Bytes"

func bytesSpec(opts []Option) (*kv.Spec, error) { return spec(nil, nil, bytesType, opts) }

func newBytes(h *kv.Handle, name string) *Bytes { return &Bytes{h: h, st: h.St, name: name} }

// CreateBytes creates the named Bytes map, empty.
func CreateBytes(name string, opts ...Option) (*Bytes, error) {
	sp, err := bytesSpec(opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Create(name)
	if err != nil {
		return nil, wrap("create", name, err)
	}
	return newBytes(h, name), nil
}

// CreateAnonymousBytes creates an anonymous Bytes map.
func CreateAnonymousBytes(opts ...Option) (*Bytes, error) {
	sp, err := bytesSpec(opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.CreateAnonymous()
	if err != nil {
		return nil, wrap("create", "", err)
	}
	return newBytes(h, ""), nil
}

// OpenBytes attaches to the named Bytes map.
func OpenBytes(ctx context.Context, name string, opts ...Option) (*Bytes, error) {
	sp, err := bytesSpec(opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Open(ctx, name)
	if err != nil {
		return nil, wrap("open", name, err)
	}
	return newBytes(h, name), nil
}

// OpenOrCreateBytes opens the named Bytes map or creates it empty, and
// reports whether it created it.
func OpenOrCreateBytes(ctx context.Context, name string, opts ...Option) (*Bytes, bool, error) {
	sp, err := bytesSpec(opts)
	if err != nil {
		return nil, false, err
	}
	h, created, err := sp.OpenOrCreate(ctx, name)
	if err != nil {
		return nil, false, wrap("open", name, err)
	}
	return newBytes(h, name), created, nil
}

// OpenBytesFile attaches to the Bytes map behind f.
func OpenBytesFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Bytes, error) {
	sp, err := bytesSpec([]Option{WithSegment(opts...)})
	if err != nil {
		return nil, err
	}
	h, err := sp.OpenFile(ctx, f)
	if err != nil {
		return nil, wrap("open", "", err)
	}
	return newBytes(h, ""), nil
}

// ReceiveBytes attaches to a Bytes map received over conn.
func ReceiveBytes(ctx context.Context, conn *net.UnixConn, opts ...Option) (*Bytes, error) {
	sp, err := bytesSpec(opts)
	if err != nil {
		return nil, err
	}
	h, err := sp.Receive(ctx, conn)
	if err != nil {
		return nil, wrap("receive", "", err)
	}
	return newBytes(h, ""), nil
}

func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (b *Bytes) err(op string, err error) error {
	if err == nil || err == ErrClosed {
		return err
	}
	return wrap(op, b.name, err)
}

// Load returns a copy of key's value and whether it was present.
func (b *Bytes) Load(key string) ([]byte, bool, error) { return b.AppendLoad(nil, key) }

// AppendLoad appends key's value to dst and returns the result: with
// room in dst, it does not allocate.
func (b *Bytes) AppendLoad(dst []byte, key string) ([]byte, bool, error) {
	if b.st.Closed() {
		return dst, false, ErrClosed
	}
	k := strBytes(key)
	h := kv.Hash(b.st.Cfg.Seed, k)
	n0 := len(dst)
	for {
		n, ok, err := b.st.Get(k, h, dst[n0:cap(dst)])
		if err != nil || !ok {
			return dst[:n0], false, b.err("load", err)
		}
		if n0+n <= cap(dst) {
			return dst[:n0+n], true, nil
		}
		dst = append(dst[:cap(dst)], make([]byte, n0+n-cap(dst))...)[:n0]
	}
}

func (b *Bytes) do(ctx context.Context, op, key string, fn func(tx *kv.Tx, k []byte, h uint64) error) error {
	k := strBytes(key)
	h := kv.Hash(b.st.Cfg.Seed, k)
	tx, err := b.st.Begin(ctx, b.st.ShardOf(h))
	if err != nil {
		return b.err(op, err)
	}
	err = fn(&tx, k, h)
	tx.End()
	return b.err(op, err)
}

// Store sets key's value to a copy of val.
func (b *Bytes) Store(ctx context.Context, key string, val []byte) error {
	return b.do(ctx, "store", key, func(tx *kv.Tx, k []byte, h uint64) error { return tx.Put(k, h, val) })
}

// LoadOrStore returns a copy of key's value if present (loaded true);
// otherwise it stores val and returns it.
func (b *Bytes) LoadOrStore(ctx context.Context, key string, val []byte) (actual []byte, loaded bool, err error) {
	err = b.do(ctx, "store", key, func(tx *kv.Tx, k []byte, h uint64) error {
		old, ok, err := tx.Lookup(k, h)
		if err != nil {
			return err
		}
		if ok {
			actual, loaded = append([]byte(nil), old...), true
			return nil
		}
		actual = val
		return tx.Put(k, h, val)
	})
	return actual, loaded, err
}

// CompareAndSwap stores new under key if key is present with value old,
// and reports whether it did.
func (b *Bytes) CompareAndSwap(ctx context.Context, key string, old, new []byte) (swapped bool, err error) {
	err = b.do(ctx, "compare and swap", key, func(tx *kv.Tx, k []byte, h uint64) error {
		cur, ok, err := tx.Lookup(k, h)
		if err != nil || !ok || string(cur) != string(old) {
			return err
		}
		swapped = true
		return tx.Put(k, h, new)
	})
	return swapped, err
}

// Delete removes key and reports whether it was present.
func (b *Bytes) Delete(ctx context.Context, key string) (deleted bool, err error) {
	err = b.do(ctx, "delete", key, func(tx *kv.Tx, k []byte, h uint64) error {
		deleted, err = tx.Delete(k, h)
		return err
	})
	return deleted, err
}

// Update calls fn with key's value (valid only during the call) and
// whether it is present, under the lock of key's shard, and stores what
// fn returns if keep, or deletes key if not. fn must be quick and must
// not call the map's writers.
func (b *Bytes) Update(ctx context.Context, key string, fn func(old []byte, ok bool) (new []byte, keep bool)) error {
	return b.do(ctx, "update", key, func(tx *kv.Tx, k []byte, h uint64) error {
		cur, ok, err := tx.Lookup(k, h)
		if err != nil {
			return err
		}
		nv, keep := fn(cur, ok)
		if keep {
			return tx.Put(k, h, nv)
		}
		if ok {
			_, err = tx.Delete(k, h)
		}
		return err
	})
}

// Clear removes every entry, one shard at a time.
func (b *Bytes) Clear(ctx context.Context) error { return clearAll(ctx, b.st, b.err) }

// Len returns the number of entries.
func (b *Bytes) Len() int { return b.st.Len() }

// Range calls fn for each entry until fn returns false, as Map.Range
// does. val is valid only during the call.
func (b *Bytes) Range(fn func(key string, val []byte) bool) error {
	return rangeStore(b.st, func(k, v []byte) bool { return fn(string(k), v) }, b.err)
}

// All returns an iterator over the entries, as Range does (the value is
// valid until the next iteration). It stops early on an error; call Range
// to see the error.
func (b *Bytes) All() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) { _ = b.Range(yield) }
}

// Name returns the map's name ("" if anonymous).
func (b *Bytes) Name() string { return b.name }

// File returns the segment's descriptor, to pass to another process.
func (b *Bytes) File() *os.File { return b.h.Seg.File() }

// Segment returns the segment.
func (b *Bytes) Segment() *shm.Segment { return b.h.Seg }

// Close waits for this handle's writes in flight and releases it.
func (b *Bytes) Close() error { return b.h.Close() }
