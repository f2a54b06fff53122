package shm

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The header layout (docs/format/shm.md has the same table). All integers
// are little-endian. Bytes [0, offChecksum) are immutable after creation
// and covered by the checksum; the state word is not.
const (
	offMagic       = 0   // [8]byte magic
	offVersion     = 8   // u32 format version
	offKind        = 12  // u32 Kind
	offSize        = 16  // u64 payload size
	offPayload     = 24  // u32 payload offset (== HeaderSize)
	offFlags       = 28  // u32 flags
	offTypeSize    = 32  // u32 TypeDesc.Size
	offTypeAlign   = 36  // u32 TypeDesc.Align
	offTypeFP      = 40  // u64 TypeDesc.Fingerprint
	offCreatorPid  = 48  // u32 creator pid
	offReserved1   = 52  // u32 zero
	offCreatorTime = 56  // u64 creator start time
	offP0          = 64  // u64 param 0
	offP1          = 72  // u64 param 1
	offTypeName    = 80  // [32]byte type name, printable ASCII, NUL-padded (version 2)
	offChecksum    = 112 // u64 FNV-1a 64 over [0, 112)
	offState       = 120 // u32 State (futex word, not checksummed)
	offReserved3   = 124 // u32, not checksummed, ignored
)

// magic identifies a shmkit segment.
var magic = [8]byte{'s', 'h', 'm', 'k', 'i', 't', 'S', 'G'}

const (
	// formatVersion 2 added the type name at offTypeName (reserved, zero,
	// in version 1).
	formatVersion = 2

	// flagAnonymous marks a memfd segment (informational).
	flagAnonymous = 1 << 0
	knownFlags    = flagAnonymous
)

// header is the decoded immutable part of a segment header plus the state
// word as it was when decoded.
type header struct {
	version      uint32
	kind         Kind
	size         uint64
	offset       uint32
	flags        uint32
	typ          TypeDesc
	creatorPid   int32
	creatorStart uint64
	p0, p1       uint64
	typeName     string
	state        State
}

// MaxTypeName is the longest type name a header records (WithTypeName).
const MaxTypeName = offChecksum - offTypeName

// fitTypeName makes name fit the header: printable ASCII only (anything
// else becomes '?'), and at most MaxTypeName bytes. A longer name keeps
// its end, which carries the type's own name, behind a "..." marker
// ("...example.com/app/model.Config").
func fitTypeName(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > MaxTypeName {
		b = append([]byte("..."), b[len(b)-(MaxTypeName-3):]...)
	}
	return string(b)
}

// checksum is FNV-1a 64 over the immutable part of the header.
func checksum(b []byte) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range b[:offChecksum] {
		h ^= uint64(c)
		h *= prime64
	}
	return h
}

// encodeHeader writes h's immutable fields and checksum into b, which must
// be at least HeaderSize bytes. It does not touch the state word.
func encodeHeader(b []byte, h *header) {
	le := binary.LittleEndian
	copy(b[offMagic:], magic[:])
	le.PutUint32(b[offVersion:], h.version)
	le.PutUint32(b[offKind:], uint32(h.kind))
	le.PutUint64(b[offSize:], h.size)
	le.PutUint32(b[offPayload:], h.offset)
	le.PutUint32(b[offFlags:], h.flags)
	le.PutUint32(b[offTypeSize:], h.typ.Size)
	le.PutUint32(b[offTypeAlign:], h.typ.Align)
	le.PutUint64(b[offTypeFP:], h.typ.Fingerprint)
	le.PutUint32(b[offCreatorPid:], uint32(h.creatorPid))
	le.PutUint32(b[offReserved1:], 0)
	le.PutUint64(b[offCreatorTime:], h.creatorStart)
	le.PutUint64(b[offP0:], h.p0)
	le.PutUint64(b[offP1:], h.p1)
	clear(b[offTypeName:offChecksum])
	copy(b[offTypeName:offChecksum], fitTypeName(h.typeName))
	le.PutUint64(b[offChecksum:], checksum(b))
}

// creatorOf reads the creator fields without validating anything; Open
// uses it while a segment is still initialising.
func creatorOf(b []byte) (pid int32, start uint64) {
	if len(b) < HeaderSize {
		return 0, 0
	}
	le := binary.LittleEndian
	return int32(le.Uint32(b[offCreatorPid:])), le.Uint64(b[offCreatorTime:])
}

// parseTypeName decodes the NUL-padded type name field: printable ASCII
// up to the first NUL, zeros after it.
func parseTypeName(b []byte) (string, error) {
	n := 0
	for n < len(b) && b[n] != 0 {
		if b[n] < 0x20 || b[n] > 0x7e {
			return "", fmt.Errorf("%w: type name byte %#02x at offset %d is not printable ASCII", ErrCorrupt, b[n], offTypeName+n)
		}
		n++
	}
	for _, c := range b[n:] {
		if c != 0 {
			return "", fmt.Errorf("%w: type name not NUL-padded", ErrCorrupt)
		}
	}
	return string(b[:n]), nil
}

// parseHeader validates a header read from a file of fileSize bytes and
// decodes it. It is a pure function of its inputs, so it can be fuzzed:
// whatever b holds, it returns an error wrapping ErrCorrupt or ErrVersion,
// or a header whose payload [offset, offset+size) lies inside the file.
// It does not require the state to be ready; callers check h.state.
func parseHeader(b []byte, fileSize int64) (header, error) {
	var h header
	if len(b) < HeaderSize || fileSize < HeaderSize {
		return h, fmt.Errorf("%w: truncated header (%d bytes, file %d bytes)", ErrCorrupt, len(b), fileSize)
	}
	b = b[:HeaderSize]
	if [8]byte(b[offMagic:offMagic+8]) != magic {
		return h, fmt.Errorf("%w: bad magic %q", ErrCorrupt, b[offMagic:offMagic+8])
	}
	le := binary.LittleEndian
	h.version = le.Uint32(b[offVersion:])
	if h.version != formatVersion {
		return h, fmt.Errorf("%w: version %d, want %d", ErrVersion, h.version, formatVersion)
	}
	if sum, want := le.Uint64(b[offChecksum:]), checksum(b); sum != want {
		return h, fmt.Errorf("%w: header checksum %#016x, want %#016x", ErrCorrupt, sum, want)
	}
	h.flags = le.Uint32(b[offFlags:])
	if h.flags&^knownFlags != 0 {
		return h, fmt.Errorf("%w: unknown flags %#x", ErrVersion, h.flags&^knownFlags)
	}
	if le.Uint32(b[offReserved1:]) != 0 {
		return h, fmt.Errorf("%w: reserved header bytes not zero", ErrCorrupt)
	}
	name, err := parseTypeName(b[offTypeName:offChecksum])
	if err != nil {
		return h, err
	}
	h.typeName = name
	h.kind = Kind(le.Uint32(b[offKind:]))
	if h.kind == 0 {
		return h, fmt.Errorf("%w: kind 0", ErrCorrupt)
	}
	h.offset = le.Uint32(b[offPayload:])
	if h.offset != HeaderSize {
		return h, fmt.Errorf("%w: payload offset %d, want %d", ErrCorrupt, h.offset, HeaderSize)
	}
	h.size = le.Uint64(b[offSize:])
	if h.size == 0 || h.size > MaxSize {
		return h, fmt.Errorf("%w: payload size %d", ErrCorrupt, h.size)
	}
	// Both terms are bounded (offset is HeaderSize, size <= MaxSize): no overflow.
	if end := uint64(h.offset) + h.size; end > uint64(fileSize) {
		return h, fmt.Errorf("%w: payload ends at %d, past the end of the file (%d bytes)", ErrCorrupt, end, fileSize)
	}
	h.typ = TypeDesc{
		Size:        le.Uint32(b[offTypeSize:]),
		Align:       le.Uint32(b[offTypeAlign:]),
		Fingerprint: le.Uint64(b[offTypeFP:]),
	}
	if h.typ.Align != 0 && bits.OnesCount32(h.typ.Align) != 1 {
		return h, fmt.Errorf("%w: type alignment %d is not a power of two", ErrCorrupt, h.typ.Align)
	}
	h.creatorPid, h.creatorStart = creatorOf(b)
	if h.creatorPid <= 0 {
		return h, fmt.Errorf("%w: creator pid %d", ErrCorrupt, h.creatorPid)
	}
	h.p0 = le.Uint64(b[offP0:])
	h.p1 = le.Uint64(b[offP1:])
	h.state = State(le.Uint32(b[offState:]))
	if h.state > StateReady {
		return h, fmt.Errorf("%w: init state %d", ErrCorrupt, h.state)
	}
	return h, nil
}
