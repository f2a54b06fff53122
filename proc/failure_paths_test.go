package proc_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/proc"
	"github.com/shmkit/shmkit/ring"
)

// hookCodec is ring.Gob with a hook the parent may set, called before
// each Marshal: it lets a test hold the pool's encoder (p.mu unlocked, in
// feedLocked) at a chosen moment. Workers never set it.
type hookCodec struct{}

var marshalHook atomic.Pointer[func()]

func (hookCodec) Marshal(v any) ([]byte, error) {
	if h := marshalHook.Load(); h != nil {
		(*h)()
	}
	return ring.Gob.Marshal(v)
}
func (hookCodec) Unmarshal(b []byte, v any) error { return ring.Gob.Unmarshal(b, v) }

var lenTask = proc.RegisterTask("pooltest.lenhook", func(ctx context.Context, s string) (int, error) {
	return len(s), nil
}).WithCodec(hookCodec{})

// TestPoolTerminateDuringChunkCut: Terminate lands while a slot encodes a
// chunk that is too large for MaxMessage, so that the encoder cuts it
// after terminate() has failed every pending task. The cut-off rest must
// be failed too, not put back where nobody takes it (the Map hung).
func TestPoolTerminateDuringChunkCut(t *testing.T) {
	p, err := proc.NewPool(context.Background(), lenTask, proc.PoolConfig{Workers: 1, ChunkSize: 8, MaxMessage: 4096})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	hook := func() {
		if once.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	marshalHook.Store(&hook)
	defer marshalHook.Store(nil)

	in := make([]string, 8)
	for i := range in {
		in[i] = strings.Repeat("x", 1000) // 8 KB in one chunk: cut in the encoder
	}
	mapDone := make(chan error, 1)
	go func() {
		_, err := p.Map(context.Background(), in)
		mapDone <- err
	}()
	<-entered // the encoder holds the chunk, p.mu unlocked
	termDone := make(chan struct{})
	go func() { p.Terminate(); close(termDone) }()
	// Wait until terminate() has run its locked part (the pool is closed).
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := p.Submit(context.Background(), "").Get(context.Background()); errors.Is(err, proc.ErrClosed) {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the pool did not close")
		}
	}
	close(release)
	select {
	case <-termDone:
	case <-time.After(10 * time.Second):
		t.Fatal("Terminate did not return")
	}
	select {
	case err := <-mapDone:
		if !errors.Is(err, proc.ErrClosed) || len(proc.TaskErrors(err)) != len(in) {
			t.Fatalf("Map after Terminate: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Map never returned after Terminate: the cut-off rest of its chunk was put back on a terminated pool")
	}
}

// spawnTask starts a grandchild that inherits the worker's stdout (as a
// task running a tool with cmd.Stdout = os.Stdout does) and returns its pid.
var spawnTask = proc.RegisterTask("pooltest.spawn", func(ctx context.Context, secs int) (int, error) {
	cmd := exec.Command("sleep", strconv.Itoa(secs))
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
})

// TestPoolTerminateGrandchildHoldsStdout: Terminate "kills the workers
// now" and returns when they are reaped, even when a grandchild (which
// PDEATHSIG does not reach) holds the worker's stdout pipe open: the
// copying ends a grace period after the worker's death (Terminate took
// the grandchild's whole life).
func TestPoolTerminateGrandchildHoldsStdout(t *testing.T) {
	p, err := proc.NewPool(context.Background(), spawnTask, proc.PoolConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Map(context.Background(), []int{9})
	if err != nil {
		p.Terminate()
		t.Fatal(err)
	}
	gc := out[0]
	defer syscall.Kill(gc, syscall.SIGKILL)
	start := time.Now()
	p.Terminate()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Terminate took %v: it waited for the worker's grandchild (pid %d) to close the stdout pipe", d, gc)
	}
}

// bigErrFunc returns an error of 20,000 '<' characters (json.Marshal
// writes each as \u003c: six bytes) or panics with one of 20,000.
var bigErrFunc = proc.Register("proctest.bigerr", func(ctx context.Context, a *proc.Args) error {
	var mode string
	if err := a.Decode(0, &mode); err != nil {
		return err
	}
	if mode == "panic" {
		panic(strings.Repeat("<", 20000))
	}
	return errors.New(strings.Repeat("<", 20000))
})

// TestStatusEscapedMessage: a worker's error or panic whose JSON escaping
// is six times its length ('<') still reaches Wait's ExitError, cut to
// fit the event ring's MaxMessage (the status was bounded by the raw
// length, so its Put failed and both came back empty).
func TestStatusEscapedMessage(t *testing.T) {
	for _, mode := range []string{"err", "panic"} {
		p, err := bigErrFunc.Start(context.Background(), mode)
		if err != nil {
			t.Fatal(err)
		}
		ee := asExit(t, p.Wait())
		if got := ee.Err + ee.Panic; !strings.HasPrefix(got, "<<<<") || !strings.HasSuffix(got, "...(truncated)") {
			t.Errorf("%s: ExitError lost the function's message (Err %d bytes, Panic %d bytes, code %d): %v", mode, len(ee.Err), len(ee.Panic), ee.Code, ee)
		}
	}
}
