// Command killedworker has a pool worker SIGKILLed in the middle of a Map,
// as the OOM killer would, and shows the pool going on. In Python:
//
//	import os
//	import signal
//	from multiprocessing import Pool
//
//	def work(x):
//	    if x == 5:
//	        os.kill(os.getpid(), signal.SIGKILL)
//	    return x * x
//
//	if __name__ == '__main__':
//	    with Pool(2) as pool:
//	        print(pool.map(work, range(10)))  # never returns
//
// Python's Pool replaces the dead worker but never learns which tasks it
// held, so map waits for their results for ever (cpython #96062);
// concurrent.futures.ProcessPoolExecutor raises BrokenProcessPool instead,
// for this call and every later one: the executor is unusable for good.
//
// A shmkit pool knows which chunks each worker holds (it has rings of its
// own, and at most two chunks in flight), so when a worker dies exactly
// the tasks it held end with a *proc.WorkerDiedError naming the worker's
// pid and the signal, every other task completes, the worker is replaced,
// and the pool takes more work. Map returns every result it has and the
// failed tasks' errors, joined, in input order.
//
// Here the 10 inputs travel in two chunks of 5 (ChunkSize), so the dead
// worker takes the 4 tasks after 5 in its chunk with it: a chunk is the
// unit a worker holds. With chunks of 1 it would hold 5 and at most the
// one task queued behind it. With PoolConfig.Retries (for idempotent
// tasks), the tasks of a dead worker are started again, each alone,
// instead of failing at once.
//
// Run it with: go run ./examples/killedworker
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/proc"
)

var work = proc.RegisterTask("work", func(ctx context.Context, x int) (int, error) {
	if x == 5 {
		// No deferred call runs and nothing is sent: the process is gone.
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute) // not reached
	}
	return x * x, nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	in := make([]int, 10)
	for i := range in {
		in[i] = i
	}

	pool, err := proc.NewPool(ctx, work, proc.PoolConfig{Workers: 2, ChunkSize: 5})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Terminate()

	out, err := pool.Map(ctx, in)
	fmt.Println(out)
	fmt.Println(err) // errors.Join: one line per failed task, in input order
	var died *proc.WorkerDiedError
	if !errors.As(err, &died) { // the first failed task's
		log.Fatalf("Map: %v, want a *proc.WorkerDiedError", err)
	}
	fmt.Printf("first failed: task %d, worker pid %d, signal %d (%v), attempt %d\n",
		died.Index, died.Pid, int(died.Signal), died.Signal, died.Attempts)

	// The worker was replaced: the pool goes on.
	out, err = pool.Map(ctx, []int{1, 2, 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("next Map:", out)
	if err := errors.Join(pool.Close(), pool.Wait()); err != nil {
		log.Fatal(err)
	}
}
