package ring

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/proc"
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

// Queue is a handle on a ring in shared memory. Its methods may be called
// from several goroutines within the limits the package doc states (SPSC:
// one goroutine per side at a time).
type Queue struct {
	base unsafe.Pointer // start of the ring
	mem  []byte         // the ring's memory (for bounds and lifetime)
	seg  *shm.Segment   // nil when the caller owns the memory (New, At)
	geo  geometry       // what the immutable header says
	mask uint64         // geo.capacity-1: a position's offset (SPSC) or slot index (MPMC)
	typ  shm.TypeDesc   // the element type recorded at creation (zero if none)
	self proc.ID        // this process, as the role and entry owner words name it

	// Header words, by their offsets in layout.go.
	tail, head           *uint64 // offTail, offHead
	dataSeq, getWaiters  *uint32 // offDataSeq, offGetWaiters
	spaceSeq, putWaiters *uint32 // offSpaceSeq, offPutWaiters
	putWaits, getWaits   *uint64 // offPutWaits, offGetWaits

	// Precomputed for the SPSC fast paths (fast.go).
	data                     unsafe.Pointer // start of the data area
	closedWord               *uint32        // the closed-for-writing flag (offClosed)
	putsCounter, getsCounter *uint64        // the SPSC puts and gets counters (offPuts, offGets)
	maxSpan                  uint64         // span of a MaxMessage record
	putLo                    uint64         // a size n may be put if n-putLo <= putSpan (checkSize)
	putSpan                  uint64         // see putLo

	// raceProxy is the heap object on which the race detector is told
	// of the queue's happens-before edges (nil without -race): a Put
	// releases on it before publishing, and the Get that receives the
	// message acquires it. It is race.Proxy of the ring's first byte,
	// which names the ring by file and offset, so every handle on the
	// ring in this process, through whichever mapping, has the same one.
	raceProxy unsafe.Pointer

	spin     int           // polls before sleeping; < 0: for ever; spinTimed: for spinTime
	spinTime time.Duration // with spinTimed
	sleep    time.Duration // the longest futex sleep of a blocked call
	closed   atomic.Bool   // Close was called: every later call fails with ErrClosed

	// peerDeath makes a blocked SPSC call fail with ErrPeerDied when the
	// process holding the other role is dead (pipes: one peer, for good).
	peerDeath bool

	prod spscProducer // SPSC producer side; touched only by the goroutine putting
	cons spscConsumer // SPSC consumer side; touched only by the goroutine getting

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

// spscProducer is an SPSC handle's producer state (spsc.go): the role,
// the write position and the open batch or reservation. Positions are
// byte counts since the queue was created.
type spscProducer struct {
	owned       bool   // this handle holds the producer role
	published   uint64 // end of the published records
	tail        uint64 // write position, >= published while a batch is open
	firstHeader uint64 // header word of the batch's first record, stored last
	deferred    bool   // firstHeader is set
	cachedHead  uint64 // last head read; refreshed only when full
	puts        uint64 // messages put, as stored in the puts counter
	resvOff     uint64 // record offset of the pending reservation
	resvNeed    uint64 // bytes it takes, pad included; 0: none
	resvLen     uint64 // the size reserved
	resvFast    bool   // the reservation was made by spscReserveFast
}

// spscConsumer is an SPSC handle's consumer state (spsc.go): the role,
// the read and release positions and the messages Next holds.
type spscConsumer struct {
	owned   bool   // this handle holds the consumer role
	head    uint64 // head as last stored: the space before it is released
	view    uint64 // read position, past messages held by Next
	gets    uint64 // messages taken, as stored in the gets counter
	eof     bool   // io.EOF was returned: sticky
	held    uint64 // messages Next returned and Release has not freed
	lastPos uint64 // position of the record Next returned last (Position)
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
	pos, seq uint64 // the stalled position and the sequence its slot showed
	seen     int    // slow checks in a row that found the same stall
}

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
func (q *Queue) Mode() Mode { return q.geo.mode }

// MaxMessage returns the largest message the queue accepts.
func (q *Queue) MaxMessage() int { return int(q.geo.maxMsg) }

// Type returns the element type recorded at creation (zero if none).
func (q *Queue) Type() shm.TypeDesc { return q.typ }

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

// eof is what Get-side calls return once the queue is closed and drained.
var eof = io.EOF

// checkSize checks the size of a message to put (or reserve): at most
// MaxMessage, and in a typed queue exactly the element size.
func (q *Queue) checkSize(n int) error {
	if n < 0 || uint64(n) > q.geo.maxMsg {
		return tooLarge(n, q.geo.maxMsg)
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
