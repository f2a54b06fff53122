//go:build linux

package sem

import (
	"context"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// Test segment layout: the three objects, then test counters.
const (
	segMutex   = 0
	segSem     = 64
	segEvent   = 128
	segEvent2  = 192
	segCounter = 256 // uint64, plain (non-atomic) increments under the Mutex
	segInside  = 264 // uint32, atomic: holders of the Semaphore now
	segMaxSeen = 268 // uint32, atomic: most holders seen at once
	segStop    = 272 // uint32, atomic: 1 = helpers stop
	segDone    = 276 // uint32, atomic: helpers finished
	segSize    = 4096
)

// seg is a memfd mapping shared with helper processes.
type seg struct {
	f   *os.File
	mem []byte
}

func newSeg(tb testing.TB) *seg {
	tb.Helper()
	fd, err := unix.MemfdCreate("sem-test", unix.MFD_CLOEXEC)
	if err != nil {
		tb.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "sem-test")
	if err := f.Truncate(segSize); err != nil {
		tb.Fatal(err)
	}
	s, err := mapFile(f)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.close() })
	return s
}

func mapFile(f *os.File) (*seg, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, segSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &seg{f: f, mem: mem}, nil
}

// childSeg maps the segment a helper received as file descriptor 3.
func childSeg() *seg {
	return orPanic(mapFile(os.NewFile(3, "seg")))
}

func (s *seg) close() {
	_ = unix.Munmap(s.mem)
	_ = s.f.Close()
}

func (s *seg) at(off int) []byte   { return s.mem[off : off+64] }
func (s *seg) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&s.mem[off])) }
func (s *seg) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }
func (s *seg) stopped() bool       { return atomic.LoadUint32(s.u32(segStop)) != 0 }
func (s *seg) cmd(tb testing.TB, name string, args ...string) *exec.Cmd {
	cmd := testproc.Command(tb, name, args...)
	cmd.ExtraFiles = []*os.File{s.f}
	return cmd
}

// awaitStart, in a helper, says "ready" and waits for the start Event at
// segEvent, so that the parent can start all helpers at once.
func (s *seg) awaitStart() {
	start := orPanic(EventAt(s.at(segEvent)))
	testproc.Printf("ready")
	if err := start.Wait(context.Background()); err != nil {
		panic(err)
	}
}

// start runs helper name with the segment as fd 3.
func (s *seg) start(tb testing.TB, name string, args ...string) *testproc.Proc {
	tb.Helper()
	return testproc.StartCmd(tb, name, s.cmd(tb, name, args...))
}

// anonMem returns n bytes of fresh MAP_SHARED|MAP_ANONYMOUS memory.
func anonMem(tb testing.TB, n int) []byte {
	tb.Helper()
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Munmap(mem) })
	return mem
}

func must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

// orPanic returns v, or panics with err: for helper processes, where a
// panic fails the parent's Wait with the message.
func orPanic[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// countWithTwoHandles increments a Go heap variable 100 times under each
// of two handles of one Mutex, from two goroutines, and checks the exact
// total. Under -race it fails with "DATA RACE" unless both handles report
// their happens-before edges on one proxy (internal/race).
func countWithTwoHandles(t *testing.T, m1, m2 *Mutex) {
	t.Helper()
	const N = 100
	x := 0
	add := func(m *Mutex) error {
		for range N {
			if err := m.Lock(context.Background()); err != nil {
				return err
			}
			x++
			if err := m.Unlock(); err != nil {
				return err
			}
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- add(m2) }()
	if err := add(m1); err != nil {
		t.Fatal(err) // the deferred Closes wake the goroutine
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if x != 2*N {
		t.Fatalf("x = %d, want %d", x, 2*N)
	}
}
