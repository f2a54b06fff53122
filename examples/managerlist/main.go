// Command managerlist is the Manager-list example of Python's guide,
// without the manager process:
//
//	from multiprocessing import Process, Manager
//
//	def f(l):
//	    l.append(100)
//
//	if __name__ == '__main__':
//	    with Manager() as manager:
//	        l = manager.list([1, 2, 3])
//	        p = Process(target=f, args=(l,))
//	        p.start()
//	        p.join()
//	        print(l)
//
// Python prints [1, 2, 3, 100]; this prints [1 2 3 100]. The list lives in
// an anonymous segment that reaches the child as a descriptor; the child's
// Append writes straight into it, with no server in between.
//
// Run it with: go run ./examples/managerlist
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/list"
	"github.com/shmkit/shmkit/proc"
)

var f = proc.Register("f", func(ctx context.Context, args *proc.Args) error {
	l, err := proc.Object(ctx, args, 0, list.OpenFile[int64])
	if err != nil {
		return err
	}
	defer l.Close()
	_, err = l.Append(ctx, 100)
	return err
})

func main() {
	proc.Main()
	ctx := context.Background()
	l, err := list.CreateAnonymous[int64]()
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(ctx, 1, 2, 3); err != nil {
		log.Fatal(err)
	}
	p, err := f.Start(ctx, l)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	all, err := l.Slice(0, l.Len())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(all)
}
