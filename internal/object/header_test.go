package object

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/shmkit/shmkit/shm"
	"hash/fnv"
	"math"
	"sync/atomic"
	"testing"
	"unsafe"
)

func mem(n int) []byte {
	w := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), n)
}

// A hostile peer can write a self-consistent header (correct checksum);
// Read must still refuse lengths and sizes that do not fit.
func TestReadHostileHeaders(t *testing.T) {
	const size, align, fp = 8, 8, 0x1234
	good := Header{Magic: MagicArray, Flags: FlagLocked, Size: size, Align: align, Fingerprint: fp, Length: 4}
	tests := []struct {
		name string
		edit func(h *Header)
		want error
	}{
		{"ok", func(h *Header) {}, nil},
		{"length overflows", func(h *Header) { h.Length = math.MaxUint64 / 2 }, ErrCorrupt},
		{"length too long", func(h *Header) { h.Length = 5 }, ErrCorrupt},
		{"size zero", func(h *Header) { h.Size = 0 }, ErrCorrupt},
		{"align not power of two", func(h *Header) { h.Align = 3 }, ErrCorrupt},
		{"align huge", func(h *Header) { h.Align = 128; h.Size = 128 }, ErrCorrupt},
		{"size not multiple of align", func(h *Header) { h.Size = 12 }, ErrCorrupt},
		{"unknown flag", func(h *Header) { h.Flags |= 2 }, ErrCorrupt},
		{"other type", func(h *Header) { h.Fingerprint++ }, ErrType},
		{"other kind", func(h *Header) { h.Magic = MagicValue }, ErrKind},
		{"bad magic", func(h *Header) { h.Magic = 1 }, ErrCorrupt},
	}
	for _, tt := range tests {
		m := mem(HeaderSize + 4*size)
		h := good
		tt.edit(&h)
		Write(m, h)
		_, err := Read(m, MagicArray, size, align, fp)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// A value must have length 1.
	m := mem(HeaderSize + 16)
	Write(m, Header{Magic: MagicValue, Size: 8, Align: 8, Fingerprint: fp, Length: 2})
	if _, err := Read(m, MagicValue, 8, 8, fp); !errors.Is(err, ErrCorrupt) {
		t.Errorf("value of length 2: %v", err)
	}
	// Bad version and checksum.
	Write(m, Header{Magic: MagicValue, Size: 8, Align: 8, Fingerprint: fp, Length: 1})
	binary.LittleEndian.PutUint32(m[OffVersion:], 2)
	if _, err := Read(m, MagicValue, 8, 8, fp); !errors.Is(err, shm.ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	// Misaligned memory.
	if _, err := Read(mem(HeaderSize + 16)[4:], MagicValue, 8, 8, fp); !errors.Is(err, ErrBadAlign) {
		t.Errorf("misaligned: %v", err)
	}
	if _, ok := Need(8, math.MaxUint64); ok {
		t.Error("Need overflowed")
	}
}

func TestAtomicHelpers(t *testing.T) {
	type named int32
	var x named = 5
	if Add(&x, -2) != 3 || Swap(&x, 9) != 3 || !CompareAndSwap(&x, 9, 1) || Load(&x) != 1 {
		t.Fatal("32-bit helpers")
	}
	var y uint64
	Store(&y, math.MaxUint64)
	if Add(&y, 1) != 0 {
		t.Fatal("64-bit wrap")
	}
	if AtomicSize[named]() != 4 || AtomicSize[uint64]() != 8 || AtomicSize[float64]() != 0 || AtomicSize[[2]int32]() != 0 {
		t.Fatal("AtomicSize")
	}
	var s int64
	calls := 0
	err := updateWord(context.Background(), 8, &y, (*uint64)(unsafe.Pointer(&s)), func(p *uint64) { calls++; *p += 7 })
	if err != nil || y != 7 || calls != 1 {
		t.Fatalf("UpdateWord: %d after %d calls", y, calls)
	}
}

// A writer that changes the element on every try (a hostile peer storing
// in a loop) cannot keep updateWord spinning past ctx.
func TestUpdateWordGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var x, s uint32
	calls := 0
	err := updateWord(ctx, 4, &x, &s, func(p *uint32) {
		calls++
		atomic.AddUint32(&x, 1) // the other writer, always in between
		if calls == 100 {
			cancel()
		}
		*p = 1 << 31
	})
	if !errors.Is(err, context.Canceled) || calls != 100 || x != 100 {
		t.Fatalf("err %v after %d calls, x = %d", err, calls, x)
	}
}

// TestHeaderBytes builds a header byte by byte as docs/format/value-array.md
// describes it, with literal offsets, and checks that Write produces
// exactly those bytes and Read accepts them: the document and the code
// cannot drift apart silently.
func TestHeaderBytes(t *testing.T) {
	want := mem(HeaderSize + 3*4)
	copy(want[0:8], "SHMKARRY")
	le := binary.LittleEndian
	le.PutUint32(want[8:], 1)           // version
	le.PutUint32(want[12:], 1)          // flags: locked
	le.PutUint32(want[16:], 4)          // element size
	le.PutUint32(want[20:], 4)          // element alignment
	le.PutUint64(want[24:], 0xfeedf00d) // fingerprint
	le.PutUint64(want[32:], 3)          // length
	h := fnv.New64a()
	h.Write(want[8:40])
	le.PutUint64(want[40:], h.Sum64()) // checksum of bytes 8..39
	// 48..63: scratch and reserved, zero; 64..127: the mutex, not written by Write.

	got := mem(HeaderSize + 3*4)
	for i := range got[:OffMutex] {
		got[i] = 0xAA // Write must clear bytes 0..63 itself
	}
	Write(got, Header{Magic: MagicArray, Flags: FlagLocked, Size: 4, Align: 4, Fingerprint: 0xfeedf00d, Length: 3})
	if !bytes.Equal(got[:OffMutex], want[:OffMutex]) {
		t.Fatalf("Write:\n got % x\nwant % x", got[:OffMutex], want[:OffMutex])
	}
	if string(want[0:8]) != "SHMKARRY" || le.Uint64(want[0:]) != MagicArray {
		t.Fatal("array magic")
	}
	var v [8]byte
	le.PutUint64(v[:], MagicValue)
	if string(v[:]) != "SHMKVALU" {
		t.Fatalf("value magic %q", v[:])
	}
	hd, err := Read(want, MagicArray, 4, 4, 0xfeedf00d)
	if err != nil || hd.Length != 3 || hd.Flags != FlagLocked {
		t.Fatalf("Read of the documented bytes: %+v, %v", hd, err)
	}
}

// CopyOut and CopyIn behave like the built-in copy, overlapping ranges
// included, for every element size they handle (4 and 8 atomically, any
// other plainly).
func TestCopyLikeBuiltin(t *testing.T) {
	copyLike[uint64](t, 8)
	copyLike[uint32](t, 4)
	copyLike[uint64](t, 0)
	copyLike[[3]byte](t, 0)
}

func copyLike[T any](t *testing.T, sz uint8) {
	t.Helper()
	ramp := func() []T {
		s := make([]T, 8)
		b := unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
		for i := range b {
			b[i] = byte(i)
		}
		return s
	}
	eq := func(a, b []T) bool {
		n := len(a) * int(unsafe.Sizeof(a[0]))
		return bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), n), unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), n))
	}
	for _, tc := range []struct{ d, dn, s, sn int }{
		{0, 8, 0, 8}, {0, 5, 3, 5}, {3, 5, 0, 5}, {1, 0, 2, 3}, {2, 6, 2, 6}, {0, 3, 4, 4}, {4, 4, 0, 2},
	} {
		for name, cp := range map[string]func(sz uint8, dst, src []T) int{"CopyOut": CopyOut[T], "CopyIn": CopyIn[T]} {
			want, got := ramp(), ramp()
			wn := copy(want[tc.d:tc.d+tc.dn], want[tc.s:tc.s+tc.sn])
			if n := cp(sz, got[tc.d:tc.d+tc.dn], got[tc.s:tc.s+tc.sn]); n != wn || !eq(got, want) {
				t.Errorf("%s[%T] size %d, %+v: %d elements, %v; want %d, %v", name, got[0], sz, tc, n, got, wn, want)
			}
		}
	}
}
