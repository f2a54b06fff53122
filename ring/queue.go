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
	// Slots is SPSC over fixed-size slots, for typed queues
	// (CreateTyped, TypedConfig): one producer and one consumer at a time,
	// every message exactly the element size. A message is a slot of an
	// array with no header and a typed batch is one copy, so batches of
	// small values move faster than through SPSC's byte ring (1.3-2.4x at
	// 8 bytes, BENCHMARKS.md; single messages about as fast); Typed's Put
	// and Get copy a value straight into and out of its slot.
	Slots Mode = 3
)

// String returns "spsc", "mpmc", "slots" or "Mode(N)".
func (m Mode) String() string {
	switch m {
	case SPSC:
		return "spsc"
	case MPMC:
		return "mpmc"
	case Slots:
		return "slots"
	}
	return fmt.Sprintf("Mode(%d)", uint32(m))
}

// Config describes a queue at creation.
type Config struct {
	// Mode is MPMC (the default, also for 0): any number of producers
	// and consumers, as with Python's multiprocessing.Queue; or SPSC,
	// the fast path for one producer and one consumer at a time, where
	// a second live producer (or consumer) gets a *BusyError; or
	// Slots, SPSC for typed queues over fixed-size slots, the fastest
	// for small values.
	Mode Mode

	// MaxMessage is the largest message in bytes (default
	// DefaultMaxMessage, at most 1 GiB). Messages may be empty.
	MaxMessage int

	// Capacity is how many messages of MaxMessage bytes the queue holds
	// (default DefaultCapacity), rounded up to a power of two (at least
	// 2 in MPMC and Slots modes). In SPSC mode smaller messages pack
	// tighter, so more of them fit.
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
//
// Its own fields are what both modes share: the memory and what its
// header says, the header words, the spin settings and the handle's
// state; spsc and mpmc hold each mode's state (spsc.go, mpmc.go), of which
// a queue uses the one its mode names.
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
	closedWord           *uint32 // offClosed: the closed-for-writing flag

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
	napEvery time.Duration // SetNap's interval (0: no naps)
	napFor   time.Duration // SetNap's budget: how long a blocked call naps in all

	// The napper of each side (a blocked Put-side call and a blocked
	// Get-side call may nap at once), made at the first nap, closed by
	// Close.
	napPut, napGet atomic.Pointer[napper]
	closed         atomic.Bool // Close was called: every later call fails with ErrClosed

	lostFn     func(Lost) // SetLostHandler's function (MPMC recovery calls it), or nil
	closeOnce  sync.Once  // Close's work is done once
	closeError error      // what closing the segment returned

	spsc  spscHandle  // SPSC mode's state
	mpmc  mpmcHandle  // MPMC mode's state
	slots slotsHandle // Slots mode's state
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

// SetNap makes a blocked call, once its spin is over, nap before it
// sleeps on the futex: look at the queue again every interval, for up to
// budget in all, parking the goroutine in between on a timer of its own
// (a timerfd in Go's netpoller), and only then sleep until woken as
// usual. A napping call does not ask to be woken, so the other side makes
// no wake-up system call for it, and it holds no OS thread: the runtime
// has no thread to hand its P from, as it has for a goroutine blocked in
// a futex system call. That is the better wait for a consumer (or
// producer) that shares its process with other busy goroutines and waits
// often and briefly, such as one draining a stream that arrives from the
// network: it sees a message up to interval late, and takes what has come
// in one go. A wait that outlasts the budget sleeps as without naps. 0
// for either turns naps off (the default). A nap is checked against the
// context's deadline and a done context ends the call within an
// interval. Call it before the handle is shared between goroutines.
func (q *Queue) SetNap(interval, budget time.Duration) {
	if interval <= 0 || budget <= 0 {
		q.napEvery, q.napFor = 0, 0
		return
	}
	q.napEvery, q.napFor = interval, budget
}

// napperFor returns the napper of the side whose futex word is seq,
// making it at the first nap; nil if it cannot be made (the call then
// sleeps at once, as without naps).
func (q *Queue) napperFor(seq *uint32) *napper {
	slot := &q.napPut
	if seq == q.dataSeq {
		slot = &q.napGet
	}
	if n := slot.Load(); n != nil {
		return n
	}
	n, err := newNapper()
	if err != nil {
		return nil
	}
	if !slot.CompareAndSwap(nil, n) {
		_ = n.close()
		return slot.Load()
	}
	if q.closed.Load() { // Close may have run before the swap and missed it
		_ = n.close()
	}
	return n
}

// closeNappers closes the handle's nappers (Close), ending naps in flight.
func (q *Queue) closeNappers() {
	for _, slot := range []*atomic.Pointer[napper]{&q.napPut, &q.napGet} {
		if n := slot.Swap(nil); n != nil {
			_ = n.close()
		}
	}
}

// SetExclusive declares that each side of this handle is used by one
// goroutine at a time, as an SPSC handle's always is, so that an MPMC
// handle's calls skip the lock that otherwise serialises them (two atomic
// instructions per message on each side: about a third of a Put and Get
// pair's cost in one process). Goroutines that put or get concurrently
// then each need their own handle (Open, OpenFile or At again), which
// also gives each its own participant entry. It changes nothing for an
// SPSC queue. Call it before the handle is shared between goroutines; the
// race detector reports calls that break the promise.
func (q *Queue) SetExclusive() { q.mpmc.exclusive = true }

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
