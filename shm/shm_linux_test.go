package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/testproc"
)

func TestCreateOpenShared(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 100, WithKind(KindValue), WithType(TypeDesc{8, 8, 0xabc}), WithParams(3, 4),
		WithInit(func(p []byte) error { p[0] = 42; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := Open(context.Background(), name, WithKind(KindValue), WithType(TypeDesc{8, 8, 0xabc}))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Bytes()[0] != 42 || s2.Size() != 100 || len(s2.Bytes()) != 100 {
		t.Fatalf("payload %v size %d", s2.Bytes()[:1], s2.Size())
	}
	if s2.Kind() != KindValue || s2.Type() != (TypeDesc{8, 8, 0xabc}) || s2.Name() != name {
		t.Fatalf("kind %v type %v name %q", s2.Kind(), s2.Type(), s2.Name())
	}
	if p0, p1 := s2.Params(); p0 != 3 || p1 != 4 {
		t.Fatalf("params %d %d", p0, p1)
	}
	s2.Bytes()[99] = 7
	if s.Bytes()[99] != 7 {
		t.Fatal("write through one mapping not seen through the other")
	}
	fi, err := s.File().Stat()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

// Two unrelated processes (siblings, neither created by the other through
// the toolkit) exchange sequence numbers through one named segment.
func TestTwoProcessesShareNamedSegment(t *testing.T) {
	name := segName(t)
	const rounds = "500"
	a := testproc.Start(t, "pingpong", name, "create", rounds)
	a.Expect(t, "ready")
	b := testproc.Start(t, "pingpong", name, "open", rounds)
	b.Expect(t, "ready")
	a.Expect(t, "done "+rounds)
	b.Expect(t, "done "+rounds)
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	// The segment outlives both processes and holds the last turn.
	s, err := Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := atomic.LoadUint32(word(s.Bytes(), 0)); got != 1000 {
		t.Fatalf("final turn %d, want 1000", got)
	}
}

func newPatternAnon(t *testing.T, size int) *Segment {
	t.Helper()
	s, err := CreateAnonymous(size, WithKind(KindArray), WithInit(func(p []byte) error { fillPattern(p); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// checkMarked checks that the helper's marker is at the start of the
// payload and that every byte after it still holds the pattern.
func checkMarked(t *testing.T, s *Segment) {
	t.Helper()
	b := s.Bytes()
	if got := string(b[:len(marker)]); got != marker {
		t.Fatalf("helper's write not seen: %q", got)
	}
	for j := len(marker); j < s.Size(); j++ {
		if b[j] != pattern(j) {
			t.Fatalf("payload changed at %d: %#x, want %#x", j, b[j], pattern(j))
		}
	}
}

func TestAnonymousToChildViaExtraFiles(t *testing.T) {
	s := newPatternAnon(t, 1<<16)
	if s.Name() != "" {
		t.Fatalf("anonymous segment has name %q", s.Name())
	}
	cmd := testproc.Command(t, "childfd")
	cmd.ExtraFiles = []*os.File{s.File()}
	p := testproc.StartCmd(t, "childfd", cmd)
	p.Expect(t, "ok 65536 array")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	checkMarked(t, s)
}

func TestAnonymousToUnrelatedProcessViaSocket(t *testing.T) {
	s := newPatternAnon(t, 1<<16)
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := testproc.Start(t, "recv", sock)
	conn, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := s.Send(conn); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, "ok 65536 array")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	checkMarked(t, s)
}

func TestSendReceiveInProcess(t *testing.T) {
	s := newPatternAnon(t, 4096)
	a, b := socketPair(t)
	if err := s.Send(a); err != nil {
		t.Fatal(err)
	}
	r, err := Receive(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if i := checkPattern(r.Bytes()); i >= 0 || r.Size() != 4096 {
		t.Fatalf("received payload broken at %d, size %d", i, r.Size())
	}
}

func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

func TestReceiveBadMessages(t *testing.T) {
	s := newPatternAnon(t, 4096)
	ctx := context.Background()

	a, b := socketPair(t)
	if _, err := a.Write([]byte{'S'}); err != nil {
		t.Fatal(err)
	}
	if _, err := Receive(ctx, b); err == nil || !strings.Contains(err.Error(), "0 descriptors") {
		t.Errorf("no descriptor: %v", err)
	}

	fd := int(s.File().Fd())
	if _, _, err := a.WriteMsgUnix([]byte{'S'}, unix.UnixRights(fd, fd), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Receive(ctx, b); err == nil || !strings.Contains(err.Error(), "2 descriptors") {
		t.Errorf("two descriptors: %v", err)
	}

	// A descriptor that is not a segment.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, _, err := a.WriteMsgUnix([]byte{'S'}, unix.UnixRights(int(pr.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	_, err = Receive(ctx, b)
	var nse *NotSegmentError
	if !errors.Is(err, ErrNotSegment) || !errors.As(err, &nse) || !strings.Contains(nse.What, "pipe") || nse.FD < 0 {
		t.Errorf("pipe: %v, want a *NotSegmentError for a pipe", err)
	}

	a.Close()
	if _, err := Receive(ctx, b); !errors.Is(err, io.EOF) {
		t.Errorf("closed peer: %v, want io.EOF", err)
	}
}

func TestReceiveContext(t *testing.T) {
	_, b := socketPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Receive(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Receive(ctx, b)
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// Many processes race OpenOrCreate: exactly one creates, every one sees
// the complete WithInit pattern.
func TestOpenOrCreateRace(t *testing.T) {
	const procs = 8
	name := segName(t)
	const size = "1048576"
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var ps []*testproc.Proc
	for range procs {
		cmd := testproc.Command(t, "ooc", name, size)
		cmd.Stdin = pr
		p := testproc.StartCmd(t, "ooc", cmd)
		ps = append(ps, p)
	}
	pr.Close()
	for _, p := range ps {
		p.Expect(t, "ready")
	}
	pw.Close() // start
	created := 0
	for _, p := range ps {
		switch l := p.Line(t); l {
		case "created":
			created++
		case "opened":
		default:
			t.Errorf("helper: %s", l)
		}
		if err := p.Wait(); err != nil {
			t.Error(err)
		}
	}
	if created != 1 {
		t.Fatalf("%d creators, want exactly 1", created)
	}
}

func TestOpenOrCreate(t *testing.T) {
	name := segName(t)
	ctx := context.Background()
	s, created, err := OpenOrCreate(ctx, name, 64)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	defer s.Close()
	s2, created, err := OpenOrCreate(ctx, name, 64)
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	s2.Close()
	_, _, err = OpenOrCreate(ctx, name, 65)
	var me *MismatchError
	if !errors.Is(err, ErrSize) || !errors.As(err, &me) || me.Want != 65 || me.Got != 64 {
		t.Fatalf("size mismatch: %v", err)
	}
}

func TestCloseWhileViewHeld(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 1<<16, WithInit(func(p []byte) error { fillPattern(p); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	view := s.Bytes()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	reading := make(chan struct{})
	go func() { // a reader still using the view while Close runs
		defer wg.Done()
		sum := 0
		for pass := 0; !stop.Load(); pass++ {
			for i := 0; i < len(view); i += 512 {
				sum += int(view[i])
			}
			if pass == 0 {
				close(reading)
			}
		}
		_ = sum
	}()
	<-reading // Close while the reader is in its loop, not before it starts
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	// The stale view reads zeros and its writes stay private.
	if view[0] != 0 || view[len(view)-1] != 0 {
		t.Fatalf("stale view reads %d %d, want zeros", view[0], view[len(view)-1])
	}
	view[1] = 99
	s2, err := Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if i := checkPattern(s2.Bytes()); i >= 0 {
		t.Fatalf("a stale write reached the segment at %d", i)
	}
}

func TestUseAfterClose(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() != nil || s.File() != nil {
		t.Error("Bytes or File not nil after Close")
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Unlink(); !errors.Is(err, ErrClosed) {
		t.Errorf("Unlink after Close: %v", err)
	}
	a, _ := socketPair(t)
	if err := s.Send(a); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if s.Size() != 64 || s.Name() != name {
		t.Error("metadata lost after Close")
	}
}

func TestTmpfileFallback(t *testing.T) {
	useTmpfile = false
	defer func() { useTmpfile = true }()
	name := segName(t)
	s, err := Create(name, 64, WithInit(func(p []byte) error { p[0] = 1; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Create(name, 64); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v", err)
	}
	s2, err := Open(context.Background(), name)
	if err != nil || s2.Bytes()[0] != 1 {
		t.Fatalf("open: %v", err)
	}
	s2.Close()
	// Failing and panicking init functions leave no temporary file either.
	failInit := WithInit(func([]byte) error { return io.ErrUnexpectedEOF })
	if _, err := Create(name+"-fail", 64, failInit); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("create with failing init: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("init's panic did not reach the caller")
			}
		}()
		_, _ = Create(name+"-panic", 64, WithInit(func([]byte) error { panic("init") }))
	}()
	left, _ := filepath.Glob(shmDir + "/.shmkit-tmp." + itoa(os.Getpid()) + ".*")
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestModeIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	name := segName(t)
	s, err := Create(name, 64, WithMode(0o644))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path(name))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestPopulateAndLockedPages(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 1<<16, WithPopulate(), WithLockedPages())
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EAGAIN) {
		t.Skipf("mlock not permitted here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := Open(context.Background(), name, WithPopulate(), WithLockedPages())
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestAnonymousIsSealed(t *testing.T) {
	s := newPatternAnon(t, 4096)
	if err := s.File().Truncate(10); err == nil {
		t.Fatal("truncating an anonymous segment succeeded")
	}
	if err := s.Unlink(); err != nil {
		t.Fatalf("Unlink of anonymous segment: %v", err)
	}
}

func TestList(t *testing.T) {
	good, bad := segName(t), segName(t)+"-bad"
	t.Cleanup(func() { _ = os.Remove(path(bad)) })
	s, err := Create(good, 100, WithKind(KindQueue), WithParams(5, 6))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.WriteFile(path(bad), []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	infos, err := List()
	if err != nil {
		t.Fatal(err)
	}
	var sawGood, sawBad bool
	for _, in := range infos {
		switch in.Name {
		case good:
			sawGood = true
			self := proc.Self()
			if in.Err != nil || in.Size != 100 || in.Kind != KindQueue || in.Params != [2]uint64{5, 6} ||
				in.State != StateReady || in.CreatorPid != int(self.Pid) || !in.CreatorAlive ||
				in.FileSize != HeaderSize+100 || in.Mode != 0o600 {
				t.Errorf("good entry: %+v", in)
			}
		case bad:
			sawBad = true
			if !errors.Is(in.Err, ErrCorrupt) {
				t.Errorf("bad entry error: %v", in.Err)
			}
		}
	}
	if !sawGood || !sawBad {
		t.Fatalf("List missed entries: good %v bad %v", sawGood, sawBad)
	}
}

// Repeated Open/Close must not accumulate mappings (retired ranges merge).
func TestCloseKeepsFewMappings(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 4000)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func() int { b, _ := os.ReadFile("/proc/self/maps"); return bytes.Count(b, []byte("\n")) }
	before := count()
	for range 5000 {
		s2, err := Open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		s2.Close()
	}
	if after := count(); after-before > 1000 {
		t.Fatalf("mappings grew from %d to %d over 5000 Open/Close", before, after)
	}
}

// The opener waits while a segment is initialising and returns once it is
// ready (written by hand, as a non-atomic writer would).
func TestOpenWaitsForInitialising(t *testing.T) {
	name := segName(t)
	rawSegment(t, name, 64, func(b []byte) { binary.LittleEndian.PutUint32(b[offState:], uint32(StateInitialising)) })
	f, err := os.OpenFile(path(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := mapShared(int(f.Fd()), HeaderSize+64, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap(mem)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		s, err := Open(ctx, name)
		if err == nil {
			s.Close()
		}
		errc <- err
	}()
	// The opener maps the file before it waits: once a second mapping of
	// the file exists, the opener is waiting (or has failed), and must not
	// return while the state says initialising.
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	ino := " " + strconv.FormatUint(st.Ino, 10) + " "
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/self/maps")
		if bytes.Count(b, []byte(ino)) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the opener never mapped the segment")
		}
		runtime.Gosched()
	}
	select {
	case err := <-errc:
		t.Fatalf("Open returned while the segment was initialising: %v", err)
	default:
	}
	atomic.StoreUint32(stateWord(mem), uint32(StateReady))
	if _, err := futex.WakeAll(stateWord(mem)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("x", MaxNameLen+1)
	for _, n := range []string{"", "a/b", "/", "..", "a..b", ".hidden", long, "sp ace", "nul\x00", "é"} {
		if _, err := Create(n, 64); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Create(%q): %v", n, err)
		}
		if _, err := Open(ctx, n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q): %v", n, err)
		}
		if _, _, err := OpenOrCreate(ctx, n, 64); !errors.Is(err, ErrInvalidName) {
			t.Errorf("OpenOrCreate(%q): %v", n, err)
		}
		if err := Unlink(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Unlink(%q): %v", n, err)
		}
		if _, err := Inspect(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Inspect(%q): %v", n, err)
		}
	}
	t.Run("longest name", func(t *testing.T) {
		n := (itoa(os.Getpid()) + "-" + strings.Repeat("y", MaxNameLen))[:MaxNameLen]
		t.Cleanup(func() { _ = Unlink(n) })
		s, err := Create(n, 64)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	})
	for _, size := range []int{0, -1, math.MinInt, MaxSize + 1, math.MaxInt} {
		if _, err := Create("x", size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("Create size %d: %v", size, err)
		}
		if _, _, err := OpenOrCreate(ctx, "x", size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("OpenOrCreate size %d: %v", size, err)
		}
		if _, err := CreateAnonymous(size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("CreateAnonymous size %d: %v", size, err)
		}
	}
	if _, err := Create("x", 64, WithType(TypeDesc{Size: 8, Align: 3})); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("bad alignment: %v", err)
	}

	t.Run("missing", func(t *testing.T) {
		name := segName(t)
		var pe *fs.PathError
		if _, err := Open(ctx, name); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) {
			t.Errorf("Open: %v", err)
		}
		if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Unlink: %v", err)
		}
		if _, err := Inspect(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Inspect: %v", err)
		}
	})
	t.Run("exists", func(t *testing.T) {
		name := segName(t)
		s, err := Create(name, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var pe *fs.PathError
		if _, err := Create(name, 64); !errors.Is(err, fs.ErrExist) || !errors.As(err, &pe) {
			t.Errorf("Create: %v", err)
		}
		if err := s.Unlink(); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open after Unlink: %v", err)
		}
	})

	corrupt := []struct {
		name   string
		size   int
		mutate func(b []byte)
		want   error
	}{
		{"magic", 64, func(b []byte) { b[0] = 'X' }, ErrCorrupt},
		{"version", 64, func(b []byte) { b[offVersion] = 3; resum(b) }, ErrVersion},
		{"version 1", 64, func(b []byte) { b[offVersion] = 1; resum(b) }, ErrVersion},
		{"flags", 64, func(b []byte) { b[offFlags] = 0x80; resum(b) }, ErrVersion},
		{"checksum", 64, func(b []byte) { b[offP0] ^= 1 }, ErrCorrupt},
		{"type name not printable", 64, func(b []byte) { b[offTypeName] = 0x80; resum(b) }, ErrCorrupt},
		{"type name not NUL-padded", 64, func(b []byte) { b[offTypeName+3] = 1; resum(b) }, ErrCorrupt},
		{"kind zero", 64, func(b []byte) { binary.LittleEndian.PutUint32(b[offKind:], 0); resum(b) }, ErrCorrupt},
		{"offset", 64, func(b []byte) { b[offPayload] = 64; resum(b) }, ErrCorrupt},
		{"size past end", 64, func(b []byte) { binary.LittleEndian.PutUint64(b[offSize:], 65); resum(b) }, ErrCorrupt},
		{"size huge", 64, func(b []byte) {
			binary.LittleEndian.PutUint64(b[offSize:], math.MaxUint64-10)
			resum(b)
		}, ErrCorrupt},
		{"state", 64, func(b []byte) { b[offState] = 7 }, ErrCorrupt},
		{"align", 64, func(b []byte) { b[offTypeAlign] = 6; resum(b) }, ErrCorrupt},
	}
	for _, c := range corrupt {
		t.Run(c.name, func(t *testing.T) {
			name := segName(t)
			rawSegment(t, name, c.size, c.mutate)
			_, err := Open(ctx, name)
			if !errors.Is(err, c.want) {
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			if _, err := Inspect(name); !errors.Is(err, c.want) && c.name != "state" {
				t.Errorf("Inspect: %v, want %v", err, c.want)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		name := segName(t)
		if err := os.WriteFile(path(name), make([]byte, 50), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("truncated after creation", func(t *testing.T) {
		name := segName(t)
		s, err := Create(name, 8192)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := os.Truncate(path(name), HeaderSize+100); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("kind and type", func(t *testing.T) {
		name := segName(t)
		s, err := Create(name, 64, WithKind(KindQueue), WithType(TypeDesc{4, 4, 1}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = Open(ctx, name, WithKind(KindArray))
		var me *MismatchError
		if !errors.Is(err, ErrKind) || !errors.As(err, &me) || me.Want != KindArray || me.Got != KindQueue {
			t.Errorf("kind: %v", err)
		}
		_, err = Open(ctx, name, WithType(TypeDesc{4, 4, 2}))
		if !errors.Is(err, ErrType) || !errors.As(err, &me) || me.Got != (TypeDesc{4, 4, 1}) {
			t.Errorf("type: %v", err)
		}
		if errors.Is(err, ErrKind) {
			t.Error("type mismatch matches ErrKind")
		}
	})
	t.Run("creator died while initialising", func(t *testing.T) {
		p := testproc.Start(t, "sleeper")
		p.Expect(t, "ready")
		start, err := proc.StartTime(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		p.Kill()
		name := segName(t)
		rawSegment(t, name, 64, func(b []byte) {
			binary.LittleEndian.PutUint32(b[offCreatorPid:], uint32(p.Pid()))
			binary.LittleEndian.PutUint64(b[offCreatorTime:], start)
			resum(b)
			binary.LittleEndian.PutUint32(b[offState:], uint32(StateInitialising))
		})
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err = Open(ctx, name)
		if !errors.Is(err, ErrCreatorDied) || !strings.Contains(err.Error(), itoa(p.Pid())) {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("creator pid reused while initialising", func(t *testing.T) {
		// Our own pid, which is alive, with another start time: the
		// creator was an earlier process that had our pid and died.
		name := segName(t)
		rawSegment(t, name, 64, func(b []byte) {
			binary.LittleEndian.PutUint64(b[offCreatorTime:], proc.Self().Start+1)
			resum(b)
			binary.LittleEndian.PutUint32(b[offState:], uint32(StateInitialising))
		})
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := Open(ctx, name)
		if !errors.Is(err, ErrCreatorDied) || !strings.Contains(err.Error(), itoa(os.Getpid())) {
			t.Fatalf("Open: %v, want ErrCreatorDied", err)
		}
	})
	t.Run("live creator still initialising", func(t *testing.T) {
		name := segName(t)
		rawSegment(t, name, 64, func(b []byte) { binary.LittleEndian.PutUint32(b[offState:], uint32(StateInitialising)) })
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := Open(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("never initialised", func(t *testing.T) {
		name := segName(t)
		if err := os.WriteFile(path(name), make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		name, target := segName(t), segName(t)+"-target"
		t.Cleanup(func() { _ = os.Remove(path(target)) })
		s, err := Create(target, 64)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := os.Symlink(path(target), path(name)); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, name); !errors.Is(err, syscall.ELOOP) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("Open: %v", err)
		}
		if _, err := Create(name, 64); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create over symlink: %v", err)
		}
	})
	t.Run("not a regular file", func(t *testing.T) {
		name := segName(t)
		if err := syscall.Mkfifo(path(name), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) {
			t.Errorf("fifo: %v", err)
		}
		if _, err := Inspect(name); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Inspect fifo: %v", err)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		name := segName(t)
		if os.Geteuid() != 0 {
			// Mode 0 denies every unprivileged opener, the creator
			// included (root is not denied by mode bits: below).
			s, err := Create(name, 64, WithMode(0))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = Open(ctx, name)
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) {
				t.Fatalf("Open of a mode-0 segment = %v, want fs.ErrPermission", err)
			}
			return
		}
		// As root, open it as another user (nobody) in a helper.
		s, err := Create(name, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		p := testproc.Start(t, "nobody", name)
		if l := p.Line(t); l != "permission denied" {
			if strings.HasPrefix(l, "cannot drop privileges") {
				t.Skip(l)
			}
			t.Fatalf("opener as nobody: %s", l)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	})
	// Contexts (nil, done) are TestContexts'.
	if _, err := OpenFile(ctx, nil); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("OpenFile(nil): %v", err)
	}
}

func BenchmarkCreateCloseUnlink(b *testing.B) {
	name := segName(b)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Create(name, 4096)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		if err := Unlink(name); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenClose(b *testing.B) {
	name := segName(b)
	s, err := Create(name, 4096)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s2, err := Open(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		s2.Close()
	}
}
