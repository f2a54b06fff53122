package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/shmkit/shmkit/shm"
)

// The layout (docs/format/dict-list.md has the same tables). All integers
// are little-endian; offsets are from the first byte of the payload (the
// segment's byte 128), which is 64-byte aligned.
const (
	HeaderSize = 256 // the store header
	ShardSize  = 128 // one shard header
	SpaceHdr   = 64  // the header of a space
	RecHdr     = 16  // the header of a record
	MutexSize  = 64  // the sem.Mutex at the start of a shard header

	// Store header, immutable after creation (covered by the checksum).
	offMagic    = 0  // u64 MagicDict or MagicList
	offVersion  = 8  // u32 Version
	offFlags    = 12 // u32 zero
	offKeySize  = 16 // u32 fixed key size, 0 for variable keys
	offValSize  = 20 // u32 fixed value size, 0 for variable values
	offKeyFP    = 24 // u64 key type fingerprint (0 for bytes)
	offValFP    = 32 // u64 value type fingerprint (0 for bytes)
	offShards   = 40 // u32 number of shards, a power of two
	offMaxKey   = 44 // u32 longest key
	offMaxVal   = 48 // u32 longest value
	offReserved = 52 // u32 zero
	offSeed     = 56 // u64 hash seed
	offArena    = 64 // u64 first byte of the arena (64-aligned)
	offEnd      = 72 // u64 end of the arena (the payload size)
	offChecksum = 80 // u64 FNV-1a 64 of bytes [8, 80)
	// Mutable.
	offBrk = 128 // u64 next free arena byte (64-aligned); grows only

	// Shard header, at HeaderSize + i*ShardSize.
	shMutex = 0   // sem.Mutex
	shDesc  = 64  // u64 descriptor: gen << 40 | space offset / 64
	shOther = 72  // u64 offset of the shard's spare space, 0 if none
	shCount = 80  // u64 live entries (dict) or length (list)
	shTombs = 88  // u64 tombstones in the current space (dict)
	shLive  = 96  // u64 bytes of live records in the current space
	shEnd   = 104 // [24]byte zero

	// Space header, at the space's offset.
	spSize   = 0  // u64 bytes of the space, header included
	spSlots  = 8  // u64 slot count, a power of two
	spTop    = 16 // u64 next free heap byte, relative to the space
	spMagic  = 24 // u32 spaceMagic
	spUnused = 28 // [36]byte zero

	// Slot words.
	SlotFree = 0
	SlotTomb = 1
	offBits  = 48
	offMask  = 1<<offBits - 1

	// Descriptor words.
	descOffBits = 40
	descOffMask = 1<<descOffBits - 1
	genOne      = 1 << descOffBits

	spaceMagic = 0x45434150 // "PACE"

	minSlots = 8
	minHeap  = 256
)

// Magic numbers: "SHMKDICT" and "SHMKLIST" as little-endian uint64s.
const (
	MagicDict uint64 = 0x5443494b4d4b4853
	MagicList uint64 = 0x5453494c4d4b4853
)

// Version is the layout version.
const Version = 1

// Errors of the engine. Packages dict and list re-export them.
var (
	ErrCorrupt  = shm.ErrCorrupt
	ErrFull     = errors.New("no room left in the segment")
	ErrTooLarge = errors.New("key or value larger than the limit")
)

// Config is what a store records at creation.
type Config struct {
	Magic            uint64
	KeySize, ValSize uint32 // 0: variable length
	KeyFP, ValFP     uint64
	MaxKey, MaxVal   uint32 // longest key and value (== size when fixed)
	Shards           uint32 // a power of two (1 for a list)
	Seed             uint64
	Capacity         uint64 // entries to make room for at creation
}

func pad8(n uint64) uint64 { return (n + 7) &^ 7 }

// RecSize is the bytes a record of a klen-byte key and a vlen-byte value
// takes in a heap.
func RecSize(klen, vlen uint32) uint64 { return RecHdr + pad8(uint64(klen)) + pad8(uint64(vlen)) }

func pow2(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(n-1)
}

// arenaStart is where the arena of a store with shards shards begins.
func arenaStart(shards uint32) uint64 {
	return (HeaderSize + uint64(shards)*ShardSize + 63) &^ 63
}

func headerChecksum(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b[offVersion:offChecksum] {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// Validate checks a Config before creation.
func (c *Config) Validate() error {
	if c.Shards == 0 || c.Shards&(c.Shards-1) != 0 || c.Shards > 1<<16 {
		return fmt.Errorf("shards %d: want a power of two up to 65536", c.Shards)
	}
	if c.KeySize != 0 && c.MaxKey != c.KeySize || c.ValSize != 0 && c.MaxVal != c.ValSize {
		return errors.New("fixed sizes must equal the limits")
	}
	if c.MaxKey > 1<<30 || c.MaxVal > 1<<30 {
		return fmt.Errorf("limits %d/%d: at most 1 GiB", c.MaxKey, c.MaxVal)
	}
	return nil
}

// MinSize is the smallest payload that holds a store of c with room for
// c.Capacity entries in their first spaces.
func MinSize(c *Config) uint64 {
	return arenaStart(c.Shards) + uint64(c.Shards)*firstSize(c)
}

func firstSize(c *Config) uint64 { size, _ := firstSpace(c); return size }

// firstSpace is the size and slot count of each shard's first space.
func firstSpace(c *Config) (size, slots uint64) {
	per := (c.Capacity + uint64(c.Shards) - 1) / uint64(c.Shards)
	slots = uint64(minSlots)
	heap := uint64(minHeap)
	if per > 0 {
		if c.Magic == MagicList {
			slots = max(slots, pow2(per))
		} else {
			slots = max(slots, pow2(per*2))
		}
		rec := RecSize(c.KeySize, c.ValSize)
		if c.KeySize == 0 || c.ValSize == 0 {
			rec = RecSize(16, 64) // a guess for variable sizes
		}
		heap = max(heap, per*rec)
	}
	return pow2(SpaceHdr + 8*slots + heap), slots
}

// writeHeader writes the immutable store header (magic last, by the
// caller) for c into mem.
func writeHeader(mem []byte, c *Config) {
	le := binary.LittleEndian
	le.PutUint32(mem[offVersion:], Version)
	le.PutUint32(mem[offFlags:], 0)
	le.PutUint32(mem[offKeySize:], c.KeySize)
	le.PutUint32(mem[offValSize:], c.ValSize)
	le.PutUint64(mem[offKeyFP:], c.KeyFP)
	le.PutUint64(mem[offValFP:], c.ValFP)
	le.PutUint32(mem[offShards:], c.Shards)
	le.PutUint32(mem[offMaxKey:], c.MaxKey)
	le.PutUint32(mem[offMaxVal:], c.MaxVal)
	le.PutUint32(mem[offReserved:], 0)
	le.PutUint64(mem[offSeed:], c.Seed)
	le.PutUint64(mem[offArena:], arenaStart(c.Shards))
	le.PutUint64(mem[offEnd:], uint64(len(mem)))
	le.PutUint64(mem[offChecksum:], headerChecksum(mem))
}

// readHeader decodes and validates the immutable store header of mem.
func readHeader(mem []byte) (Config, uint64, uint64, error) {
	var c Config
	if len(mem) < HeaderSize {
		return c, 0, 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrCorrupt, len(mem), HeaderSize)
	}
	le := binary.LittleEndian
	c.Magic = le.Uint64(mem[offMagic:])
	if c.Magic != MagicDict && c.Magic != MagicList {
		return c, 0, 0, fmt.Errorf("%w: bad magic %#016x", ErrCorrupt, c.Magic)
	}
	if v := le.Uint32(mem[offVersion:]); v != Version {
		return c, 0, 0, fmt.Errorf("%w: layout version %d, want %d", shm.ErrVersion, v, Version)
	}
	if sum := le.Uint64(mem[offChecksum:]); sum != headerChecksum(mem) {
		return c, 0, 0, fmt.Errorf("%w: header checksum %#016x, want %#016x", ErrCorrupt, sum, headerChecksum(mem))
	}
	c.KeySize = le.Uint32(mem[offKeySize:])
	c.ValSize = le.Uint32(mem[offValSize:])
	c.KeyFP = le.Uint64(mem[offKeyFP:])
	c.ValFP = le.Uint64(mem[offValFP:])
	c.Shards = le.Uint32(mem[offShards:])
	c.MaxKey = le.Uint32(mem[offMaxKey:])
	c.MaxVal = le.Uint32(mem[offMaxVal:])
	c.Seed = le.Uint64(mem[offSeed:])
	if le.Uint32(mem[offFlags:]) != 0 || le.Uint32(mem[offReserved:]) != 0 {
		return c, 0, 0, fmt.Errorf("%w: reserved header bytes not zero", ErrCorrupt)
	}
	if err := c.Validate(); err != nil {
		return c, 0, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if c.Magic == MagicList && c.Shards != 1 {
		return c, 0, 0, fmt.Errorf("%w: a list with %d shards", ErrCorrupt, c.Shards)
	}
	arena, end := le.Uint64(mem[offArena:]), le.Uint64(mem[offEnd:])
	if arena != arenaStart(c.Shards) || end > uint64(len(mem)) || end < arena {
		return c, 0, 0, fmt.Errorf("%w: arena [%d, %d) in %d bytes", ErrCorrupt, arena, end, len(mem))
	}
	return c, arena, end, nil
}
