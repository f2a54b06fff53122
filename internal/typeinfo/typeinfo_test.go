package typeinfo

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

type point struct {
	X, Y float64
}

type celsius float64

type inner struct {
	ID    uint32
	Names [2]string
}

type outer struct {
	A     int64
	Inner inner
}

type withPtr struct {
	A int
	P *int
}

type deep struct {
	Arr [3]struct {
		Ok  int16
		Bad []byte
	}
}

type padded struct {
	A int8
	B int64
	C int16
}

type embed struct {
	point
	Z float64
}

type zeroField struct {
	_ [0]int64
	V int32
}

func TestOfTable(t *testing.T) {
	tests := []struct {
		name     string
		typ      reflect.Type
		wantErr  bool
		wantPath string // substring of the error
	}{
		{"bool", reflect.TypeFor[bool](), false, ""},
		{"int", reflect.TypeFor[int](), false, ""},
		{"int8", reflect.TypeFor[int8](), false, ""},
		{"uint64", reflect.TypeFor[uint64](), false, ""},
		{"float32", reflect.TypeFor[float32](), false, ""},
		{"complex128", reflect.TypeFor[complex128](), false, ""},
		{"named", reflect.TypeFor[celsius](), false, ""},
		{"array", reflect.TypeFor[[16]byte](), false, ""},
		{"struct", reflect.TypeFor[point](), false, ""},
		{"padded", reflect.TypeFor[padded](), false, ""},
		{"embedded", reflect.TypeFor[embed](), false, ""},
		{"zero-size field", reflect.TypeFor[zeroField](), false, ""},
		{"nested array", reflect.TypeFor[[2][3]point](), false, ""},

		{"uintptr", reflect.TypeFor[uintptr](), true, "uintptr: an address is meaningless"},
		{"pointer", reflect.TypeFor[*int](), true, "*int: pointers"},
		{"unsafe.Pointer", reflect.TypeFor[unsafe.Pointer](), true, "unsafe.Pointer"},
		{"string", reflect.TypeFor[string](), true, "string: strings"},
		{"slice", reflect.TypeFor[[]int](), true, "[]int: slices"},
		{"map", reflect.TypeFor[map[int]int](), true, "map[int]int: maps"},
		{"interface", reflect.TypeFor[any](), true, "interface {}: interfaces"},
		{"error", reflect.TypeFor[error](), true, "error: interfaces"},
		{"chan", reflect.TypeFor[chan int](), true, "chan int: channels"},
		{"func", reflect.TypeFor[func()](), true, "func(): funcs"},
		{"empty struct", reflect.TypeFor[struct{}](), true, "zero-size"},
		{"empty array", reflect.TypeFor[[0]int](), true, "zero-size"},
		{"nested string", reflect.TypeFor[outer](), true, "typeinfo.outer.Inner.Names[0]: string"},
		{"struct pointer", reflect.TypeFor[withPtr](), true, "typeinfo.withPtr.P: *int"},
		{"deep slice", reflect.TypeFor[deep](), true, "typeinfo.deep.Arr[0].Bad: []uint8"},
		{"array of pointers", reflect.TypeFor[[4]*int](), true, "[4]*int[0]: *int"},
		{"zero array of pointers", reflect.TypeFor[struct {
			_ [0]*int
			X int
		}](), true, "._[0]: *int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := OfType(tt.typ)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("OfType(%v) = %+v, want error", tt.typ, info)
				}
				if !errors.Is(err, ErrNotPlain) {
					t.Fatalf("error %v does not wrap ErrNotPlain", err)
				}
				var npe *NotPlainError
				if !errors.As(err, &npe) || npe.Type != tt.typ {
					t.Fatalf("error %v is not a *NotPlainError for %v", err, tt.typ)
				}
				if !strings.Contains(err.Error(), tt.wantPath) {
					t.Fatalf("error %q does not contain %q", err, tt.wantPath)
				}
				return
			}
			if err != nil {
				t.Fatalf("OfType(%v): %v", tt.typ, err)
			}
			if info.Size != uint32(tt.typ.Size()) || info.Align != uint32(tt.typ.Align()) {
				t.Fatalf("size/align = %d/%d, want %d/%d", info.Size, info.Align, tt.typ.Size(), tt.typ.Align())
			}
			h := fnv.New64a()
			h.Write([]byte(info.Canonical))
			if h.Sum64() != info.Fingerprint {
				t.Fatalf("fingerprint is not FNV-1a of %q", info.Canonical)
			}
		})
	}
}

func TestOfGeneric(t *testing.T) {
	size, align, fp, err := Of[padded]()
	if err != nil {
		t.Fatal(err)
	}
	if size != 24 || align != 8 || fp == 0 {
		t.Fatalf("Of[padded] = %d, %d, %#x", size, align, fp)
	}
	if _, _, _, err := Of[outer](); !errors.Is(err, ErrNotPlain) {
		t.Fatalf("Of[outer] err = %v", err)
	}
	if _, err := OfType(nil); !errors.Is(err, ErrNotPlain) {
		t.Fatalf("OfType(nil) err = %v", err)
	}
}

// TestCanonicalForm pins the documented canonical text: changing it changes
// every fingerprint recorded in existing segments.
func TestCanonicalForm(t *testing.T) {
	tests := []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[float64](), "shmkit/typeinfo/v1 f64"},
		{reflect.TypeFor[celsius](), "shmkit/typeinfo/v1 f64"},
		{reflect.TypeFor[[3]int32](), "shmkit/typeinfo/v1 [3]i32"},
		{reflect.TypeFor[bool](), "shmkit/typeinfo/v1 b"},
		{reflect.TypeFor[complex64](), "shmkit/typeinfo/v1 c64"},
		{reflect.TypeFor[padded](), "shmkit/typeinfo/v1 {24,8;A@0:i8;B@8:i64;C@16:i16}"},
		{reflect.TypeFor[embed](), "shmkit/typeinfo/v1 {24,8;point@0:{16,8;X@0:f64;Y@8:f64};Z@16:f64}"},
	}
	for _, tt := range tests {
		info, err := OfType(tt.typ)
		if err != nil {
			t.Fatal(err)
		}
		if info.Canonical != tt.want {
			t.Errorf("canonical(%v) = %q, want %q", tt.typ, info.Canonical, tt.want)
		}
	}
	// A fixed value, so that a change of hash function is noticed.
	if info, _ := OfType(reflect.TypeFor[float64]()); info.Fingerprint != fnv64a("shmkit/typeinfo/v1 f64") {
		t.Fatal("fingerprint mismatch")
	}
}

func TestFingerprintDistinguishes(t *testing.T) {
	type a struct{ X, Y int32 }
	type b struct{ X, Z int32 }   // field name differs
	type c struct{ X, Y uint32 }  // signedness differs
	type d struct{ X, Y float32 } // kind differs
	type e struct{ Y, X int32 }   // order differs
	type f struct{ X, Y int32 }   // same as a, different name
	fp := func(t reflect.Type) uint64 { i, _ := OfType(t); return i.Fingerprint }
	fa := fp(reflect.TypeFor[a]())
	for _, other := range []reflect.Type{reflect.TypeFor[b](), reflect.TypeFor[c](), reflect.TypeFor[d](), reflect.TypeFor[e](), reflect.TypeFor[[2]int32]()} {
		if fp(other) == fa {
			t.Errorf("%v and a share a fingerprint", other)
		}
	}
	if fp(reflect.TypeFor[f]()) != fa {
		t.Error("identical layouts with different type names differ")
	}
}

func TestOfNoAllocs(t *testing.T) {
	Of[point]()
	if n := testing.AllocsPerRun(100, func() { Of[point]() }); n != 0 {
		t.Fatalf("Of allocates %v times after the first call", n)
	}
}

// Property test: random plain types built with reflect.StructOf/ArrayOf are
// accepted with reflect's size and alignment; the same type built twice in
// a fresh cache gets the same fingerprint; planting any unplain kind at a
// random place is refused, with the path of the plant.
var plainLeaves = []reflect.Type{
	reflect.TypeFor[bool](), reflect.TypeFor[int](), reflect.TypeFor[int8](), reflect.TypeFor[int16](),
	reflect.TypeFor[int32](), reflect.TypeFor[int64](), reflect.TypeFor[uint](), reflect.TypeFor[uint8](),
	reflect.TypeFor[uint16](), reflect.TypeFor[uint32](), reflect.TypeFor[uint64](), reflect.TypeFor[float32](),
	reflect.TypeFor[float64](), reflect.TypeFor[complex64](), reflect.TypeFor[complex128](),
}

var badLeaves = []reflect.Type{
	reflect.TypeFor[uintptr](), reflect.TypeFor[*int](), reflect.TypeFor[unsafe.Pointer](), reflect.TypeFor[string](),
	reflect.TypeFor[[]int](), reflect.TypeFor[map[string]int](), reflect.TypeFor[any](), reflect.TypeFor[chan int](),
	reflect.TypeFor[func()](), reflect.TypeFor[*point](), reflect.TypeFor[[]point](),
}

// gen builds a random type of at most depth levels. When bad is non-nil, it
// is planted at exactly one place and the path suffix to it is returned.
func gen(r *rand.Rand, depth int, bad reflect.Type) (reflect.Type, string) {
	if depth == 0 || r.IntN(3) == 0 {
		if bad != nil {
			return bad, ""
		}
		return plainLeaves[r.IntN(len(plainLeaves))], ""
	}
	if r.IntN(3) == 0 {
		elem, p := gen(r, depth-1, bad)
		return reflect.ArrayOf(1+r.IntN(4), elem), "[0]" + p
	}
	n := 1 + r.IntN(4)
	badAt := -1
	if bad != nil {
		badAt = r.IntN(n)
	}
	fields := make([]reflect.StructField, n)
	var path string
	for i := range fields {
		var sub reflect.Type
		var p string
		if i == badAt {
			sub, p = gen(r, depth-1, bad)
			path = fmt.Sprintf(".F%d", i) + p
		} else {
			sub, _ = gen(r, depth-1, nil)
		}
		fields[i] = reflect.StructField{Name: fmt.Sprintf("F%d", i), Type: sub}
	}
	return reflect.StructOf(fields), path
}

func TestOfProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		typ, _ := gen(r, 4, nil)
		info, err := OfType(typ)
		if typ.Size() == 0 {
			if !errors.Is(err, ErrNotPlain) {
				t.Fatalf("#%d: zero-size %v accepted", i, typ)
			}
			continue
		}
		if err != nil {
			t.Fatalf("#%d: OfType(%v): %v", i, typ, err)
		}
		if info.Size != uint32(typ.Size()) || info.Align != uint32(typ.Align()) {
			t.Fatalf("#%d: %v size/align %d/%d, want %d/%d", i, typ, info.Size, info.Align, typ.Size(), typ.Align())
		}
		// Recompute without the cache: deterministic.
		if again := compute(typ); again.info != info {
			t.Fatalf("#%d: %v: recomputed %+v != %+v", i, typ, again.info, info)
		}

		bad := badLeaves[r.IntN(len(badLeaves))]
		btyp, path := gen(r, 4, bad)
		_, err = OfType(btyp)
		var npe *NotPlainError
		if !errors.As(err, &npe) || !errors.Is(err, ErrNotPlain) {
			t.Fatalf("#%d: %v (with %v planted) accepted: %v", i, btyp, bad, err)
		}
		if want := btyp.String() + path; npe.Path != want {
			t.Fatalf("#%d: path %q, want %q", i, npe.Path, want)
		}
		if npe.Kind != bad.String() {
			t.Fatalf("#%d: kind %q, want %q", i, npe.Kind, bad.String())
		}
	}
}

func BenchmarkOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Of[padded]()
	}
}
