package proc_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/proc"
)

// benchInputs is the input of the tiny-task benchmarks: squares of ints.
const benchInputs = 1 << 20

// BenchmarkPoolMapTiny maps the square of benchInputs ints over a pool of
// two workers with the automatic chunk size, reporting tasks/s.
func BenchmarkPoolMapTiny(b *testing.B) {
	benchMap(b, 2, 0, benchInputs)
}

// BenchmarkPoolMapChunk1 is the per-task overhead: chunk size 1, so every
// task is a job message and a result message.
func BenchmarkPoolMapChunk1(b *testing.B) {
	benchMap(b, 2, 1, 20000)
}

func benchMap(b *testing.B, workers, chunk, n int) {
	ctx := context.Background()
	p, err := proc.NewPool(ctx, poolSquare, proc.PoolConfig{Workers: workers, ChunkSize: chunk})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Terminate()
	in := poolInts(n)
	b.ResetTimer()
	for b.Loop() {
		out, err := p.Map(ctx, in)
		if err != nil || out[n-1] != (n-1)*(n-1) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(b.N), "ns/task")
}

// BenchmarkPoolStart is the time from NewPool to the first result of a
// one-task Map, for a pool of 2 and of NumCPU workers.
func BenchmarkPoolStart(b *testing.B) {
	for _, w := range []int{2, runtime.NumCPU()} {
		b.Run("workers="+itoa(w), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				p, err := proc.NewPool(ctx, poolSquare, proc.PoolConfig{Workers: w})
				if err != nil {
					b.Fatal(err)
				}
				if out, err := p.Map(ctx, []int{3}); err != nil || out[0] != 9 {
					b.Fatal(err)
				}
				b.StopTimer()
				p.Terminate()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/first-result")
		})
	}
}

// BenchmarkGoroutinePool is the same work in one process: a pool of two
// goroutines fed through a channel, one task a channel operation and
// chunked (1000 tasks a send), for comparison with BenchmarkPoolMapTiny.
func BenchmarkGoroutinePool(b *testing.B) {
	for _, chunk := range []int{1, 1000} {
		b.Run("chunk="+itoa(chunk), func(b *testing.B) {
			n := benchInputs
			if chunk == 1 {
				n = 1 << 16
			}
			in := poolInts(n)
			out := make([]int, n)
			type job struct{ lo, hi int }
			jobs := make(chan job, 2)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for j := range jobs {
						for i := j.lo; i < j.hi; i++ {
							out[i] = in[i] * in[i]
						}
					}
				})
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				for lo := 0; lo < n; lo += chunk {
					jobs <- job{lo, min(lo+chunk, n)}
				}
			}
			close(jobs)
			wg.Wait()
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// BenchmarkPoolMap100k maps 100,000 squares a call over two workers: the
// per-call overhead (result slice, first and last chunk) shows here.
func BenchmarkPoolMap100k(b *testing.B) {
	benchMap(b, 2, 0, 100000)
}
