//go:build linux

package race_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/race"
)

// spinLock is a lock whose word lives in shared memory, where the race
// detector does not see the atomics on it. It reports its edges on the
// word's heap proxy instead.
type spinLock struct {
	word  *uint32
	proxy unsafe.Pointer
}

func newSpinLock(word *uint32) *spinLock {
	return &spinLock{word: word, proxy: race.Proxy(unsafe.Pointer(word))}
}

func (l *spinLock) Lock() {
	for !atomic.CompareAndSwapUint32(l.word, 0, 1) {
		runtime.Gosched()
	}
	race.Acquire(l.proxy) // after acquiring: see what the last holder wrote
}

func (l *spinLock) Unlock() {
	race.ReleaseMerge(l.proxy) // before releasing: publish what we wrote
	atomic.StoreUint32(l.word, 0)
}

// Two goroutines update Go heap data under a lock in shared memory. Under
// -race, without the annotations, the detector would report the guarded
// counter as racy.
func Example() {
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	word := (*uint32)(unsafe.Pointer(&mem[0]))
	counter := 0
	done := make(chan bool)
	add := func(l *spinLock) {
		for range 1000 {
			l.Lock()
			counter++
			l.Unlock()
		}
		done <- true
	}
	go add(newSpinLock(word)) // two handles, one proxy
	go add(newSpinLock(word))
	<-done
	<-done
	fmt.Println(counter)
	// Output: 2000
}
