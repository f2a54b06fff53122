// Package object holds what packages value and array share: the 128-byte
// object header that precedes the elements of a Value or Array in shared
// memory, its validation, the placing, attaching, opening and closing of an
// object (its segment and its sem.Mutex), typed views over a mapping, and
// generic atomic operations on integer elements.
//
// Unlike the other internal packages, which sit below shm, object sits
// beside value and array: it imports shm and sem, and only value and array
// import it. The type checks it relies on come from internal/typeinfo,
// which imports nothing of shmkit's.
//
// The byte layout is specified in docs/format/value-array.md. All unsafe
// code of value and array lives here.
package object
