//go:build linux

package value_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// A peer that rewrites the header after this process opened the Value
// (self-consistently, checksum fixed) does not change what the handle
// accesses; a new Open refuses the header.
func TestHeaderChangedAfterOpen(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	v, err := value.Create[int64](name, 1)
	must(t, err)
	defer v.Close()
	seg, err := shm.Open(ctx, name)
	must(t, err)
	defer seg.Close()
	b := seg.Bytes()
	binary.LittleEndian.PutUint64(b[32:], 1<<40) // length
	objecttest.FixChecksum(b)
	must(t, v.Update(ctx, func(x *int64) { *x += 2 }))
	if got := value.AtomicOf(v).Add(1); got != 4 {
		t.Fatalf("value %d, want 4", got)
	}
	if _, err := value.Open[int64](ctx, name); !errors.Is(err, value.ErrCorrupt) {
		t.Errorf("Open of a value with length 1<<40: %v", err)
	}
	binary.LittleEndian.PutUint64(b[32:], 1)
	objecttest.FixChecksum(b)
	w, err := value.Open[int64](ctx, name)
	must(t, err)
	must(t, w.Close())
}
