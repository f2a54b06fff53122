// Package layout holds the object header and the unsafe helpers shared by
// packages value and array: the 128-byte header that precedes the elements
// of a Value or Array in shared memory, its validation, typed views over a
// mapping, and generic atomic operations on integer elements.
//
// The byte layout is specified in docs/format/value-array.md. All unsafe
// code of value and array lives here.
package layout
