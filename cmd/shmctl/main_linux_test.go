//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	// create-send NAME: create a segment, send its descriptor over the
	// Unix socket inherited as fd 3, and exit.
	testproc.Register("create-send", func(args []string) int {
		s, err := shm.Create(args[0], 64)
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		c, err := net.FileConn(os.NewFile(3, "sock"))
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		if err := s.Send(c.(*net.UnixConn)); err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		testproc.Printf("sent")
		return 0
	})
}

// Segments whose creator died but that a live process maps are not
// abandoned, however the process got them: by name (Open), or as the
// creator's descriptor (its maps then show "/dev/shm/#INODE (deleted)").
func TestGCKeepsMappedSegments(t *testing.T) {
	opened := fmt.Sprintf("shmctl-gcm-%d-opened", os.Getpid())
	received := fmt.Sprintf("shmctl-gcm-%d-received", os.Getpid())
	t.Cleanup(func() { _ = shm.Unlink(opened); _ = shm.Unlink(received) })
	p := testproc.Start(t, "create", opened)
	p.Expect(t, "created")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	s1, err := shm.Open(context.Background(), opened)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
	defer mine.Close()
	cmd := testproc.Command(t, "create-send", received)
	cmd.ExtraFiles = []*os.File{theirs}
	p = testproc.StartCmd(t, "create-send", cmd)
	theirs.Close()
	p.Expect(t, "sent")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	c, err := net.FileConn(mine)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s2, err := shm.Receive(context.Background(), c.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	pattern := fmt.Sprintf("shmctl-gcm-%d-*", os.Getpid())
	if code, o, e := shmctl(t, "gc", pattern); code != 0 || strings.TrimSpace(o) != "" {
		t.Fatalf("gc listed mapped segments: %d %q %q", code, o, e)
	}
	// Once unmapped, both are abandoned.
	s1.Close()
	s2.Close()
	if code, o, e := shmctl(t, "gc", pattern); code != 0 || strings.TrimSpace(o) != received+"\n"+opened && strings.TrimSpace(o) != opened+"\n"+received {
		t.Fatalf("gc after unmapping: %d %q %q", code, o, e)
	}
}

// On the real /proc, a gc that lists nothing says nothing about the
// processes it could not read (run as root in a micro-VM whose init
// refuses its maps even to root, it used to print "could not read the
// mappings of 1 processes" every time).
func TestGCQuietWhenNothingListed(t *testing.T) {
	_, unreadable := procMaps()
	t.Logf("unreadable here: %v", unreadable)
	code, o, e := shmctl(t, "gc", fmt.Sprintf("shmctl-quiet-%d-*", os.Getpid()))
	if code != 0 || o != "" || e != "" {
		t.Errorf("gc listing nothing: %d %q %q", code, o, e)
	}
}
