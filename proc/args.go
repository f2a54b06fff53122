package proc

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"

	"github.com/shmkit/shmkit/shm"
)

// manifestVersion is the version of the manifest encoding; a child that
// reads another version exits with exitBadStart. Version 1 was gob.
const manifestVersion = 2

// manifest is what the parent tells the child, encoded (manifest.go) in a memfd
// whose descriptor number the environment gives (envManifest). Descriptor
// numbers of the other files are derived from their ExtraFiles index
// (descriptor 3+i, the exec.Cmd contract), never assumed.
type manifest struct {
	Version int
	Func    string
	Name    string // Config.Name
	Parent  int    // the parent's pid
	Events  int    // ExtraFiles index of the event ring (logs and the final status)
	Level   slog.Level
	Args    []argEntry
}

// argEntry describes one argument of Start.
type argEntry struct {
	File int      // ExtraFiles index of a shmkit object's descriptor; -1 for an encoded value
	Kind shm.Kind // the object's segment kind (File >= 0)
	Type string   // the Go type given to Start, as %T prints it
	Data []byte   // gob encoding of the value (File < 0)
}

// Args are a worker's arguments, as given to Start, seen from the child.
// Objects are attached with Object (or File and the package's OpenFile);
// other values are decoded with Decode. Its methods are safe for
// concurrent use.
type Args struct {
	entries []argEntry

	mu    sync.Mutex
	files map[int]*os.File
}

// Len returns the number of arguments.
func (a *Args) Len() int { return len(a.entries) }

// Kind returns the segment kind of shmkit object argument i (shm.KindQueue
// for a ring.Queue, for example), or 0 for an encoded value or an i out
// of range.
func (a *Args) Kind(i int) shm.Kind {
	if i < 0 || i >= len(a.entries) || a.entries[i].File < 0 {
		return 0
	}
	return a.entries[i].Kind
}

// Type returns the Go type of argument i as the parent gave it to Start
// (as %T prints it, "*ring.Queue" for example), or "" for an i out of range.
func (a *Args) Type(i int) string {
	if i < 0 || i >= len(a.entries) {
		return ""
	}
	return a.entries[i].Type
}

func (a *Args) entry(i int) (argEntry, error) {
	if i < 0 || i >= len(a.entries) {
		return argEntry{}, fmt.Errorf("proc: argument %d out of range (%d arguments)", i, len(a.entries))
	}
	return a.entries[i], nil
}

// File returns the descriptor of shmkit object argument i, as the manifest
// places it. The Args own it (do not close it); each call returns the same
// *os.File. It is an error for an encoded argument.
func (a *Args) File(i int) (*os.File, error) {
	e, err := a.entry(i)
	if err != nil {
		return nil, err
	}
	if e.File < 0 {
		return nil, fmt.Errorf("proc: argument %d (%s) is an encoded value, not a shmkit object: use Decode", i, e.Type)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f := a.files[i]; f != nil {
		return f, nil
	}
	f := os.NewFile(uintptr(3+e.File), fmt.Sprintf("proc-arg-%d", i))
	if f == nil {
		return nil, fmt.Errorf("proc: argument %d: invalid descriptor %d", i, 3+e.File)
	}
	if a.files == nil {
		a.files = map[int]*os.File{}
	}
	a.files[i] = f
	return f, nil
}

// Decode decodes encoded argument i into v, a pointer to a value of the
// type given to Start (or one gob can decode it into). It is an error for
// a shmkit object argument.
func (a *Args) Decode(i int, v any) error {
	e, err := a.entry(i)
	if err != nil {
		return err
	}
	if e.File >= 0 {
		return fmt.Errorf("proc: argument %d (%s) is a shmkit object (%v), not an encoded value: use Object or File", i, e.Type, e.Kind)
	}
	if err := gob.NewDecoder(bytes.NewReader(e.Data)).Decode(v); err != nil {
		return fmt.Errorf("proc: decode argument %d (%s) into %T: %w", i, e.Type, v, err)
	}
	return nil
}

// Object attaches to shmkit object argument i with open, the OpenFile
// function of the object's package:
//
//	q, err := proc.Object(ctx, args, 0, ring.OpenFile)
//	v, err := proc.Object(ctx, args, 1, value.OpenFile[float64])
//	m, err := proc.Object(ctx, args, 2, sem.OpenMutexFile)
//	c, err := proc.Object(ctx, args, 3, ring.OpenPipeFile) // end 1 of a pipe
//
// The handle is the caller's to close. Opening with the wrong function or
// type gives open's typed error (a *shm.MismatchError, for example).
func Object[H any](ctx context.Context, a *Args, i int, open func(context.Context, *os.File, ...shm.Option) (H, error)) (H, error) {
	var zero H
	f, err := a.File(i)
	if err != nil {
		return zero, err
	}
	h, err := open(ctx, f)
	if err != nil {
		return zero, fmt.Errorf("proc: argument %d (%s): %w", i, a.entries[i].Type, err)
	}
	return h, nil
}

// encodeArgs turns Start's arguments into manifest entries and the files
// to pass, the first at ExtraFiles index base.
func encodeArgs(args []any, base int) ([]argEntry, []*os.File, error) {
	entries := make([]argEntry, len(args))
	var files []*os.File
	for i, v := range args {
		typ := fmt.Sprintf("%T", v)
		if s, ok := v.(shm.Shareable); ok {
			if isNil(v) {
				return nil, nil, &EncodeError{Index: i, Type: typ, Err: fmt.Errorf("nil object")}
			}
			seg, f := s.Segment(), s.File()
			if seg == nil || f == nil {
				return nil, nil, &EncodeError{Index: i, Type: typ, Err: fmt.Errorf("object has no segment to pass (closed, or in memory of the caller's own)")}
			}
			entries[i] = argEntry{File: base + len(files), Kind: seg.Kind(), Type: typ}
			files = append(files, f)
			continue
		}
		if v == nil {
			return nil, nil, &EncodeError{Index: i, Type: typ, Err: fmt.Errorf("nil value")}
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(v); err != nil {
			return nil, nil, &EncodeError{Index: i, Type: typ, Err: err}
		}
		entries[i] = argEntry{File: -1, Type: typ, Data: buf.Bytes()}
	}
	return entries, files, nil
}

func isNil(v any) bool {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return r.IsNil()
	}
	return false
}
