// Command joinqueue shows what becomes of the "joining processes that use
// queues" deadlock of Python's guide:
//
//	from multiprocessing import Process, Queue
//
//	def f(q):
//	    q.put('X' * 1000000)
//
//	if __name__ == '__main__':
//	    queue = Queue()
//	    p = Process(target=f, args=(queue,))
//	    p.start()
//	    p.join()                    # this deadlocks
//	    obj = queue.get()
//
// Python deadlocks because its Queue is a pipe fed by a thread in the
// child: put returns at once, but the child cannot exit until the feeder
// thread has pushed all the data into the pipe, which holds 64 KiB until
// somebody reads it, and the parent reads only after join.
//
// A shmkit queue has no feeder thread: when Put returns, the message is in
// the shared segment, and the child may exit. So:
//
//  1. Join before get just works when the message fits in the queue: the
//     child's Put of 1,000,000 bytes copies them into the ring and returns,
//     the child exits, Wait returns, and the message is still there to Get.
//  2. The queue is bounded, though. A child that puts more than the queue
//     holds waits in Put for room, and room is made only by a Get; a
//     parent that waits for the child before getting would wait for ever,
//     as in Python. shmkit's answer is that every wait has a bound: Wait
//     with a deadline (select on Done) reports that the child is still
//     running, and then the parent gets first and waits after.
//  3. Or the child bounds its own Put with a context: it gives up, the
//     error it returns reaches the parent's Wait as a *proc.ExitError, and
//     every message whose Put returned nil is still in the queue.
//
// Run it with: go run ./examples/joinqueue
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

// big puts one message of 1,000,000 bytes, as Python's f does.
var big = proc.Register("big", func(ctx context.Context, args *proc.Args) error {
	q, err := proc.Object(ctx, args, 0, ring.OpenFile)
	if err != nil {
		return err
	}
	defer q.Close()
	return q.Put(ctx, bytes.Repeat([]byte("X"), 1_000_000))
})

// many puts n messages, each waiting for room for at most timeout
// (0: no bound of its own).
var many = proc.Register("many", func(ctx context.Context, args *proc.Args) error {
	q, err := proc.Object(ctx, args, 0, ring.OpenFile)
	if err != nil {
		return err
	}
	defer q.Close()
	var n int
	var timeout time.Duration
	if err := errors.Join(args.Decode(1, &n), args.Decode(2, &timeout)); err != nil {
		return err
	}
	for i := range n {
		putCtx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			putCtx, cancel = context.WithTimeout(ctx, timeout)
		}
		err := q.Put(putCtx, fmt.Appendf(nil, "message %d", i))
		cancel()
		if err != nil {
			return fmt.Errorf("put %d of %d: %w", i+1, n, err)
		}
	}
	return nil
})

func main() {
	proc.Main()
	ctx := context.Background()

	// 1. Join, then get: the message is in the segment, not in a pipe the
	// child must flush before it can exit.
	q, err := ring.CreateAnonymous(ring.Config{MaxMessage: 1 << 20, Capacity: 1})
	if err != nil {
		log.Fatal(err)
	}
	p, err := big.Start(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil { // join first, as Python's guide warns not to
		log.Fatal(err)
	}
	msg, err := q.GetAppend(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("1. joined, then got %d bytes: no deadlock\n", len(msg))
	q.Close()

	// 2. More than the queue holds: the child waits in Put until we Get.
	q, err = ring.CreateAnonymous(ring.Config{MaxMessage: 64, Capacity: 4})
	if err != nil {
		log.Fatal(err)
	}
	const n = 16
	p, err = many.Start(ctx, q, n, time.Duration(0))
	if err != nil {
		log.Fatal(err)
	}
	select { // Python: p.join(timeout=0.5); p.is_alive()
	case <-p.Done():
		log.Fatalf("the child exited with %d messages in a queue of %d: %v", n, q.Cap(), p.Wait())
	case <-time.After(500 * time.Millisecond):
		fmt.Printf("2. after 0.5s the child is still running: its Put waits for room (%d messages, a queue of %d)\n", n, q.Cap())
	}
	got := 0
	for got < n { // get first...
		if _, err := q.GetAppend(ctx, nil); err != nil {
			log.Fatal(err)
		}
		got++
	}
	if err := p.Wait(); err != nil { // ...then join
		log.Fatal(err)
	}
	fmt.Printf("   got %d messages, then joined: the child exited cleanly\n", got)
	q.Close()

	// 3. The child bounds its Put: it reports the full queue and exits.
	q, err = ring.CreateAnonymous(ring.Config{MaxMessage: 64, Capacity: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	p, err = many.Start(ctx, q, n, 200*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	err = p.Wait() // join before get, and nobody gets
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		log.Fatalf("Wait: %v, want an *proc.ExitError", err)
	}
	fmt.Printf("3. joined without getting: the child failed with exit code %d: %s\n", ee.Code, ee.Err)
	fmt.Printf("   the %d messages it had put are still in the queue\n", q.Len())
}
