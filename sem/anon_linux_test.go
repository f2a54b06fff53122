//go:build linux

package sem

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

const anonRounds = 200

// anonObject attaches a helper to the object of kind it was handed: as
// fd 4 (how == "file") or over the Unix socket at path (how == "sock").
func anonObject(kind, how, path string) shm.Shareable {
	ctx := wakeCtxFree()
	if how == "file" {
		f := os.NewFile(4, kind)
		switch kind {
		case "mutex":
			return orPanic(OpenMutexFile(ctx, f))
		case "semaphore":
			return orPanic(OpenSemaphoreFile(ctx, f))
		case "event":
			return orPanic(OpenEventFile(ctx, f))
		case "barrier":
			return orPanic(OpenBarrierFile(ctx, f))
		}
		panic(kind)
	}
	c := orPanic(net.Dial("unix", path)).(*net.UnixConn)
	defer c.Close()
	switch kind {
	case "mutex":
		return orPanic(ReceiveMutex(ctx, c))
	case "semaphore":
		return orPanic(ReceiveSemaphore(ctx, c))
	case "event":
		return orPanic(ReceiveEvent(ctx, c))
	case "barrier":
		return orPanic(ReceiveBarrier(ctx, c))
	}
	panic(kind)
}

// anonWork is one side's part of the counting check of each kind.
func anonWork(s *seg, obj shm.Shareable, parent bool) error {
	ctx := wakeCtxFree()
	switch o := obj.(type) {
	case *Mutex:
		for range anonRounds {
			if err := o.Lock(ctx); err != nil {
				return err
			}
			*s.u64(segCounter)++ // plain: only the Mutex protects it
			if err := o.Unlock(); err != nil {
				return err
			}
		}
	case *Semaphore:
		for range anonRounds {
			var err error
			if parent {
				err = o.Acquire(ctx)
			} else {
				err = o.Release()
			}
			if err != nil {
				return err
			}
		}
	case *Event:
		if parent {
			return o.Set()
		}
		if err := o.Wait(ctx); err != nil {
			return err
		}
		*s.u64(segCounter)++
	case *Barrier:
		return barrierRounds(s, o)
	}
	return nil
}

func init() {
	// anon KIND HOW [PATH]: attach to the object handed over and do the
	// child's part of anonWork.
	testproc.Register("anon", func(args []string) int {
		s := childSeg()
		obj := anonObject(args[0], args[1], args[2])
		if obj.File() == nil || obj.Segment() == nil || obj.Segment().Name() != "" {
			panic("an anonymous object without its file")
		}
		if err := anonWork(s, obj, false); err != nil {
			panic(err)
		}
		return 0
	})
}

// Each kind, created anonymously here, used from a child that inherits
// it (ExtraFiles) and from a process that receives it over a Unix socket,
// with counts checked on both sides.
func TestAnonymousHandOver(t *testing.T) {
	kinds := map[string]func() (shm.Shareable, error){
		"mutex":     func() (shm.Shareable, error) { return CreateAnonymousMutex() },
		"semaphore": func() (shm.Shareable, error) { return CreateAnonymousSemaphore(0, 0) },
		"event":     func() (shm.Shareable, error) { return CreateAnonymousEvent() },
		"barrier":   func() (shm.Shareable, error) { return CreateAnonymousBarrier(2) },
	}
	for kind, create := range kinds {
		for _, how := range []string{"file", "sock"} {
			t.Run(kind+"/"+how, func(t *testing.T) {
				s := newSeg(t)
				obj, err := create()
				if err != nil {
					t.Fatal(err)
				}
				defer obj.(interface{ Close() error }).Close()
				if obj.File() == nil || obj.Segment() == nil {
					t.Fatal("no file")
				}
				path := filepath.Join(t.TempDir(), "sock")
				cmd := s.cmd(t, "anon", kind, how, path)
				var ln *net.UnixListener
				if how == "file" {
					cmd.ExtraFiles = append(cmd.ExtraFiles, obj.File())
				} else {
					ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
					if err != nil {
						t.Fatal(err)
					}
					defer ln.Close()
				}
				p := testproc.StartCmd(t, "anon", cmd)
				if ln != nil {
					c, err := ln.AcceptUnix()
					if err != nil {
						t.Fatal(err)
					}
					err = obj.Segment().Send(c)
					c.Close()
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := anonWork(s, obj, true); err != nil {
					t.Fatal(err)
				}
				if err := p.Wait(); err != nil {
					t.Fatal(err)
				}
				switch o := obj.(type) {
				case *Mutex:
					if got := *s.u64(segCounter); got != 2*anonRounds {
						t.Fatalf("counter %d, want %d", got, 2*anonRounds)
					}
				case *Semaphore:
					if ok, err := o.TryAcquire(); ok || err != nil || o.Value() != 0 {
						t.Fatalf("after %d releases and acquires: TryAcquire %v, %v; value %d", anonRounds, ok, err, o.Value())
					}
				case *Event:
					if *s.u64(segCounter) != 1 {
						t.Fatal("child did not see the Set")
					}
				case *Barrier:
					checkMasks(t, s, 2)
				}
			})
		}
	}
}

// OpenXFile of another kind's segment is a kind mismatch; Unlink removes
// a named object; File and Segment are nil for Init/At objects and File
// after Close.
func TestHandOverMismatchAndUnlink(t *testing.T) {
	e := must[*Event](t)(CreateAnonymousEvent())
	defer e.Close()
	if _, err := OpenMutexFile(context.Background(), e.File()); !errors.Is(err, shm.ErrKind) {
		t.Fatalf("OpenMutexFile of an event = %v", err)
	}
	c := must[*Cond](t)(CreateAnonymousCond())
	if c.Mutex().Segment() != nil || c.Mutex().File() != nil {
		t.Fatal("a Cond's Mutex has its own segment")
	}
	c2 := must[*Cond](t)(OpenCondFile(context.Background(), c.File()))
	if err := c2.Mutex().Lock(nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Mutex().TryLock(); ok {
		t.Fatal("the Cond segment's Mutex is not shared")
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Mutex().Unlock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("the Mutex of a closed Cond: %v", err)
	}
	if err := c.Close(); err != nil || c.File() != nil {
		t.Fatalf("Close: %v, File %v", err, c.File())
	}
	name := testName(t)
	b := must[*Barrier](t)(CreateBarrier(name, 3))
	b2 := must[*Barrier](t)(OpenBarrier(context.Background(), name))
	if b2.Parties() != 3 || b2.Segment().Name() != name {
		t.Fatalf("opened barrier: %d parties, name %q", b2.Parties(), b2.Segment().Name())
	}
	b.Close()
	b2.Close()
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBarrier(context.Background(), name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenBarrier after Unlink = %v", err)
	}
	if err := Unlink(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Unlink = %v", err)
	}
	if _, err := CreateMutex(""); !errors.Is(err, shm.ErrInvalidName) {
		t.Fatalf("CreateMutex(\"\") = %v", err)
	}
}

// No error of an Open names the operation twice ("open ... open").
func TestOpenErrorsNoStutter(t *testing.T) {
	name := testName(t)
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ev := must[*Event](t)(CreateEvent(name + "-e"))
	defer ev.Close()
	for what, err := range map[string]error{
		"missing":        second(OpenMutex(context.Background(), name+"-missing")),
		"kind":           second(OpenMutex(context.Background(), name+"-e")),
		"done ctx":       second(OpenMutexFile(done, nil)),
		"regular file":   second(OpenMutexFile(context.Background(), f)),
		"exists":         second(CreateEvent(name + "-e")),
		"barrier config": second(CreateAnonymousBarrier(0)),
	} {
		if err == nil {
			t.Errorf("%s: no error", what)
			continue
		}
		msg := err.Error()
		for _, op := range []string{"open", "receive", "create"} {
			if i := strings.Index(msg, op+" "); i >= 0 && strings.Contains(msg[i+len(op):], op+" ") {
				t.Errorf("%s: %q says %q twice", what, msg, op)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }
