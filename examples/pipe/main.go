// Command pipe talks to a child over a duplex Pipe, as Python's guide does:
//
//	from multiprocessing import Process, Pipe
//
//	def f(conn):
//	    msg = conn.recv()
//	    conn.send(msg.upper())
//	    conn.close()
//
//	if __name__ == '__main__':
//	    parent_conn, child_conn = Pipe()
//	    p = Process(target=f, args=(child_conn,))
//	    p.start()
//	    parent_conn.send('hello')
//	    print(parent_conn.recv())
//	    p.join()
//
// ring.NewPipe creates both ends in one anonymous segment (two SPSC rings)
// and returns end 0; passing it to Start hands the segment's descriptor to
// the child, which opens end 1 with ring.OpenPipeFile. (ring.Pipe gives
// both ends in one process, for goroutines.) When one end closes, the
// other receives what was sent and then io.EOF; had the child died
// instead, the parent's Recv would return ring.ErrPeerDied, not hang.
//
// Run it with: go run ./examples/pipe
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

var f = proc.Register("f", func(ctx context.Context, args *proc.Args) error {
	conn, err := proc.Object(ctx, args, 0, ring.OpenPipeFile) // end 1
	if err != nil {
		return err
	}
	defer conn.Close()
	msg, err := conn.RecvAppend(ctx, nil)
	if err != nil {
		return err
	}
	return conn.Send(ctx, bytes.ToUpper(msg))
})

func main() {
	proc.Main()
	ctx := context.Background()

	conn, err := ring.NewPipe(ring.Config{}) // end 0
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	p, err := f.Start(ctx, conn)
	if err != nil {
		log.Fatal(err)
	}
	if err := conn.Send(ctx, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	reply, err := conn.RecvAppend(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))

	// The child closed its end: what it sent has been received, then io.EOF.
	if _, err := conn.RecvAppend(ctx, nil); !errors.Is(err, io.EOF) {
		log.Fatalf("after the reply: %v, want io.EOF", err)
	}
	fmt.Println("child closed its end: io.EOF")
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
}
