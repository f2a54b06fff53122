package ring

import (
	"context"
	"os"
	"strconv"
	"testing"
	"unsafe"
)

// BenchmarkSlots is BenchmarkSPSC's put and batch cases on a Slots queue
// through Typed (values of 8 and 64 bytes, the first word a sequence
// number the consumer process checks), so the two modes compare side by
// side: the same ring size in bytes, the same batch of benchBatch values.
func BenchmarkSlots(b *testing.B) {
	for _, how := range []string{"put", "batch"} {
		b.Run("8B/"+how, func(b *testing.B) { benchSlots[[1]uint64](b, how, spinDefault) })
		b.Run("64B/"+how, func(b *testing.B) { benchSlots[[8]uint64](b, how, spinDefault) })
	}
	for _, how := range []string{"put", "batch"} {
		b.Run("64B/"+how+"-spin", func(b *testing.B) { benchSlots[[8]uint64](b, how, -1) })
	}
}

func seqOf[T any](v *T) *uint64 { return (*uint64)(unsafe.Pointer(v)) }

func benchSlots[T any](b *testing.B, how string, spin int) {
	size := int(unsafe.Sizeof(*new(T)))
	cfg, err := TypedConfig[T](Config{Mode: Slots, Capacity: max(16, (1<<20)/(size+8))})
	if err != nil {
		b.Fatal(err)
	}
	tq, err := CreateAnonymousTyped[T](cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tq.Close()
	setSpin(tq.Queue(), spin)
	p := startPeer(b, []*os.File{tq.File()}, "slots-consume", strconv.Itoa(b.N), how, strconv.Itoa(size), strconv.Itoa(spin))
	ctx := context.Background()
	vs := make([]T, benchBatch)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	switch how {
	case "put":
		var v T
		for i := range b.N {
			*seqOf(&v) = uint64(i)
			if err := tq.Put(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
	case "batch":
		for i := 0; i < b.N; {
			k := min(benchBatch, b.N-i)
			for j := range k {
				*seqOf(&vs[j]) = uint64(i + j)
			}
			if _, err := tq.PutBatch(ctx, vs[:k]); err != nil {
				b.Fatal(err)
			}
			i += k
		}
	}
	finish(b, p)
}

// benchSlotsConsume is the consumer process of BenchmarkSlots.
func benchSlotsConsume[T any](q *Queue, n int, how string) error {
	tq, err := NewTyped[T](q)
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch how {
	case "put":
		for i := range n {
			v, err := tq.Get(ctx)
			if err != nil {
				return err
			}
			if *seqOf(&v) != uint64(i) {
				return errBenchOrder
			}
		}
	case "batch":
		vs := make([]T, benchBatch)
		for i := 0; i < n; {
			k, err := tq.GetBatch(ctx, vs[:min(benchBatch, n-i)])
			if err != nil {
				return err
			}
			for j := range k {
				if *seqOf(&vs[j]) != uint64(i+j) {
					return errBenchOrder
				}
			}
			i += k
		}
	}
	return nil
}

// BenchmarkSlotsPutGetInProcess is BenchmarkPutGetInProcess for Typed on
// a Slots queue: the instruction cost of one Put and one Get (ns/op per
// pair) with no second process.
func BenchmarkSlotsPutGetInProcess(b *testing.B) {
	b.Run("8B", func(b *testing.B) { benchSlotsPutGet[[1]uint64](b) })
	b.Run("64B", func(b *testing.B) { benchSlotsPutGet[[8]uint64](b) })
}

func benchSlotsPutGet[T any](b *testing.B) {
	cfg, _ := TypedConfig[T](Config{Mode: Slots, Capacity: 1024})
	tq, err := NewTyped[T](newQueue(b, cfg))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var v T
	b.ReportAllocs()
	for b.Loop() {
		if err := tq.Put(ctx, v); err != nil {
			b.Fatal(err)
		}
		if _, err := tq.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
