package dict

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/list"
	"github.com/shmkit/shmkit/shm"
)

// segName returns a name unique to this test and process and unlinks it
// when the test ends.
func segName(t *testing.T) string {
	name := fmt.Sprintf("test-dict-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() { _ = shm.Unlink(name) })
	return name
}

func TestOpenWrongType(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	m, err := Create[uint64, val64](name)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Store(ctx, 1, mkval(1, 1)); err != nil {
		t.Fatal(err)
	}

	// A wrong key type, a wrong value type of the same size, the bytes
	// form: each is ErrType with the two types named, and the map is
	// untouched.
	var mis *shm.MismatchError
	if _, err := Open[uint32, val64](ctx, name); !errors.Is(err, ErrType) || !errors.As(err, &mis) {
		t.Errorf("wrong key type: %v, want ErrType with a *shm.MismatchError", err)
	}
	if _, err := Open[uint64, [8]uint64](ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("wrong value type of the same size: %v, want ErrType", err)
	}
	if _, err := OpenBytes(ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("opened as Bytes: %v, want ErrType", err)
	}
	if _, _, err := OpenOrCreate[uint64, uint64](ctx, name); !errors.Is(err, ErrType) {
		t.Errorf("OpenOrCreate with the wrong type: %v, want ErrType", err)
	}
	// A list's segment is another kind.
	if _, err := list.Open[uint64](ctx, name); !errors.Is(err, shm.ErrKind) {
		t.Errorf("a dict opened as a list: %v, want shm.ErrKind", err)
	}
	// Not there, and taken.
	if _, err := Open[uint64, val64](ctx, name+"-none"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing name: %v, want os.ErrNotExist", err)
	}
	if _, err := Create[uint64, val64](name); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create of a taken name: %v, want os.ErrExist", err)
	}
	if v, ok, err := m.Load(1); err != nil || !ok || v != mkval(1, 1) {
		t.Errorf("after the failed opens Load = %v, %v, %v", v, ok, err)
	}
}

func TestListOpenedAsDict(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	l, err := list.Create[uint64](name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Open[uint64, uint64](ctx, name); !errors.Is(err, shm.ErrKind) {
		t.Errorf("a list opened as a dict: %v, want shm.ErrKind", err)
	}
}

type padded struct {
	A uint8
	B uint64
}

func TestNotPlain(t *testing.T) {
	if _, err := CreateAnonymous[padded, uint64](); !errors.Is(err, ErrNotPlain) {
		t.Errorf("padded key: %v, want ErrNotPlain", err)
	}
	if _, err := CreateAnonymous[uint64, *int](); !errors.Is(err, ErrNotPlain) {
		t.Errorf("pointer value: %v, want ErrNotPlain", err)
	}
	if _, err := CreateAnonymous[string, uint64](); !errors.Is(err, ErrNotPlain) {
		t.Errorf("string key: %v, want ErrNotPlain", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"shards not a power of two", WithShards(3)},
		{"no shards", WithShards(0)},
		{"negative max bytes", WithMaxBytes(-1)},
		{"tiny max bytes", WithMaxBytes(100)},
		{"negative capacity", WithCapacity(-5)},
		{"negative max key", WithMaxKey(-1)},
		{"max value past 32 bits", WithMaxValue(1 << 33)},
		{"max value past 1 GiB", WithMaxValue(1 << 31)},
		{"max key past 1 GiB", WithMaxKey(1<<30 + 1)},
	} {
		m, err := CreateAnonymousBytes(tc.opt)
		if err == nil {
			m.Close()
			t.Errorf("%s: no error", tc.name)
		} else if !errors.Is(err, shm.ErrInvalidSize) {
			t.Errorf("%s: %v, want shm.ErrInvalidSize", tc.name, err)
		}
	}
}

func TestOversize(t *testing.T) {
	ctx := context.Background()
	b, err := CreateAnonymousBytes(WithMaxKey(16), WithMaxValue(64))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Store(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	var se *SizeError
	err = b.Store(ctx, strings.Repeat("k", 17), nil)
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &se) || se.What != "key" || se.Size != 17 || se.Max != 16 {
		t.Errorf("long key: %v (%+v), want ErrTooLarge with key 17 > 16", err, se)
	}
	err = b.Store(ctx, "k", make([]byte, 65))
	if !errors.As(err, &se) || se.What != "value" || se.Size != 65 {
		t.Errorf("long value: %v, want ErrTooLarge for the value", err)
	}
	if _, _, err := b.LoadOrStore(ctx, "k2", make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("LoadOrStore with a long value: %v", err)
	}
	if _, err := b.CompareAndSwap(ctx, "k", []byte("v"), make([]byte, 65)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("CompareAndSwap with a long value: %v", err)
	}
	err = b.Update(ctx, "k", func(old []byte, ok bool) ([]byte, bool) { return make([]byte, 100), true })
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Update returning a long value: %v", err)
	}
	// A long key is simply absent for the readers.
	if _, ok, err := b.Load(strings.Repeat("k", 17)); ok || err != nil {
		t.Errorf("Load of a long key = %v, %v", ok, err)
	}
	// Nothing was lost.
	if v, ok, err := b.Load("k"); string(v) != "v" || !ok || err != nil || b.Len() != 1 {
		t.Errorf("after the refusals: %q %v %v, Len %d", v, ok, err, b.Len())
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	m, err := CreateAnonymous[uint64, uint64]()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Store(ctx, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, _, err = m.Load(1)
	check("Load", err)
	check("Store", m.Store(ctx, 1, 2))
	_, _, err = m.LoadOrStore(ctx, 2, 2)
	check("LoadOrStore", err)
	_, err = m.CompareAndSwap(ctx, 1, 1, 2)
	check("CompareAndSwap", err)
	_, err = m.Delete(ctx, 1)
	check("Delete", err)
	_, _, err = m.Update(ctx, 1, func(uint64, bool) (uint64, bool) { return 0, true })
	check("Update", err)
	check("Range", m.Range(func(uint64, uint64) bool { return true }))
	check("Clear", m.Clear(ctx))
	if n := m.Len(); n != 0 {
		t.Errorf("Len after Close = %d", n)
	}

	b, err := CreateAnonymousBytes()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	_, _, err = b.Load("k")
	check("Bytes.Load", err)
	check("Bytes.Store", b.Store(ctx, "k", nil))
}

func TestContext(t *testing.T) {
	m, err := CreateAnonymous[uint64, uint64](WithShards(1))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// A nil context means Background.
	//lint:ignore SA1012 nil is documented to mean Background
	if err := m.Store(nil, 1, 1); err != nil { //nolint:staticcheck
		t.Errorf("Store with a nil context: %v", err)
	}

	// Hold the only shard's lock inside Update; a write with a deadline
	// gives up with the context's error and leaves the entry alone.
	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _, _ = m.Update(context.Background(), 1, func(old uint64, ok bool) (uint64, bool) {
			close(held)
			<-release
			return old + 1, true
		})
	}()
	<-held
	// A done context fails at once; a write that would not wait
	// proceeds, as sem.Mutex.Lock does.
	if err := m.Store(done, 1, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Store behind a held lock with a done context: %v, want context.Canceled", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := m.Store(ctx, 1, 100); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Store behind a held lock: %v, want DeadlineExceeded", err)
	}
	if _, err := m.Delete(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Delete behind a held lock: %v", err)
	}
	// Readers take no lock.
	if v, ok, err := m.Load(1); v != 1 || !ok || err != nil {
		t.Errorf("Load behind a held lock = %d %v %v", v, ok, err)
	}
	close(release)
	ctx3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	if _, _, err := m.Update(ctx3, 1, func(old uint64, ok bool) (uint64, bool) { return old, true }); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := m.Load(1); v != 2 {
		t.Errorf("after the held Update: %d, want 2", v)
	}
}

// payload offsets of the fields the corruption tests damage (see
// docs/format/dict-list.md).
const (
	offChecksum = 80
	shard0Desc  = 256 + 64
)

func TestCorruptHeader(t *testing.T) {
	ctx := context.Background()
	name := segName(t)
	b, err := CreateBytes(name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mem := b.Segment().Bytes()
	sum := binary.LittleEndian.Uint64(mem[offChecksum:])
	binary.LittleEndian.PutUint64(mem[offChecksum:], sum^1)
	if _, err := OpenBytes(ctx, name); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad header checksum: %v, want ErrCorrupt", err)
	}
	binary.LittleEndian.PutUint64(mem[offChecksum:], sum)
	c, err := OpenBytes(ctx, name)
	if err != nil {
		t.Fatalf("with the checksum restored: %v", err)
	}
	c.Close()
}

func TestCorruptDescriptor(t *testing.T) {
	ctx := context.Background()
	b, err := CreateAnonymousBytes(WithShards(1))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Store(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	mem := b.Segment().Bytes()
	good := binary.LittleEndian.Uint64(mem[shard0Desc:])
	for _, bad := range []uint64{
		2<<40 | uint64(len(mem)), // past the end
		2<<40 | 1,                // inside the store header
		good + 1,                 // not a space
		1<<63 | good&(1<<40-1),   // huge even generation, same space: valid
	} {
		binary.LittleEndian.PutUint64(mem[shard0Desc:], bad)
		_, _, lerr := b.Load("k")
		serr := b.Store(ctx, "k", []byte("w"))
		rerr := b.Range(func(string, []byte) bool { return true })
		if bad == 1<<63|good&(1<<40-1) {
			if lerr != nil || serr != nil || rerr != nil {
				t.Errorf("descriptor %#x (valid): %v / %v / %v", bad, lerr, serr, rerr)
			}
			continue
		}
		for what, err := range map[string]error{"Load": lerr, "Store": serr, "Range": rerr} {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("descriptor %#x: %s = %v, want ErrCorrupt", bad, what, err)
			}
		}
	}
	binary.LittleEndian.PutUint64(mem[shard0Desc:], good)
}
