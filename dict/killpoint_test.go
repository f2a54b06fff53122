package dict

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/internal/testproc"
)

// Kill points: a writer process stops at a chosen point of the write path
// (kv.Hook), is SIGKILLed there, and the test checks what it left: its
// operation in flight applied or not as the point says, the map otherwise
// intact, and the next writer repairing the shard (counts recomputed, a
// rebuild in flight abandoned) and carrying on to the exact final model.

const kpOps = 600

// kpOp is operation i of the script: a store of key k, or a delete.
func kpOp(i int) (k uint64, del bool) { return uint64(i*7) % 257, i%5 == 4 }

func kpModel(n int) map[uint64]val64 {
	m := map[uint64]val64{}
	for i := range n {
		k, del := kpOp(i)
		if del {
			delete(m, k)
		} else {
			m[k] = mkval(k, uint64(i+1))
		}
	}
	return m
}

func kpDo(ctx context.Context, m *Map[uint64, val64], i int) error {
	k, del := kpOp(i)
	if del {
		_, err := m.Delete(ctx, k)
		return err
	}
	return m.Store(ctx, k, mkval(k, uint64(i+1)))
}

func init() {
	testproc.Register("dict-killat", func(args []string) int {
		name, prog, point := args[0], args[1], args[2]
		nth, _ := strconv.Atoi(args[3])
		ctx := context.Background()
		m, err := Open[uint64, val64](ctx, name)
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		pa, err := array.Open[uint64](ctx, prog)
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		seen := 0
		kv.Hook = func(p string) {
			if p == point {
				if seen++; seen == nth {
					testproc.Printf("at %s", p)
					select {} // until SIGKILL
				}
			}
		}
		progress := array.AtomicOf(pa)
		for i := range kpOps {
			progress.StoreAt(0, uint64(i)) // op i begins
			if err := kpDo(ctx, m, i); err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
		}
		testproc.Printf("finished without reaching %s #%d", point, nth)
		return 0
	})
}

func TestKillPoints(t *testing.T) {
	for _, c := range []struct {
		point   string
		nth     int
		applied bool // whether the op in flight has taken effect there
	}{
		{"put-written", 150, false},
		{"put-committed", 150, true},
		{"delete-committed", 20, true},
		{"rebuild-copying", 3, false},
		{"rebuild-published", 3, false},
		{"rebuild-copying", 6, false},
	} {
		t.Run(fmt.Sprintf("%s-%d", c.point, c.nth), func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("test-dict-kp-%d", os.Getpid())
			m, err := Create[uint64, val64](name, WithShards(1))
			if err != nil {
				t.Fatal(err)
			}
			defer Unlink(name)
			defer m.Close()
			prog := name + "-p"
			pa, err := array.Create[uint64](prog, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer array.Unlink(prog)
			defer pa.Close()
			p := testproc.Start(t, "dict-killat", name, prog, c.point, strconv.Itoa(c.nth))
			if l := p.Line(t); l != "at "+c.point {
				t.Fatalf("writer: %s", l)
			}
			p.Kill()
			if err := p.Wait(); !testproc.Killed(err) {
				t.Fatalf("writer: %v", err)
			}
			inFlight := int(array.AtomicOf(pa).LoadAt(0))
			done := inFlight
			if c.applied {
				done++
			}
			// Readers see exactly the state after done operations, before
			// any repair.
			kpCheck(t, m, kpModel(done), false)
			// The next write takes the lock over and repairs; then the
			// script resumes with the next operation.
			r0 := kv.Repairs.Load()
			for i := done; i < kpOps; i++ {
				if err := kpDo(ctx, m, i); err != nil {
					t.Fatalf("op %d after the kill: %v", i, err)
				}
				if i == done {
					if r := kv.Repairs.Load() - r0; r != 1 {
						t.Fatalf("%d repairs by the next writer, want 1", r)
					}
					kpCheck(t, m, kpModel(done+1), true)
				}
			}
			kpCheck(t, m, kpModel(kpOps), true)
			t.Logf("killed in op %d at %s; ops resumed from %d", inFlight, c.point, done)
		})
	}
}

// kpCheck requires m to hold exactly want; with counted, Len too (a
// writer killed between its commit and its count update leaves Len off
// until the next writer's repair).
func kpCheck(t *testing.T, m *Map[uint64, val64], want map[uint64]val64, counted bool) {
	t.Helper()
	got := map[uint64]val64{}
	if err := m.Range(func(k uint64, v val64) bool { got[k] = v; return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		lv, ok, err := m.Load(k)
		if err != nil || !ok || lv != v || got[k] != v {
			t.Fatalf("key %d: %+v %v %v (range %+v), want %+v", k, lv, ok, err, got[k], v)
		}
	}
	if counted && m.Len() != len(want) {
		t.Fatalf("Len %d, want %d", m.Len(), len(want))
	}
}
