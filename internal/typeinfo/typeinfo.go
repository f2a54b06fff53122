package typeinfo

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// ErrNotPlain is wrapped by every error that refuses a type: one that is not
// fixed-size and pointer-free, or that is empty.
var ErrNotPlain = errors.New("type is not fixed-size and pointer-free")

// NotPlainError describes why a type was refused. It unwraps to ErrNotPlain.
type NotPlainError struct {
	Type   reflect.Type // the type asked about
	Path   string       // path of the offending part, starting with Type's name
	Kind   string       // what was found there ("string", "*int", "uintptr", ...)
	Reason string       // why that is not allowed
}

// Error implements error.
func (e *NotPlainError) Error() string {
	return "typeinfo: " + e.Path + ": " + e.Kind + ": " + e.Reason
}

// Unwrap returns ErrNotPlain.
func (e *NotPlainError) Unwrap() error { return ErrNotPlain }

// Info describes a plain type.
type Info struct {
	Size        uint32 // reflect.Type.Size()
	Align       uint32 // reflect.Type.Align()
	Fingerprint uint64 // FNV-1a 64 of Canonical
	Canonical   string // the canonical layout text (see docs/format/value-array.md)
}

type entry struct {
	info Info
	err  error
}

var cache sync.Map // reflect.Type -> *entry

// Of reports the size, alignment and fingerprint of T, or an error wrapping
// ErrNotPlain when T cannot be shared between processes. The result is
// cached per type: after the first call Of does not allocate.
func Of[T any]() (size, align uint32, fingerprint uint64, err error) {
	e := lookup(reflect.TypeFor[T]())
	return e.info.Size, e.info.Align, e.info.Fingerprint, e.err
}

// OfType is Of for a reflect.Type. A nil type is refused.
func OfType(t reflect.Type) (Info, error) {
	if t == nil {
		return Info{}, &NotPlainError{Path: "<nil>", Kind: "nil type", Reason: "no type given"}
	}
	e := lookup(t)
	return e.info, e.err
}

func lookup(t reflect.Type) *entry {
	if v, ok := cache.Load(t); ok {
		return v.(*entry)
	}
	e := compute(t)
	v, _ := cache.LoadOrStore(t, e)
	return v.(*entry)
}

// maxSize bounds the size of a plain type: shared objects record sizes in
// 32 bits.
const maxSize = 1<<32 - 1

func compute(t reflect.Type) *entry {
	root := t.String()
	if err := check(t, t, root); err != nil {
		return &entry{err: err}
	}
	if t.Size() == 0 {
		return &entry{err: &NotPlainError{Type: t, Path: root, Kind: "zero-size type",
			Reason: "a shared object must occupy at least one byte"}}
	}
	if t.Size() > maxSize {
		return &entry{err: &NotPlainError{Type: t, Path: root, Kind: "size " + strconv.FormatUint(uint64(t.Size()), 10),
			Reason: "larger than 4 GiB - 1"}}
	}
	var b strings.Builder
	b.WriteString(canonPrefix)
	describe(&b, t)
	c := b.String()
	return &entry{info: Info{
		Size:        uint32(t.Size()),
		Align:       uint32(t.Align()),
		Fingerprint: fnv64a(c),
		Canonical:   c,
	}}
}

// check walks t and returns the first part that is not plain.
func check(root, t reflect.Type, path string) error {
	refuse := func(reason string) error {
		return &NotPlainError{Type: root, Path: path, Kind: t.String(), Reason: reason}
	}
	switch t.Kind() {
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return nil
	case reflect.Uintptr:
		return refuse("an address is meaningless in another process (use uint64 for numbers)")
	case reflect.Pointer, reflect.UnsafePointer:
		return refuse("pointers are meaningless in another process and hidden from the garbage collector")
	case reflect.String:
		return refuse("strings hold a pointer to their bytes (use a fixed-size [N]byte array)")
	case reflect.Slice:
		return refuse("slices hold a pointer to their elements (use a fixed-size array)")
	case reflect.Map:
		return refuse("maps are pointers to process-local tables")
	case reflect.Interface:
		return refuse("interfaces hold pointers to process-local values and types")
	case reflect.Chan:
		return refuse("channels are process-local")
	case reflect.Func:
		return refuse("funcs are process-local code pointers")
	case reflect.Array:
		return check(root, t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if err := check(root, f.Type, path+"."+f.Name); err != nil {
				return err
			}
		}
		return nil
	default:
		return refuse("unsupported kind " + t.Kind().String())
	}
}

// canonPrefix versions the canonical form.
const canonPrefix = "shmkit/typeinfo/v1 "

// describe writes the canonical description of a plain type t.
func describe(b *strings.Builder, t reflect.Type) {
	switch t.Kind() {
	case reflect.Bool:
		b.WriteString("b")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString("i")
		b.WriteString(strconv.Itoa(int(t.Size()) * 8))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString("u")
		b.WriteString(strconv.Itoa(int(t.Size()) * 8))
	case reflect.Float32, reflect.Float64:
		b.WriteString("f")
		b.WriteString(strconv.Itoa(int(t.Size()) * 8))
	case reflect.Complex64, reflect.Complex128:
		b.WriteString("c")
		b.WriteString(strconv.Itoa(int(t.Size()) * 8))
	case reflect.Array:
		b.WriteString("[")
		b.WriteString(strconv.Itoa(t.Len()))
		b.WriteString("]")
		describe(b, t.Elem())
	case reflect.Struct:
		fmt.Fprintf(b, "{%d,%d", t.Size(), t.Align())
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(b, ";%s@%d:", f.Name, f.Offset)
			describe(b, f.Type)
		}
		b.WriteString("}")
	}
}

// fnv64a is 64-bit FNV-1a (offset basis 14695981039346656037, prime
// 1099511628211), as hash/fnv New64a.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
