package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/race"
	"github.com/shmkit/shmkit/shm"
)

// Mode is a queue's concurrency mode, fixed at creation.
type Mode uint32

const (
	// SPSC allows one producer and one consumer at a time: the fast path,
	// to ask for explicitly.
	SPSC Mode = 1
	// MPMC allows any number of producers and consumers, and survives
	// any of them being killed. A zero Config.Mode means MPMC.
	MPMC Mode = 2
)

// String returns "spsc", "mpmc" or "Mode(N)".
func (m Mode) String() string {
	switch m {
	case SPSC:
		return "spsc"
	case MPMC:
		return "mpmc"
	}
	return fmt.Sprintf("Mode(%d)", uint32(m))
}

// Config describes a queue at creation.
type Config struct {
	// Mode is MPMC (the default, also for 0): any number of producers
	// and consumers, as with Python's multiprocessing.Queue; or SPSC,
	// the fast path for one producer and one consumer at a time, where
	// a second live producer (or consumer) gets a *BusyError.
	Mode Mode

	// MaxMessage is the largest message in bytes (default
	// DefaultMaxMessage, at most 1 GiB). Messages may be empty.
	MaxMessage int

	// Capacity is how many messages of MaxMessage bytes the queue holds
	// (default DefaultCapacity), rounded up to a power of two. In SPSC
	// mode smaller messages pack tighter, so more of them fit.
	Capacity int

	// Participants bounds how many MPMC handles may be attached at once
	// (default DefaultParticipants). Ignored in SPSC mode.
	Participants int

	// Type records an element type (set by CreateTyped); zero for raw
	// byte messages.
	Type shm.TypeDesc
}

// SizeOf returns the bytes of memory a queue with cfg needs (for New).
func SizeOf(cfg Config) (int, error) {
	g, err := cfg.geometry()
	if err != nil {
		return 0, err
	}
	return int(g.size), nil
}

// Stats are the queue's counters, read from its header. They are updated
// without locks and read one by one, so they are a recent picture, not an
// atomic snapshot.
type Stats struct {
	Puts     uint64      // messages put
	Gets     uint64      // messages taken (Get, GetBatch, Release)
	PutWaits uint64      // times a producer went to sleep on a full queue
	GetWaits uint64      // times a consumer went to sleep on an empty queue
	Skipped  uint64      // MPMC: slots skipped because their producer died before publishing
	Lost     uint64      // MPMC: messages lost because the consumer holding them died
	LastLost Participant // MPMC: the consumer that held the last lost message, and its position
	Len      int         // messages queued (see Queue.Len)
	Cap      int         // see Queue.Cap
	Closed   bool        // closed for writing
}

// Lost describes a message lost because the consumer that held it died
// (MPMC), as given to the function set with SetLostHandler.
type Lost struct {
	Position    uint64      // the message's position in the queue
	Consumer    Participant // the dead consumer that held it
	ProducerPid int         // the process that put it (0 if unknown)
	Message     []byte      // a copy of the message, the caller's to keep
}

// Participant identifies a process attached to a queue.
type Participant struct {
	Pid      int    // process id; 0 if none is recorded
	Start    uint64 // process start time, clock ticks after boot
	Position uint64 // the queue position concerned (LastLost: the lost message)
}

// Queue is a handle on a ring in shared memory. Its methods may be called
// from several goroutines within the limits the package doc states (SPSC:
// one goroutine per side at a time).
type Queue struct {
	base unsafe.Pointer // start of the ring
	mem  []byte         // the ring's memory (for bounds and lifetime)
	seg  *shm.Segment   // nil when the caller owns the memory (New, At)
	g    geometry
	mask uint64
	typ  shm.TypeDesc
	self proc.ID

	tail, head           *uint64
	dataSeq, getWaiters  *uint32
	spaceSeq, putWaiters *uint32
	putWaits, getWaits   *uint64

	// Precomputed for the SPSC fast paths (fast.go).
	data         unsafe.Pointer // start of the data area
	closedWord   *uint32        // the closed-for-writing flag
	putsW, getsW *uint64        // the puts and gets counters
	maxSpan      uint64         // span of a MaxMessage record
	putLo        uint64         // a size n may be put if n-putLo <= putSpan (checkSize)
	putSpan      uint64

	// raceProxy is the heap object on which the race detector is told
	// of the queue's happens-before edges (nil without -race): a Put
	// releases on it before publishing, and the Get that receives the
	// message acquires it. It is race.Proxy of the ring's first byte,
	// which names the ring by file and offset, so every handle on the
	// ring in this process, through whichever mapping, has the same one.
	raceProxy unsafe.Pointer

	spin     int           // polls before sleeping; < 0: for ever; spinTimed: for spinTime
	spinTime time.Duration // with spinTimed
	sleep    time.Duration
	closed   atomic.Bool

	// peerDeath makes a blocked SPSC call fail with ErrPeerDied when the
	// process holding the other role is dead (pipes: one peer, for good).
	peerDeath bool

	// SPSC producer side; touched only by the goroutine putting.
	p struct {
		owned      bool
		pub        uint64 // end of the published records
		tail       uint64 // write position, >= pub while a batch is open
		first      uint64 // header word of the batch's first record, stored last
		deferred   bool   // first is set
		cachedHead uint64 // last head read; refreshed only when full
		puts       uint64
		resvOff    uint64 // record offset of the pending reservation
		resvNeed   uint64 // bytes it takes, pad included; 0: none
		resvLen    uint64
		resvFast   bool // the reservation was made by spscReserveFast
	}
	// SPSC consumer side; touched only by the goroutine getting.
	c struct {
		owned bool
		head  uint64 // head as last stored
		view  uint64 // read position, past messages held by Next
		gets  uint64
		eof   bool // io.EOF was returned: sticky
		held  uint64
	}

	// MPMC side state, under putMu and getMu.
	entOnce    sync.Once
	entErr     error
	entIdx     int
	putMu      sync.Mutex
	getMu      sync.Mutex
	mpPuts     uint64
	mpGets     uint64
	mpResv     bool
	mpResvLen  uint64
	mpShort    bool // the held message is one Get could not fit
	entOK      atomic.Bool
	mpResvPos  uint64
	mpHeld     bool
	mpHeldPos  uint64
	stuckPut   stuck
	stuckGet   stuck
	tryPut     tryStall // TryPut/TryReserve: when to run the slow checks
	tryGet     tryStall // TryGet/TryNext, likewise
	mpEOF      bool     // io.EOF returned: sticky (closed and drained for good)
	lostFn     func(Lost)
	prodCount  uint64 // the count last stored in this entry's prodCount (0: unknown)
	consCount  uint64 // likewise consCount
	closeOnce  sync.Once
	closeError error
}

// tryStall decides when a run of failing Try calls on an MPMC queue runs
// the slow checks (is the participant blocking us dead?) that a blocked
// call runs while it waits, so that a Try loop behind a dead producer's
// slot, or a full queue behind a dead consumer's, is not stuck for ever.
// They run by the clock, every spinSlowPeriod of failing calls, read
// every 256 failures.
type tryStall struct {
	fails int
	since time.Time
}

// failed counts a failed Try call and reports whether this one should
// retry with the slow checks.
func (s *tryStall) failed() bool {
	s.fails++
	if s.fails&255 != 0 {
		return false
	}
	now := time.Now()
	if s.since.IsZero() {
		s.since = now
		return false
	}
	if now.Sub(s.since) < spinSlowPeriod {
		return false
	}
	s.since = now
	return true
}

// stuck remembers an unexplained stall, so that one that persists is
// reported as corruption instead of waited on for ever.
type stuck struct {
	pos, seq uint64
	n        int
}

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
		g:        g,
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
	q.data = unsafe.Add(q.base, g.dataOff)
	q.closedWord = q.u32(offClosed)
	q.putsW, q.getsW = q.u64(offPuts), q.u64(offGets)
	q.maxSpan = recHeader + align8(g.maxMsg)
	q.putSpan = g.maxMsg
	if ts := uint64(cfg.Type.Size); ts != 0 {
		// A typed queue takes messages of exactly the element size.
		q.putLo, q.putSpan = ts, 0
		if ts > g.maxMsg {
			q.putLo = 1 << 63 // none fits: the general code reports it
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

// Segment returns the segment holding the queue, or nil for a queue in
// memory the caller provided (New, At).
func (q *Queue) Segment() *shm.Segment { return q.seg }

// File returns the file behind the queue's segment (nil for New and At),
// for passing it to another process. The queue owns it.
func (q *Queue) File() *os.File {
	if q.seg == nil {
		return nil
	}
	return q.seg.File()
}

// Mode returns the queue's mode.
func (q *Queue) Mode() Mode { return q.g.mode }

// MaxMessage returns the largest message the queue accepts.
func (q *Queue) MaxMessage() int { return int(q.g.maxMsg) }

// Type returns the element type recorded at creation (zero if none).
func (q *Queue) Type() shm.TypeDesc { return q.typ }

// Cap returns how many messages of MaxMessage bytes the queue holds, at
// least the Capacity it was created with.
func (q *Queue) Cap() int {
	if q.g.mode == SPSC {
		// A wrap pad wastes less than one record and the terminator takes
		// 8 bytes: all but one record's worth of bytes hold records.
		return int(q.g.capacity/(recHeader+align8(q.g.maxMsg)) - 1)
	}
	return int(q.g.capacity)
}

// Len returns how many messages are queued (in MPMC mode including slots
// being written or being skipped). It is a snapshot of moving counters.
func (q *Queue) Len() int {
	if q.closed.Load() {
		return 0
	}
	var n uint64
	if q.g.mode == SPSC {
		// Atomic loads: the counters are written by the two peers.
		g := atomic.LoadUint64(q.u64(offGets))
		p := atomic.LoadUint64(q.u64(offPuts))
		if p > g {
			n = p - g
		}
	} else {
		// Atomic loads: moved by every participant's CAS.
		h := atomic.LoadUint64(q.head)
		t := atomic.LoadUint64(q.tail) &^ closedBit
		if t > h {
			n = min(t-h, q.g.capacity)
		}
	}
	return int(n)
}

// DefaultSpinTime is how long a blocked call on an SPSC queue or a pipe
// polls, by default, before it sleeps on a futex: about what a futex
// sleep and wake-up cost on a virtual machine, so that a message (or
// room) that comes within it is seen at memory speed, and a wait that
// lasts longer costs at most about twice the CPU time a sleep would have.
const DefaultSpinTime = 50 * time.Microsecond

// DefaultSpinTimeMPMC is DefaultSpinTime for MPMC queues, shorter because
// their participants often outnumber the CPUs, where a spinning waiter
// takes the time a producer or consumer needs.
const DefaultSpinTimeMPMC = 10 * time.Microsecond

// SetSpin sets how many times a blocked call polls the queue before it
// sleeps on a futex, instead of polling for a time (SetSpinTime). 0 sleeps at
// once; a negative value never sleeps (busy-waits, still honouring the
// context), for the lowest latency at the price of a CPU. Call it before
// the handle is shared between goroutines.
func (q *Queue) SetSpin(n int) { q.spin, q.spinTime = n, 0 }

// SetSpinTime sets how long a blocked call polls the queue before it
// sleeps on a futex (default DefaultSpinTime, or DefaultSpinTimeMPMC); 0
// sleeps at once. Call it
// before the handle is shared between goroutines.
func (q *Queue) SetSpinTime(d time.Duration) {
	q.spin, q.spinTime = spinTimed, max(d, 0)
	if d <= 0 {
		q.spin = 0
	}
}

// SetLostHandler sets fn to be called, in this process, for each message
// that this handle recovers from a dead consumer in MPMC mode (the
// messages counted in Stats.Lost): with its position, the consumer that
// held it, the producer that put it and a copy of its bytes, so that an
// application can put again exactly what was lost. Recovery happens
// inside the Put-side calls that need the dead consumer's slot and in the
// Get-side calls that reach the end of a closed queue, so the handler
// runs in whichever process recovers the slot (Stats.Lost counts them all;
// the handler sees the ones its handle recovered). It runs on the
// goroutine of that call and must not call the queue. Call SetLostHandler
// before the handle is shared between goroutines; nil removes it.
//
// A lost message was delivered to a consumer that died before it
// released it: it may have been processed in part, so whether to resend
// it is the application's decision.
func (q *Queue) SetLostHandler(fn func(Lost)) { q.lostFn = fn }

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	if q.closed.Load() {
		return Stats{}
	}
	// Atomic loads throughout: every counter is written by other processes.
	s := Stats{
		PutWaits: atomic.LoadUint64(q.putWaits),
		GetWaits: atomic.LoadUint64(q.getWaits),
		Skipped:  atomic.LoadUint64(q.u64(offSkipped)),
		Lost:     atomic.LoadUint64(q.u64(offLost)),
		Closed:   q.closedForWrite(),
		Len:      q.Len(),
		Cap:      q.Cap(),
	}
	if w := atomic.LoadUint64(q.u64(offLostOwner)); w != 0 {
		s.LastLost = Participant{Pid: ownerPid(w), Start: atomic.LoadUint64(q.u64(offLostStart)), Position: atomic.LoadUint64(q.u64(offLostPos))}
	}
	if q.g.mode == SPSC {
		s.Puts = atomic.LoadUint64(q.u64(offPuts))
		s.Gets = atomic.LoadUint64(q.u64(offGets))
	} else {
		for i := range int(q.g.parts) {
			s.Puts += atomic.LoadUint64(q.ent(i, entPuts))
			s.Gets += atomic.LoadUint64(q.ent(i, entGets))
		}
	}
	return s
}

// CloseWrite closes the queue for writing, for every process: later Puts
// fail with ErrClosed, blocked producers wake with ErrClosed, and
// consumers drain what is queued and then get io.EOF. Closing twice is
// harmless.
func (q *Queue) CloseWrite() error {
	if q.closed.Load() {
		return ErrClosed
	}
	raceRelease(q.raceProxy) // what we did before CloseWrite happens before io.EOF and ErrClosed
	// Seq-cst store: SPSC producers check it after publishing, consumers
	// before declaring EOF (see spscPublish).
	atomic.StoreUint32(q.u32(offClosed), 1)
	if q.g.mode == MPMC {
		// Atomic OR: a producer's claiming CAS on the tail fails once the
		// bit is set, so no Put can succeed after CloseWrite returned.
		atomic.OrUint64(q.tail, closedBit)
	}
	q.wakeAll()
	return nil
}

func (q *Queue) wakeAll() {
	// Bump both sequences (seq-cst adds) so that sleepers that read the
	// old value before our OR do not go to sleep, then wake them all.
	atomic.AddUint32(q.dataSeq, 1)
	atomic.AddUint32(q.spaceSeq, 1)
	_, _ = futex.WakeAll(q.dataSeq)
	_, _ = futex.WakeAll(q.spaceSeq)
}

// Close releases the handle: it gives back this handle's SPSC role or
// MPMC participant entry and closes the segment (for New and At, the
// memory stays the caller's). It fails with ErrPending while a
// reservation or held messages are outstanding. The queue itself lives on
// for other processes; CloseWrite ends it for them, Unlink removes it.
func (q *Queue) Close() error {
	if q.closed.Load() {
		return ErrClosed
	}
	if q.p.resvNeed != 0 || q.c.held != 0 || q.mpResv || q.mpHeld {
		return ErrPending
	}
	q.closeOnce.Do(func() {
		q.closed.Store(true)
		// Atomic stores: the role and entry words are read by other
		// processes deciding whether to take them over.
		if q.p.owned {
			atomic.StoreUint64(q.u64(offProdOwner), 0)
		}
		if q.c.owned {
			atomic.StoreUint64(q.u64(offConsOwner), 0)
		}
		if q.g.mode == MPMC && q.entErr == nil && q.entIdx >= 0 && q.entryClaimed() {
			atomic.StoreUint64(q.ent(q.entIdx, entProdIntent), 0)
			atomic.StoreUint64(q.ent(q.entIdx, entConsIntent), 0)
			atomic.StoreUint64(q.ent(q.entIdx, entOwner), 0)
		}
		if q.seg != nil {
			q.closeError = q.seg.Close()
		}
	})
	return q.closeError
}

// eof is what Get-side calls return once the queue is closed and drained.
var eof = io.EOF

// checkSize checks the size of a message to put (or reserve): at most
// MaxMessage, and in a typed queue exactly the element size.
func (q *Queue) checkSize(n int) error {
	if n < 0 || uint64(n) > q.g.maxMsg {
		return tooLarge(n, q.g.maxMsg)
	}
	if q.typ.Size != 0 && uint64(n) != uint64(q.typ.Size) {
		return q.sizeError(n)
	}
	return nil
}

// checkCommit checks the length n committed into a reservation of
// reserved bytes.
func (q *Queue) checkCommit(n int, reserved uint64) error {
	if n < 0 || uint64(n) > reserved {
		return &TooLargeError{Size: n, Max: int(reserved), commit: true}
	}
	if q.typ.Size != 0 && uint64(n) != uint64(q.typ.Size) {
		return q.sizeError(n)
	}
	return nil
}

func (q *Queue) sizeError(n int) error {
	e := &SizeError{Size: n, Want: int(q.typ.Size)}
	if q.seg != nil {
		e.TypeName = q.seg.TypeName()
	}
	return e
}
