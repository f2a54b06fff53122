package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/race"
	"github.com/shmkit/shmkit/shm"
)

// Creating and attaching: the header written by New and validated by At,
// and the segment constructors.

// New initialises a queue with cfg in mem (at least SizeOf(cfg) bytes,
// 64-byte aligned, typically part of a segment the caller manages) and
// returns a handle on it. Other processes attach with At.
func New(mem []byte, cfg Config) (*Queue, error) {
	if err := initMem(mem, cfg); err != nil {
		return nil, err
	}
	return At(mem)
}

func initMem(mem []byte, cfg Config) error {
	g, err := cfg.geometry()
	if err != nil {
		return err
	}
	if uint64(len(mem)) < g.size {
		return &ConfigError{"memory", fmt.Sprintf("of %d bytes", len(mem)), fmt.Sprintf("the queue needs %d (SizeOf)", g.size)}
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(mem))); p%64 != 0 {
		return &ConfigError{"memory", fmt.Sprintf("at %#x", p), "not 64-byte aligned"}
	}
	clear(mem[:g.dataOff])
	le := binary.LittleEndian
	le.PutUint64(mem[offMagic:], magic)
	le.PutUint32(mem[offVersion:], version)
	le.PutUint32(mem[offMode:], uint32(g.mode))
	le.PutUint32(mem[offMaxMsg:], uint32(g.maxMsg))
	le.PutUint32(mem[offSlotSize:], uint32(g.slotSize))
	le.PutUint64(mem[offCapacity:], g.capacity)
	le.PutUint32(mem[offTypeSize:], cfg.Type.Size)
	le.PutUint32(mem[offTypeAlgn:], cfg.Type.Align)
	le.PutUint64(mem[offTypeFP:], cfg.Type.Fingerprint)
	le.PutUint32(mem[offParts:], uint32(g.parts))
	le.PutUint64(mem[offChecksum:], fnv64a(mem[:offChecksum]))
	if g.mode == MPMC {
		// Slot i starts at sequence i: free for the producer of position i.
		for i := uint64(0); i < g.capacity; i++ {
			le.PutUint64(mem[g.dataOff+i*g.slotSize:], i)
		}
	}
	return nil
}

// At attaches to a queue that New (or Create) initialised in mem. The
// header is validated; an invalid one gives ErrCorrupt.
func At(mem []byte) (*Queue, error) {
	if len(mem) < headerSize || uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%64 != 0 {
		return nil, corrupt("memory of %d bytes cannot hold a ring", len(mem))
	}
	le := binary.LittleEndian
	if le.Uint64(mem[offMagic:]) != magic {
		return nil, corrupt("bad magic")
	}
	if v := le.Uint32(mem[offVersion:]); v != version {
		return nil, fmt.Errorf("ring: %w: version %d", shm.ErrVersion, v)
	}
	if le.Uint64(mem[offChecksum:]) != fnv64a(mem[:offChecksum]) {
		return nil, corrupt("header checksum mismatch")
	}
	cfg := Config{
		Mode:       Mode(le.Uint32(mem[offMode:])),
		MaxMessage: int(le.Uint32(mem[offMaxMsg:])),
		Type: shm.TypeDesc{
			Size:        le.Uint32(mem[offTypeSize:]),
			Align:       le.Uint32(mem[offTypeAlgn:]),
			Fingerprint: le.Uint64(mem[offTypeFP:]),
		},
	}
	capacity := le.Uint64(mem[offCapacity:])
	if cfg.MaxMessage == 0 {
		// geometry maps 0 to the default; a ring of empty messages is
		// still valid, so recompute with the smallest non-default.
		cfg.MaxMessage = -1
	}
	g, err := reconstruct(cfg, capacity, uint64(le.Uint32(mem[offParts:])))
	if err != nil || uint32(g.slotSize) != le.Uint32(mem[offSlotSize:]) || le.Uint32(mem[offFlags:]) != 0 {
		return nil, corrupt("impossible geometry")
	}
	if uint64(len(mem)) < g.size {
		return nil, corrupt("ring of %d bytes in %d bytes of memory", g.size, len(mem))
	}
	q := &Queue{
		base:     unsafe.Pointer(unsafe.SliceData(mem)),
		mem:      mem,
		geo:      g,
		mask:     g.capacity - 1,
		typ:      cfg.Type,
		self:     proc.Self(),
		spin:     spinTimed,
		spinTime: DefaultSpinTime,
	}
	q.sleep = 200 * time.Millisecond
	if g.mode == MPMC {
		q.sleep = 20 * time.Millisecond // the period of the dead-peer checks
		q.spinTime = DefaultSpinTimeMPMC
	}
	q.tail, q.head = q.u64(offTail), q.u64(offHead)
	q.dataSeq, q.getWaiters = q.u32(offDataSeq), q.u32(offGetWaiters)
	q.spaceSeq, q.putWaiters = q.u32(offSpaceSeq), q.u32(offPutWaiters)
	q.putWaits, q.getWaits = q.u64(offPutWaits), q.u64(offGetWaits)
	q.spsc.data = unsafe.Add(q.base, g.dataOff)
	q.slots.data, q.slots.size = q.spsc.data, g.slotSize
	q.closedWord = q.u32(offClosed)
	q.spsc.putsCounter, q.spsc.getsCounter = q.u64(offPuts), q.u64(offGets)
	q.spsc.maxSpan = recHeader + align8(g.maxMsg)
	q.spsc.putSpan = g.maxMsg
	if ts := uint64(cfg.Type.Size); ts != 0 {
		// A typed queue takes messages of exactly the element size.
		q.spsc.putLo, q.spsc.putSpan = ts, 0
		if ts > g.maxMsg {
			q.spsc.putLo = 1 << 63 // none fits: the general code reports it
		}
	}
	q.raceProxy = race.Proxy(q.base)
	return q, nil
}

// reconstruct recomputes the geometry from header fields and checks that
// the recorded capacity is the one New would have chosen.
func reconstruct(cfg Config, capacity, parts uint64) (geometry, error) {
	if capacity == 0 || capacity&(capacity-1) != 0 || capacity > maxCapacity || parts > maxParticipants {
		return geometry{}, ErrCorrupt
	}
	if cfg.MaxMessage < 0 {
		cfg.MaxMessage = 0
	}
	maxMsg := uint64(cfg.MaxMessage)
	if maxMsg > maxMessageLimit {
		return geometry{}, ErrCorrupt
	}
	g := geometry{mode: cfg.Mode, maxMsg: maxMsg, capacity: capacity}
	switch cfg.Mode {
	case SPSC:
		if parts != 0 || capacity < 2*(recHeader+align8(maxMsg)) || capacity < 64 {
			return g, ErrCorrupt
		}
		g.dataOff = headerSize
		g.size = g.dataOff + capacity
	case Slots:
		if parts != 0 || capacity < 2 || maxMsg == 0 || uint64(cfg.Type.Size) != maxMsg || capacity > maxCapacity/maxMsg {
			return g, ErrCorrupt
		}
		g.slotSize = maxMsg
		g.dataOff = headerSize
		g.size = g.dataOff + capacity*maxMsg
	case MPMC:
		if parts == 0 || capacity < 2 {
			return g, ErrCorrupt
		}
		g.parts = parts
		g.slotSize = align64(slotHeader + maxMsg)
		g.dataOff = headerSize + parts*entrySize
		if capacity > maxCapacity/g.slotSize {
			return g, ErrCorrupt // capacity*slotSize would overflow or pass the limit
		}
		g.size = g.dataOff + capacity*g.slotSize
	default:
		return g, ErrCorrupt
	}
	if g.size > maxCapacity*2 {
		return g, ErrCorrupt
	}
	return g, nil
}

func segOptions(cfg Config, g geometry, opts []shm.Option) []shm.Option {
	kind := shm.KindQueue
	o := append([]shm.Option{shm.WithKind(kind), shm.WithParams(uint64(g.mode), g.maxMsg)}, opts...)
	if cfg.Type != (shm.TypeDesc{}) {
		o = append(o, shm.WithType(cfg.Type))
	}
	return append(o, shm.WithInit(func(payload []byte) error { return initMem(payload, cfg) }))
}

// Create creates a named queue segment (see shm.Create for names and
// options) and returns a handle on it.
func Create(name string, cfg Config, opts ...shm.Option) (*Queue, error) {
	g, err := cfg.geometry()
	if err != nil {
		return nil, err
	}
	seg, err := shm.Create(name, int(g.size), segOptions(cfg, g, opts)...)
	if err != nil {
		return nil, err
	}
	return fromSegment(seg)
}

// CreateAnonymous creates a queue in an anonymous segment (memfd). Pass
// File to another process (exec.Cmd.ExtraFiles, or shm.Segment.Send) and
// attach there with OpenFile.
func CreateAnonymous(cfg Config, opts ...shm.Option) (*Queue, error) {
	g, err := cfg.geometry()
	if err != nil {
		return nil, err
	}
	seg, err := shm.CreateAnonymous(int(g.size), segOptions(cfg, g, opts)...)
	if err != nil {
		return nil, err
	}
	return fromSegment(seg)
}

// Open opens a named queue, waiting (bounded by ctx) for its creator to
// finish initialising it.
func Open(ctx context.Context, name string, opts ...shm.Option) (*Queue, error) {
	seg, err := shm.Open(ctx, name, append([]shm.Option{shm.WithKind(shm.KindQueue)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return fromSegment(seg)
}

// OpenOrCreate opens the named queue, or creates it with cfg if it does
// not exist. created reports which happened. An existing queue is used
// with the configuration it was created with.
func OpenOrCreate(ctx context.Context, name string, cfg Config, opts ...shm.Option) (q *Queue, created bool, err error) {
	q, err = Open(ctx, name, opts...)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return q, false, err
	}
	q, err = Create(name, cfg, opts...)
	if errors.Is(err, os.ErrExist) {
		q, err = Open(ctx, name, opts...)
		return q, false, err
	}
	return q, err == nil, err
}

// OpenFile attaches to a queue in the segment behind f (an anonymous
// segment received through ExtraFiles or a Unix socket). The file stays
// the caller's.
func OpenFile(ctx context.Context, f *os.File, opts ...shm.Option) (*Queue, error) {
	seg, err := shm.OpenFile(ctx, f, append([]shm.Option{shm.WithKind(shm.KindQueue)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return fromSegment(seg)
}

// Receive attaches to a queue whose segment another process sent over a
// Unix socket (q.Segment().Send(conn)).
func Receive(ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Queue, error) {
	seg, err := shm.Receive(ctx, conn, append([]shm.Option{shm.WithKind(shm.KindQueue)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return fromSegment(seg)
}

// Unlink removes a named queue segment; processes that have it open keep
// using it.
func Unlink(name string) error { return shm.Unlink(name) }

func fromSegment(seg *shm.Segment) (*Queue, error) {
	q, err := At(seg.Bytes())
	if err != nil {
		seg.Close()
		return nil, err
	}
	if q.typ != seg.Type() {
		seg.Close()
		return nil, corrupt("ring type %v differs from segment type %v", q.typ, seg.Type())
	}
	q.seg = seg
	return q, nil
}

// Every object of the package can be handed to another process the same
// way (shm.Shareable): File in exec.Cmd.ExtraFiles, or Segment().Send
// over a Unix socket.
var (
	_ shm.Shareable = (*Queue)(nil)
	_ shm.Shareable = (*Conn)(nil)
	_ shm.Shareable = (*Typed[int64])(nil)
	_ shm.Shareable = (*Encoded[any])(nil)
)
