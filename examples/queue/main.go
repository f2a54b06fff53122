// Command queue has a child put a string on a Queue and the parent get
// it, as Python's guide does:
//
//	from multiprocessing import Process, Queue
//
//	def f(q):
//	    q.put('hello from the child')
//
//	if __name__ == '__main__':
//	    q = Queue()
//	    p = Process(target=f, args=(q,))
//	    p.start()
//	    print(q.get())
//	    p.join()
//
// The queue is a ring in an anonymous segment (a memfd, nothing in
// /dev/shm). Start passes it to the child as its descriptor, and the
// child attaches with proc.Object and ring.OpenFile. ring.Encoded carries
// any Go value through a codec (gob here), the analogue of pickling; a
// value it cannot encode is an error at Put.
//
// Run it with: go run ./examples/queue
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

var f = proc.Register("f", func(ctx context.Context, args *proc.Args) error {
	q, err := proc.Object(ctx, args, 0, ring.OpenFile)
	if err != nil {
		return err
	}
	defer q.Close()
	return ring.NewEncoded[string](q, ring.Gob).Put(ctx, "hello from the child")
})

func main() {
	proc.Main()
	ctx := context.Background()

	q, err := ring.CreateAnonymous(ring.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	p, err := f.Start(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := ring.NewEncoded[string](q, ring.Gob).Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg)
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
}
