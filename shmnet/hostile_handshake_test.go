package shmnet

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// TestListenerCloseStalledHandshake: a client whose pipe segment never
// becomes ready (state "initialising", its creator alive: this process)
// must not hold the listener's Close for the handshake timeout.
func TestListenerCloseStalledHandshake(t *testing.T) {
	name := testName(t)
	ln, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ring.NewPipe(ring.Config{MaxMessage: 64, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Put the segment back into "initialising".
	fd := rawFd(p.File())
	mem, err := unix.Mmap(fd, 0, shm.HeaderSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[120])), uint32(shm.StateInitialising))
	page, err := shm.CreateAnonymous(notifySize, shm.WithKind(shm.KindRaw))
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	var evs []int
	for range 4 {
		f, err := newEventfd()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		evs = append(evs, rawFd(f))
	}
	addr, _ := sockAddr(name)
	uc, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	rights := unix.UnixRights(append([]int{fd, rawFd(page.File())}, evs...)...)
	if _, _, err := uc.WriteMsgUnix([]byte{'P'}, rights, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the listener waits on the segment
	start := time.Now()
	ln.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Listener.Close took %v with a handshake stalled", d)
	}
}
