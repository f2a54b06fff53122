//go:build linux

package value_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// The Python multiprocessing example
//
//	num = Value('d', 0.0)
//	p = Process(target=f, args=(num,))   # f sets num.value = 3.1415927
//	print(num.value)
//
// in Go. The second handle stands in for the other process: it opens the
// value by name exactly as another program would.
func Example() {
	ctx := context.Background()
	name := fmt.Sprintf("example-num-%d", os.Getpid())
	defer shm.Unlink(name)

	num, err := value.Create(name, 0.0) // Value('d', 0.0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer num.Close()

	// In the other process:
	other, err := value.Open[float64](ctx, name)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := other.Store(ctx, 3.1415927); err != nil {
		fmt.Println(err)
	}
	other.Close()

	x, err := num.Load(ctx)
	fmt.Println(x, err)
	// Output: 3.1415927 <nil>
}

// A counter shared by several workers (processes in real use; goroutines
// with their own handles here), incremented without a lock.
func ExampleAtomicOf() {
	ctx := context.Background()
	name := fmt.Sprintf("example-counter-%d", os.Getpid())
	defer shm.Unlink(name)

	counter, err := value.Create[int64](name, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer counter.Close()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c, err := value.Open[int64](ctx, name) // what each process does
			if err != nil {
				fmt.Println(err)
				return
			}
			defer c.Close()
			hits := value.AtomicOf(c)
			for range 1000 {
				hits.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Println(value.AtomicOf(counter).Load())
	// Output: 4000
}

type stats struct {
	Count int64
	Sum   float64
	Max   float64
}

// Update keeps several fields consistent: every process sees either all of
// an update or none of it.
func ExampleValue_Update() {
	ctx := context.Background()
	name := fmt.Sprintf("example-stats-%d", os.Getpid())
	defer shm.Unlink(name)

	st, err := value.Create(name, stats{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	for _, x := range []float64{2, 7, 3} {
		err := st.Update(ctx, func(s *stats) {
			s.Count++
			s.Sum += x
			s.Max = max(s.Max, x)
		})
		if err != nil {
			fmt.Println(err)
		}
	}
	s, _ := st.Load(ctx)
	fmt.Printf("%+v\n", s)
	// Output: {Count:3 Sum:12 Max:7}
}
