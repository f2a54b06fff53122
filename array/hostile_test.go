//go:build linux

package array_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/object/objecttest"
	"github.com/shmkit/shmkit/shm"
)

// A header whose length does not match the segment is refused even when a
// hostile peer rewrote it self-consistently (checksum fixed).
func TestLengthDisagreesWithSegment(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	a, err := array.Create[int64](name, 4)
	must(t, err)
	defer a.Close()
	seg, err := shm.Open(ctx, name)
	must(t, err)
	defer seg.Close()
	b := seg.Bytes()
	for _, n := range []uint64{5, 3, 0, 1 << 40, 1<<64 - 1} {
		binary.LittleEndian.PutUint64(b[32:], n)
		objecttest.FixChecksum(b)
		if _, err := array.Open[int64](ctx, name); !errors.Is(err, array.ErrCorrupt) {
			t.Errorf("header length %d in a 4-element segment: Open: %v", n, err)
		}
		if _, err := array.RawAt[int64](b); n > 4 && !errors.Is(err, array.ErrCorrupt) {
			t.Errorf("header length %d in a 4-element segment: RawAt: %v", n, err)
		}
	}
}

// A peer that rewrites the header and scribbles over the lock after this
// process opened the array cannot make it access memory out of bounds:
// the handle keeps the view it validated at Open, and locked operations
// end (at the latest when ctx does) instead of panicking or hanging.
func TestHeaderChangedAfterOpen(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	a, err := array.Create[int64](name, 4)
	must(t, err)
	seg, err := shm.Open(ctx, name)
	must(t, err)
	defer seg.Close()
	b := seg.Bytes()
	binary.LittleEndian.PutUint64(b[32:], 1<<40) // length
	binary.LittleEndian.PutUint32(b[16:], 4096)  // element size
	objecttest.FixChecksum(b)
	if a.Len() != 4 || len(a.Slice()) != 4 {
		t.Fatalf("Len %d, slice %d after the header changed", a.Len(), len(a.Slice()))
	}
	at := array.AtomicOf(a)
	at.AddAt(3, 5)
	a.Set(2, 7)
	must(t, a.Update(ctx, 3, func(x *int64) { *x++ }))
	if got := a.Slice(); got[2] != 7 || got[3] != 6 {
		t.Fatalf("elements %v", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddAt(4) did not panic with an index out of range")
			}
		}()
		at.AddAt(4, 1) // out of the validated range, whatever the header says
	}()
	if _, err := array.Open[int64](ctx, name); !errors.Is(err, array.ErrCorrupt) && !errors.Is(err, array.ErrType) {
		t.Errorf("Open of the rewritten header: %v", err)
	}

	// Garbage over the lock: whatever sem makes of it, the call returns.
	for i := 64; i < 128; i++ {
		b[i] = 0xff
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = a.Update(tctx, 0, func(x *int64) { *x++ })
	t.Logf("Update over a scribbled lock: %v", err)
	must(t, a.Close())
}

// CopyIn and CopyOut run under the lock: a reader's snapshot never mixes
// two writers' copies, though writer and reader use separate handles.
func TestBulkCopyIsConsistent(t *testing.T) {
	ctx := context.Background()
	const n, rounds = 4096, 300
	a, err := array.Create[int64](segName(t), n)
	must(t, err)
	defer a.Close()
	b, err := array.Open[int64](ctx, a.Name())
	must(t, err)
	defer b.Close()
	var stop atomic.Bool
	done, started := make(chan error, 1), make(chan struct{})
	go func() {
		src := make([]int64, n)
		for k := int64(0); !stop.Load(); k++ {
			for i := range src {
				src[i] = k
			}
			if _, err := a.CopyIn(ctx, 0, src); err != nil {
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
	buf := make([]int64, n)
	for range rounds {
		if _, err := b.CopyOut(ctx, buf, 0); err != nil {
			t.Fatal(err)
		}
		for i, x := range buf {
			if x != buf[0] {
				t.Fatalf("torn snapshot: element 0 = %d, element %d = %d", buf[0], i, x)
			}
		}
	}
	stop.Store(true)
	must(t, <-done)
}
