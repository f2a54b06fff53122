package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/shm"
)

// The zero Config is MPMC: any number of producers and consumers, each
// in its own process, with exact accounting (runMatrix).
func TestZeroConfig4P4C(t *testing.T) {
	if m := newQueue(t, Config{}).Mode(); m != MPMC {
		t.Fatalf("zero Config makes a %v queue, want mpmc", m)
	}
	runMatrix(t, Config{}, 4, 4, 500, 8, 300, "put", "get", 100)
}

// wantAs checks that err matches sentinel and is a *E, and returns it.
func wantAs[E error](t *testing.T, what string, err, sentinel error) E {
	t.Helper()
	var e E
	if !errors.Is(err, sentinel) || !errors.As(err, &e) {
		t.Fatalf("%s: %v (%T), want a %T matching %v", what, err, err, e, sentinel)
	}
	return e
}

func TestConfigError(t *testing.T) {
	cases := []struct {
		cfg   Config
		field string
		value any
	}{
		{Config{MaxMessage: -1}, "MaxMessage", -1},
		{Config{MaxMessage: 1<<30 + 1}, "MaxMessage", 1<<30 + 1},
		{Config{Capacity: -3}, "Capacity", -3},
		{Config{Participants: 5000}, "Participants", 5000},
		{Config{Mode: 7}, "Mode", Mode(7)},
		{Config{Mode: SPSC, MaxMessage: 1 << 30, Capacity: 1 << 40}, "Capacity", 1 << 40},
		{Config{Mode: MPMC, MaxMessage: 1 << 30, Capacity: 1 << 20}, "Capacity", 1 << 20},
	}
	for _, c := range cases {
		_, err := SizeOf(c.cfg)
		e := wantAs[*ConfigError](t, "SizeOf", err, ErrConfig)
		if e.Field != c.field || e.Value != c.value || e.Reason == "" {
			t.Errorf("SizeOf(%+v): %+v, want field %s value %v", c.cfg, e, c.field, c.value)
		}
		if msg := err.Error(); !strings.Contains(msg, c.field) || !strings.Contains(msg, "ring: invalid configuration") {
			t.Errorf("message %q does not name %s", msg, c.field)
		}
		if _, err := CreateAnonymous(c.cfg); !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("CreateAnonymous(%+v) = %v", c.cfg, err)
		}
	}
	cfg := Config{MaxMessage: 16}
	size, _ := SizeOf(cfg)
	_, err := New(alignedMem(size-64), cfg)
	if e := wantAs[*ConfigError](t, "New in small memory", err, ErrConfig); e.Field != "memory" || !strings.Contains(err.Error(), strconv.Itoa(size)) {
		t.Errorf("New in small memory: %v", err)
	}
	_, err = New(alignedMem(size + 64)[8:], cfg)
	if e := wantAs[*ConfigError](t, "New in unaligned memory", err, ErrConfig); e.Field != "memory" || !strings.Contains(err.Error(), "aligned") {
		t.Errorf("New in unaligned memory: %v", err)
	}
}

func TestTooLargeError(t *testing.T) {
	ctx := context.Background()
	check := func(what string, err error, size, max int) {
		t.Helper()
		e := wantAs[*TooLargeError](t, what, err, ErrTooLarge)
		if e.Size != size || e.Max != max {
			t.Errorf("%s: %+v, want Size %d Max %d", what, e, size, max)
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(size)) || !strings.Contains(msg, strconv.Itoa(max)) {
			t.Errorf("%s: message %q lacks the sizes", what, msg)
		}
	}
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 4})
			check("Put", q.Put(ctx, make([]byte, 17)), 17, 16)
			_, err := q.TryPut(make([]byte, 40))
			check("TryPut", err, 40, 16)
			n, err := q.PutBatch(ctx, [][]byte{{1}, make([]byte, 20)})
			if n != 1 {
				t.Errorf("PutBatch put %d", n)
			}
			check("PutBatch", err, 20, 16)
			_, err = q.Reserve(ctx, 17)
			check("Reserve", err, 17, 16)
			if _, err := q.Reserve(ctx, 8); err != nil {
				t.Fatal(err)
			}
			check("Commit", q.Commit(9), 9, 8)
			if err := q.Commit(8); err != nil {
				t.Fatal(err)
			}
			e := NewEncoded[string](q, JSON)
			err = e.Put(ctx, strings.Repeat("x", 30))
			check("Encoded.Put", err, 32, 16)
			if strings.Count(err.Error(), "ring:") != 1 {
				t.Errorf("Encoded.Put: %q", err)
			}
		})
	}
}

func TestBusyError(t *testing.T) {
	ctx := context.Background()
	pid := os.Getpid()
	check := func(what string, err error, role string, pid int, mention string) {
		t.Helper()
		e := wantAs[*BusyError](t, what, err, ErrBusy)
		if e.Role != role || e.Pid != pid {
			t.Errorf("%s: %+v, want role %s pid %d", what, e, role, pid)
		}
		if msg := err.Error(); !strings.Contains(msg, mention) || (pid != 0 && !strings.Contains(msg, strconv.Itoa(pid))) {
			t.Errorf("%s: message %q lacks %q or the pid", what, msg, mention)
		}
	}
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 16})
	q2, err := OpenFile(ctx, q.File())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q.Put(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	check("second producer", q2.Put(ctx, []byte("b")), "producer", pid, "MPMC")
	_, err = q2.Get(ctx, make([]byte, 16))
	check("second consumer", err, "consumer", pid, "MPMC")

	m := newQueue(t, Config{MaxMessage: 16, Participants: 1})
	m2, err := OpenFile(ctx, m.File())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m.Put(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	err = m2.Put(ctx, []byte("b"))
	check("participant table full", err, "participant", 0, "Participants")
	if e := wantAs[*BusyError](t, "participant table full", err, ErrBusy); e.Participants != 1 {
		t.Errorf("participant table full: %+v", e)
	}

	c, err := NewPipe(Config{MaxMessage: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c1, err := OpenPipeFile(ctx, c.File())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	_, err = OpenPipeFile(ctx, c.File())
	check("pipe end opened twice", err, "pipe end", pid, "pipe end")
}

func TestTypedSizeAndNames(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			tq, err := CreateAnonymousTyped[point](Config{Mode: mode, Capacity: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer tq.Close()
			if got := tq.Segment().TypeName(); got != "ring.point" {
				t.Errorf("type name recorded %q", got)
			}
			if err := tq.Put(ctx, point{X: 1, Y: 2}); err != nil {
				t.Fatal(err)
			}
			// The segment opened untyped: its header records the element.
			q, err := OpenFile(ctx, tq.File())
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			checkSize := func(what string, err error, size int) {
				t.Helper()
				e := wantAs[*SizeError](t, what, err, ErrType)
				if e.Size != size || e.Want != 32 || e.TypeName != "ring.point" || !strings.Contains(err.Error(), "ring.point") {
					t.Errorf("%s: %+v (%v)", what, e, err)
				}
			}
			// Wrong sizes through the untyped handle and through the
			// typed one's Queue (in SPSC mode it holds the producer role,
			// so its Puts take the fast path, which checks too).
			for _, pq := range []*Queue{q, tq.Queue()} {
				checkSize("Put of 5 bytes", pq.Put(ctx, make([]byte, 5)), 5)
				_, err = pq.TryPut(make([]byte, 3))
				checkSize("TryPut of 3 bytes", err, 3)
				_, err = pq.PutBatch(ctx, [][]byte{make([]byte, 4)})
				checkSize("PutBatch", err, 4)
				_, err = pq.Reserve(ctx, 4)
				checkSize("Reserve of 4 bytes", err, 4)
			}
			pq := tq.Queue()
			n, err := pq.PutBatch(ctx, [][]byte{make([]byte, 32), make([]byte, 31)})
			if n != 1 {
				t.Errorf("PutBatch put %d, want 1", n)
			}
			checkSize("PutBatch", err, 31)
			if _, err := pq.Reserve(ctx, 32); err != nil {
				t.Fatal(err)
			}
			checkSize("Commit of 6 bytes", pq.Commit(6), 6)
			if err := pq.Commit(32); err != nil {
				t.Fatal(err)
			}
			if err := pq.Put(ctx, make([]byte, 32)); err != nil {
				t.Fatal(err)
			}

			// Opening with another T names both Go types.
			_, err = OpenFileTyped[other](ctx, tq.File())
			e := wantAs[*shm.MismatchError](t, "OpenFileTyped[other]", err, ErrType)
			if e.WantType != "ring.other" || e.GotType != "ring.point" {
				t.Errorf("mismatch %+v", e)
			}
			_, err = NewTyped[other](q)
			e = wantAs[*shm.MismatchError](t, "NewTyped[other]", err, ErrType)
			if e.WantType != "ring.other" || e.GotType != "ring.point" ||
				!strings.Contains(err.Error(), "ring.other") || !strings.Contains(err.Error(), "ring.point") {
				t.Errorf("mismatch %+v: %v", e, err)
			}
		})
	}
}

// A typed Get that fails returns the zero value, not the bytes it copied.
func TestTypedGetZeroOnError(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Mode: SPSC, MaxMessage: 32, Capacity: 4}
	size, _ := SizeOf(cfg)
	mem := alignedMem(size)
	q, err := New(mem, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Put(ctx, []byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	// A peer rewrites the header as a queue of points (valid checksum):
	// the 4-byte message is now impossible.
	td, _ := TypeOf[point]()
	le := binary.LittleEndian
	le.PutUint32(mem[offTypeSize:], td.Size)
	le.PutUint32(mem[offTypeAlgn:], td.Align)
	le.PutUint64(mem[offTypeFP:], td.Fingerprint)
	le.PutUint64(mem[offChecksum:], fnv64a(mem[:offChecksum]))
	q2, err := At(mem)
	if err != nil {
		t.Fatal(err)
	}
	tq, err := NewTyped[point](q2)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tq.Get(ctx)
	if !errors.Is(err, ErrCorrupt) || v != (point{}) {
		t.Fatalf("Get = %+v, %v; want the zero point and ErrCorrupt", v, err)
	}
	if err := q.Put(ctx, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	v, ok, err := tq.TryGet()
	if !errors.Is(err, ErrCorrupt) || ok || v != (point{}) {
		t.Fatalf("TryGet = %+v, %v, %v; want the zero point and ErrCorrupt", v, ok, err)
	}
}

func TestErrClosedMatches(t *testing.T) {
	if !errors.Is(ErrClosed, net.ErrClosed) || !errors.Is(ErrClosed, fs.ErrClosed) || !errors.Is(ErrClosed, ErrClosed) {
		t.Fatal("ErrClosed does not match net.ErrClosed, fs.ErrClosed and itself")
	}
	if ErrClosed.Error() != "ring: queue closed" {
		t.Fatalf("ErrClosed says %q", ErrClosed)
	}
	if errors.Is(ErrClosed, ErrBusy) || errors.Is(ErrClosed, os.ErrNotExist) {
		t.Fatal("ErrClosed matches too much")
	}
	q := newQueue(t, Config{MaxMessage: 8})
	if err := q.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(context.Background(), nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Put after CloseWrite = %v", err)
	}
	q.Close()
	if _, err := q.Get(context.Background(), nil); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
}

// Wrapped messages say each thing once.
func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "no-such-ring-"+strconv.Itoa(os.Getpid()))
	if !errors.Is(err, os.ErrNotExist) || strings.Count(err.Error(), "open") != 1 {
		t.Errorf("Open of a missing name: %q", err)
	}
	_, err = At(alignedMem(headerSize))
	if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "ring: shm:") || !strings.HasPrefix(err.Error(), "ring: corrupt queue: ") {
		t.Errorf("At of zeros: %q", err)
	}
	name := "errmsg-" + strconv.Itoa(os.Getpid())
	tq, err := CreateTyped[point](name, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer tq.Close()
	_, err = OpenTyped[other](ctx, name)
	if !errors.Is(err, ErrType) || strings.Count(err.Error(), "open") > 1 || !strings.Contains(err.Error(), "ring.point") {
		t.Errorf("OpenTyped with another T: %q", err)
	}
}

func TestErrors(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			q := newQueue(t, Config{Mode: mode, MaxMessage: 16, Capacity: 4})
			ctx := context.Background()
			if err := q.Put(ctx, make([]byte, 17)); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Put too large = %v", err)
			}
			if err := q.Commit(0); !errors.Is(err, ErrPending) {
				t.Fatalf("Commit without Reserve = %v", err)
			}
			if err := q.Release(); !errors.Is(err, ErrPending) {
				t.Fatalf("Release without Next = %v", err)
			}
			if err := q.Put(ctx, []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Get(ctx, make([]byte, 3)); err != io.ErrShortBuffer {
				t.Fatalf("Get short = %v", err)
			}
			m, err := q.GetAppend(ctx, nil)
			if err != nil || string(m) != "0123456789" {
				t.Fatal(string(m), err)
			}
			if _, err := q.Reserve(ctx, 4); err != nil {
				t.Fatal(err)
			}
			if err := q.Put(ctx, nil); !errors.Is(err, ErrPending) {
				t.Fatalf("Put during Reserve = %v", err)
			}
			if err := q.Close(); !errors.Is(err, ErrPending) {
				t.Fatalf("Close during Reserve = %v", err)
			}
			if err := q.Commit(5); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Commit past reservation = %v", err)
			}
			if err := q.Commit(2); err != nil {
				t.Fatal(err)
			}
			v, err := q.Next(ctx)
			if err != nil || len(v) != 2 {
				t.Fatal(v, err)
			}
			if _, err := q.Get(ctx, make([]byte, 16)); !errors.Is(err, ErrPending) {
				t.Fatalf("Get while holding = %v", err)
			}
			if err := q.Release(); err != nil {
				t.Fatal(err)
			}
			if _, err := SizeOf(Config{MaxMessage: -1}); !errors.Is(err, ErrConfig) {
				t.Fatalf("SizeOf bad config = %v", err)
			}
		})
	}
}
