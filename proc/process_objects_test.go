//go:build linux

package proc_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/value"
)

// Layout of the raw segment of TestEveryObjectKind: one marker word per
// worker, then a counter guarded by the Mutex, then the count of workers
// that reported to the Cond (guarded by its own Mutex).
const (
	objWorkers = 3
	objRounds  = 200
	offCounter = objWorkers * 8
	offReady   = offCounter + 8
	objSegSize = offReady + 8
)

// objectsWorker attaches to one argument of every shmkit object kind,
// uses each, and counts in shared memory for the parent to check.
var objectsWorker = proc.Register("objects", func(ctx context.Context, a *proc.Args) error {
	var idx int
	if err := a.Decode(0, &idx); err != nil {
		return err
	}
	wantKinds := []shm.Kind{0, shm.KindRaw, shm.KindMutex, shm.KindSemaphore, shm.KindEvent, shm.KindBarrier,
		shm.KindCond, shm.KindValue, shm.KindArray, shm.KindQueue, shm.KindPipe}
	if a.Len() != len(wantKinds) {
		return fmt.Errorf("got %d arguments, want %d", a.Len(), len(wantKinds))
	}
	for i, k := range wantKinds {
		if a.Kind(i) != k {
			return fmt.Errorf("argument %d (%s): kind %v, want %v", i, a.Type(i), a.Kind(i), k)
		}
	}
	seg, err := proc.Object(ctx, a, 1, shm.OpenFile)
	if err != nil {
		return err
	}
	defer seg.Close()
	mu, err := proc.Object(ctx, a, 2, sem.OpenMutexFile)
	if err != nil {
		return err
	}
	defer mu.Close()
	sema, err := proc.Object(ctx, a, 3, sem.OpenSemaphoreFile)
	if err != nil {
		return err
	}
	defer sema.Close()
	ev, err := proc.Object(ctx, a, 4, sem.OpenEventFile)
	if err != nil {
		return err
	}
	defer ev.Close()
	bar, err := proc.Object(ctx, a, 5, sem.OpenBarrierFile)
	if err != nil {
		return err
	}
	defer bar.Close()
	cond, err := proc.Object(ctx, a, 6, sem.OpenCondFile)
	if err != nil {
		return err
	}
	defer cond.Close()
	val, err := proc.Object(ctx, a, 7, value.OpenFile[int64])
	if err != nil {
		return err
	}
	defer val.Close()
	arr, err := proc.Object(ctx, a, 8, array.OpenFile[int32])
	if err != nil {
		return err
	}
	defer arr.Close()
	q, err := proc.Object(ctx, a, 9, ring.OpenFile)
	if err != nil {
		return err
	}
	defer q.Close()
	// The pipe is not closed: Close ends both directions, and the
	// parent's Send of the ack could then return ErrClosed (a Put racing
	// with CloseWrite may, though its message arrives). CloseWrite ends
	// ours once the ack is in; the mapping goes with the process.
	pipe, err := proc.Object(ctx, a, 10, ring.OpenPipeFile)
	if err != nil {
		return err
	}

	if err := ev.Wait(ctx); err != nil { // the parent's start gate
		return err
	}
	b := seg.Bytes()
	for i := range objRounds {
		if err := mu.Lock(ctx); err != nil {
			return err
		}
		// A plain read-modify-write: only the Mutex keeps it exact.
		binary.LittleEndian.PutUint64(b[offCounter:], binary.LittleEndian.Uint64(b[offCounter:])+1)
		if err := mu.Unlock(); err != nil {
			return err
		}
		if err := val.Update(ctx, func(v *int64) { *v++ }); err != nil {
			return err
		}
		if err := sema.Release(); err != nil {
			return err
		}
		if err := q.Put(ctx, fmt.Appendf(nil, "%d:%d", idx, i)); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint64(b[idx*8:], uint64(1000+idx))
	arr.Set(idx, int32(42+idx))
	if _, err := bar.Wait(ctx); err != nil {
		return err
	}
	cm := cond.Mutex()
	if err := cm.Lock(ctx); err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[offReady:], binary.LittleEndian.Uint64(b[offReady:])+1)
	if err := cond.Broadcast(); err != nil {
		return err
	}
	if err := cm.Unlock(); err != nil {
		return err
	}
	if err := pipe.Send(ctx, fmt.Appendf(nil, "hello %d", idx)); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := pipe.Recv(ctx, buf)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("ack %d", idx); string(buf[:n]) != want {
		return fmt.Errorf("pipe: got %q, want %q", buf[:n], want)
	}
	return pipe.CloseWrite()
})

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestEveryObjectKind hands one object of every shmkit kind (segment,
// Mutex, Semaphore, Event, Barrier, Cond, Value, Array, Queue, a pipe
// end) to several workers at once, which use each, and checks by counting
// that every one reached them and works across the processes.
func TestEveryObjectKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seg := must[*shm.Segment](t)(shm.CreateAnonymous(objSegSize))
	defer seg.Close()
	mu := must[*sem.Mutex](t)(sem.CreateAnonymousMutex())
	defer mu.Close()
	sema := must[*sem.Semaphore](t)(sem.CreateAnonymousSemaphore(0, objWorkers*objRounds))
	defer sema.Close()
	ev := must[*sem.Event](t)(sem.CreateAnonymousEvent())
	defer ev.Close()
	bar := must[*sem.Barrier](t)(sem.CreateAnonymousBarrier(objWorkers))
	defer bar.Close()
	cond := must[*sem.Cond](t)(sem.CreateAnonymousCond())
	defer cond.Close()
	val := must[*value.Value[int64]](t)(value.CreateAnonymous[int64](0))
	defer val.Close()
	arr := must[*array.Array[int32]](t)(array.CreateAnonymous[int32](objWorkers))
	defer arr.Close()
	q := must[*ring.Queue](t)(ring.CreateAnonymous(ring.Config{}))
	defer q.Close()

	var ps []*proc.Process
	var pipes []*ring.Conn
	for i := range objWorkers {
		pipe := must[*ring.Conn](t)(ring.NewPipe(ring.Config{}))
		defer pipe.Close()
		pipes = append(pipes, pipe)
		ps = append(ps, mustStart(t, objectsWorker, i, seg, mu, sema, ev, bar, cond, val, arr, q, pipe))
	}
	for _, p := range ps { // a worker that fails ends the wait for it at once
		go func() {
			if p.Wait() != nil {
				cancel()
			}
		}()
	}
	t.Cleanup(func() { // on failure, say how the workers ended
		if t.Failed() {
			for _, p := range ps {
				_ = p.Kill()
				t.Logf("worker %d: %v", p.Pid(), p.Wait())
			}
		}
	})
	if err := ev.Set(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	buf := make([]byte, 64)
	for range objWorkers * objRounds {
		n, err := q.Get(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(buf[:n])] {
			t.Fatalf("message %q twice", buf[:n])
		}
		seen[string(buf[:n])] = true
		if err := sema.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, pipe := range pipes {
		n, err := pipe.Recv(ctx, buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("hello %d", i); string(buf[:n]) != want {
			t.Fatalf("pipe %d: %q, want %q", i, buf[:n], want)
		}
		if err := pipe.Send(ctx, fmt.Appendf(nil, "ack %d", i)); err != nil {
			t.Fatal(err)
		}
		if n, err := pipe.Recv(ctx, buf); err != io.EOF {
			t.Fatalf("pipe %d after the ack: %q, %v; want io.EOF", i, buf[:n], err)
		}
	}
	cm := cond.Mutex()
	if err := cm.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	for binary.LittleEndian.Uint64(seg.Bytes()[offReady:]) < objWorkers {
		if err := cond.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := cm.Unlock(); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	b := seg.Bytes()
	for i := range objWorkers {
		if got := binary.LittleEndian.Uint64(b[i*8:]); got != uint64(1000+i) {
			t.Errorf("segment marker %d = %d, want %d", i, got, 1000+i)
		}
		if got := arr.At(i); got != int32(42+i) {
			t.Errorf("arr[%d] = %d, want %d", i, got, 42+i)
		}
	}
	if got := binary.LittleEndian.Uint64(b[offCounter:]); got != objWorkers*objRounds {
		t.Errorf("counter under the Mutex = %d, want %d", got, objWorkers*objRounds)
	}
	if got := must[int64](t)(val.Load(ctx)); got != objWorkers*objRounds {
		t.Errorf("Value = %d, want %d", got, objWorkers*objRounds)
	}
	if len(seen) != objWorkers*objRounds || sema.Value() != 0 || q.Len() != 0 {
		t.Errorf("queue: %d distinct messages, semaphore %d, %d left; want %d, 0, 0", len(seen), sema.Value(), q.Len(), objWorkers*objRounds)
	}
}
