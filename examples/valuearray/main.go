// Command valuearray shares a float and an array of int32 with a child,
// as the "Sharing state between processes" example of Python's guide:
//
//	from multiprocessing import Process, Value, Array
//
//	def f(n, a):
//	    n.value = 3.14
//	    a[0] = 42
//
//	if __name__ == '__main__':
//	    num = Value('d', 0.0)
//	    arr = Array('i', [0, 1, 2])
//	    p = Process(target=f, args=(num, arr))
//	    p.start()
//	    p.join()
//	    print(num.value, arr[:])
//
// Python prints 3.14 [42, 1, 2]; this prints 3.14 [42 1 2]. The Value and
// the Array live in anonymous segments and reach the child as descriptors;
// the child attaches with the package's OpenFile function, typed: opening
// them as another type would be an error (*shm.MismatchError), not garbage.
//
// Run it with: go run ./examples/valuearray
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/value"
)

var f = proc.Register("f", func(ctx context.Context, args *proc.Args) error {
	n, err := proc.Object(ctx, args, 0, value.OpenFile[float64])
	if err != nil {
		return err
	}
	defer n.Close()
	a, err := proc.Object(ctx, args, 1, array.OpenFile[int32])
	if err != nil {
		return err
	}
	defer a.Close()
	if err := n.Store(ctx, 3.14); err != nil { // under the Value's lock
		return err
	}
	return a.Update(ctx, 0, func(x *int32) { *x = 42 }) // under the Array's lock
})

func main() {
	proc.Main()
	ctx := context.Background()

	num, err := value.CreateAnonymous(0.0)
	if err != nil {
		log.Fatal(err)
	}
	defer num.Close()
	arr, err := array.CreateAnonymousFrom([]int32{0, 1, 2})
	if err != nil {
		log.Fatal(err)
	}
	defer arr.Close()

	p, err := f.Start(ctx, num, arr)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	n, err := num.Load(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, arr.Slice())
}
