//go:build linux

package array_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/shm"
)

// The Python multiprocessing example
//
//	arr = Array('i', [0, 1, 2])
//	p = Process(target=f, args=(arr,))   # f negates every element
//	print(arr[:])
//
// in Go. The second handle stands in for the other process: it opens the
// array by name exactly as another program would.
func Example() {
	ctx := context.Background()
	name := fmt.Sprintf("example-arr-%d", os.Getpid())
	defer shm.Unlink(name)

	arr, err := array.CreateFrom(name, []int32{0, 1, 2}) // Array('i', [0, 1, 2])
	if err != nil {
		fmt.Println(err)
		return
	}
	defer arr.Close()

	// In the other process:
	other, err := array.Open[int32](ctx, name)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = other.WithLock(ctx, func(s []int32) {
		for i := range s {
			s[i] = -s[i]
		}
	})
	if err != nil {
		fmt.Println(err)
	}
	other.Close()

	fmt.Println(arr.Len(), arr.Slice()) // arr[:] without a copy
	// Output: 3 [0 -1 -2]
}

// Per-element counters shared by several workers (processes in real use;
// goroutines with their own handles here), incremented without a lock.
func ExampleAtomicOf() {
	ctx := context.Background()
	name := fmt.Sprintf("example-hist-%d", os.Getpid())
	defer shm.Unlink(name)

	hist, err := array.Create[uint64](name, 4)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer hist.Close()

	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			h, err := array.Open[uint64](ctx, name) // what each process does
			if err != nil {
				fmt.Println(err)
				return
			}
			defer h.Close()
			buckets := array.AtomicOf(h)
			for i := range 100 {
				buckets.AddAt((i+w)%4, 1)
			}
		})
	}
	wg.Wait()
	out := make([]uint64, hist.Len())
	if _, err := hist.CopyOut(ctx, out, 0); err != nil {
		fmt.Println(err)
	}
	fmt.Println(out)
	// Output: [75 75 75 75]
}
