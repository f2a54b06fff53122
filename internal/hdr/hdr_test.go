package hdr

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsContiguous(t *testing.T) {
	// Every bucket's range starts right after the previous one ends, and
	// index maps both ends back to the bucket.
	for i := 0; i < numBuckets; i++ {
		lo, hi := lowest(i), highest(i)
		if lo > hi {
			t.Fatalf("bucket %d: lowest %d > highest %d", i, lo, hi)
		}
		if i > 0 && lo != highest(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, highest(i-1))
		}
		if index(lo) != i || index(hi) != i {
			t.Fatalf("bucket %d: index(%d)=%d index(%d)=%d", i, lo, index(lo), hi, index(hi))
		}
	}
	if got := highest(numBuckets - 1); got != math.MaxInt64 {
		t.Fatalf("last bucket ends at %d, want MaxInt64", got)
	}
	if got := index(math.MaxInt64); got >= numBuckets {
		t.Fatalf("index(MaxInt64) = %d out of %d", got, numBuckets)
	}
}

func TestRelativeError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := r.Uint64N(1 << uint(r.IntN(62)+1))
		i := index(v)
		w := highest(i) - lowest(i) + 1
		if v >= subCount && float64(w)/float64(v) > 1.0/halfCount {
			t.Fatalf("value %d in bucket of width %d: relative error too large", v, w)
		}
		if v < subCount && w != 1 {
			t.Fatalf("small value %d not exact (width %d)", v, w)
		}
	}
}

func TestQuantilesAgainstSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := New()
	var vals []int64
	for range 50000 {
		// A latency-like distribution: mostly ~1µs with a long tail.
		v := int64(800 + r.ExpFloat64()*400)
		if r.IntN(1000) == 0 {
			v *= 100
		}
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		rank := int(math.Ceil(q*float64(len(vals)))) - 1
		want := vals[rank]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/halfCount+1 {
			t.Errorf("q%.3f = %d, exact %d", q, got, want)
		}
	}
	if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
		t.Errorf("min/max = %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count = %d", h.Count())
	}
	if h.Quantile(0) != h.Min() || h.Quantile(1) != h.Max() {
		t.Errorf("q0/q1 = %d/%d", h.Quantile(0), h.Quantile(1))
	}
}

func TestExactSmallValues(t *testing.T) {
	var h Histogram // zero value usable
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := h.Quantile(0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := h.Mean(); got != 50.5 {
		t.Errorf("mean = %v", got)
	}
	h.Record(-5)
	if h.Min() != 0 {
		t.Errorf("negative not clamped: min %d", h.Min())
	}
}

func TestMergeReset(t *testing.T) {
	a, b := New(), New()
	for v := int64(0); v < 1000; v++ {
		a.Record(v)
		b.RecordN(v+1000, 2)
	}
	a.Merge(b)
	a.Merge(nil)
	a.Merge(&Histogram{})
	if a.Count() != 3000 || a.Min() != 0 || a.Max() != 1999 {
		t.Fatalf("merged count/min/max = %d/%d/%d", a.Count(), a.Min(), a.Max())
	}
	var empty Histogram
	empty.Merge(b)
	if empty.Count() != 2000 || empty.Min() != 1000 {
		t.Fatalf("merge into empty: count %d min %d", empty.Count(), empty.Min())
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.5) != 0 || a.Mean() != 0 {
		t.Fatal("reset histogram not empty")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := New()
	n := testing.AllocsPerRun(1000, func() { h.Record(123456) })
	if n != 0 {
		t.Fatalf("Record allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	h := New()
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i & 0xfffff))
	}
}
