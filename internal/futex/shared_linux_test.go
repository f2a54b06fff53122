//go:build linux

package futex

import (
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

func init() {
	// sleeper: map the memfd at fd 3 and sleep on its first word until the
	// word is non-zero, then print "woken".
	testproc.Register("sleeper", func([]string) int {
		mem, err := unix.Mmap(3, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			testproc.Printf("mmap: %v", err)
			return 1
		}
		w := (*uint32)(unsafe.Pointer(&mem[0]))
		for atomic.LoadUint32(w) == 0 { // atomic: the parent stores it
			if err := Wait(w, 0, 0); err != nil {
				testproc.Printf("Wait: %v", err)
				return 1
			}
		}
		testproc.Printf("woken")
		return 0
	})
}

// The futex is shared, not process-private: a Wake in this process finds
// a waiter sleeping in another process on a word of a memfd both have
// mapped (at different addresses). With FUTEX_PRIVATE_FLAG the kernel
// keys waiters by address space, and Wake never finds the helper.
func TestWakeOtherProcess(t *testing.T) {
	fd, err := unix.MemfdCreate("futex-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "futex-test")
	defer f.Close()
	if err := f.Truncate(4096); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	w := (*uint32)(unsafe.Pointer(&mem[0]))

	cmd := testproc.Command(t, "sleeper")
	cmd.ExtraFiles = []*os.File{f}
	p := testproc.StartCmd(t, "sleeper", cmd)
	// Wake until the kernel reports that it woke somebody: that can only
	// be the helper, asleep on the same page (nobody else maps it).
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := Wake(w, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if n != 0 {
			t.Fatalf("Wake woke %d waiters, want at most 1", n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Wake never found the helper asleep: is the futex process-private? helper stderr:\n%s", p.Stderr())
		}
		runtime.Gosched()
	}
	// The helper may have gone back to sleep on 0 (a wake without a
	// change looks spurious to it): change the word and wake it for good.
	atomic.StoreUint32(w, 1)
	if _, err := WakeAll(w); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, "woken")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Calls counts every system call, so that callers can prove a path makes
// none.
func TestCalls(t *testing.T) {
	w := sharedWord(t)
	before := Calls()
	atomic.StoreUint32(w, 1)
	_ = Wait(w, 0, time.Second) // value mismatch: returns at once, still a call
	_, _ = Wake(w, 1)
	_, _ = WakeAll(w)
	if n := Calls() - before; n != 3 {
		t.Fatalf("Calls grew by %d, want 3", n)
	}
}
