//go:build linux

package shm

import (
	"context"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A peer that scribbles over the header after Open changes nothing this
// process relies on: the handle keeps the header it validated at Open,
// and later Opens and Inspects report the damage instead of trusting it.
func TestHeaderChangedAfterOpen(t *testing.T) {
	name := segName(t)
	ctx := context.Background()
	s, err := Create(name, 100, WithKind(KindQueue), WithType(TypeDesc{8, 8, 7}), WithParams(5, 6))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer Unlink(name)
	s2, err := Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := range HeaderSize { // a hostile peer: every header byte, state word included
		s.mem[i] = 0xff
	}
	if s2.Size() != 100 || len(s2.Bytes()) != 100 || s2.Kind() != KindQueue ||
		s2.Type() != (TypeDesc{8, 8, 7}) {
		t.Fatalf("handle changed with the header: size %d/%d kind %v type %v",
			s2.Size(), len(s2.Bytes()), s2.Kind(), s2.Type())
	}
	if p0, p1 := s2.Params(); p0 != 5 || p1 != 6 {
		t.Fatalf("params changed with the header: %d %d", p0, p1)
	}
	s2.Bytes()[99] = 1 // still inside the mapping
	if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a scribbled header = %v, want ErrCorrupt", err)
	}
	if _, err := Inspect(name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Inspect of a scribbled header = %v, want ErrCorrupt", err)
	}
	// A state word that claims ready over a header that is not.
	s.mem[offState], s.mem[offState+1], s.mem[offState+2], s.mem[offState+3] = byte(StateReady), 0, 0, 0
	if _, err := Open(ctx, name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a ready but scribbled header = %v, want ErrCorrupt", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// A file grown far past its payload (by a peer, after creation) is mapped
// only as far as the header describes.
func TestGrownFileMappedToPayload(t *testing.T) {
	name := segName(t)
	s, err := Create(name, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const grown = 1 << 30
	if err := os.Truncate(path(name), grown); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if len(s2.mem) != os.Getpagesize() || s2.Size() != 100 {
		t.Fatalf("mapped %d bytes of a %d-byte file whose payload is %d bytes", len(s2.mem), grown, s2.Size())
	}
	s2.Bytes()[99] = 7
	if s.Bytes()[99] != 7 {
		t.Fatal("trimmed mapping no longer shared")
	}
}

// A memfd from another process that was not sealed is sealed against
// resizing when it is opened, so its sender cannot shrink it under the
// opener's mapping afterwards.
func TestOpenFileSealsUnsealedMemfd(t *testing.T) {
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "unsealed")
	defer f.Close()
	b := validHeader(4096)
	if err := f.Truncate(int64(len(b) + 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFile(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := f.Truncate(HeaderSize); err == nil {
		t.Fatal("the sender could still shrink the segment")
	}
	s.Bytes()[4095] = 1 // still backed
}
