//go:build linux

package value_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
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

// Load and Update of a non-integer T run under the lock: a Load never sees
// half of an Update, though writer and reader use separate handles.
func TestLoadIsConsistent(t *testing.T) {
	ctx := context.Background()
	type block [512]int64
	v, err := value.Create(segName(t), block{})
	must(t, err)
	defer v.Close()
	w, err := value.Open[block](ctx, v.Name())
	must(t, err)
	defer w.Close()
	var stop atomic.Bool
	done, started := make(chan error, 1), make(chan struct{})
	go func() {
		for k := int64(0); !stop.Load(); k++ {
			err := v.Update(ctx, func(b *block) {
				for i := range b {
					b[i] = k
				}
			})
			if err != nil {
				done <- err
				return
			}
			if k == 0 {
				close(started)
			}
		}
		done <- nil
	}()
	defer stop.Store(true)
	select {
	case <-started:
	case err := <-done:
		t.Fatal(err)
	}
	for range 300 {
		b, err := w.Load(ctx)
		must(t, err)
		for i, x := range b {
			if x != b[0] {
				t.Fatalf("torn Load: element 0 = %d, element %d = %d", b[0], i, x)
			}
		}
	}
	stop.Store(true)
	must(t, <-done)
}
