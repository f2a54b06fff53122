package list

import (
	"context"
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/shm"
)

// core is what List and Bytes share: the store and its byte-level
// operations.
type core struct {
	h    *kv.Handle
	st   *kv.Store
	name string
}

func open(sp *kv.Spec, err error, op, name string, how func(*kv.Spec) (*kv.Handle, error)) (core, error) {
	if err != nil {
		return core{}, err
	}
	h, err := how(sp)
	if err != nil {
		return core{}, wrap(op, name, err)
	}
	return core{h: h, st: h.St, name: name}, nil
}

func (c *core) err(op string, err error) error {
	if err == nil || err == ErrClosed {
		return err
	}
	if errors.Is(err, kv.ErrIndex) {
		return err
	}
	return wrap(op, c.name, err)
}

// indexErr reports an index out of range with the length.
func indexErr(i int, n uint64) error {
	return fmt.Errorf("list: index %d, length %d: %w", i, n, ErrIndex)
}

// get copies element i into dst (see kv.Store.Index).
func (c *core) get(i int, dst []byte) (int, error) {
	if c.st.Closed() {
		return 0, ErrClosed
	}
	if i < 0 {
		return 0, indexErr(i, uint64(c.st.Len()))
	}
	vlen, n, err := c.st.Index(uint64(i), dst)
	if errors.Is(err, kv.ErrIndex) {
		return 0, indexErr(i, n)
	}
	return vlen, c.err("get", err)
}

func (c *core) do(ctx context.Context, op string, fn func(tx *kv.Tx) error) error {
	tx, err := c.st.Begin(ctx, 0)
	if err != nil {
		return c.err(op, err)
	}
	err = fn(&tx)
	tx.End()
	return c.err(op, err)
}

func (c *core) append(ctx context.Context, vals ...[]byte) (int, error) {
	first := -1
	err := c.do(ctx, "append", func(tx *kv.Tx) error {
		i, err := tx.Append(vals...)
		if err == nil {
			first = int(i)
		}
		return err
	})
	return first, err
}

func (c *core) set(ctx context.Context, i int, v []byte) error {
	return c.do(ctx, "set", func(tx *kv.Tx) error {
		if i < 0 || uint64(i) >= tx.Len() {
			return indexErr(i, tx.Len())
		}
		return tx.Set(uint64(i), v)
	})
}

// pop removes the last element and calls fn with its bytes.
func (c *core) pop(ctx context.Context, fn func([]byte)) error {
	return c.do(ctx, "pop", func(tx *kv.Tx) error {
		v, err := tx.Pop()
		if errors.Is(err, kv.ErrIndex) {
			return fmt.Errorf("list: pop from an empty list: %w", ErrIndex)
		}
		if err == nil {
			fn(v)
		}
		return err
	})
}

// snapshot returns the elements from lo (see kv.Store.Snapshot).
func (c *core) snapshot(lo int) ([]byte, []kv.Entry, error) {
	if c.st.Closed() {
		return nil, nil, ErrClosed
	}
	buf, ents, err := c.st.Snapshot(0, uint64(max(lo, 0)), nil, nil)
	return buf, ents, c.err("range", err)
}

// slice returns elements [lo, hi) (see kv.Store.Snapshot).
func (c *core) slice(lo, hi int) ([]byte, []kv.Entry, error) {
	if lo < 0 || hi < lo {
		return nil, nil, fmt.Errorf("list: slice [%d:%d]: %w", lo, hi, ErrIndex)
	}
	buf, ents, err := c.snapshot(lo)
	if err != nil {
		return nil, nil, err
	}
	if hi-lo > len(ents) {
		return nil, nil, fmt.Errorf("list: slice [%d:%d] of length %d: %w", lo, hi, lo+len(ents), ErrIndex)
	}
	return buf, ents[:hi-lo], nil
}

func (c *core) clear(ctx context.Context) error {
	return c.do(ctx, "clear", func(tx *kv.Tx) error { return tx.Clear() })
}

// Len returns the number of elements.
func (c *core) Len() int { return c.st.Len() }

// Name returns the list's name ("" if anonymous).
func (c *core) Name() string { return c.name }

// Segment returns the list's segment.
func (c *core) Segment() *shm.Segment { return c.h.Seg }
