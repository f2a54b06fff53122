//go:build linux

package array_test

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
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

	// Garbage over the lock: the call returns, and says the lock is
	// corrupt (sem validates the lock word on every operation).
	for i := 64; i < 128; i++ {
		b[i] = 0xff
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = a.Update(tctx, 0, func(x *int64) { *x++ })
	if !errors.Is(err, array.ErrCorrupt) {
		t.Errorf("Update over a scribbled lock: %v, want ErrCorrupt", err)
	}
	if got := a.At(0); got != 0 {
		t.Errorf("Update over a scribbled lock changed element 0 to %d", got)
	}
	must(t, a.Close())
}

// CopyIn and CopyOut run under the lock: a reader's snapshot never mixes
// two writers' copies, though writer and reader use separate handles. The
// writer spends its time inside CopyIn, alternating between two buffers
// filled beforehand, and the reader goes on until it has seen the array
// change many times. So that they take turns at the lock instead of one
// starving the other, the writer, between two copies, lets a waiting
// reader go first; a read then starts while the writer is in the middle
// of a copy, which overlaps the read if either skips the lock.
func TestBulkCopyIsConsistent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, changes = 4096, 100
	a, err := array.Create[int64](segName(t), n)
	must(t, err)
	defer a.Close()
	b, err := array.Open[int64](ctx, a.Name())
	must(t, err)
	defer b.Close()
	var srcs [2][]int64
	for k := range srcs {
		srcs[k] = make([]int64, n)
		for i := range srcs[k] {
			srcs[k][i] = int64(k + 1)
		}
	}
	var stop, reading atomic.Bool
	var writes atomic.Int64
	done := make(chan error, 1)
	go func() {
		for k := 0; !stop.Load(); k++ {
			if _, err := a.CopyIn(ctx, 0, srcs[k&1]); err != nil {
				done <- err
				return
			}
			writes.Add(1)
			for reading.Load() && !stop.Load() {
				runtime.Gosched()
			}
		}
		done <- nil
	}()
	defer stop.Store(true)
	buf := make([]int64, n)
	seen, last, reads := 0, int64(0), 0
	for seen < changes {
		if ctx.Err() != nil {
			t.Fatalf("%d changes seen in %d reads, %d writes, by the deadline", seen, reads, writes.Load())
		}
		reading.Store(true)
		_, err := b.CopyOut(ctx, buf, 0)
		reading.Store(false)
		if err != nil {
			t.Fatalf("after %d changes in %d reads: %v", seen, reads, err)
		}
		reads++
		for i, x := range buf {
			if x != buf[0] {
				t.Fatalf("torn snapshot: element 0 = %d, element %d = %d", buf[0], i, x)
			}
		}
		if buf[0] != last {
			seen, last = seen+1, buf[0]
		}
	}
	t.Logf("%d changes in %d reads, %d writes", seen, reads, writes.Load())
	stop.Store(true)
	must(t, <-done)
}
