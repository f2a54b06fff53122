package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// helperTimeout bounds every wait inside a helper, so a broken protocol
// fails instead of hanging.
const helperTimeout = 60 * time.Second

func init() {
	testproc.Register("pingpong", helperPingPong)
	testproc.Register("childfd", helperChildFD)
	testproc.Register("recv", helperRecv)
	testproc.Register("ooc", helperOpenOrCreate)
	testproc.Register("nobody", helperNobody)
	testproc.Register("sleeper", func([]string) int {
		testproc.Printf("ready")
		time.Sleep(time.Hour) // idles until the parent kills it; no synchronisation
		return 0
	})
}

// segName returns a segment name unique to this process and test.
func segName(t testing.TB) string {
	n := fmt.Sprintf("test-%d-%s", os.Getpid(), t.Name())
	n = strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, n)
	if len(n) > 100 {
		n = n[:100]
	}
	t.Cleanup(func() { _ = os.Remove(path(n)) })
	return n
}

// word returns the uint32 at off in b (8-byte aligned offsets only).
func word(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// waitWord waits until *w satisfies ok, sleeping on the futex in between.
func waitWord(w *uint32, ok func(uint32) bool) error {
	deadline := time.Now().Add(helperTimeout)
	for {
		v := atomic.LoadUint32(w)
		if ok(v) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting, word is %d", v)
		}
		if err := futex.Wait(w, v, 100*time.Millisecond); err != nil && !errors.Is(err, futex.ErrTimeout) {
			return err
		}
	}
}

// pingpong NAME create|open ROUNDS: the two processes take turns through
// the segment. Turn word at payload[0]; each writes its sequence number to
// its own slot before passing the turn and checks the peer's.
func helperPingPong(args []string) int {
	name, role := args[0], args[1]
	rounds, _ := strconv.Atoi(args[2])
	var s *Segment
	var err error
	if role == "create" {
		s, err = Create(name, 4096)
	} else {
		s, err = Open(context.Background(), name)
	}
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	defer s.Close()
	b := s.Bytes()
	turn := word(b, 0)
	mine, theirs := 8, 16 // uint64 slots
	parity := uint32(0)
	if role == "open" {
		mine, theirs, parity = 16, 8, 1
	}
	testproc.Printf("ready")
	le := binary.LittleEndian
	for i := 0; i < rounds; i++ {
		if err := waitWord(turn, func(v uint32) bool { return v%2 == parity }); err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		t := atomic.LoadUint32(turn)
		if t > 0 && le.Uint64(b[theirs:]) != uint64(t) {
			testproc.Printf("error: turn %d, peer wrote %d", t, le.Uint64(b[theirs:]))
			return 1
		}
		le.PutUint64(b[mine:], uint64(t+1))
		// Store after the plain write: the peer's load of the turn makes it visible.
		atomic.StoreUint32(turn, t+1)
		_, _ = futex.Wake(turn, 1)
	}
	testproc.Printf("done %d", rounds)
	return 0
}

// pattern is the byte the tests put at offset i of a payload.
func pattern(i int) byte { return byte(i*7 + i>>8 + 1) }

func fillPattern(b []byte) {
	for i := range b {
		b[i] = pattern(i)
	}
}

// checkPattern returns the first offset that does not hold pattern, or -1.
func checkPattern(b []byte) int {
	for i := range b {
		if b[i] != pattern(i) {
			return i
		}
	}
	return -1
}

const marker = "the-helper-was-here"

// childfd: open fd 3 (ExtraFiles[0]), check the pattern up to the marker
// area, write the marker at offset 0.
func helperChildFD(args []string) int {
	f := os.NewFile(3, "segment")
	s, err := OpenFile(context.Background(), f, WithKind(KindArray))
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	f.Close() // OpenFile duplicated it
	return checkAndMark(s)
}

func checkAndMark(s *Segment) int {
	defer s.Close()
	b := s.Bytes()
	if i := checkPattern(b); i >= 0 {
		testproc.Printf("error: pattern broken at %d", i)
		return 1
	}
	copy(b, marker)
	testproc.Printf("ok %d %s", s.Size(), s.Kind())
	return 0
}

// recv SOCKET: connect to the parent, receive a segment, check and mark it.
func helperRecv(args []string) int {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: args[0], Net: "unix"})
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	s, err := Receive(ctx, conn, WithKind(KindArray))
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	return checkAndMark(s)
}

// ooc NAME SIZE: wait for the start (EOF on stdin), race OpenOrCreate with
// a slow WithInit, and check the whole payload.
func helperOpenOrCreate(args []string) int {
	name := args[0]
	size, _ := strconv.Atoi(args[1])
	testproc.Printf("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes it to start everyone at once
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	s, created, err := OpenOrCreate(ctx, name, size, WithKind(KindArray), WithParams(uint64(size), 7),
		WithInit(func(p []byte) error {
			for i := range p {
				p[i] = pattern(i)
				if i%4096 == 0 {
					runtime.Gosched() // widen the window a racing opener could see
				}
			}
			return nil
		}))
	if err != nil {
		testproc.Printf("error %v", err)
		return 1
	}
	defer s.Close()
	if i := checkPattern(s.Bytes()); i >= 0 {
		testproc.Printf("error: half-initialised payload at offset %d", i)
		return 1
	}
	if p0, p1 := s.Params(); p0 != uint64(size) || p1 != 7 {
		testproc.Printf("error: params %d %d", p0, p1)
		return 1
	}
	if created {
		testproc.Printf("created")
	} else {
		testproc.Printf("opened")
	}
	return 0
}

// nobody NAME: drop to uid/gid 65534 and try to open the segment.
func helperNobody(args []string) int {
	if err := syscall.Setgroups(nil); err != nil {
		testproc.Printf("cannot drop privileges: %v", err)
		return 0
	}
	if err := syscall.Setgid(65534); err != nil {
		testproc.Printf("cannot drop privileges: %v", err)
		return 0
	}
	if err := syscall.Setuid(65534); err != nil {
		testproc.Printf("cannot drop privileges: %v", err)
		return 0
	}
	_, err := Open(context.Background(), args[0])
	switch {
	case errors.Is(err, fs.ErrPermission):
		testproc.Printf("permission denied")
	case err == nil:
		testproc.Printf("opened")
	default:
		testproc.Printf("other error: %v", err)
	}
	return 0
}

// rawSegment writes a segment file by hand: a valid ready header for a
// payload of size bytes created by this process, then mutate.
func rawSegment(t *testing.T, name string, size int, mutate func(b []byte)) {
	t.Helper()
	b := make([]byte, HeaderSize+size)
	self := proc.Self()
	h := header{version: formatVersion, kind: KindRaw, size: uint64(size), offset: HeaderSize,
		creatorPid: self.Pid, creatorStart: self.Start}
	encodeHeader(b, &h)
	binary.LittleEndian.PutUint32(b[offState:], uint32(StateReady))
	if mutate != nil {
		mutate(b)
	}
	if err := os.WriteFile(path(name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// resum recomputes the checksum after a mutation that must get past it.
func resum(b []byte) { binary.LittleEndian.PutUint64(b[offChecksum:], checksum(b)) }
