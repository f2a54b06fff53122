// Package typeinfo decides whether a Go type may live in memory shared
// between processes, and describes its layout so that two programs can
// check that they agree on it.
//
// A type is plain when it has a fixed size, holds no pointer of any kind and
// is not empty: bool, the sized and unsized integer kinds (except uintptr),
// floats, complex numbers, and arrays and structs built only of those,
// nested to any depth. Everything else is refused, anywhere inside the type:
//
//   - pointers, unsafe.Pointer, strings, slices, maps, interfaces, channels
//     and funcs hold addresses into one process's heap; another process
//     would read garbage, and the Go garbage collector cannot see references
//     stored in a mapping it does not own;
//   - uintptr is refused for the same reason even though the collector does
//     not trace it: an address is meaningless in another process (and a
//     uintptr that "happens to hold an index" should be a uint64);
//   - zero-size types (struct{}, [0]int64 as T itself) are refused: a
//     shared object of no bytes has nothing to share, and every element of
//     an array of them would alias one address. Zero-size fields and
//     zero-length arrays inside a larger type are allowed when their
//     element type is itself plain.
//
// Refusals wrap ErrNotPlain and name the path of the offending part, for
// example "main.T.Inner.Names[0]: string".
//
// The fingerprint is a 64-bit FNV-1a hash of a canonical text that records
// kinds, sizes, alignments, field offsets and names and array lengths. Two
// programs whose types have the same layout and field names agree on it,
// whatever the types are called and whichever package declares them. The
// canonical form is specified in docs/format/value-array.md.
package typeinfo
