package ring

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// A napper takes one nap at a time: a second goroutine's nap meanwhile
// fails at once (its call then sleeps on the futex) instead of re-arming
// the timer under the first.
func TestNapperOneAtATime(t *testing.T) {
	n, err := newNapper()
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	done := make(chan error, 1)
	go func() { done <- n.nap(50 * time.Millisecond) }()
	for !n.busy.Load() {
		runtime.Gosched()
	}
	if err := n.nap(time.Millisecond); !errors.Is(err, errNapBusy) {
		t.Fatalf("second nap = %v, want errNapBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first nap = %v", err)
	}
	if err := n.nap(time.Millisecond); err != nil {
		t.Fatalf("nap after = %v", err)
	}
}
