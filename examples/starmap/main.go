// Command starmap calls a function of two arguments over a pool, as
// Python's Pool.starmap:
//
//	from multiprocessing import Pool
//
//	def multiply(a, b):
//	    return a * b
//
//	if __name__ == '__main__':
//	    with Pool(2) as pool:
//	        print(pool.starmap(multiply, [(1, 2), (3, 4), (5, 6)]))
//
// Python prints [2, 12, 30]; this prints [2 12 30]. A task has one input,
// so several arguments are one value: proc.Pair for two, a struct of your
// own for more (volume below). Starmap is Map over that input. A Pair (or a
// struct) of plain values is itself plain and travels as raw bytes; one
// with strings, slices or maps is encoded with gob.
//
// Run it with: go run ./examples/starmap
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/proc"
)

var multiply = proc.RegisterTask("multiply", func(ctx context.Context, p proc.Pair[int, int]) (int, error) {
	return p.A * p.B, nil
})

// Box is the arguments of volume.
type Box struct {
	Name                 string // not plain: Box travels through gob
	Width, Height, Depth int
}

var volume = proc.RegisterTask("volume", func(ctx context.Context, b Box) (string, error) {
	return fmt.Sprintf("%s: %d", b.Name, b.Width*b.Height*b.Depth), nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	pool, err := proc.NewPool(ctx, multiply, proc.PoolConfig{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Terminate()
	out, err := pool.Map(ctx, []proc.Pair[int, int]{{A: 1, B: 2}, {A: 3, B: 4}, {A: 5, B: 6}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out)

	boxes, err := proc.NewPool(ctx, volume, proc.PoolConfig{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer boxes.Terminate()
	vols, err := boxes.Map(ctx, []Box{{"cube", 2, 2, 2}, {"slab", 4, 3, 1}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", vols)

	// pool.close(); pool.join(), for each pool.
	if err := errors.Join(pool.Close(), boxes.Close(), pool.Wait(), boxes.Wait()); err != nil {
		log.Fatal(err)
	}
}
