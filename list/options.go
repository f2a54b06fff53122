package list

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
	// ErrIndex is returned for an index out of range, and by Pop on an
	// empty list.
	ErrIndex = kv.ErrIndex
	// ErrFull is returned by a write that needs more room than the
	// segment has left (a *FullError). Nothing was changed.
	ErrFull = kv.ErrFull
	// ErrTooLarge is returned for a Bytes element longer than the limit
	// set at creation (a *SizeError).
	ErrTooLarge = kv.ErrTooLarge
	// ErrCorrupt is returned when something read from the segment does
	// not make sense. It matches shm.ErrCorrupt.
	ErrCorrupt = shm.ErrCorrupt
	// ErrClosed is returned by calls on a closed list (fs.ErrClosed).
	ErrClosed = kv.ErrClosed
	// ErrNotPlain is returned for an element type that is not fixed-size
	// and pointer-free.
	ErrNotPlain = typeinfo.ErrNotPlain
	// ErrType is returned when opening a list created with another
	// element type (a *shm.MismatchError).
	ErrType = shm.ErrType
	// ErrNotSupported is returned on systems other than Linux.
	ErrNotSupported = shm.ErrNotSupported
)

// FullError is ErrFull's detail.
type FullError = kv.FullError

// SizeError is ErrTooLarge's detail.
type SizeError = kv.SizeError

// Option configures Create, CreateAnonymous and OpenOrCreate (and, for
// segment options, every Open).
type Option func(*options)

type options = kv.Options

// WithMaxBytes sets the most memory the list may use (its segment's
// payload; default kv.DefaultMaxBytes: 256 MiB, or a quarter of /dev/shm's
// free space if less). The file is sparse: only what the list writes
// takes memory. An Append that needs more gets ErrFull.
func WithMaxBytes(n int) Option {
	return func(o *options) { o.MaxBytes = o.Size("WithMaxBytes", n, math.MaxInt64) }
}

// WithCapacity makes room for n elements at creation.
func WithCapacity(n int) Option {
	return func(o *options) { o.Capacity = o.Size("WithCapacity", n, math.MaxUint32) }
}

// WithMaxValue sets the longest element of a Bytes list (default 1 MiB).
func WithMaxValue(n int) Option {
	return func(o *options) { o.MaxVal = uint32(o.Size("WithMaxValue", n, 1<<30)) }
}

// WithSegment passes options to the segment (package shm).
func WithSegment(opts ...shm.Option) Option {
	return func(o *options) { o.Shm = append(o.Shm, opts...) }
}

// DefaultMaxValue is the longest element of a Bytes list by default.
const DefaultMaxValue = 1 << 20

func spec(t reflect.Type, name string, opts []Option) (*kv.Spec, error) {
	o := kv.Collect(options{MaxVal: DefaultMaxValue}, opts)
	if o.Err != nil {
		return nil, fmt.Errorf("list: %w", o.Err)
	}
	c := kv.Config{Magic: kv.MagicList, Shards: 1, Capacity: o.Capacity, MaxVal: o.MaxVal}
	if t != nil {
		ti, err := typeinfo.OfType(t)
		if err != nil {
			return nil, fmt.Errorf("list: element type: %w", err)
		}
		if ti.Size == 0 {
			return nil, fmt.Errorf("list: element type %v: %w: empty", t, ErrNotPlain)
		}
		if ti.Align > 8 {
			return nil, fmt.Errorf("list: element type %v: %w: alignment above 8", t, ErrNotPlain)
		}
		c.ValSize, c.ValFP, c.MaxVal = ti.Size, ti.Fingerprint, ti.Size
	}
	return &kv.Spec{Cfg: c, Kind: shm.KindList, TypeName: name, MaxBytes: o.MaxBytes, Shm: o.Shm}, nil
}

func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if name != "" {
		op += " " + name
	}
	return object.Wrap("list: "+op, err)
}
