package refring

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

const testSlots = 1024

func init() {
	// child: consume|pong N size batch, memory on fd 3.
	testproc.Register("refring-peer", func(args []string) int {
		n, _ := strconv.Atoi(args[1])
		size, _ := strconv.Atoi(args[2])
		batch, _ := strconv.Atoi(args[3])
		f := os.NewFile(3, "mem")
		var err error
		switch args[0] {
		case "consume":
			var mem []byte
			if mem, err = MapFile(f, Size(testSlots)); err == nil {
				testproc.Printf("ready")
				err = Consume(mem, testSlots, n, size, batch)
			}
		case "pong":
			var mem []byte
			if mem, err = MapFile(f, PingSize); err == nil {
				testproc.Printf("ready")
				err = Pong(mem, n)
			}
		}
		if err != nil {
			testproc.Printf("error: %v", err)
			return 1
		}
		testproc.Printf("done")
		return 0
	})
}

// startPeer maps fresh memory and starts the child side on it.
func startPeer(tb testing.TB, size int, args ...string) ([]byte, *testproc.Proc) {
	tb.Helper()
	mem, f, err := Anonymous(size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { Unmap(mem); f.Close() })
	cmd := testproc.Command(tb, "refring-peer", args...)
	cmd.ExtraFiles = []*os.File{f}
	p := testproc.StartCmd(tb, "refring-peer", cmd)
	p.Expect(tb, "ready")
	return mem, p
}

func TestProduceConsume(t *testing.T) {
	for _, batch := range []int{1, 16} {
		const n = 200000
		// A memfd starts zeroed, which is Init's state.
		mem, p := startPeer(t, Size(testSlots), "consume", strconv.Itoa(n), "64", strconv.Itoa(batch))
		if err := Produce(mem, testSlots, n, 64, batch); err != nil {
			t.Fatal(err)
		}
		p.Expect(t, "done")
	}
}

func TestPingPong(t *testing.T) {
	const n = 1000
	mem, p := startPeer(t, PingSize, "pong", strconv.Itoa(n), "0", "0")
	d, err := Ping(mem, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != n {
		t.Fatalf("got %d round trips", len(d))
	}
	p.Expect(t, "done")
}

func TestLayout(t *testing.T) {
	if _, err := NewProducer(make([]byte, 10), 3); err != ErrLayout {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkRing64(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			mem, p := startPeer(b, Size(testSlots), "consume", strconv.Itoa(b.N), "64", strconv.Itoa(batch))
			b.SetBytes(64)
			b.ResetTimer()
			if err := Produce(mem, testSlots, b.N, 64, batch); err != nil {
				b.Fatal(err)
			}
			p.Expect(b, "done")
		})
	}
}

// BenchmarkCRing runs the same ring written in C (testdata/cring.c,
// built with the system's C compiler; skipped without one) with b.N
// messages of 64 bytes between two pinned processes, so that
// BenchmarkRefRing in package ring can be compared with a bare C ring on
// the same machine (ns/op per message).
func BenchmarkCRing(b *testing.B) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		b.Skip("no C compiler (cc) to build testdata/cring.c")
	}
	exe := filepath.Join(b.TempDir(), "cring")
	if out, err := exec.Command(cc, "-O2", "-o", exe, "testdata/cring.c").CombinedOutput(); err != nil {
		b.Fatalf("cc: %v\n%s", err, out)
	}
	args := []string{strconv.Itoa(b.N)}
	if runtime.NumCPU() >= 2 {
		args = append(args, "0", "1")
	}
	b.SetBytes(SlotSize)
	b.ResetTimer()
	out, err := exec.Command(exe, args...).Output()
	b.StopTimer()
	if err != nil {
		b.Fatalf("cring: %v", err)
	}
	var n, ns int64
	if _, err := fmt.Sscanf(string(out), "%d messages in %d ns", &n, &ns); err != nil || n != int64(b.N) {
		b.Fatalf("cring printed %q", out)
	}
	b.ReportMetric(float64(ns)/float64(n), "ring-ns/msg") // the C program's own timing, without the build and fork
}
