//go:build linux

package futex

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func sharedWord(t *testing.T) *uint32 {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return (*uint32)(unsafe.Pointer(&mem[0]))
}

func TestWaitValueMismatch(t *testing.T) {
	w := sharedWord(t)
	atomic.StoreUint32(w, 1)
	if err := Wait(w, 0, time.Second); err != nil {
		t.Fatalf("Wait with stale value = %v, want nil at once", err)
	}
}

func TestWaitTimeout(t *testing.T) {
	w := sharedWord(t)
	if err := Wait(w, 0, time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait = %v, want ErrTimeout", err)
	}
}

func TestWakeAll(t *testing.T) {
	w := sharedWord(t)
	const n = 4
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.LoadUint32(w) == 0 {
				if err := Wait(w, 0, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	atomic.StoreUint32(w, 1)
	if _, err := WakeAll(w); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestWaitContextCancel(t *testing.T) {
	w := sharedWord(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		for {
			if err := WaitContext(ctx, w, 0, time.Hour); err != nil {
				done <- err
				return
			}
		}
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitContext = %v, want context.Canceled", err)
	}
	dl, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	for {
		err := WaitContext(dl, w, 0, time.Hour)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("WaitContext = %v", err)
		}
	}
}

func TestWakeBadAddress(t *testing.T) {
	// An unaligned address is rejected by the kernel with EINVAL, reported
	// as a wrapped syscall error rather than a crash.
	w := sharedWord(t)
	bad := (*uint32)(unsafe.Add(unsafe.Pointer(w), 1))
	if _, err := Wake(bad, 1); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Wake(unaligned) = %v, want EINVAL", err)
	}
}
