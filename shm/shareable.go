package shm

import "os"

// Shareable is implemented by every shmkit object that can be handed to
// another process: *Segment itself and the objects of packages sem, value,
// array and ring (named or anonymous). It is the contract the process
// layer relies on to pass objects to workers.
//
// File returns the descriptor of the segment holding the object; the
// object owns it (do not close it). Pass it to a child through
// exec.Cmd.ExtraFiles, where the object's package's OpenFile function (for
// example value.OpenFile, ring.OpenFile, sem.OpenMutexFile) attaches to it,
// or send Segment() over a Unix socket with Segment.Send, where the
// package's Receive function attaches. Segment returns the segment holding
// the object, or nil for an object placed in memory of the caller's own
// (an Init or At function), which cannot be handed over by itself; File is
// then nil too. File returns nil after the object is closed.
//
// The receiving side validates everything it maps (kind, element type,
// object headers), so handing over the wrong object gives an error, not
// corruption.
type Shareable interface {
	File() *os.File
	Segment() *Segment
}

var _ Shareable = (*Segment)(nil)
