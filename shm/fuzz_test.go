package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// validHeader returns a valid ready header for a payload of size bytes.
func validHeader(size int) []byte {
	b := make([]byte, HeaderSize)
	h := header{version: formatVersion, kind: KindArray, size: uint64(size), offset: HeaderSize,
		typ: TypeDesc{Size: 8, Align: 8, Fingerprint: 0x1234}, creatorPid: 1, creatorStart: 99, p0: 3, p1: 4}
	encodeHeader(b, &h)
	binary.LittleEndian.PutUint32(b[offState:], uint32(StateReady))
	return b
}

// FuzzHeader checks that header validation never panics, fails only with
// ErrCorrupt or ErrVersion, and accepts only headers that re-encode to
// themselves and fit inside the file.
func FuzzHeader(f *testing.F) {
	f.Add(validHeader(64), int64(HeaderSize+64))
	f.Add(validHeader(64), int64(HeaderSize+10))
	f.Add(validHeader(64)[:100], int64(100))
	f.Add(make([]byte, HeaderSize), int64(4096))
	f.Add([]byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, b []byte, fileSize int64) {
		h, err := parseHeader(b, fileSize)
		if err != nil {
			// The only errors it may return: callers rely on errors.Is.
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("parseHeader error %v matches neither ErrCorrupt nor ErrVersion", err)
			}
			return
		}
		if h.offset != HeaderSize || h.size == 0 || h.size > MaxSize || int64(h.offset)+int64(h.size) > fileSize {
			t.Fatalf("accepted impossible layout: offset %d size %d file %d", h.offset, h.size, fileSize)
		}
		if h.state > StateReady || h.creatorPid <= 0 || h.kind == 0 {
			t.Fatalf("accepted bad fields: %+v", h)
		}
		re := make([]byte, HeaderSize)
		encodeHeader(re, &h)
		if !bytes.Equal(re[:offState], b[:offState]) {
			t.Fatalf("accepted header does not re-encode to itself:\n%x\n%x", b[:offState], re[:offState])
		}
	})
}
