// Package sem provides locks that live in shared memory and work across
// processes: Mutex, Semaphore and Event, built on Linux futexes.
//
// Each object occupies 64 bytes (one cache line) and can be placed at any
// 8-byte-aligned offset inside a segment (InitMutex on fresh memory by its
// creator, MutexAt by everyone else), or stand alone as a named segment
// (CreateMutex, OpenMutex). The byte layout is in docs/format/sem.md.
//
// (The full package documentation follows in doc.go.)
package sem
