package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/shmkit/shmkit/shm"
)

// The manifest's encoding (docs/FORMAT.md, "A worker process's start"):
// little-endian, no padding,
//
//	magic   u32  "SKPM"
//	version u32  manifestVersion
//	func    str  the registered function's name
//	name    str  the worker's name (Config.Name)
//	parent  i64  the parent's pid
//	events  i64  ExtraFiles index of the event ring
//	level   i64  the slog level the parent's logger is enabled for
//	nargs   u32  then nargs entries:
//	  file  i64  ExtraFiles index of an object's descriptor, or -1
//	  kind  u32  the object's shm.Kind (0 for a value)
//	  type  str  the Go type given to Start, as %T prints it
//	  data  str  the gob encoding of a value (empty for an object)
//
// where str is a u32 length and that many bytes. It is written and read by
// hand rather than with encoding/gob: a worker reads it once, first thing,
// and gob's first decode in a new process (it builds its decoder by
// reflection) cost a quarter of a millisecond of a worker's start.
const (
	manifestMagic = 0x4d504b53 // "SKPM"
	// maxManifest bounds the manifest a worker reads (the arguments'
	// encodings are most of it).
	maxManifest = 1 << 30
)

var errManifest = errors.New("malformed manifest")

// marshal encodes m; a manifest longer than maxManifest (the arguments'
// encodings) is an error, as the worker would refuse it.
func (m *manifest) marshal() ([]byte, error) {
	le := binary.LittleEndian
	n := 4 + 4 + 4 + len(m.Func) + 4 + len(m.Name) + 3*8 + 4
	for _, a := range m.Args {
		n += 8 + 4 + 4 + len(a.Type) + 4 + len(a.Data)
		if n > maxManifest {
			break
		}
	}
	if n > maxManifest {
		return nil, fmt.Errorf("the arguments take more than %d bytes", maxManifest)
	}
	b := make([]byte, 0, n)
	str := func(b []byte, s []byte) []byte { return append(le.AppendUint32(b, uint32(len(s))), s...) }
	b = le.AppendUint32(b, manifestMagic)
	b = le.AppendUint32(b, uint32(m.Version))
	b = str(b, []byte(m.Func))
	b = str(b, []byte(m.Name))
	b = le.AppendUint64(b, uint64(int64(m.Parent)))
	b = le.AppendUint64(b, uint64(int64(m.Events)))
	b = le.AppendUint64(b, uint64(int64(m.Level)))
	b = le.AppendUint32(b, uint32(len(m.Args)))
	for _, a := range m.Args {
		b = le.AppendUint64(b, uint64(int64(a.File)))
		b = le.AppendUint32(b, uint32(a.Kind))
		b = str(b, []byte(a.Type))
		b = str(b, a.Data)
	}
	return b, nil
}

// manifestReader takes the fields of an encoded manifest off its front;
// the first short or bad field sets err, and the rest read as zero.
type manifestReader struct {
	b   []byte
	err error
}

func (r *manifestReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errManifest}, args...)...)
	}
	r.b = nil
}

func (r *manifestReader) u32(what string) uint32 {
	if len(r.b) < 4 {
		r.fail("%s: %d bytes left, want 4", what, len(r.b))
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// int reads an i64 that must lie in [lo, math.MaxInt32].
func (r *manifestReader) int(what string, lo int64) int {
	if len(r.b) < 8 {
		r.fail("%s: %d bytes left, want 8", what, len(r.b))
		return 0
	}
	v := int64(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	if v < lo || v > math.MaxInt32 {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return int(v)
}

func (r *manifestReader) bytes(what string) []byte {
	n := r.u32(what + " length")
	if uint64(n) > uint64(len(r.b)) {
		r.fail("%s of %d bytes, %d left", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// unmarshalManifest decodes what marshal wrote. Every length is checked
// against the bytes left before anything is allocated by it (the entries
// take at most three times the bytes that describe them); a manifest of
// another version is refused before its fields are read.
func unmarshalManifest(b []byte) (*manifest, error) {
	r := manifestReader{b: b}
	if magic := r.u32("magic"); r.err == nil && magic != manifestMagic {
		return nil, fmt.Errorf("%w: magic %#x, want %#x", errManifest, magic, manifestMagic)
	}
	version := r.u32("version")
	if r.err != nil {
		return nil, r.err
	}
	if version != manifestVersion {
		return nil, fmt.Errorf("manifest version %d, want %d (parent and worker binaries differ?)", version, manifestVersion)
	}
	m := &manifest{Version: int(version)}
	m.Func = string(r.bytes("function name"))
	m.Name = string(r.bytes("worker name"))
	m.Parent = r.int("parent", 0)
	m.Events = r.int("event ring index", -1)
	m.Level = slog.Level(r.int("level", math.MinInt32))
	nargs := r.u32("argument count")
	const minEntry = 8 + 4 + 4 + 4
	if r.err == nil && uint64(nargs)*minEntry > uint64(len(r.b)) {
		r.fail("%d arguments in %d bytes", nargs, len(r.b))
	}
	if r.err == nil && nargs > 0 {
		m.Args = make([]argEntry, nargs)
	}
	for i := range m.Args {
		a := &m.Args[i]
		a.File = r.int("argument file", -1)
		a.Kind = shm.Kind(r.u32("argument kind"))
		a.Type = string(r.bytes("argument type"))
		if d := r.bytes("argument data"); len(d) > 0 {
			a.Data = d
		}
		switch {
		case a.File < 0 && a.Kind != 0:
			r.fail("argument %d: a value with segment kind %d", i, a.Kind)
		case a.File >= 0 && a.Data != nil:
			r.fail("argument %d: an object with %d bytes of data", i, len(a.Data))
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the last argument", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}
