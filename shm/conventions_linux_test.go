package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
)

// notSegment checks that err is a *NotSegmentError for op whose What
// contains what.
func notSegment(t *testing.T, err error, op, what string) {
	t.Helper()
	var nse *NotSegmentError
	if !errors.Is(err, ErrNotSegment) || !errors.As(err, &nse) {
		t.Fatalf("got %v, want a *NotSegmentError", err)
	}
	if errors.Is(err, ErrCorrupt) {
		t.Fatalf("%v also matches ErrCorrupt", err)
	}
	if nse.Op != op || !strings.Contains(nse.What, what) || nse.FD < 0 {
		t.Fatalf("NotSegmentError %+v, want op %q, What containing %q, a descriptor", nse, op, what)
	}
}

func TestOpenFileNotSegment(t *testing.T) {
	ctx := context.Background()
	t.Run("regular file", func(t *testing.T) {
		p := t.TempDir() + "/notes.txt"
		if err := os.WriteFile(p, []byte(strings.Repeat("not a segment\n", 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = OpenFile(ctx, f)
		notSegment(t, err, "open file", "regular file")
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "descriptor") {
			t.Errorf("message %q does not name the file and the descriptor", err)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		f, err := os.CreateTemp(t.TempDir(), "empty")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = OpenFile(ctx, f)
		notSegment(t, err, "open file", "regular file")
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		_, err = OpenFile(ctx, r)
		notSegment(t, err, "open file", "pipe")
	})
	t.Run("eventpoll", func(t *testing.T) {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "epoll")
		defer f.Close()
		_, err = OpenFile(ctx, f)
		notSegment(t, err, "open file", "eventpoll")
	})
	t.Run("device", func(t *testing.T) {
		f, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = OpenFile(ctx, f)
		notSegment(t, err, "open file", "character device (/dev/null)")
	})
	t.Run("closed descriptor", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		stale := os.NewFile(r.Fd(), "stale")
		r.Close()
		_, err = OpenFile(ctx, stale)
		notSegment(t, err, "open file", "not an open descriptor")
	})
	t.Run("damaged segment is still corrupt", func(t *testing.T) {
		// A file with our magic but a broken header is a segment, damaged.
		s := newPatternAnon(t, 4096)
		f, err := os.CreateTemp(t.TempDir(), "seg")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, HeaderSize+4096)
		copy(b, s.mem)
		b[offP0] ^= 1
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenFile(ctx, f); !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotSegment) {
			t.Fatalf("OpenFile of a damaged segment: %v, want ErrCorrupt only", err)
		}
	})
}

// A child started without ExtraFiles that opens descriptor 3 (whatever the
// runtime has there, or nothing) is told it is not a segment.
func TestForgottenExtraFiles(t *testing.T) {
	p := testproc.Start(t, "childfd")
	line := p.Line(t)
	if !strings.Contains(line, "descriptor 3 is not a shmkit segment") || !strings.Contains(line, "ExtraFiles") {
		t.Fatalf("child without ExtraFiles said %q", line)
	}
	if strings.Contains(line, "corrupt") {
		t.Fatalf("child without ExtraFiles reported corruption: %q", line)
	}
	_ = p.Wait()
}

func TestTypeName(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 64, WithTypeName("main.Point"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer Unlink(name)
	if got := s.TypeName(); got != "main.Point" {
		t.Errorf("creator's TypeName = %q", got)
	}
	o, err := Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := o.TypeName(); got != "main.Point" {
		t.Errorf("opener's TypeName = %q", got)
	}
	info, err := Inspect(name)
	if err != nil || info.TypeName != "main.Point" {
		t.Errorf("Inspect: TypeName %q, %v", info.TypeName, err)
	}

	long := "map[string]github.com/example/project/internal/model.Config"
	a, err := CreateAnonymous(64, WithTypeName(long+"\x00\xff"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got := a.TypeName()
	if len(got) != MaxTypeName || !strings.HasPrefix(got, "...") || !strings.HasSuffix(got, "model.Config??") {
		t.Errorf("long TypeName recorded as %q (%d bytes)", got, len(got))
	}
	if u, err := CreateAnonymous(64); err != nil || u.TypeName() != "" {
		t.Errorf("TypeName without WithTypeName: %q, %v", u.TypeName(), err)
	} else {
		u.Close()
	}
}

func TestMismatchNamesTypes(t *testing.T) {
	want := TypeDesc{Size: 8, Align: 8, Fingerprint: 1}
	e := &MismatchError{What: "type", Want: want, Got: TypeDesc{Size: 4, Align: 4, Fingerprint: 2},
		WantType: "int64", GotType: "main.Small", Err: ErrType}
	msg := e.Error()
	if !errors.Is(e, ErrType) || !strings.Contains(msg, "want int64 (") || !strings.Contains(msg, "got main.Small (") {
		t.Fatalf("MismatchError message %q", msg)
	}
}

func TestSealed(t *testing.T) {
	a := newPatternAnon(t, 4096)
	if !a.Sealed() {
		t.Error("anonymous segment not sealed")
	}
	r, err := OpenFile(context.Background(), a.File())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Sealed() {
		t.Error("OpenFile of a sealed memfd: Sealed() false")
	}

	// A memfd made elsewhere without seals: OpenFile seals it.
	fd, err := unix.MemfdCreate("other", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "other")
	defer f.Close()
	if _, err := f.Write(a.mem[:HeaderSize+4096]); err != nil {
		t.Fatal(err)
	}
	o, err := OpenFile(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if !o.Sealed() {
		t.Error("OpenFile of an unsealed memfd allowing seals: Sealed() false")
	}
	if err := f.Truncate(10); err == nil {
		t.Error("the memfd can still be truncated after OpenFile")
	}

	name := segName(t)
	n, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	defer Unlink(name)
	if n.Sealed() {
		t.Error("named segment reports Sealed")
	}
}

func TestCreateLargerThanFreeSpace(t *testing.T) {
	var sf unix.Statfs_t
	if err := unix.Statfs(shmDir, &sf); err != nil || sf.Blocks == 0 {
		t.Skipf("%s reports no size limit (%v)", shmDir, err)
	}
	free := sf.Bavail * uint64(sf.Bsize)
	size := int(free + 1<<30)
	if size > MaxSize {
		t.Skipf("%s has %d bytes free, more than MaxSize", shmDir, free)
	}
	name := segName(t)
	_, err := Create(name, size)
	var se *SpaceError
	if !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &se) {
		t.Fatalf("Create(%d bytes) with %d free: %v, want ENOSPC with a *SpaceError", size, free, err)
	}
	if se.Need != uint64(size+HeaderSize) || se.Free == 0 || se.Free > free+1<<30 || se.Total == 0 {
		t.Errorf("SpaceError %+v for %d bytes asked, about %d free", se, size, free)
	}
	if msg := err.Error(); !strings.Contains(msg, itoa(size+HeaderSize)) || !strings.Contains(msg, "free") {
		t.Errorf("message %q does not state the sizes", msg)
	}
	if _, err := Inspect(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused segment left a file behind: %v", err)
	}
	if _, _, err := OpenOrCreate(context.Background(), name, size); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("OpenOrCreate: %v, want ENOSPC", err)
	}
}

// Every function taking a context accepts nil (as Background); a done one
// does not stop what needs no waiting, and fails at once what would wait.
func TestContexts(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer Unlink(name)
	a := newPatternAnon(t, 4096)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func(ctx context.Context) (*Segment, error){
		"Open": func(ctx context.Context) (*Segment, error) { return Open(ctx, name) },
		"OpenOrCreate": func(ctx context.Context) (*Segment, error) {
			s, _, err := OpenOrCreate(ctx, name, 4096)
			return s, err
		},
		"OpenFile": func(ctx context.Context) (*Segment, error) { return OpenFile(ctx, a.File()) },
		"Receive": func(ctx context.Context) (*Segment, error) {
			x, y := socketPair(t)
			if err := a.Send(x); err != nil {
				t.Fatal(err)
			}
			return Receive(ctx, y)
		},
	}
	for what, call := range calls {
		//lint:ignore SA1012 a nil context is what is tested
		got, err := call(nil) //nolint:staticcheck
		if err != nil {
			t.Errorf("%s(nil ctx): %v", what, err)
		} else {
			got.Close()
		}
		if got, err := call(done); err != nil {
			t.Errorf("%s(done ctx) of a ready segment: %v, want success", what, err)
		} else {
			got.Close()
		}
	}
	// What must wait fails at once with a done ctx: Receive with nothing
	// queued, Open of a segment still initialising.
	_, y := socketPair(t)
	start := time.Now()
	if _, err := Receive(done, y); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive(done ctx) with nothing queued: %v, want context.Canceled", err)
	}
	init := segName(t)
	rawSegment(t, init, 64, func(b []byte) { binary.LittleEndian.PutUint32(b[offState:], uint32(StateInitialising)) })
	defer Unlink(init)
	if _, err := Open(done, init); !errors.Is(err, context.Canceled) {
		t.Errorf("Open(done ctx) of an initialising segment: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("done-context calls took %v", d)
	}
}
