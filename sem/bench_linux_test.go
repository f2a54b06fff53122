//go:build linux

package sem

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

func BenchmarkMutexUncontended(b *testing.B) {
	m := must[*Mutex](b)(InitMutex(anonMem(b, 64)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSyncMutexUncontended(b *testing.B) {
	var m sync.Mutex
	b.ReportAllocs()
	for b.Loop() {
		m.Lock()
		m.Unlock() //nolint:staticcheck // empty critical section is the point
	}
}

// BenchmarkMutexContendedProcesses locks and unlocks while a helper
// process does the same on the same Mutex for the whole run.
func BenchmarkMutexContendedProcesses(b *testing.B) {
	s := newSeg(b)
	m := must[*Mutex](b)(InitMutex(s.at(segMutex)))
	start := must[*Event](b)(InitEvent(s.at(segEvent)))
	p := s.start(b, "incr", "hammer")
	p.Expect(b, "ready")
	if err := start.Set(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.Lock(ctx); err != nil {
			b.Fatal(err)
		}
		*s.u64(segCounter)++
		if err := m.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	atomic.StoreUint32(s.u32(segStop), 1) // atomic: read by the helper
	if err := p.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSyncMutexContendedGoroutines is the in-process counterpart:
// sync.Mutex with one other goroutine hammering it.
func BenchmarkSyncMutexContendedGoroutines(b *testing.B) {
	var m sync.Mutex
	var stop atomic.Bool
	var n uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			m.Lock()
			n++
			m.Unlock()
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		m.Lock()
		n++
		m.Unlock()
	}
	stop.Store(true)
	<-done
}

func BenchmarkSemaphoreAcquireRelease(b *testing.B) {
	s := must[*Semaphore](b)(InitSemaphore(anonMem(b, 64), 1, 1))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		if err := s.Release(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChanSemaphore is the in-process counterpart of a Semaphore: a
// buffered channel of capacity 1.
func BenchmarkChanSemaphore(b *testing.B) {
	c := make(chan struct{}, 1)
	b.ReportAllocs()
	for b.Loop() {
		c <- struct{}{}
		<-c
	}
}

func BenchmarkEventIsSet(b *testing.B) {
	e := must[*Event](b)(InitEvent(anonMem(b, 64)))
	if err := e.Set(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !e.IsSet() {
			b.Fatal("not set")
		}
	}
}
