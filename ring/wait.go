package ring

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/futex"
)

// block retries try until it reports done or fails: first spinning
// (q.spin polls, or for q.spinTime), then sleeping on the futex word seq
// with waiters counting the sleepers, so that the other side makes a
// wake-up system call only when someone sleeps. try(slow) gets slow=true on the polls
// after a sleep, when it may run expensive checks (is a peer dead?).
//
// The protocol is Dekker's: we increment waiters and then re-check the
// queue; the other side changes the queue and then reads waiters. Both
// are sequentially consistent atomics, so at least one of us sees the
// other: either our re-check sees the change, or the other side sees our
// count, bumps seq and wakes us. Reading seq before the re-check makes a
// bump between the re-check and the sleep fail the futex's value check.
//
// Every sleep has a finite timeout (q.sleep), so a wake-up that a dead
// process never sent, or a peer that died, is noticed.
//
// A nil ctx is context.Background(). A ctx that is done makes the call
// fail once it must wait, after one more try: a call that can complete
// at once still does (the package's context rule).
func (q *Queue) block(ctx context.Context, seq, waiters *uint32, waits *uint64, try func(slow bool) (bool, error)) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	// Wakers wake one sleeper per message: one that was woken and leaves
	// without taking what it was woken for (its ctx ended, the handle was
	// closed) hands the wake-up on, so that another sleeper does not wait
	// for its timeout.
	slept := false
	defer func() {
		if slept && err != nil {
			wake(seq, waiters, 1) // maybe woken, maybe not: an extra wake-up is harmless
		}
	}()
	slow := false
	var napEnd time.Time // when the naps' budget is spent (SetNap)
	napsOver := false    // no more naps in this call
	var lastSlow, spinEnd time.Time
	spinning := q.spin != 0
	if q.spin == spinTimed {
		spinEnd = time.Now().Add(q.spinTime)
	}
	for i := 0; ; i++ {
		if done, err := try(slow); done || err != nil {
			return err
		}
		if q.closed.Load() {
			return ErrClosed
		}
		if i == 0 {
			// The call must wait: a done ctx ends it now, not after a spin.
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if spinning {
			switch {
			case q.spin == spinTimed:
				// The clock every 64 polls: a poll is a few
				// nanoseconds, a clock reading tens.
				spinning = i&63 != 63 || time.Now().Before(spinEnd)
			case q.spin >= 0:
				spinning = i < q.spin
			}
		}
		if spinning {
			slow = false
			if q.geo.mode == MPMC && i >= 128 && i&63 == 63 {
				// An MPMC queue's participants often outnumber the CPUs,
				// and the one we wait for may be waiting for our CPU:
				// past the first polls (a wait of a microsecond or two
				// pays nothing), give it the CPU every 64 polls. With no
				// other thread runnable, sched_yield returns at once.
				futex.Yield()
			}
			if i&1023 == 1023 {
				if err := ctx.Err(); err != nil {
					return err
				}
				// A periodic slow check even while busy-waiting, so that
				// a dead peer is noticed in spin mode too; by the clock,
				// since a check may read /proc (tens of microseconds),
				// which every 1024 polls would be a stall in every few
				// dozen round trips of a spinning ping-pong.
				// The first comes a period into the wait: a short wait
				// never pays for one.
				if now := time.Now(); lastSlow.IsZero() {
					lastSlow = now
				} else if now.Sub(lastSlow) >= spinSlowPeriod {
					slow, lastSlow = true, now
				}
				runtime.Gosched()
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if q.napEvery > 0 && !napsOver {
			// SetNap: look again after a nap, without a sleeper's count
			// or a thread held, until the budget is spent; the slow
			// checks come by the clock, as in the spin.
			now := time.Now()
			if napEnd.IsZero() {
				napEnd = now.Add(q.napFor)
			}
			d := min(q.napEvery, napEnd.Sub(now))
			if dl, ok := ctx.Deadline(); ok {
				left := dl.Sub(now)
				if left <= 0 {
					return context.DeadlineExceeded
				}
				d = min(d, left)
			}
			n := q.napperFor(seq)
			if d > 0 && n != nil {
				if err := n.nap(d); err == nil {
					slow = false
					if now := time.Now(); lastSlow.IsZero() {
						lastSlow = now
					} else if now.Sub(lastSlow) >= spinSlowPeriod {
						slow, lastSlow = true, now
					}
					continue
				}
				if q.closed.Load() {
					return ErrClosed
				}
			}
			// The budget is spent, or no nap can be taken (no napper,
			// or it is in use): sleep as without naps.
			napsOver = true
			continue
		}
		s := atomic.LoadUint32(seq)  // before the re-check: see above
		atomic.AddUint32(waiters, 1) // seq-cst RMW: announce, then re-check
		done, err := try(slow)
		if done || err != nil {
			atomic.AddUint32(waiters, ^uint32(0)) // RMW: other sleepers count on the same word
			return err
		}
		atomic.AddUint64(waits, 1) // statistics only; the RMW keeps concurrent sleepers' counts
		werr := futex.WaitContext(ctx, seq, s, q.sleep)
		slept = true
		atomic.AddUint32(waiters, ^uint32(0)) // RMW, as above
		if werr != nil && werr != futex.ErrTimeout {
			return werr
		}
		slow = true
	}
}

// spinTimed, as Queue.spin, makes a blocked call poll for Queue.spinTime.
const spinTimed = -1 << 31

// spinSlowPeriod is how often a spinning block runs try's slow checks.
const spinSlowPeriod = 2 * time.Millisecond

// wake wakes up to n sleepers on seq if waiters says there are any: one
// per message published or slot released (CloseWrite wakes every one,
// wakeAll). The load of waiters is seq-cst and follows the
// caller's seq-cst publication (the other half of the Dekker pairing in
// block); it is the only cost on the fast path.
func wake(seq, waiters *uint32, n int) {
	if atomic.LoadUint32(waiters) == 0 {
		return
	}
	atomic.AddUint32(seq, 1) // seq-cst: a sleeper that read the old value will not sleep
	_, _ = futex.Wake(seq, n)
}
