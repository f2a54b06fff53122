package sem_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
)

// A named Mutex shared by unrelated processes: each opens it by name. A
// Lock that returns ErrOwnerDead holds the lock, but the previous holder
// died inside its critical section: repair, then MarkConsistent.
func ExampleMutex() {
	name := "example-mutex-" + strconv.Itoa(os.Getpid())
	m, err := sem.CreateMutex(name) // the first process; others: sem.OpenMutex(ctx, name)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Unlink(name)
	defer m.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch err := m.Lock(ctx); {
	case errors.Is(err, sem.ErrOwnerDead):
		// We hold the lock. Bring the shared state back to consistency...
		if err := m.MarkConsistent(); err != nil {
			log.Fatal(err)
		}
	case err != nil:
		log.Fatal(err) // ctx expired: we do not hold the lock
	}
	fmt.Println("in the critical section")
	if err := m.Unlock(); err != nil {
		log.Fatal(err)
	}
	// Output: in the critical section
}

// A Mutex at an offset inside a segment that also holds the data it
// guards.
func ExampleInitMutex() {
	seg, err := shm.CreateAnonymous(4096, shm.WithInit(func(p []byte) error {
		_, err := sem.InitMutex(p[:sem.MutexSize]) // the creator initialises it once
		return err
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	m, err := sem.MutexAt(seg.Bytes()[:sem.MutexSize]) // every user attaches
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	data := seg.Bytes()[sem.MutexSize:]
	if err := m.Lock(context.Background()); err != nil {
		log.Fatal(err)
	}
	data[0]++
	_ = m.Unlock()
	fmt.Println(data[0])
	// Output: 1
}

// A bounded Semaphore admitting at most two holders at a time.
func ExampleSemaphore() {
	name := "example-sem-" + strconv.Itoa(os.Getpid())
	s, err := sem.CreateSemaphore(name, 2, 2)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Unlink(name)
	defer s.Close()

	ctx := context.Background()
	_ = s.Acquire(ctx)
	_ = s.Acquire(ctx)
	ok, err := s.TryAcquire()
	fmt.Println("third admitted:", ok, err)
	_ = s.Release()
	_ = s.Release()
	fmt.Println("over-release:", s.Release())
	// Output:
	// third admitted: false <nil>
	// over-release: sem: semaphore released too many times
}

// An Event one process sets and others wait for.
func ExampleEvent() {
	name := "example-event-" + strconv.Itoa(os.Getpid())
	ready, err := sem.CreateEvent(name)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Unlink(name)
	defer ready.Close()

	go func() { // stands in for another process: sem.OpenEvent(ctx, name)
		_ = ready.Set()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ready.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("set:", ready.IsSet())
	// Output: set: true
}

// A Barrier for three parties, reused for two rounds. The goroutines stand
// in for processes: each would call sem.OpenBarrier(ctx, name), or
// sem.OpenBarrierFile on an anonymous barrier inherited through ExtraFiles.
func ExampleBarrier() {
	b, err := sem.CreateAnonymousBarrier(3)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan int)
	for range 3 {
		go func() {
			last := 0
			for range 2 {
				i, err := b.Wait(ctx) // a dead party or an expired ctx: ErrBrokenBarrier
				if err != nil {
					log.Fatal(err)
				}
				if i == b.Parties()-1 {
					last++ // one party per round, here the last to arrive
				}
			}
			done <- last
		}()
	}
	rounds := 0
	for range 3 {
		rounds += <-done
	}
	fmt.Println("rounds:", rounds)
	// Output: rounds: 2
}

// A Cond and its Mutex guarding a counter in another segment: the
// consumer waits, holding the Mutex, until the producer has added enough.
func ExampleCond() {
	c, err := sem.CreateAnonymousCond() // holds the Cond and its Mutex
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	data, err := shm.CreateAnonymous(8)
	if err != nil {
		log.Fatal(err)
	}
	defer data.Close()
	items := &data.Bytes()[0] // guarded by c.Mutex()
	m := c.Mutex()
	ctx := context.Background()

	go func() { // the producer, as if in another process
		for range 3 {
			_ = m.Lock(ctx)
			*items++
			_ = c.Signal()
			_ = m.Unlock()
		}
	}()
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	for *items < 3 {
		if err := c.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("items:", *items)
	_ = m.Unlock()
	// Output: items: 3
}
