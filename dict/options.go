package dict

import (
	"fmt"
	"math"
	"reflect"

	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/shm"
)

// Errors. Each matches with errors.Is.
var (
	// ErrFull is returned by a write that needs a larger space for its
	// shard than the segment has left (a *FullError). Nothing was changed;
	// the map stays usable for writes that fit (overwrites of same-size
	// values, deletes) and reads.
	ErrFull = kv.ErrFull
	// ErrTooLarge is returned for a key or value longer than the limits
	// the map was created with (a *SizeError).
	ErrTooLarge = kv.ErrTooLarge
	// ErrCorrupt is returned when something read from the segment does
	// not make sense: a hostile or broken peer. It matches shm.ErrCorrupt.
	ErrCorrupt = shm.ErrCorrupt
	// ErrClosed is returned by calls on a closed map (fs.ErrClosed).
	ErrClosed = kv.ErrClosed
	// ErrNotPlain is returned for a key or value type that is not
	// fixed-size and pointer-free, or a key type with padding.
	ErrNotPlain = typeinfo.ErrNotPlain
	// ErrType is returned when opening a map created with other key or
	// value types (a *shm.MismatchError).
	ErrType = shm.ErrType
	// ErrNotSupported is returned on systems other than Linux.
	ErrNotSupported = shm.ErrNotSupported
)

// FullError is ErrFull's detail: the bytes a shard's next space needs and
// those left.
type FullError = kv.FullError

// SizeError is ErrTooLarge's detail: which of key or value, its length
// and the limit.
type SizeError = kv.SizeError

// Option configures Create, CreateAnonymous and OpenOrCreate (and, for
// segment options, every Open).
type Option func(*options)

type options = kv.Options

// WithMaxBytes sets the most memory the map may use (its segment's
// payload; default kv.DefaultMaxBytes: 256 MiB, or a quarter of /dev/shm's
// free space if less). The segment file is sparse: only what the map
// writes takes memory. A write that needs more gets ErrFull.
func WithMaxBytes(n int) Option {
	return func(o *options) { o.MaxBytes = o.Size("WithMaxBytes", n, math.MaxInt64) }
}

// WithCapacity makes room for n entries at creation, so that the first n
// inserts do not grow the table (default 0: shards start small and grow by
// doubling).
func WithCapacity(n int) Option {
	return func(o *options) { o.Capacity = o.Size("WithCapacity", n, math.MaxUint32) }
}

// WithShards sets the number of shards (a power of two, default 64): each
// has its own lock, so writers of keys in different shards do not wait for
// each other.
func WithShards(n int) Option { return func(o *options) { o.Shards = o.Size32("WithShards", n) } }

// WithMaxKey sets the longest key of a Bytes map (default 1 KiB).
func WithMaxKey(n int) Option {
	return func(o *options) { o.MaxKey = uint32(o.Size("WithMaxKey", n, 1<<30)) }
}

// WithMaxValue sets the longest value of a Bytes map (default 1 MiB).
func WithMaxValue(n int) Option {
	return func(o *options) { o.MaxVal = uint32(o.Size("WithMaxValue", n, 1<<30)) }
}

// WithSegment passes options to the segment (package shm): its mode,
// WithPopulate, WithLockedPages.
func WithSegment(opts ...shm.Option) Option {
	return func(o *options) { o.Shm = append(o.Shm, opts...) }
}

// Defaults.
const (
	DefaultShards   = 64
	DefaultMaxKey   = 1 << 10
	DefaultMaxValue = 1 << 20
)

// spec returns the store spec of a map with the given fixed key and value
// types (nil for bytes) and type name.
func spec(kt, vt reflect.Type, name string, opts []Option) (*kv.Spec, error) {
	o := kv.Collect(options{Shards: DefaultShards, MaxKey: DefaultMaxKey, MaxVal: DefaultMaxValue}, opts)
	if o.Err != nil {
		return nil, fmt.Errorf("dict: %w", o.Err)
	}
	c := kv.Config{Magic: kv.MagicDict, Shards: o.Shards, Capacity: o.Capacity, MaxKey: o.MaxKey, MaxVal: o.MaxVal}
	if o.Shards == 0 || o.Shards&(o.Shards-1) != 0 || o.Shards > 1<<16 {
		return nil, fmt.Errorf("dict: %w: WithShards(%d): want a power of two up to 65536", shm.ErrInvalidSize, o.Shards)
	}
	if kt != nil {
		ki, err := typeinfo.OfType(kt)
		if err != nil {
			return nil, fmt.Errorf("dict: key type: %w", err)
		}
		if p := padding(kt); p != "" {
			return nil, fmt.Errorf("dict: key type %v: %w: %s has padding bytes, which would make equal keys differ (add explicit fields)", kt, ErrNotPlain, p)
		}
		vi, err := typeinfo.OfType(vt)
		if err != nil {
			return nil, fmt.Errorf("dict: value type: %w", err)
		}
		if ki.Align > 8 || vi.Align > 8 {
			return nil, fmt.Errorf("dict: %w: alignment above 8", ErrNotPlain)
		}
		c.KeySize, c.KeyFP, c.MaxKey = ki.Size, ki.Fingerprint, ki.Size
		c.ValSize, c.ValFP, c.MaxVal = vi.Size, vi.Fingerprint, vi.Size
		if ki.Size == 0 {
			return nil, fmt.Errorf("dict: key type %v: %w: empty", kt, ErrNotPlain)
		}
	}
	return &kv.Spec{Cfg: c, Kind: shm.KindDict, TypeName: name, MaxBytes: o.MaxBytes, Shm: o.Shm}, nil
}

// padding returns the path of the first padding in t, or "".
func padding(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Array:
		if t.Len() == 0 {
			return ""
		}
		return padding(t.Elem())
	case reflect.Struct:
		var end uintptr
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Offset != end {
				return t.String() + " before ." + f.Name
			}
			if p := padding(f.Type); p != "" {
				return p
			}
			end = f.Offset + f.Type.Size()
		}
		if end != t.Size() {
			return t.String() + " at its end"
		}
	}
	return ""
}

func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if name != "" {
		op += " " + name
	}
	return object.Wrap("dict: "+op, err)
}
