package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/race"
	"github.com/shmkit/shmkit/sem"
)

// ErrClosed is returned by calls on a closed store.
var ErrClosed = fs.ErrClosed

// Store is an attached dict or list: the payload of its segment.
type Store struct {
	mem        []byte
	base       unsafe.Pointer
	Cfg        Config
	arena, end uint64
	shardBits  uint
	shards     []shard

	// life makes Close wait for writers in flight (they hold it shared);
	// readers take no lock and check closed instead.
	life   sync.RWMutex
	closed atomic.Bool
}

type shard struct {
	mu    *sem.Mutex
	hdr   uint64 // offset of the shard header
	proxy unsafe.Pointer
	// seen is the space the readers of this process last validated for
	// the shard, with the descriptor that named it: while the descriptor
	// is unchanged (generation included) the space header it names is
	// not rewritten, so a reader skips spaceOf's loads and checks. The
	// bounds used are the validated copy, whatever a hostile peer writes
	// to the header afterwards.
	seen atomic.Pointer[seenSpace]
}

type seenSpace struct {
	desc uint64
	sp   space
}

// Init lays out a new, empty store for c in mem (fresh memory nobody
// reads yet, 64-byte aligned) and returns it attached.
func Init(mem []byte, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%64 != 0 {
		return nil, errors.New("kv: memory not 64-byte aligned")
	}
	first, slots := firstSpace(&c)
	if need := MinSize(&c); uint64(len(mem)) < need {
		return nil, fmt.Errorf("%w: %d bytes, the first spaces need %d", ErrFull, len(mem), need)
	}
	writeHeader(mem, &c)
	le := binary.LittleEndian
	brk := arenaStart(c.Shards)
	for i := range c.Shards {
		h := HeaderSize + uint64(i)*ShardSize
		if _, err := sem.InitMutex(mem[h : h+MutexSize]); err != nil {
			return nil, err
		}
		formatSpace(mem[brk:brk+first], first, slots)
		le.PutUint64(mem[h+shDesc:], brk/64)
		brk += first
	}
	le.PutUint64(mem[offBrk:], brk)
	// Publish: the magic last.
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&mem[offMagic])), c.Magic)
	return Attach(mem)
}

// formatSpace writes the header of an empty space of size bytes and
// slots slots at sp and clears its slots.
func formatSpace(sp []byte, size, slots uint64) {
	le := binary.LittleEndian
	le.PutUint64(sp[spSize:], size)
	le.PutUint64(sp[spSlots:], slots)
	le.PutUint64(sp[spTop:], SpaceHdr+8*slots)
	le.PutUint32(sp[spMagic:], spaceMagic)
	clear(sp[spUnused:SpaceHdr])
	clear(sp[SpaceHdr : SpaceHdr+8*slots])
}

// Attach validates the store header in mem and returns a handle.
func Attach(mem []byte) (*Store, error) {
	c, arena, end, err := readHeader(mem)
	if err != nil {
		return nil, err
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%64 != 0 {
		return nil, fmt.Errorf("%w: memory not 64-byte aligned", ErrCorrupt)
	}
	s := &Store{mem: mem[:end:end], base: unsafe.Pointer(unsafe.SliceData(mem)), Cfg: c, arena: arena, end: end}
	for c.Shards>>s.shardBits > 1 {
		s.shardBits++
	}
	s.shards = make([]shard, c.Shards)
	for i := range s.shards {
		h := HeaderSize + uint64(i)*ShardSize
		mu, err := sem.MutexAt(mem[h : h+MutexSize])
		if err != nil {
			s.closeLocks()
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		s.shards[i] = shard{mu: mu, hdr: h, proxy: race.Proxy(unsafe.Add(s.base, h))}
	}
	return s, nil
}

func (s *Store) closeLocks() {
	for i := range s.shards {
		if mu := s.shards[i].mu; mu != nil {
			_ = mu.Close()
		}
	}
}

// Close waits for writers in flight and releases the locks' handles. The
// caller unmaps the memory afterwards.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed.Swap(true) {
		return ErrClosed
	}
	s.closeLocks()
	return nil
}

// Closed reports whether Close was called.
func (s *Store) Closed() bool { return s.closed.Load() }

func (s *Store) u64(off uint64) *uint64 { return (*uint64)(unsafe.Add(s.base, off)) }
func (s *Store) u32(off uint64) *uint32 { return (*uint32)(unsafe.Add(s.base, off)) }

// bytes returns mem[off:off+n] without bounds checks; callers validated.
func (s *Store) bytes(off, n uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(s.base, off)), n)
}

// ShardOf returns the shard of a hash.
func (s *Store) ShardOf(h uint64) int { return int(h & uint64(len(s.shards)-1)) }

// space is a validated view of a space.
type space struct {
	off, size, slots uint64
}

func (sp space) heapStart() uint64 { return SpaceHdr + 8*sp.slots }

// slot returns the address of slot i (i < sp.slots).
func (s *Store) slot(sp space, i uint64) *uint64 { return s.u64(sp.off + SpaceHdr + 8*i) }

// spaceOf validates the space a descriptor word names.
func (s *Store) spaceOf(d uint64) (space, error) {
	off := (d & descOffMask) * 64
	if off < s.arena || off >= s.end || s.end-off < SpaceHdr {
		return space{}, s.corrupt("space at %d outside the arena [%d, %d)", off, s.arena, s.end)
	}
	return s.spaceAt(off)
}

func (s *Store) spaceAt(off uint64) (space, error) {
	size := atomic.LoadUint64(s.u64(off + spSize))
	slots := atomic.LoadUint64(s.u64(off + spSlots))
	if size < SpaceHdr || size > s.end-off || slots == 0 || slots&(slots-1) != 0 || slots > (size-SpaceHdr)/8 {
		return space{}, s.corrupt("space at %d: %d bytes, %d slots", off, size, slots)
	}
	return space{off: off, size: size, slots: slots}, nil
}

// corrupt returns ErrCorrupt with detail, or ErrClosed when the store was
// closed meanwhile (a closed mapping reads as zeros).
func (s *Store) corrupt(format string, args ...any) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// record validates the record at r in sp and returns its key and value
// lengths and its hash.
func (s *Store) record(sp space, r uint64) (klen, vlen uint32, h uint64, ok bool) {
	if r&7 != 0 || r < sp.heapStart() || r > sp.size-RecHdr {
		return 0, 0, 0, false
	}
	a := sp.off + r
	klen = *s.u32(a)
	vlen = *s.u32(a + 4)
	h = *s.u64(a + 8)
	c := &s.Cfg
	if klen > c.MaxKey || vlen > c.MaxVal || c.KeySize != 0 && klen != c.KeySize || c.ValSize != 0 && vlen != c.ValSize {
		return 0, 0, 0, false
	}
	if RecSize(klen, vlen) > sp.size-r {
		return 0, 0, 0, false
	}
	return klen, vlen, h, true
}

// keyEqual reports whether the key of the record at r (of len(key)
// bytes, checked by the caller) is key: an 8-byte key, the common fixed
// one, as one word, without memequal's call.
func (s *Store) keyEqual(sp space, r uint64, key []byte) bool {
	if len(key) == 8 {
		return *s.u64(sp.off + r + RecHdr) == binary.LittleEndian.Uint64(key) // the record is 8-aligned
	}
	return string(s.recKey(sp, r, uint32(len(key)))) == string(key)
}

func (s *Store) recKey(sp space, r uint64, klen uint32) []byte {
	return s.bytes(sp.off+r+RecHdr, uint64(klen))
}

func (s *Store) recVal(sp space, r uint64, klen, vlen uint32) []byte {
	return s.bytes(sp.off+r+RecHdr+pad8(uint64(klen)), uint64(vlen))
}

// desc returns the address of shard i's descriptor word.
func (s *Store) desc(i int) *uint64 { return s.u64(s.shards[i].hdr + shDesc) }

// maxRetries bounds a reader's retries while writers keep rebuilding the
// shard under it; past it the reader reports ErrBusy.
const maxRetries = 1 << 16

// ErrBusy is returned by a reader that found its shard rebuilt under it
// maxRetries times in a row: a hostile or broken writer.
var ErrBusy = errors.New("shard rebuilt continuously under the reader")

// retry backs off before a reader's next attempt.
func retry(n int) error {
	if n >= maxRetries {
		return ErrBusy
	}
	if n > 4 {
		runtime.Gosched()
	}
	return nil
}

// Get looks key (hash h) up without a lock and copies its value into dst.
// It returns the value's length (which may exceed len(dst): then only
// len(dst) bytes were copied, and the caller retries with room) and
// whether the key was present.
func (s *Store) Get(key []byte, h uint64, dst []byte) (int, bool, error) {
	i := s.ShardOf(h)
	d := s.desc(i)
	for n := 0; ; n++ {
		d1 := atomic.LoadUint64(d)
		var vlen int
		var found bool
		sp, cached, err := s.shardSpace(i, d1)
		if err == nil {
			vlen, found, err = s.lookup(sp, key, h, dst)
		}
		loadFence()
		if atomic.LoadUint64(d) == d1 {
			if !cached && err == nil && d1&genOne == 0 {
				// Validated, and still current after the look: keep it.
				s.shards[i].seen.Store(&seenSpace{desc: d1, sp: sp})
			}
			if found {
				race.Acquire(s.shards[i].proxy)
			}
			return vlen, found, err
		}
		if err := retry(n); err != nil {
			return 0, false, s.corrupt("%w", err)
		}
	}
}

// shardSpace is spaceOf(d) for shard i's readers, from the cache when d
// is the descriptor last seen and the space's header still says what was
// validated (its size and slot count: the 24-bit generation wraps, and a
// space reused by a later rebuild may be formatted with another slot
// count under a descriptor word seen before). cached says which; Get
// stores a fresh one once its look is confirmed.
func (s *Store) shardSpace(i int, d uint64) (sp space, cached bool, err error) {
	if c := s.shards[i].seen.Load(); c != nil && c.desc == d &&
		atomic.LoadUint64(s.u64(c.sp.off+spSlots)) == c.sp.slots &&
		atomic.LoadUint64(s.u64(c.sp.off+spSize)) == c.sp.size {
		return c.sp, true, nil
	}
	sp, err = s.spaceOf(d)
	return sp, false, err
}

// lookup is Get's work in space sp.
func (s *Store) lookup(sp space, key []byte, h uint64, dst []byte) (int, bool, error) {
	mask := sp.slots - 1
	j := (h >> s.shardBits) & mask
	t := tag(h)
	for range sp.slots {
		w := atomic.LoadUint64(s.slot(sp, j))
		switch {
		case w == SlotFree:
			return 0, false, nil
		case w == SlotTomb || w>>offBits != t:
		default:
			r := w & offMask
			klen, vlen, rh, ok := s.record(sp, r)
			if !ok {
				return 0, false, s.corrupt("slot %d of the space at %d: bad record at %d", j, sp.off, r)
			}
			if rh == h && int(klen) == len(key) && s.keyEqual(sp, r, key) {
				copy(dst, s.recVal(sp, r, klen, vlen))
				return int(vlen), true, nil
			}
		}
		j = (j + 1) & mask
	}
	return 0, false, nil
}

// Len returns the number of entries (dict) or the length (list).
func (s *Store) Len() int {
	var n uint64
	for i := range s.shards {
		n += atomic.LoadUint64(s.u64(s.shards[i].hdr + shCount))
	}
	return int(min(n, 1<<62))
}
