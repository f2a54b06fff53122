// Package hdr is a small log-linear ("HDR-style") histogram of non-negative
// integer values such as latencies in nanoseconds.
//
// Values below 2^SubBucketBits are counted exactly. Above that, every power
// of two is split into 2^(SubBucketBits-1) equal buckets, so a recorded value
// is known to within a relative error of 2^-(SubBucketBits-1) (about 0.8%
// with the default of 8 bits) across the whole int64 range, in a fixed
// 7,296-bucket table (57 KiB) that is allocated once. Recording is a few
// shifts and an increment: no allocation, no syscall.
//
// It is what cmd/shmbench uses for p50/p90/p99/p99.9. It is not safe for
// concurrent use; keep one per goroutine and Merge them.
package hdr

import (
	"math"
	"math/bits"
)

// SubBucketBits sets the precision: values are resolved to within
// 1/2^(SubBucketBits-1) of themselves.
const SubBucketBits = 8

const (
	subCount  = 1 << SubBucketBits       // values below this are exact
	halfCount = 1 << (SubBucketBits - 1) // buckets per power of two above
	// numBuckets covers every non-negative int64: the highest bit length
	// is 63, giving index (63-SubBucketBits+1)*halfCount + subCount - 1.
	numBuckets = (64-SubBucketBits)*halfCount + halfCount
)

// Histogram counts values in log-linear buckets. The zero value is an empty
// histogram ready to use.
type Histogram struct {
	counts []uint64 // allocated on first Record
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// New returns an empty histogram with its bucket table already allocated,
// so that the first Record does not allocate either.
func New() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets)}
}

// index returns the bucket of v (v >= 0).
func index(v uint64) int {
	if v < subCount {
		return int(v)
	}
	h := bits.Len64(v)         // h > SubBucketBits
	shift := h - SubBucketBits // >= 1
	m := v >> shift            // in [halfCount, subCount)
	return shift*halfCount + int(m)
}

// lowest returns the smallest value that falls in bucket i.
func lowest(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i - halfCount) / halfCount // i = shift*half + m, m in [half, 2*half)
	m := uint64(i - shift*halfCount)
	return m << shift
}

// highest returns the largest value that falls in bucket i.
func highest(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i - halfCount) / halfCount
	m := uint64(i - shift*halfCount)
	return (m+1)<<shift - 1
}

// Record counts one value. Negative values are counted as 0.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN counts n occurrences of v. Negative values are counted as 0.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[index(uint64(v))] += n
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total += n
	h.sum += float64(v) * float64(n)
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest value recorded (exact), or 0 when empty.
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded (exact), or 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the recorded values (exact up to float64
// rounding), or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 <= q <= 1; 0.99 is p99): the
// upper end of the bucket holding the ceil(q*Count())-th smallest value,
// clamped to [Min, Max]. So the true quantile is at most the result and at
// least the result minus the bucket width. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if math.IsNaN(q) || q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := int64(highest(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

// Reset empties the histogram, keeping its bucket table.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.min, h.max, h.sum = 0, 0, 0, 0
}
