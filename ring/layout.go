package ring

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proc"
)

// The layout of a ring in shared memory; docs/format/ring.md describes
// every byte. Offsets are from the start of the ring (the segment's
// payload), which must be 64-byte aligned.
const (
	magic   = 0x31474e52_6b6d6873 // "shmkRNG1" little-endian
	version = 3                   // 2: intents name ranges (prodCount, consCount); 3: sleeper words on lines of their own

	// line 0: immutable configuration, written once before the ring is
	// published and covered by the checksum.
	offMagic    = 0  // u64
	offVersion  = 8  // u32
	offMode     = 12 // u32
	offMaxMsg   = 16 // u32
	offSlotSize = 20 // u32 (MPMC and Slots: slot size; 0 in SPSC)
	offCapacity = 24 // u64 (SPSC: data bytes; MPMC and Slots: slots)
	offTypeSize = 32 // u32
	offTypeAlgn = 36 // u32
	offTypeFP   = 40 // u64
	offParts    = 48 // u32 (MPMC participant entries; 0 in SPSC)
	offFlags    = 52 // u32 (reserved, 0)
	offChecksum = 56 // u64: FNV-1a of bytes 0..55

	// line 1: the producers' line.
	offTail      = 64  // u64 position (bit 63: closed for writing)
	offPuts      = 80  // u64 SPSC: messages put
	offPutWaits  = 88  // u64 times a producer went to sleep
	offProdOwner = 96  // u64 SPSC producer role: owner word
	offProdStart = 104 // u64 SPSC producer role: full start time
	offClosed    = 232 // u32 closed for writing (1), both modes; on the rarely written line 3, since consumers poll it when empty

	// line 2: the consumers' line.
	offHead      = 128 // u64 position
	offGets      = 144 // u64 SPSC: messages taken
	offGetWaits  = 152 // u64 times a consumer went to sleep
	offConsOwner = 160 // u64 SPSC consumer role: owner word
	offConsStart = 168 // u64 SPSC consumer role: full start time

	// line 3: recovery counters (MPMC).
	offSkipped   = 192 // u64 slots skipped (producer died before publishing)
	offLost      = 200 // u64 messages lost (consumer died holding them)
	offLostOwner = 208 // u64 owner word of the last consumer that lost one
	offLostStart = 216 // u64 its full start time
	offLostPos   = 224 // u64 position of the last lost message

	// lines 4 and 5: the sleepers' words, each pair on a line of its own,
	// off the lines that producers and consumers claim positions on (an
	// MPMC queue's tail and head, which every claim writes with a CAS):
	// a process going to sleep writes only these, and a waker reads one
	// of them after every publication or release, a read that hits its
	// own cache while nobody sleeps or wakes (docs/format/ring.md, "Lines 4 and 5").
	offDataSeq    = 256 // u32 futex word consumers sleep on
	offGetWaiters = 260 // u32 consumers asleep (or about to be) on offDataSeq
	offSpaceSeq   = 320 // u32 futex word producers sleep on
	offPutWaiters = 324 // u32 producers asleep (or about to be) on offSpaceSeq

	headerSize = 384

	// MPMC participant entry (one cache line each, from headerSize).
	entOwner      = 0  // u64 owner word, 0 = free
	entStart      = 8  // u64 full start time
	entProdIntent = 16 // u64 position+1 being claimed or written; 0 none
	entConsIntent = 24 // u64 position+1 being claimed or read; 0 none
	entPuts       = 32 // u64 messages put through this entry
	entGets       = 40 // u64 messages taken through this entry
	entProdCount  = 48 // u64 positions prodIntent names (a batch); 0 or 1: one
	entConsCount  = 56 // u64 positions consIntent names (a batch); 0 or 1: one
	entrySize     = 64

	// MPMC slot: header then payload.
	slotSeq    = 0  // u64 sequence (bit 63: skipped)
	slotLen    = 8  // u32 payload length
	slotPid    = 12 // u32 pid of the producer that published it (0: unknown)
	slotHeader = 16

	// SPSC record header: u32 length (padLen for a wrap pad), u32 span.
	recHeader = 8
	padLen    = 0xFFFF_FFFF

	closedBit = uint64(1) << 63 // in the tail word
	skipBit   = uint64(1) << 63 // in a slot's sequence word

	// Limits that keep every size computation far from overflow.
	maxMessageLimit = 1 << 30
	maxCapacity     = 1 << 40
	maxParticipants = 4096
)

// Defaults for zero Config fields.
const (
	// DefaultMaxMessage is the MaxMessage of a Config that leaves it zero.
	DefaultMaxMessage = 4096
	// DefaultCapacity is the Capacity of a Config that leaves it zero.
	DefaultCapacity = 64
	// DefaultParticipants is the Participants of a Config that leaves it zero.
	DefaultParticipants = 64
)

func align8(n uint64) uint64  { return (n + 7) &^ 7 }
func align64(n uint64) uint64 { return (n + 63) &^ 63 }

func pow2(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(n-1)
}

// geometry is what the immutable header says, derived from a Config.
type geometry struct {
	mode     Mode
	maxMsg   uint64
	capacity uint64 // SPSC: data bytes; MPMC and Slots: slots (powers of two)
	slotSize uint64 // MPMC and Slots
	parts    uint64 // MPMC only
	dataOff  uint64
	size     uint64 // total bytes
}

func (c Config) geometry() (geometry, error) {
	g := geometry{mode: c.Mode}
	if g.mode == 0 {
		g.mode = MPMC
	}
	maxMsg, capacity, parts := c.MaxMessage, c.Capacity, c.Participants
	if maxMsg == 0 {
		maxMsg = DefaultMaxMessage
	}
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if parts == 0 {
		parts = DefaultParticipants
	}
	switch {
	case maxMsg < 0 || maxMsg > maxMessageLimit:
		return g, &ConfigError{"MaxMessage", c.MaxMessage, fmt.Sprintf("must be 0 (default %d) to %d bytes", DefaultMaxMessage, maxMessageLimit)}
	case capacity < 0 || capacity > maxCapacity:
		return g, &ConfigError{"Capacity", c.Capacity, fmt.Sprintf("must be 0 (default %d) to %d messages", DefaultCapacity, uint64(maxCapacity))}
	case parts < 0 || parts > maxParticipants:
		return g, &ConfigError{"Participants", c.Participants, fmt.Sprintf("must be 0 (default %d) to %d", DefaultParticipants, maxParticipants)}
	}
	g.maxMsg = uint64(maxMsg)
	switch g.mode {
	case SPSC:
		// Capacity records of MaxMessage fit in any state: a wrap pad
		// wastes less than one record and the terminator is 8 bytes, so
		// capacity+1 records' bytes hold capacity records (see Cap).
		rec := recHeader + align8(g.maxMsg)
		if uint64(capacity)+1 > maxCapacity/rec {
			return g, &ConfigError{"Capacity", c.Capacity, fmt.Sprintf("%d messages of MaxMessage %d need more than %d bytes", capacity, maxMsg, uint64(maxCapacity))}
		}
		g.capacity = pow2(max((uint64(capacity)+1)*rec, 64))
		g.dataOff = headerSize
	case MPMC:
		// At least two slots: with one, "published for p" and "free for
		// p+1" would be the same sequence value.
		g.capacity = pow2(max(uint64(capacity), 2))
		g.slotSize = align64(slotHeader + g.maxMsg)
		g.parts = uint64(parts)
		g.dataOff = headerSize + g.parts*entrySize
		if g.capacity > maxCapacity/g.slotSize { // the product below would pass maxCapacity
			return g, &ConfigError{"Capacity", c.Capacity, fmt.Sprintf("%d slots of MaxMessage %d need more than %d bytes", g.capacity, maxMsg, uint64(maxCapacity))}
		}
	case Slots:
		// Slots of exactly the element size, as a []T: a message needs
		// no header, and element i is aligned because the size is a
		// multiple of the alignment and the data area is 64-byte aligned.
		if c.Type.Size == 0 || uint64(c.Type.Size) != g.maxMsg {
			return g, &ConfigError{"Type", c.Type, "a Slots queue carries values of one type: create it with CreateTyped (or TypedConfig), MaxMessage the type's size"}
		}
		g.capacity = pow2(max(uint64(capacity), 2))
		g.slotSize = g.maxMsg
		g.dataOff = headerSize
		if g.capacity > maxCapacity/g.slotSize {
			return g, &ConfigError{"Capacity", c.Capacity, fmt.Sprintf("%d slots of %d bytes need more than %d bytes", g.capacity, g.slotSize, uint64(maxCapacity))}
		}
	default:
		return g, &ConfigError{"Mode", c.Mode, "must be SPSC, MPMC, Slots or 0 (MPMC)"}
	}
	g.size = g.dataOff + g.capacity*max(g.slotSize, 1)
	if g.capacity > maxCapacity || g.size > maxCapacity {
		return g, &ConfigError{"Capacity", c.Capacity, fmt.Sprintf("the queue would take %d bytes, more than %d", g.size, uint64(maxCapacity))}
	}
	return g, nil
}

// Owner words pack a pid (high 32 bits) with the low 32 bits of the
// process start time, so that one atomic word names a process: a reader
// can never see a new pid paired with an old start time.
func ownerWord(id proc.ID) uint64 { return uint64(uint32(id.Pid))<<32 | uint64(uint32(id.Start)) }

func ownerPid(w uint64) int { return int(int32(uint32(w >> 32))) }

// ownerAlive reports whether the process an owner word names still runs.
// Errors other than "no such process" count as alive: taking over from a
// process that might still run is never safe.
func ownerAlive(w uint64) bool {
	pid := ownerPid(w)
	if pid <= 0 {
		return false
	}
	st, err := proc.StartTime(pid)
	if err == proc.ErrNoProcess {
		return false
	}
	if err != nil {
		return true
	}
	return uint32(w) == 0 || uint32(st) == uint32(w)
}

// fnv64a hashes the immutable header.
func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Unsafe access to the mapping: the only place the package turns offsets
// into pointers. Callers pass offsets they have bounds-checked (constants
// below headerSize, or offsets masked into the data area).
func (q *Queue) u64(off uint64) *uint64 { return (*uint64)(unsafe.Add(q.base, off)) }
func (q *Queue) u32(off uint64) *uint32 { return (*uint32)(unsafe.Add(q.base, off)) }

// bytesAt returns n bytes at off in the mapping.
func (q *Queue) bytesAt(off, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(q.base, off)), n)
}

// ent returns a pointer to participant entry i's word at field off.
func (q *Queue) ent(i int, off uint64) *uint64 {
	return q.u64(headerSize + uint64(i)*entrySize + off)
}

// slot returns the offset of the slot for position pos.
func (q *Queue) slot(pos uint64) uint64 {
	return q.geo.dataOff + (pos&q.mask)*q.geo.slotSize
}

// loadSeq reads a slot's sequence word. Atomic (acquire): a producer
// publishes a slot by storing its sequence after writing the payload.
func (q *Queue) loadSeq(pos uint64) uint64 { return atomic.LoadUint64(q.u64(q.slot(pos) + slotSeq)) }
