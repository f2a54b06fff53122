package kv

import (
	"fmt"
	"math"

	"github.com/shmkit/shmkit/shm"
)

// Options holds the creation options of packages dict and list, whose
// With functions fill it; an invalid argument is kept in Err and returned
// by the constructor, never clamped to something the caller did not ask
// for.
type Options struct {
	MaxBytes, Capacity     uint64
	Shards, MaxKey, MaxVal uint32
	Shm                    []shm.Option
	Err                    error // the first invalid option
}

// Size validates n, the argument of the option called name: a size from 0
// to limit. Out of range, it records an error matching shm.ErrInvalidSize
// in o.Err and returns 0.
func (o *Options) Size(name string, n int, limit uint64) uint64 {
	if n >= 0 && uint64(n) <= limit {
		return uint64(n)
	}
	if o.Err == nil {
		o.Err = fmt.Errorf("%w: %s(%d): want 0 to %d", shm.ErrInvalidSize, name, n, limit)
	}
	return 0
}

// Size32 is Size for the options stored in 32 bits.
func (o *Options) Size32(name string, n int) uint32 {
	return uint32(o.Size(name, n, math.MaxUint32))
}

// Collect applies opts, in order, over the defaults d.
func Collect[F ~func(*Options)](d Options, opts []F) Options {
	for _, f := range opts {
		if f != nil {
			f(&d)
		}
	}
	return d
}
