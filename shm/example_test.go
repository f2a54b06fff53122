//go:build linux

package shm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"

	"github.com/shmkit/shmkit/shm"
)

// A process creates a named segment and fills it before anyone can see
// it; another process (here the same one, for brevity) opens it by name.
func ExampleCreate() {
	name := "example-create-" + strconv.Itoa(os.Getpid())
	s, err := shm.Create(name, 4096, shm.WithKind(shm.KindRaw), shm.WithInit(func(p []byte) error {
		copy(p, "hello from the creator")
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	defer s.Unlink() // named segments outlive their creator: remove it when done

	// In another process:
	ctx := context.Background()
	r, err := shm.Open(ctx, name, shm.WithKind(shm.KindRaw))
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	fmt.Println(string(r.Bytes()[:22]), r.Size())

	// Writes through one mapping are seen through the other.
	copy(r.Bytes()[100:], "reply")
	fmt.Println(string(s.Bytes()[100:105]))
	// Output:
	// hello from the creator 4096
	// reply
}

// Exactly one of several processes calling OpenOrCreate creates the
// segment; the others open it, fully initialised.
func ExampleOpenOrCreate() {
	name := "example-ooc-" + strconv.Itoa(os.Getpid())
	ctx := context.Background()
	init := shm.WithInit(func(p []byte) error { p[0] = 1; return nil })
	a, created, err := shm.OpenOrCreate(ctx, name, 64, init)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	defer a.Unlink()
	fmt.Println("first created:", created)
	b, created, err := shm.OpenOrCreate(ctx, name, 64, init)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	fmt.Println("second created:", created, "payload[0] =", b.Bytes()[0])
	// Output:
	// first created: true
	// second created: false payload[0] = 1
}

// An anonymous segment has no name in /dev/shm. Its file goes to a child
// through exec.Cmd.ExtraFiles, where the child maps it with
// shm.OpenFile(ctx, os.NewFile(3, "")), or to any process with Send and
// Receive over a Unix socket.
func ExampleCreateAnonymous() {
	s, err := shm.CreateAnonymous(1 << 20)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// cmd := exec.Command("worker")
	// cmd.ExtraFiles = []*os.File{s.File()} // fd 3 in the child
	//
	// Here, the same process maps it a second time through its file.
	r, err := shm.OpenFile(context.Background(), s.File())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	s.Bytes()[0] = 42
	fmt.Println(r.Bytes()[0], r.Size(), r.Name() == "")
	// Output: 42 1048576 true
}

// Opening a segment with the wrong kind is a typed error.
func ExampleMismatchError() {
	name := "example-kind-" + strconv.Itoa(os.Getpid())
	s, err := shm.Create(name, 64, shm.WithKind(shm.KindQueue))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	defer s.Unlink()
	_, err = shm.Open(context.Background(), name, shm.WithKind(shm.KindArray))
	var me *shm.MismatchError
	if errors.As(err, &me) && errors.Is(err, shm.ErrKind) {
		fmt.Println("want", me.Want, "got", me.Got)
	}
	// Output: want array got queue
}
