package shm

import (
	"os"
	"sync"
	"sync/atomic"
)

// Segment is a mapped shared-memory segment: a header followed by the
// payload that Bytes returns. Its methods are safe for concurrent use.
//
// A Segment must be closed with Close. Closing it does not remove a named
// segment; Unlink does.
type Segment struct {
	name    string   // "" for an anonymous segment
	fd      int      // owned by file; used only under mu while open
	file    *os.File // the backing file (a /dev/shm file or a memfd)
	mem     []byte   // the whole mapping, header included
	payload []byte   // mem[HeaderSize : HeaderSize+size]
	hdr     header   // validated copy of the header
	sealed  bool     // size sealed (F_SEAL_SHRINK|F_SEAL_GROW) when mapped

	mu     sync.RWMutex // held exclusively by Close, shared by Send, Unlink, File
	closed atomic.Bool  // set once by Close; read lock-free by Bytes
}

// Name returns the segment's name as given to Create or Open, without
// NamePrefix, or "" for an anonymous segment.
func (s *Segment) Name() string { return s.name }

// Bytes returns the payload, len(Bytes()) == Size(). The slice aliases
// shared memory: writes are seen by every process mapping the segment, and
// the Go race detector does not see accesses to it. After Close, Bytes
// returns nil; slices obtained earlier stay valid to access but read a
// private zero page (see the package doc).
func (s *Segment) Bytes() []byte {
	if s.closed.Load() {
		return nil
	}
	return s.payload
}

// Size returns the payload size in bytes.
func (s *Segment) Size() int { return len(s.payload) }

// Kind returns the kind recorded in the header.
func (s *Segment) Kind() Kind { return s.hdr.kind }

// Type returns the element type recorded in the header.
func (s *Segment) Type() TypeDesc { return s.hdr.typ }

// TypeName returns the type name recorded at creation (WithTypeName), or
// "" when none was. It is descriptive only: a peer may record anything.
func (s *Segment) TypeName() string { return s.hdr.typeName }

// Sealed reports whether the segment's size is sealed against change
// (F_SEAL_SHRINK and F_SEAL_GROW on a memfd), so that no process holding
// its descriptor can truncate it under this mapping. Anonymous segments
// made by CreateAnonymous, and memfds that OpenFile or Receive could seal,
// are sealed; named segments never are (see the package doc's caveats).
func (s *Segment) Sealed() bool { return s.sealed }

// Segment returns s itself, so that a *Segment satisfies Shareable like
// every shmkit object.
func (s *Segment) Segment() *Segment { return s }

// Creator returns the process that created the segment, as its header
// records it: pid and start time (clock ticks after boot, 0 if unknown).
// Together they name this incarnation of the segment: a segment unlinked
// and created again under the same name has another creator.
func (s *Segment) Creator() (pid int, start uint64) { return int(s.hdr.creatorPid), s.hdr.creatorStart }

// Params returns the two kind-specific parameters recorded at creation.
func (s *Segment) Params() (p0, p1 uint64) { return s.hdr.p0, s.hdr.p1 }

// File returns the file backing the segment, for passing it to a child
// (exec.Cmd.ExtraFiles) or for fstat. The Segment owns it: do not close it.
// It returns nil after Close.
func (s *Segment) File() *os.File {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil
	}
	return s.file
}
