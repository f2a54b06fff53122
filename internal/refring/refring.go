package refring

import (
	"errors"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/atomicx"
)

// SlotSize is the size of one message slot.
const SlotSize = 64

const (
	line    = 64
	offHead = 0
	offTail = line
	offData = 2 * line
)

// PingSize is the size of the memory PingPong needs.
const PingSize = line

// ErrLayout is returned for memory that is too small, misaligned or whose
// slot count is not a power of two.
var ErrLayout = errors.New("refring: bad memory layout")

// Size returns the bytes a ring of n slots needs (n a power of two).
func Size(n int) int { return offData + n*SlotSize }

type ring struct {
	head  *uint64
	tail  *uint64
	data  unsafe.Pointer
	mask  uint64
	slots uint64
}

func attach(mem []byte, n int) (ring, error) {
	if n <= 0 || n&(n-1) != 0 || len(mem) < Size(n) || uintptr(unsafe.Pointer(&mem[0]))%line != 0 {
		return ring{}, ErrLayout
	}
	base := unsafe.Pointer(&mem[0])
	return ring{
		head:  (*uint64)(unsafe.Add(base, offHead)),
		tail:  (*uint64)(unsafe.Add(base, offTail)),
		data:  unsafe.Add(base, offData),
		mask:  uint64(n - 1),
		slots: uint64(n),
	}, nil
}

// Producer is the writing side of a reference ring. It is not safe for
// concurrent use.
type Producer struct {
	r          ring
	tail       uint64 // local copy of the shared tail (we are its only writer)
	cachedHead uint64 // last head we read; refreshed only when the ring looks full
}

// Consumer is the reading side of a reference ring. It is not safe for
// concurrent use.
type Consumer struct {
	r          ring
	head       uint64 // local copy of the shared head (we are its only writer)
	cachedTail uint64 // last tail we read; refreshed only when the ring looks empty
}

// Init zeroes the indices of a ring of n slots in mem. Call it once,
// before either side attaches.
func Init(mem []byte, n int) error {
	r, err := attach(mem, n)
	if err != nil {
		return err
	}
	// Plain-ordered atomics suffice: the memory is handed to the other
	// process afterwards by exec, which orders everything before it.
	atomic.StoreUint64(r.head, 0)
	atomic.StoreUint64(r.tail, 0)
	return nil
}

// NewProducer attaches the producer side to a ring of n slots in mem.
func NewProducer(mem []byte, n int) (*Producer, error) {
	r, err := attach(mem, n)
	if err != nil {
		return nil, err
	}
	// Atomic loads: the indices may be written by the other process.
	return &Producer{r: r, tail: atomic.LoadUint64(r.tail), cachedHead: atomic.LoadUint64(r.head)}, nil
}

// NewConsumer attaches the consumer side to a ring of n slots in mem.
func NewConsumer(mem []byte, n int) (*Consumer, error) {
	r, err := attach(mem, n)
	if err != nil {
		return nil, err
	}
	return &Consumer{r: r, head: atomic.LoadUint64(r.head), cachedTail: atomic.LoadUint64(r.tail)}, nil
}

// TryPut copies msg (at most SlotSize bytes; the rest is dropped) into the
// next slot and publishes it. It reports false when the ring is full.
func (p *Producer) TryPut(msg []byte) bool {
	if p.tail-p.cachedHead >= p.r.slots {
		// Atomic load (acquire): the consumer's store of head happens
		// after it finished reading the slot we are about to overwrite.
		p.cachedHead = atomic.LoadUint64(p.r.head)
		if p.tail-p.cachedHead >= p.r.slots {
			return false
		}
	}
	slot := unsafe.Slice((*byte)(unsafe.Add(p.r.data, (p.tail&p.r.mask)*SlotSize)), SlotSize)
	copy(slot, msg)
	p.tail++
	// Release store: the slot's bytes become visible before the consumer
	// can see the new tail (a plain MOV on amd64, as a C ring's
	// memory_order_release store; atomic.StoreUint64 would be a full
	// barrier).
	atomicx.StoreRelease(p.r.tail, p.tail)
	return true
}

// Put is TryPut that busy-spins until there is room.
func (p *Producer) Put(msg []byte) {
	for i := 0; !p.TryPut(msg); i++ {
		if i&1023 == 1023 {
			runtime.Gosched() // keep a loaded machine making progress
		}
	}
}

// PutBatch puts every message of msgs with one store of the tail per run
// of free slots, spinning while the ring is full.
func (p *Producer) PutBatch(msgs [][]byte) {
	for i := 0; len(msgs) > 0; i++ {
		free := p.r.slots - (p.tail - p.cachedHead)
		if free == 0 {
			p.cachedHead = atomic.LoadUint64(p.r.head) // acquire, as in TryPut
			if free = p.r.slots - (p.tail - p.cachedHead); free == 0 {
				if i&1023 == 1023 {
					runtime.Gosched()
				}
				continue
			}
		}
		k := min(uint64(len(msgs)), free)
		for _, m := range msgs[:k] {
			copy(unsafe.Slice((*byte)(unsafe.Add(p.r.data, (p.tail&p.r.mask)*SlotSize)), SlotSize), m)
			p.tail++
		}
		atomicx.StoreRelease(p.r.tail, p.tail) // release, as in TryPut
		msgs = msgs[k:]
	}
}

// TryGet copies the next message (SlotSize bytes) into buf and frees its
// slot. It reports false when the ring is empty.
func (c *Consumer) TryGet(buf []byte) bool {
	if c.head == c.cachedTail {
		// Atomic load (acquire): pairs with the producer's release store.
		c.cachedTail = atomic.LoadUint64(c.r.tail)
		if c.head == c.cachedTail {
			return false
		}
	}
	copy(buf, unsafe.Slice((*byte)(unsafe.Add(c.r.data, (c.head&c.r.mask)*SlotSize)), SlotSize))
	c.head++
	// Atomic store (release): we finished reading the slot before the
	// producer may reuse it.
	atomicx.StoreRelease(c.r.head, c.head)
	return true
}

// Get is TryGet that busy-spins until a message arrives.
func (c *Consumer) Get(buf []byte) {
	for i := 0; !c.TryGet(buf); i++ {
		if i&1023 == 1023 {
			runtime.Gosched()
		}
	}
}

// GetBatch takes up to len(bufs) messages with one store of the head,
// spinning until at least one is there, and returns how many it took.
func (c *Consumer) GetBatch(bufs [][]byte) int {
	for i := 0; ; i++ {
		if c.head == c.cachedTail {
			c.cachedTail = atomic.LoadUint64(c.r.tail) // acquire, as in TryGet
			if c.head == c.cachedTail {
				if i&1023 == 1023 {
					runtime.Gosched()
				}
				continue
			}
		}
		k := min(uint64(len(bufs)), c.cachedTail-c.head)
		for j := range k {
			copy(bufs[j], unsafe.Slice((*byte)(unsafe.Add(c.r.data, (c.head&c.r.mask)*SlotSize)), SlotSize))
			c.head++
		}
		atomicx.StoreRelease(c.r.head, c.head) // release, as in TryGet
		return int(k)
	}
}

// Produce puts n messages of size bytes (at most SlotSize) with batches of
// batch messages (1: single puts). Message i carries i in its first eight
// bytes when size >= 8, so that Consume can check order.
func Produce(mem []byte, slots, n, size, batch int) error {
	p, err := NewProducer(mem, slots)
	if err != nil {
		return err
	}
	size = min(max(size, 0), SlotSize)
	batch = max(batch, 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	for i := 0; i < n; {
		k := min(batch, n-i)
		for j := range k {
			if size >= 8 {
				*(*uint64)(unsafe.Pointer(&bufs[j][0])) = uint64(i + j)
			}
		}
		if k == 1 {
			p.Put(bufs[0])
		} else {
			p.PutBatch(bufs[:k])
		}
		i += k
	}
	return nil
}

// ErrOrder is returned by Consume when messages arrive out of order.
var ErrOrder = errors.New("refring: message out of order")

// Consume takes n messages in batches of batch (1: single gets) and, when
// size >= 8, checks that message i carries i.
func Consume(mem []byte, slots, n, size, batch int) error {
	c, err := NewConsumer(mem, slots)
	if err != nil {
		return err
	}
	batch = max(batch, 1)
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, SlotSize)
	}
	for i := 0; i < n; {
		var k int
		if batch == 1 {
			c.Get(bufs[0])
			k = 1
		} else {
			k = c.GetBatch(bufs[:min(batch, n-i)])
		}
		if size >= 8 {
			for j := range k {
				if *(*uint64)(unsafe.Pointer(&bufs[j][0])) != uint64(i+j) {
					return ErrOrder
				}
			}
		}
		i += k
	}
	return nil
}

func pingWord(mem []byte) (*uint64, error) {
	if len(mem) < PingSize || uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, ErrLayout
	}
	return (*uint64)(unsafe.Pointer(&mem[0])), nil
}

// Ping runs n round trips against a Pong in another process and returns
// the time each took, in order. The word must start at zero (or where a
// previous Ping of the same pair left it).
func Ping(mem []byte, n int) ([]time.Duration, error) {
	w, err := pingWord(mem)
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, n)
	v := atomic.LoadUint64(w) // seq-cst: the word is written by the other process
	for i := range n {
		start := time.Now()
		// Atomic store: the ponger polls this word.
		atomic.StoreUint64(w, v+1)
		for j := 0; atomic.LoadUint64(w) != v+2; j++ {
			if j&1023 == 1023 {
				runtime.Gosched()
			}
		}
		out[i] = time.Since(start)
		v += 2
	}
	return out, nil
}

// Pong answers n round trips of a Ping in another process.
func Pong(mem []byte, n int) error {
	w, err := pingWord(mem)
	if err != nil {
		return err
	}
	for range n {
		var v uint64
		for j := 0; ; j++ {
			// Atomic load: written by the pinger.
			if v = atomic.LoadUint64(w); v&1 == 1 {
				break
			}
			if j&1023 == 1023 {
				runtime.Gosched()
			}
		}
		atomic.StoreUint64(w, v+1) // atomic store: the pinger polls it
	}
	return nil
}
