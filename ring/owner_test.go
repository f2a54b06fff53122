package ring

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/proc"
	"github.com/shmkit/shmkit/internal/testproc"
)

// stopForever blocks until the process is killed (a helper waiting for
// its SIGKILL; select{} alone would be reported as a deadlock).
func stopForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func init() {
	// idle: print "ready" and wait to be killed: a live process whose pid
	// and start time the parent writes into owner words.
	testproc.Register("idle", func(args []string) int {
		testproc.Printf("ready")
		stopForever()
		return 0
	})
}

// TestOwnerPidReuse writes owner words into a fresh queue's SPSC roles,
// MPMC participant entry and pipe peer role, and checks how a new handle
// judges them. An owner word names a process by pid and start time, so
// that a pid the kernel handed to another process is not taken for the
// owner: a word with the pid of a live process (ours, or a helper's) but
// another start time names a dead owner, whose role or entry is taken
// over; the same pid with its right start time names a live owner
// (ErrBusy; a pipe peer that is not dead).
func TestOwnerPidReuse(t *testing.T) {
	self := proc.Self()
	if self.Start == 0 {
		t.Skip("no process start times (/proc not mounted)")
	}
	p := testproc.Start(t, "idle")
	p.Expect(t, "ready")
	st, err := proc.StartTime(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	helper := proc.ID{Pid: int32(p.Pid()), Start: st}
	// wrong returns id with another start time (whose low 32 bits, all an
	// owner word keeps, differ and are not 0, which matches any).
	wrong := func(id proc.ID) proc.ID {
		id.Start = uint64(uint32(id.Start) + 1)
		if id.Start == 0 {
			id.Start = 1
		}
		return id
	}
	cases := []struct {
		name  string
		id    proc.ID
		alive bool
	}{
		{"self-wrong-start", wrong(self), false},
		{"helper-wrong-start", wrong(helper), false},
		{"helper", helper, true},
		{"self", self, true},
	}
	me := ownerWord(self)
	ctx := context.Background()
	for _, c := range cases {
		w := ownerWord(c.id)
		if ownerAlive(w) != c.alive {
			t.Errorf("%s: ownerAlive(%#x) = %v", c.name, w, !c.alive)
		}
		t.Run(c.name+"/spsc-producer", func(t *testing.T) {
			q := newQueue(t, Config{Mode: SPSC, MaxMessage: 8})
			atomic.StoreUint64(q.u64(offProdOwner), w)
			err := q.Put(ctx, []byte("x"))
			checkClaim(t, err, c.alive, atomic.LoadUint64(q.u64(offProdOwner)), w, me)
		})
		t.Run(c.name+"/spsc-consumer", func(t *testing.T) {
			q := newQueue(t, Config{Mode: SPSC, MaxMessage: 8})
			atomic.StoreUint64(q.u64(offConsOwner), w)
			_, _, err := q.TryGet(make([]byte, 8))
			checkClaim(t, err, c.alive, atomic.LoadUint64(q.u64(offConsOwner)), w, me)
		})
		t.Run(c.name+"/mpmc-entry", func(t *testing.T) {
			// One entry, taken: a new handle may only take it over.
			q := newQueue(t, Config{Mode: MPMC, MaxMessage: 8, Participants: 1})
			atomic.StoreUint64(q.ent(0, entStart), c.id.Start)
			atomic.StoreUint64(q.ent(0, entOwner), w)
			err := q.Put(ctx, []byte("x"))
			checkClaim(t, err, c.alive, atomic.LoadUint64(q.ent(0, entOwner)), w, me)
		})
		t.Run(c.name+"/pipe-peer", func(t *testing.T) {
			// End 0 of a pipe whose end 1 was never opened; the owner
			// word of end 1's producer role says who sends to us.
			conn, err := NewPipe(Config{MaxMessage: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.in.sleep = time.Millisecond // the dead-peer checks run after each sleep
			atomic.StoreUint64(conn.in.u64(offProdOwner), w)
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, err = conn.Recv(rctx, make([]byte, 8))
			switch {
			case c.alive && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("Recv from a live peer = %v, want the deadline", err)
			case !c.alive && !errors.Is(err, ErrPeerDied):
				t.Fatalf("Recv from a dead peer = %v, want ErrPeerDied", err)
			}
		})
	}
}

// checkClaim checks the outcome of a call that claimed a role or entry
// whose owner word was w: ErrBusy, w left in place, if its owner is
// alive; success and our own word (me) in it otherwise.
func checkClaim(t *testing.T, err error, alive bool, got, w, me uint64) {
	t.Helper()
	if alive {
		if !errors.Is(err, ErrBusy) || got != w {
			t.Fatalf("owner alive: err %v, owner word %#x (was %#x), want ErrBusy and no change", err, got, w)
		}
		return
	}
	if err != nil || got != me {
		t.Fatalf("owner dead: err %v, owner word %#x, want a takeover (%#x)", err, got, me)
	}
}

// TestSPSCRoles checks that a second live handle cannot take a role.
func TestSPSCRoles(t *testing.T) {
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 16})
	q2, err := OpenFile(context.Background(), q.File())
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if err := q.Put(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := q2.Put(context.Background(), []byte("b")); !errors.Is(err, ErrBusy) {
		t.Fatalf("second producer = %v", err)
	}
	n, err := q2.Get(context.Background(), make([]byte, 16))
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	// Released roles can be taken again.
	q.Close()
	if err := q2.Put(context.Background(), []byte("c")); err != nil {
		t.Fatal(err)
	}
}
