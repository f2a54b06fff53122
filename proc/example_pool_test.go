package proc_test

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/shmkit/shmkit/proc"
)

// Pool tasks are registered at package level too.
var (
	exampleSquare = proc.RegisterTask("example-square", func(ctx context.Context, x int) (int, error) {
		return x * x, nil
	})
	exampleMultiply = proc.RegisterTask("example-multiply", func(ctx context.Context, p proc.Pair[int, int]) (int, error) {
		return p.A * p.B, nil
	})
	exampleFragile = proc.RegisterTask("example-fragile", func(ctx context.Context, x int) (int, error) {
		switch x {
		case 2:
			return 0, errors.New("two is not welcome")
		case 3:
			panic("three")
		}
		return x, nil
	})
)

// Pool(4).map(square, range(10)).
func ExamplePool_Map() {
	ctx := context.Background()
	pool, err := proc.NewPool(ctx, exampleSquare, proc.PoolConfig{Workers: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Terminate()
	in := make([]int, 10)
	for i := range in {
		in[i] = i
	}
	out, err := pool.Map(ctx, in)
	fmt.Println(out, err)
	// Output: [0 1 4 9 16 25 36 49 64 81] <nil>
}

// Pool.starmap(multiply, [(1, 2), (3, 4), (5, 6)]): a Map over pairs.
func ExamplePool_Map_starmap() {
	ctx := context.Background()
	pool, err := proc.NewPool(ctx, exampleMultiply, proc.PoolConfig{Workers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Terminate()
	out, err := pool.Map(ctx, []proc.Pair[int, int]{{A: 1, B: 2}, {A: 3, B: 4}, {A: 5, B: 6}})
	fmt.Println(out, err)
	// Output: [2 12 30] <nil>
}

// Results as they finish, each once, with the index of its input.
func ExamplePool_MapUnordered() {
	ctx := context.Background()
	pool, err := proc.NewPool(ctx, exampleSquare, proc.PoolConfig{Workers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Terminate()
	var got []string
	for i, r := range pool.MapUnordered(ctx, []int{5, 6, 7}) {
		got = append(got, fmt.Sprintf("%d:%d", i, r.Value))
	}
	sort.Strings(got)
	fmt.Println(got)
	// Output: [0:25 1:36 2:49]
}

// apply_async: a future.
func ExamplePool_Submit() {
	ctx := context.Background()
	pool, err := proc.NewPool(ctx, exampleSquare, proc.PoolConfig{Workers: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Terminate()
	f := pool.Submit(ctx, 12)
	fmt.Println(f.Get(ctx))
	// Output: 144 <nil>
}

// Each task's failure is its own: an error, a panic (with its stack), and
// the other tasks' results.
func ExampleTaskErrors() {
	ctx := context.Background()
	pool, err := proc.NewPool(ctx, exampleFragile, proc.PoolConfig{Workers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Terminate()
	out, err := pool.Map(ctx, []int{0, 1, 2, 3, 4})
	fmt.Println(out)
	for _, te := range proc.TaskErrors(err) {
		var pe *proc.PanicError
		fmt.Println(te.Index, errors.As(te.Err, &pe), errors.Is(te.Err, proc.ErrPanic))
	}
	// Output:
	// [0 1 0 0 4]
	// 2 false false
	// 3 true true
}
