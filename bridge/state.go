package bridge

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// The In bridge's state segment (a raw shm segment of its own): which
// stream sequence each recent Put carried and where the ring published it.
//
//	off  0  u64  magic "SKBRIN01"
//	off  8  u32  K, the entries kept (the ring below has K+1 slots)
//	off 12  u32  0
//	off 16  u64  FNV-1a 64 of "stream\x00consumer": whose state this is
//	off 24  u64  n, entries written so far (atomic; written after the entry)
//	off 32  u64  the queue's creator start time  } the queue incarnation the
//	off 40  u64  the queue's creator pid         } entries' positions are in
//	off 64  (K+1) x 16 bytes: entry i%(K+1) = u64 stream sequence, u64 ring position
//
// Entry n is written, then n+1 is stored, then the Put runs. The entries
// n-K .. n-1 are complete whatever instant the writer died at: the slot
// being rewritten is always the one outside them.
const (
	stateMagic   = 0x31304e4952424b53 // "SKBRIN01"
	stateHeader  = 64
	stateEntries = 4096
)

type state struct {
	seg *shm.Segment
	mem []byte
	k   uint64
	n   uint64
}

func stateSize(k uint64) int { return stateHeader + int(k+1)*16 }

func owner(stream, consumer string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(stream + "\x00" + consumer))
	return h.Sum64()
}

// openState opens (or creates) the named state segment for stream and
// consumer.
func openState(name, stream, consumer string, qpid int, qstart uint64) (*state, error) {
	k := uint64(stateEntries)
	who := owner(stream, consumer)
	seg, err := shm.Create(name, stateSize(k), shm.WithKind(shm.KindRaw), shm.WithInit(func(p []byte) error {
		le64(p, 0, stateMagic)
		le32(p, 8, uint32(k))
		le64(p, 16, who)
		return nil
	}))
	if errors.Is(err, os.ErrExist) {
		seg, err = shm.Open(nil, name, shm.WithKind(shm.KindRaw))
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: state segment %q: %w", name, err)
	}
	s := &state{seg: seg, mem: seg.Bytes()}
	if len(s.mem) < stateHeader || s.u64(0) != stateMagic {
		seg.Close()
		return nil, fmt.Errorf("%w: %q is not an In bridge's state", ErrState, name)
	}
	s.k = uint64(*(*uint32)(unsafe.Pointer(&s.mem[8])))
	if s.k == 0 || s.k > 1<<20 || len(s.mem) < stateSize(s.k) {
		seg.Close()
		return nil, fmt.Errorf("%w: %q holds %d entries in %d bytes", ErrState, name, s.k, len(s.mem))
	}
	if s.u64(16) != who {
		seg.Close()
		return nil, fmt.Errorf("%w: %q belongs to another stream or consumer than %s/%s", ErrState, name, stream, consumer)
	}
	// Positions name records of one incarnation of the queue: a queue
	// created again (same name, another creator) starts at 0, and old
	// entries would pass for Puts of the new one.
	if s.u64(32) != qstart || s.u64(40) != uint64(qpid) {
		atomic.StoreUint64(s.p64(24), 0)
		atomic.StoreUint64(s.p64(32), qstart)
		atomic.StoreUint64(s.p64(40), uint64(qpid))
	}
	s.n = atomic.LoadUint64(s.p64(24))
	return s, nil
}

func (s *state) p64(off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }
func (s *state) u64(off uint64) uint64  { return atomic.LoadUint64(s.p64(off)) }

// record notes that stream sequence seq is about to be put at ring
// position pos.
func (s *state) record(seq, pos uint64) {
	off := stateHeader + (s.n%(s.k+1))*16
	atomic.StoreUint64(s.p64(off), seq)
	atomic.StoreUint64(s.p64(off+8), pos)
	s.n++
	atomic.StoreUint64(s.p64(24), s.n)
}

// undo marks the last recorded entry as not put (its Put failed), so that
// the position, which the next Put reuses, does not vouch for it.
func (s *state) undo() {
	if s.n == 0 {
		return
	}
	off := stateHeader + ((s.n-1)%(s.k+1))*16
	atomic.StoreUint64(s.p64(off+8), ^uint64(0))
}

// put returns the stream sequences of the recorded entries whose ring
// position lies before end (their Put published them), newest last.
func (s *state) put(end uint64) []uint64 {
	var out []uint64
	first := uint64(0)
	if s.n > s.k {
		first = s.n - s.k
	}
	for i := first; i < s.n; i++ {
		off := stateHeader + (i%(s.k+1))*16
		if seq, pos := s.u64(off), s.u64(off+8); pos < end {
			out = append(out, seq)
		}
	}
	return out
}

func (s *state) close() error { return s.seg.Close() }

func le64(b []byte, off int, v uint64) {
	for i := range 8 {
		b[off+i] = byte(v >> (8 * i))
	}
}

func le32(b []byte, off int, v uint32) {
	for i := range 4 {
		b[off+i] = byte(v >> (8 * i))
	}
}
