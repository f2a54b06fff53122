// Command poolmap maps a function over a pool of four worker processes,
// the Pool example of Python's guide:
//
//	from multiprocessing import Pool
//
//	def square(x):
//	    return x * x
//
//	if __name__ == '__main__':
//	    with Pool(4) as pool:
//	        print(pool.map(square, range(10)))
//	        res = pool.apply_async(square, (20,))
//	        print(res.get(timeout=1))
//
// Python prints [0, 1, 4, 9, 16, 25, 36, 49, 64, 81] and 400; this prints
// [0 1 4 9 16 25 36 49 64 81] and 400. The task is registered by name at
// package level (a closure cannot travel to another process), typed: an
// int in, an int out, both plain values, so they cross the pool's rings as
// their bytes with no encoding. Map returns the results in input order;
// Submit is apply_async and returns a Future. Close and Wait are
// Python's close() and join(); Terminate is terminate().
//
// Run it with: go run ./examples/poolmap
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/shmkit/shmkit/proc"
)

var square = proc.RegisterTask("square", func(ctx context.Context, x int) (int, error) {
	return x * x, nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	pool, err := proc.NewPool(ctx, square, proc.PoolConfig{Workers: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Terminate() // the with block's exit, if we return early

	in := make([]int, 10) // range(10)
	for i := range in {
		in[i] = i
	}
	out, err := pool.Map(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)

	res := pool.Submit(ctx, 20) // apply_async
	getCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := res.Get(getCtx) // res.get(timeout=1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v)

	if err := pool.Close(); err != nil {
		log.Fatal(err)
	}
	if err := pool.Wait(); err != nil {
		log.Fatal(err)
	}
}
