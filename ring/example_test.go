package ring_test

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/shmkit/shmkit/ring"
)

// A queue between two handles. Across processes, one side calls
// ring.Create(name, ...) and the other ring.Open(ctx, name); an anonymous
// queue travels to a child as q.File() in exec.Cmd.ExtraFiles and is
// attached there with ring.OpenFile.
func Example() {
	q, err := ring.CreateAnonymous(ring.Config{Mode: ring.SPSC, MaxMessage: 64, Capacity: 16})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	ctx := context.Background()
	for _, s := range []string{"one", "two", "three"} {
		if err := q.Put(ctx, []byte(s)); err != nil {
			fmt.Println(err)
		}
	}
	q.CloseWrite() // consumers drain, then see io.EOF
	buf := make([]byte, q.MaxMessage())
	for {
		n, err := q.Get(ctx, buf)
		if err == io.EOF {
			break
		}
		fmt.Println(string(buf[:n]))
	}
	// Output:
	// one
	// two
	// three
}

// Goroutines that put on one MPMC queue concurrently each take a handle of
// their own (a participant of their own) and declare it exclusive, which
// spares the lock a shared handle takes on every call.
func ExampleQueue_SetExclusive() {
	q, err := ring.CreateAnonymous(ring.Config{Mode: ring.MPMC, MaxMessage: 8, Capacity: 64})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		h, err := ring.OpenFile(ctx, q.File())
		if err != nil {
			fmt.Println(err)
			return
		}
		h.SetExclusive() // this goroutine alone puts through h
		wg.Go(func() {
			defer h.Close()
			for i := range 10 {
				if err := h.Put(ctx, []byte{byte(w), byte(i)}); err != nil {
					fmt.Println(err)
				}
			}
		})
	}
	wg.Wait()
	q.CloseWrite()
	sum, buf := 0, make([]byte, 8)
	for {
		_, err := q.Get(ctx, buf)
		if err == io.EOF {
			break
		}
		sum += int(buf[1])
	}
	fmt.Println(sum)
	// Output: 180
}

// Zero-copy: the producer writes into the ring, the consumer reads from it.
func ExampleQueue_Reserve() {
	q, _ := ring.CreateAnonymous(ring.Config{MaxMessage: 64})
	defer q.Close()
	ctx := context.Background()
	b, _ := q.Reserve(ctx, 64)
	n := copy(b, "written in place")
	q.Commit(n)

	m, _ := q.Next(ctx)
	fmt.Println(string(m)) // valid until Release
	q.Release()
	// Output: written in place
}

type sample struct {
	Sensor uint32
	Value  float64
}

// A queue of fixed-size values, copied as bytes.
func ExampleTyped() {
	cfg, err := ring.TypedConfig[sample](ring.Config{Capacity: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	q, _ := ring.CreateAnonymous(cfg)
	defer q.Close()
	t, _ := ring.NewTyped[sample](q)
	t.Put(context.Background(), sample{Sensor: 3, Value: 21.5})
	v, _ := t.Get(context.Background())
	fmt.Printf("%+v\n", v)
	// Output: {Sensor:3 Value:21.5}
}

// A Slots queue: one producer and one consumer of fixed-size values, each
// in a slot of its own; batches move as one copy. In real use the two
// sides are two processes (pass t.File() to the other one, which attaches
// with OpenFileTyped).
func ExampleTyped_slots() {
	t, err := ring.CreateAnonymousTyped[sample](ring.Config{Mode: ring.Slots, Capacity: 1024})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer t.Close()
	ctx := context.Background()
	in := []sample{{1, 20.5}, {2, 21}, {3, 19.75}}
	n, err := t.PutBatch(ctx, in)
	fmt.Println(n, err)
	out := make([]sample, 10)
	n, err = t.GetBatch(ctx, out)
	fmt.Println(out[:n], err)
	// Output:
	// 3 <nil>
	// [{1 20.5} {2 21} {3 19.75}] <nil>
}

// Any Go value through a codec; an unencodable one fails at Put.
func ExampleEncoded() {
	q, _ := ring.CreateAnonymous(ring.Config{Mode: ring.MPMC, MaxMessage: 256})
	defer q.Close()
	e := ring.NewEncoded[map[string]int](q, ring.JSON)
	e.Put(context.Background(), map[string]int{"apples": 3})
	m, _ := e.Get(context.Background())
	fmt.Println(m["apples"])

	bad := ring.NewEncoded[func()](q, ring.JSON)
	fmt.Println(bad.Put(context.Background(), func() {}) != nil)
	// Output:
	// 3
	// true
}

// A duplex pipe: messages one way, a byte stream the other.
func ExamplePipe() {
	a, b, err := ring.Pipe(ring.Config{MaxMessage: 64, Capacity: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	a.Send(context.Background(), []byte("ping"))
	buf := make([]byte, 64)
	n, _ := b.Recv(context.Background(), buf)
	fmt.Println(string(buf[:n]))

	io.WriteString(b, "pong")
	b.CloseWrite() // a reads what b sent, then io.EOF
	rest, _ := io.ReadAll(a)
	fmt.Println(string(rest))
	a.Close()
	// Output:
	// ping
	// pong
}
