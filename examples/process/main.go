// Command process starts three workers and joins them, the first example
// of Python's multiprocessing guide:
//
//	from multiprocessing import Process
//	import os
//
//	def worker(num):
//	    print(f'worker {num}: pid {os.getpid()}, parent {os.getppid()}')
//
//	if __name__ == '__main__':
//	    print(f'main: pid {os.getpid()}')
//	    procs = [Process(target=worker, args=(i,)) for i in range(3)]
//	    for p in procs:
//	        p.start()
//	    for p in procs:
//	        p.join()
//
// Go cannot fork, so the worker is this same binary started again: worker
// is registered by name at package level, and proc.Main, first thing in
// main, runs it when this process was started as a worker. Each worker's
// output is captured (Config.Stdout) and printed in order after the join,
// so the output does not depend on which worker runs first; by default it
// would go to our standard output, each line prefixed "[name pid] ".
//
// Run it with: go run ./examples/process
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/shmkit/shmkit/proc"
)

var worker = proc.Register("worker", func(ctx context.Context, args *proc.Args) error {
	var num int
	if err := args.Decode(0, &num); err != nil {
		return err
	}
	fmt.Printf("worker %d: pid %d, parent %d\n", num, os.Getpid(), os.Getppid())
	return nil
})

func main() {
	proc.Main()
	ctx := context.Background()
	fmt.Printf("main: pid %d\n", os.Getpid())

	var out [3]bytes.Buffer
	var procs []*proc.Process
	for i := range 3 {
		cfg := proc.Config{Name: fmt.Sprintf("worker-%d", i), Stdout: &out[i]}
		p, err := worker.StartWith(ctx, cfg, i) // p.start()
		if err != nil {
			log.Fatal(err)
		}
		procs = append(procs, p)
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil { // p.join(); a failure is an *proc.ExitError
			log.Fatal(err)
		}
		// Wait returns once every byte the worker wrote has reached out[i].
		fmt.Print(out[i].String())
	}
}
