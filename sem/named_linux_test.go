//go:build linux

package sem

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	// named: open the named Mutex, Semaphore and Event args[0]+"-m/-s/-e",
	// take the mutex and a permit, set the event.
	testproc.Register("named", func(args []string) int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m := orPanic(OpenMutex(ctx, args[0]+"-m"))
		s := orPanic(OpenSemaphore(ctx, args[0]+"-s"))
		e := orPanic(OpenEvent(ctx, args[0]+"-e"))
		if err := m.Lock(ctx); err != nil {
			panic(err)
		}
		if err := s.Acquire(ctx); err != nil {
			panic(err)
		}
		if err := e.Set(); err != nil {
			panic(err)
		}
		testproc.Printf("locked")
		select {}
	})
}

// testName returns a segment name unique to this test and process, and
// unlinks whatever was made under it when the test ends.
func testName(t *testing.T) string {
	name := fmt.Sprintf("semtest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(func() {
		for _, suf := range []string{"", "-m", "-s", "-e"} {
			_ = shm.Unlink(name + suf)
		}
	})
	return name
}

func TestNamed(t *testing.T) {
	name := testName(t)
	m := must[*Mutex](t)(CreateMutex(name + "-m"))
	defer m.Close()
	s := must[*Semaphore](t)(CreateSemaphore(name+"-s", 1, 1))
	defer s.Close()
	e := must[*Event](t)(CreateEvent(name + "-e"))
	defer e.Close()

	if _, err := CreateMutex(name + "-m"); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateMutex of existing name = %v", err)
	}
	ctx := context.Background()
	if _, err := OpenSemaphore(ctx, name+"-m"); !errors.Is(err, shm.ErrKind) {
		t.Fatalf("OpenSemaphore of a mutex = %v", err)
	}
	if _, err := OpenMutex(ctx, name+"-missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenMutex of missing name = %v", err)
	}

	p := testproc.Start(t, "named", name)
	p.Expect(t, "locked")
	if err := e.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while helper holds it = %v, %v", ok, err)
	}
	if ok, err := s.TryAcquire(); ok || err != nil {
		t.Fatalf("TryAcquire while helper holds the only permit = %v, %v", ok, err)
	}
	p.Kill()
	if err := m.Lock(ctx); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the named holder died = %v", err)
	}
	if err := m.MarkConsistent(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if s.Value() != 0 {
		t.Fatal("a dead holder's permit came back")
	}

	// Use after Close.
	m2 := must[*Mutex](t)(OpenMutex(ctx, name+"-m"))
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m2.Lock(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lock after Close = %v", err)
	}
	if err := m2.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
	s2 := must[*Semaphore](t)(OpenSemaphore(ctx, name+"-s"))
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s2.TryAcquire(); ok || !errors.Is(err, ErrClosed) || !errors.Is(s2.Release(), ErrClosed) {
		t.Fatal("Semaphore usable after Close")
	}
	e2 := must[*Event](t)(OpenEvent(ctx, name+"-e"))
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	if e2.IsSet() || !errors.Is(e2.Set(), ErrClosed) {
		t.Fatal("Event usable after Close")
	}
	// The original handles still work.
	if !e.IsSet() {
		t.Fatal("event lost")
	}
}

// Two OpenMutex calls in one process map the object twice, at different
// addresses; under -race the Mutex must still link them (it keys its race
// proxy by the backing file).
func TestNamedRaceTwoMappings(t *testing.T) {
	name := testName(t)
	m1 := must[*Mutex](t)(CreateMutex(name + "-m"))
	defer m1.Close()
	m2 := must[*Mutex](t)(OpenMutex(context.Background(), name+"-m"))
	defer m2.Close()
	if m1.word == m2.word {
		t.Fatal("one mapping, not two")
	}
	countWithTwoHandles(t, m1, m2)
}
