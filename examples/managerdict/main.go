// Command managerdict is the Manager example of Python's guide, without
// the manager process:
//
//	from multiprocessing import Process, Manager
//
//	def f(d, l):
//	    d[1] = '1'
//	    d['2'] = 2
//	    d[0.25] = None
//	    l.reverse()
//
//	if __name__ == '__main__':
//	    with Manager() as manager:
//	        d = manager.dict()
//	        l = manager.list(range(10))
//	        p = Process(target=f, args=(d, l))
//	        p.start()
//	        p.join()
//	        print(d)
//	        print(l)
//
// Python prints {1: '1', '2': 2, 0.25: None} and [9, 8, 7, 6, 5, 4, 3, 2,
// 1, 0]. Here the dict is a dict.Bytes (string keys, byte-string values:
// encode what you store) and the list a list.List[int64]; both live in
// anonymous segments that reach the child as descriptors, and the child
// writes straight into them.
//
// Run it with: go run ./examples/managerdict
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/dict"
	"github.com/shmkit/shmkit/list"
	"github.com/shmkit/shmkit/proc"
)

var f = proc.Register("f", func(ctx context.Context, args *proc.Args) error {
	d, err := proc.Object(ctx, args, 0, dict.OpenBytesFile)
	if err != nil {
		return err
	}
	defer d.Close()
	l, err := proc.Object(ctx, args, 1, list.OpenFile[int64])
	if err != nil {
		return err
	}
	defer l.Close()
	for k, v := range map[string]string{"1": "1", "2": "2", "0.25": "None"} {
		if err := d.Store(ctx, k, []byte(v)); err != nil {
			return err
		}
	}
	// l.reverse(): swap the ends inward.
	for i, j := 0, l.Len()-1; i < j; i, j = i+1, j-1 {
		a, err := l.Get(i)
		if err != nil {
			return err
		}
		b, err := l.Get(j)
		if err != nil {
			return err
		}
		if err := l.Set(ctx, i, b); err != nil {
			return err
		}
		if err := l.Set(ctx, j, a); err != nil {
			return err
		}
	}
	return nil
})

func main() {
	proc.Main()
	ctx := context.Background()
	d, err := dict.CreateAnonymousBytes()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	l, err := list.CreateAnonymous[int64]()
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	for i := range int64(10) {
		if _, err := l.Append(ctx, i); err != nil {
			log.Fatal(err)
		}
	}

	p, err := f.Start(ctx, d, l)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}

	m := map[string]string{}
	err = d.Range(func(k string, v []byte) bool { m[k] = string(v); return true })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m) // fmt prints a map's keys sorted
	all, err := l.Slice(0, l.Len())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(all)
}
