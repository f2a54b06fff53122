//go:build linux

package value_test

// Benchmarks of value and array beside the same operations on Go heap
// memory (plain and sync/atomic) and on sync.Mutex-guarded equivalents,
// in one file so that one run shows them side by side:
//
//	go test -run '^$' -bench . -benchmem ./value/
//
// Sub-benchmark names: shm/... operate on shared memory through this
// module, heap/... on ordinary Go memory. In the Value benchmarks,
// shm/atomic-* go through Atomic, shm/value-int64 through Value.Load and
// Value.Store of an int64 (atomic, no lock), shm/update-* through Update,
// shm/lock-int64 through Lock, Pointer and Unlock, and shm/locked-struct
// through Load and Store of a struct (under the lock).

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/value"
)

var (
	sinkI int64
	sinkP pair
	sinkB bool
)

// heapPair is the sync.Mutex-guarded equivalent of a locked Value[pair].
type heapPair struct {
	mu sync.Mutex
	v  pair
}

func benchValues(b *testing.B) (*value.Value[int64], *value.Value[pair], *value.Raw[pair]) {
	n, err := value.Create[int64](segName(b, "-n"), 0)
	must(b, err)
	p, err := value.Create(segName(b, "-p"), pair{})
	must(b, err)
	r, err := value.CreateRaw(segName(b, "-r"), pair{})
	must(b, err)
	b.Cleanup(func() { n.Close(); p.Close(); r.Close() })
	return n, p, r
}

func BenchmarkValueLoad(b *testing.B) {
	ctx := context.Background()
	n, p, r := benchValues(b)
	var hn atomic.Int64
	var hp heapPair
	var mu sync.Mutex
	var plain int64
	b.Run("shm/atomic-int64", func(b *testing.B) {
		b.ReportAllocs()
		a := value.AtomicOf(n)
		for b.Loop() {
			sinkI = a.Load()
		}
	})
	b.Run("shm/value-int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkI, _ = n.Load(ctx)
		}
	})
	b.Run("shm/locked-struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkP, _ = p.Load(ctx)
		}
	})
	b.Run("shm/raw-struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkP = r.Load()
		}
	})
	b.Run("heap/atomic-int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkI = hn.Load()
		}
	})
	b.Run("heap/mutex-int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			sinkI = plain
			mu.Unlock()
		}
	})
	b.Run("heap/mutex-struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			hp.mu.Lock()
			sinkP = hp.v
			hp.mu.Unlock()
		}
	})
}

func BenchmarkValueStore(b *testing.B) {
	ctx := context.Background()
	n, p, r := benchValues(b)
	var hn atomic.Int64
	var hp heapPair
	var mu sync.Mutex
	b.Run("shm/atomic-int64", func(b *testing.B) {
		b.ReportAllocs()
		a := value.AtomicOf(n)
		i := int64(0)
		for b.Loop() {
			i++
			a.Store(i)
		}
	})
	b.Run("shm/value-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			_ = n.Store(ctx, i)
		}
	})
	b.Run("shm/locked-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			_ = p.Store(ctx, pair{A: i, B: i})
		}
	})
	b.Run("shm/raw-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			r.Store(pair{A: i, B: i})
		}
	})
	b.Run("heap/atomic-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			hn.Store(i)
		}
	})
	b.Run("heap/mutex-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			mu.Lock()
			sinkI = i
			mu.Unlock()
		}
	})
	b.Run("heap/mutex-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			i++
			hp.mu.Lock()
			hp.v = pair{A: i, B: i}
			hp.mu.Unlock()
		}
	})
}

func BenchmarkValueAdd(b *testing.B) {
	ctx := context.Background()
	n, p, _ := benchValues(b)
	var hn atomic.Int64
	var hp heapPair
	var mu sync.Mutex
	var plain int64
	inc := func(x *int64) { *x++ }
	incPair := func(q *pair) { q.A++; q.B++ }
	b.Run("shm/atomic-add", func(b *testing.B) {
		b.ReportAllocs()
		a := value.AtomicOf(n)
		for b.Loop() {
			a.Add(1)
		}
	})
	b.Run("shm/atomic-cas", func(b *testing.B) {
		b.ReportAllocs()
		a := value.AtomicOf(n)
		for b.Loop() {
			x := a.Load()
			sinkB = a.CompareAndSwap(x, x+1)
		}
	})
	b.Run("shm/update-int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = n.Update(ctx, inc)
		}
	})
	b.Run("shm/update-struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Update(ctx, incPair)
		}
	})
	// The shared lock used directly, as heap/mutex-int64 uses sync.Mutex:
	// a plain increment through Pointer, no compare-and-swap.
	b.Run("shm/lock-int64", func(b *testing.B) {
		b.ReportAllocs()
		mu := n.Lock()
		for b.Loop() {
			_ = mu.Lock(ctx)
			*n.Pointer()++
			_ = mu.Unlock()
		}
	})
	b.Run("shm/atomic-add-parallel", func(b *testing.B) {
		b.ReportAllocs()
		a := value.AtomicOf(n)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				a.Add(1)
			}
		})
	})
	b.Run("shm/update-struct-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = p.Update(ctx, incPair)
			}
		})
	})
	b.Run("heap/atomic-add", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			hn.Add(1)
		}
	})
	b.Run("heap/mutex-int64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mu.Lock()
			plain++
			mu.Unlock()
		}
	})
	b.Run("heap/mutex-struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			hp.mu.Lock()
			incPair(&hp.v)
			hp.mu.Unlock()
		}
	})
	b.Run("heap/atomic-add-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				hn.Add(1)
			}
		})
	})
	b.Run("heap/mutex-struct-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				hp.mu.Lock()
				incPair(&hp.v)
				hp.mu.Unlock()
			}
		})
	})
}

const benchLen = 1024

func benchArrays(b *testing.B) (*array.Array[int64], *array.Array[pair]) {
	a, err := array.Create[int64](segName(b, "-a"), benchLen)
	must(b, err)
	p, err := array.Create[pair](segName(b, "-ap"), benchLen)
	must(b, err)
	b.Cleanup(func() { a.Close(); p.Close() })
	return a, p
}

func BenchmarkArrayAt(b *testing.B) {
	a, p := benchArrays(b)
	heap := make([]int64, benchLen)
	heapP := make([]pair, benchLen)
	var mu sync.Mutex
	b.Run("shm/At-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sinkI = a.At(i & (benchLen - 1))
			i++
		}
	})
	b.Run("shm/LoadAt-int64", func(b *testing.B) {
		b.ReportAllocs()
		at := array.AtomicOf(a)
		i := 0
		for b.Loop() {
			sinkI = at.LoadAt(i & (benchLen - 1))
			i++
		}
	})
	b.Run("shm/At-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sinkP = p.At(i & (benchLen - 1))
			i++
		}
	})
	b.Run("shm/slice-index-int64", func(b *testing.B) {
		b.ReportAllocs()
		s := a.Slice()
		i := 0
		for b.Loop() {
			sinkI = s[i&(benchLen-1)]
			i++
		}
	})
	b.Run("heap/slice-index-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sinkI = heap[i&(benchLen-1)]
			i++
		}
	})
	b.Run("heap/atomic-load-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sinkI = atomic.LoadInt64(&heap[i&(benchLen-1)])
			i++
		}
	})
	b.Run("heap/slice-index-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sinkP = heapP[i&(benchLen-1)]
			i++
		}
	})
	b.Run("heap/mutex-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			mu.Lock()
			sinkP = heapP[i&(benchLen-1)]
			mu.Unlock()
			i++
		}
	})
}

func BenchmarkArraySet(b *testing.B) {
	ctx := context.Background()
	a, p := benchArrays(b)
	heap := make([]int64, benchLen)
	heapP := make([]pair, benchLen)
	var mu sync.Mutex
	inc := func(x *int64) { *x++ }
	incPair := func(q *pair) { q.A++ }
	b.Run("shm/Set-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			a.Set(i&(benchLen-1), int64(i))
			i++
		}
	})
	b.Run("shm/AddAt-int64", func(b *testing.B) {
		b.ReportAllocs()
		at := array.AtomicOf(a)
		i := 0
		for b.Loop() {
			at.AddAt(i&(benchLen-1), 1)
			i++
		}
	})
	b.Run("shm/Set-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Set(i&(benchLen-1), pair{A: int64(i)})
			i++
		}
	})
	b.Run("shm/slice-assign-int64", func(b *testing.B) {
		b.ReportAllocs()
		s := a.Slice()
		i := 0
		for b.Loop() {
			s[i&(benchLen-1)] = int64(i)
			i++
		}
	})
	b.Run("shm/Update-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = a.Update(ctx, i&(benchLen-1), inc)
			i++
		}
	})
	b.Run("shm/Update-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = p.Update(ctx, i&(benchLen-1), incPair)
			i++
		}
	})
	b.Run("heap/slice-assign-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			heap[i&(benchLen-1)] = int64(i)
			i++
		}
	})
	b.Run("heap/atomic-add-int64", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			atomic.AddInt64(&heap[i&(benchLen-1)], 1)
			i++
		}
	})
	b.Run("heap/mutex-struct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			mu.Lock()
			incPair(&heapP[i&(benchLen-1)])
			mu.Unlock()
			i++
		}
	})
}

// BenchmarkArraySum reads the whole array through the zero-copy view, the
// bulk copy and Go heap memory, and writes it with CopyIn (one atomic
// store per int64 element) beside the built-in copy.
func BenchmarkArraySum(b *testing.B) {
	ctx := context.Background()
	a, _ := benchArrays(b)
	heap := make([]int64, benchLen)
	buf := make([]int64, benchLen)
	b.Run("shm/slice-view", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			var s int64
			for _, x := range a.Slice() {
				s += x
			}
			sinkI = s
		}
	})
	b.Run("shm/CopyOut", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			_, _ = a.CopyOut(ctx, buf, 0)
		}
	})
	b.Run("shm/CopyIn", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			_, _ = a.CopyIn(ctx, 0, buf)
		}
	})
	b.Run("heap/slice", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			var s int64
			for _, x := range heap {
				s += x
			}
			sinkI = s
		}
	})
	b.Run("heap/copy", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(benchLen * 8)
		for b.Loop() {
			copy(buf, heap)
		}
	})
}
