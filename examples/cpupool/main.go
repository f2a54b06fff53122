// Command cpupool maps 100 tasks over a pool with one worker per CPU, the
// size Python's Pool() picks by default:
//
//	import os
//	from multiprocessing import Pool
//
//	def square(x):
//	    return x * x
//
//	if __name__ == '__main__':
//	    with Pool(os.cpu_count()) as pool:  # Pool() does the same
//	        results = pool.map(square, range(100))
//	        print(len(results), sum(results))
//	        print(sum(pool.imap_unordered(square, range(100))))
//
// The zero PoolConfig is runtime.NumCPU() workers, and chunking is
// automatic: 100 inputs over n workers travel in chunks of
// 100/(4n) tasks, so the pool makes a few ring round trips, not 100.
// MapUnordered (imap_unordered) yields each result as it arrives, with
// the index of its input; the order varies, the sum does not.
//
// Run it with: go run ./examples/cpupool
package main

import (
	"context"
	"fmt"
	"log"
	"runtime"

	"github.com/shmkit/shmkit/proc"
)

var square = proc.RegisterTask("square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	pool, err := proc.NewPool(ctx, square, proc.PoolConfig{}) // Workers: runtime.NumCPU()
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Terminate()
	fmt.Printf("%d workers (runtime.NumCPU() is %d)\n", len(pool.Workers()), runtime.NumCPU())

	in := make([]int, 100)
	for i := range in {
		in[i] = i
	}
	out, err := pool.Map(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	sum := 0
	for _, v := range out {
		sum += v
	}
	fmt.Println(len(out), sum)

	sum, seen := 0, make([]bool, len(in))
	for i, r := range pool.MapUnordered(ctx, in) {
		if r.Err != nil {
			log.Fatal(r.Err)
		}
		seen[i] = true
		sum += r.Value
	}
	for i, ok := range seen {
		if !ok {
			log.Fatalf("no result for input %d", i)
		}
	}
	fmt.Println(sum)

	if err := pool.Close(); err != nil {
		log.Fatal(err)
	}
	if err := pool.Wait(); err != nil {
		log.Fatal(err)
	}
}
