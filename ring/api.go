package ring

import (
	"context"
)

// The Queue API. Each method chooses its mode's code in one place, the
// same way in all of them: the SPSC fast path first where there is one
// (fast.go: it is done only on an SPSC queue whose role this handle
// holds, so on an MPMC queue it costs a call or two that fail their first
// check), then one branch on the mode: the SPSC general path (spsc.go) or
// the MPMC code (mpmc.go, mpmc_batch.go).
//
// A branch rather than an interface with an SPSC and an MPMC
// implementation: both modes' code works on what Queue holds for both
// (the memory, the geometry, the header words, the spin settings, the
// closed flag), so an implementation would either forward each method to
// Queue's (a second set of a dozen methods, and an indirect call that
// cannot be inlined) or reach that state through a pointer back to the
// Queue. The branch reads a field that never changes, so it is always
// predicted, and the fast paths, which are most of the calls, do not
// reach it.

// Put appends a copy of p to the queue, waiting while it is full. It
// returns ErrTooLarge for a message over MaxMessage, ErrClosed once the
// queue is closed for writing, and ctx's error when ctx is done first.
// When Put returns nil the message is in the queue. Put makes no
// allocation and no system call unless it must sleep or wake a sleeper.
func (q *Queue) Put(ctx context.Context, p []byte) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if done, err := q.spscPutFast(p); done {
		return err
	}
	var err error
	switch q.geo.mode {
	case SPSC:
		_, err = q.spscPut(ctx, p, true)
	case Slots:
		_, err = q.slotsPut(ctx, p, true)
	default:
		_, err = q.mpmcPut(ctx, p, true)
	}
	return err
}

// TryPut is Put that does not wait: ok is false when the queue is full.
func (q *Queue) TryPut(p []byte) (ok bool, err error) {
	if q.closed.Load() {
		return false, ErrClosed
	}
	if done, err := q.spscPutFast(p); done {
		return true, err
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscPut(context.Background(), p, false)
	case Slots:
		return q.slotsPut(context.Background(), p, false)
	}
	return q.mpmcPut(context.Background(), p, false)
}

// PutBatch puts every message of msgs in order, waiting for room as Put
// does, and returns how many it put. In SPSC mode the messages that fit
// are published together, with one atomic operation per quarter of the
// ring's capacity (so that a consumer starts on a batch of large messages
// before all of it is written); so are they in Slots mode. In MPMC mode each run of free slots (up
// to a quarter of them, at most 1024) is claimed with one atomic operation
// and the consumers are woken once per run.
func (q *Queue) PutBatch(ctx context.Context, msgs [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscPutBatch(ctx, msgs)
	case Slots:
		return q.slotsPutBatch(ctx, msgs)
	}
	return q.mpmcPutBatch(ctx, msgs)
}

// Reserve claims room for a message of n bytes and returns it for the
// caller to fill in place; Commit publishes it. Until Commit, the
// handle's other Put-side calls return ErrPending.
func (q *Queue) Reserve(ctx context.Context, n int) ([]byte, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if b, ok := q.spscReserveFast(n); ok {
		return b, nil
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscReserve(ctx, n)
	case Slots:
		return q.slotsReserve(ctx, n)
	}
	return q.mpmcReserve(ctx, n)
}

// Commit publishes the reserved message with its first n bytes (n at
// most the reserved size). It returns ErrPending when nothing is reserved
// and ErrClosed (the message is dropped) if the queue was closed for
// writing meanwhile.
func (q *Queue) Commit(n int) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if done, err := q.spscCommitFast(n); done {
		return err
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscCommit(n)
	case Slots:
		return q.slotsCommit(n)
	}
	return q.mpmcCommit(n)
}

// Get copies the next message into buf and returns its length, waiting
// while the queue is empty. It returns io.EOF once the queue is closed for
// writing and drained, io.ErrShortBuffer (leaving the message for the
// next call) when buf is too small, and ctx's error when ctx is done
// first. Get makes no allocation and no system call unless it must sleep
// or wake a sleeper.
func (q *Queue) Get(ctx context.Context, buf []byte) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	if n, ok := q.spscGetFast(buf); ok {
		return n, nil
	}
	switch q.geo.mode {
	case SPSC:
		n, _, err := q.spscGet(ctx, buf, true)
		return n, err
	case Slots:
		n, _, err := q.slotsGet(ctx, buf, true)
		return n, err
	}
	_, n, _, err := q.mpmcGet(ctx, buf, true, false)
	return n, err
}

// TryGet is Get that does not wait: ok is false when the queue is empty.
// It returns io.EOF when the queue is closed and drained.
func (q *Queue) TryGet(buf []byte) (n int, ok bool, err error) {
	if q.closed.Load() {
		return 0, false, ErrClosed
	}
	if n, ok := q.spscGetFast(buf); ok {
		return n, true, nil
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscGet(context.Background(), buf, false)
	case Slots:
		return q.slotsGet(context.Background(), buf, false)
	}
	_, n, ok, err = q.mpmcGet(context.Background(), buf, false, false)
	return n, ok, err
}

// GetAppend appends the next message to buf, waiting as Get does, and
// returns the extended slice.
func (q *Queue) GetAppend(ctx context.Context, buf []byte) ([]byte, error) {
	if q.closed.Load() {
		return buf, ErrClosed
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscGetAppend(ctx, buf)
	case Slots:
		return q.slotsGetAppend(ctx, buf)
	}
	buf, _, _, err := q.mpmcGet(ctx, buf, true, true)
	return buf, err
}

// GetBatch waits for at least one message and then takes as many as are
// queued, up to len(dst): message i is copied into dst[i][:cap(dst[i])]
// and dst[i] is resliced to its length. It returns how many it took; it
// stops early at a message that does not fit (io.ErrShortBuffer if that is
// the first). In SPSC and Slots modes the batch is released with one
// atomic store per quarter of the ring's capacity; in MPMC mode each run of published
// slots (up to a quarter of them, at most 1024) is claimed with one atomic
// operation and released after its messages are copied.
func (q *Queue) GetBatch(ctx context.Context, dst [][]byte) (int, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscGetBatch(ctx, dst)
	case Slots:
		return q.slotsGetBatch(ctx, dst)
	}
	return q.mpmcGetBatch(ctx, dst)
}

// Next returns the next message in place, waiting as Get does; the slice
// aliases the queue and stays valid until Release. In SPSC and Slots
// modes Next may be called several times before one Release frees them all (a zero-copy
// batch); in MPMC mode a handle holds one message at a time and Next
// returns ErrPending until Release. While messages are held, Get-side
// copying calls return ErrPending.
func (q *Queue) Next(ctx context.Context) ([]byte, error) {
	if q.closed.Load() {
		return nil, ErrClosed
	}
	if b, ok := q.spscNextFast(); ok {
		return b, nil
	}
	switch q.geo.mode {
	case SPSC:
		b, _, err := q.spscNext(ctx, true)
		return b, err
	case Slots:
		b, _, err := q.slotsNext(ctx, true)
		return b, err
	}
	b, _, err := q.mpmcNext(ctx, true)
	return b, err
}

// TryNext is Next that does not wait: ok is false when the queue is empty.
func (q *Queue) TryNext() (msg []byte, ok bool, err error) {
	if q.closed.Load() {
		return nil, false, ErrClosed
	}
	if b, ok := q.spscNextFast(); ok {
		return b, true, nil
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscNext(context.Background(), false)
	case Slots:
		return q.slotsNext(context.Background(), false)
	}
	return q.mpmcNext(context.Background(), false)
}

// Position returns the position of the message the last Next or TryNext
// returned: a number that names that message for the life of the queue,
// whichever process consumes it (SPSC: the byte offset of its record since
// the queue was created; MPMC: its slot position; Slots: its index, the
// number of messages put before it). Positions increase in
// the order messages are consumed; a consumer that takes over from a dead
// one receives the unreleased messages again at the same positions. That
// makes them de-duplication keys (the JetStream bridge uses them as
// message ids). It is 0 before the first Next.
func (q *Queue) Position() uint64 {
	switch q.geo.mode {
	case SPSC:
		return q.spsc.cons.lastPos
	case Slots:
		return q.slots.cons.lastPos
	}
	return q.mpmc.heldPos
}

// WritePosition returns the position at which the next message put by this
// handle will be published (SPSC and Slots; it claims the producer role,
// as Put does, and fails with ErrMode in MPMC mode). Taking the role over
// from a dead producer starts after everything it published, so comparing
// a position recorded before a Put with WritePosition after a restart tells
// whether that Put published its message: it did exactly when
// WritePosition is greater. A message put with Put or Commit is always
// published at this position (a pad that skips to the start of the ring
// is published with it).
func (q *Queue) WritePosition() (uint64, error) {
	if q.closed.Load() {
		return 0, ErrClosed
	}
	switch q.geo.mode {
	case SPSC:
		if err := q.spscClaimProducer(); err != nil {
			return 0, err
		}
		return q.spsc.prod.tail, nil
	case Slots:
		if err := q.slotsClaimProducer(); err != nil {
			return 0, err
		}
		return q.slots.prod.tail, nil
	}
	return 0, ErrMode
}

// Release frees the messages Next returned; their slices must not be used
// afterwards. It returns ErrPending when none is held.
func (q *Queue) Release() error {
	if q.closed.Load() {
		return ErrClosed
	}
	switch q.geo.mode {
	case SPSC:
		return q.spscReleaseHeld()
	case Slots:
		return q.slotsReleaseHeld()
	}
	return q.mpmcRelease()
}
