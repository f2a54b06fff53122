//go:build linux

package futex_test

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
)

// A waiter sleeps while a word in shared memory holds 0; a waker changes
// the word and then wakes it. The waiter rechecks the word after every
// Wait, since a wake-up may be spurious.
func Example() {
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	word := (*uint32)(unsafe.Pointer(&mem[0]))

	done := make(chan uint32)
	go func() {
		for atomic.LoadUint32(word) == 0 { // atomic: the waker stores it
			if err := futex.Wait(word, 0, 0); err != nil {
				panic(err)
			}
		}
		done <- atomic.LoadUint32(word)
	}()
	atomic.StoreUint32(word, 7) // change first, then wake: no wake-up is lost
	if _, err := futex.WakeAll(word); err != nil {
		panic(err)
	}
	fmt.Println("woken with", <-done)
	// Output: woken with 7
}
