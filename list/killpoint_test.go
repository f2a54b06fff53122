package list

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/internal/testproc"
)

// Kill points for the list (see dict's killpoint_test.go): a writer is
// SIGKILLed at a chosen point of Append, Pop or a growth step, and the
// list must show its operation in flight applied or not as the point
// says, be repaired by the next writer, and end equal to the model.

const kpOps = 400

func kpPop(i int) bool { return i%4 == 3 }

func kpModel(n int) []elem {
	var l []elem
	for i := range n {
		if kpPop(i) {
			l = l[:len(l)-1]
		} else {
			l = append(l, mkelem(0, uint64(i)))
		}
	}
	return l
}

func kpDo(ctx context.Context, l *List[elem], i int) error {
	if kpPop(i) {
		_, err := l.Pop(ctx)
		return err
	}
	_, err := l.Append(ctx, mkelem(0, uint64(i)))
	return err
}

func init() {
	testproc.Register("list-killat", func(args []string) int {
		name, prog, point := args[0], args[1], args[2]
		nth, _ := strconv.Atoi(args[3])
		ctx := context.Background()
		l, pa, ok := openHelper(ctx, name, prog)
		if !ok {
			return 1
		}
		seen := 0
		kv.Hook = func(p string) {
			if p == point {
				if seen++; seen == nth {
					testproc.Printf("at %s", p)
					select {}
				}
			}
		}
		progress := array.AtomicOf(pa)
		for i := range kpOps {
			progress.StoreAt(0, uint64(i))
			if err := kpDo(ctx, l, i); err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
		}
		testproc.Printf("finished without reaching %s #%d", point, nth)
		return 0
	})
}

func TestKillPointsList(t *testing.T) {
	for _, c := range []struct {
		point   string
		nth     int
		applied bool
	}{
		{"append-slot", 100, false},
		{"pop-committed", 50, true},
		{"rebuild-copying", 3, false},
		{"rebuild-published", 4, false},
	} {
		t.Run(fmt.Sprintf("%s-%d", c.point, c.nth), func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("test-list-kp-%d", os.Getpid())
			l, err := Create[elem](name)
			if err != nil {
				t.Fatal(err)
			}
			defer Unlink(name)
			defer l.Close()
			prog := name + "-p"
			pa, err := array.Create[uint64](prog, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer array.Unlink(prog)
			defer pa.Close()
			p := testproc.Start(t, "list-killat", name, prog, c.point, strconv.Itoa(c.nth))
			if line := p.Line(t); line != "at "+c.point {
				t.Fatalf("writer: %s", line)
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
			check := func(n int) {
				t.Helper()
				got, err := l.Slice(0, l.Len())
				if err != nil {
					t.Fatal(err)
				}
				if want := kpModel(n); !slices.Equal(got, want) {
					t.Fatalf("%d elements, want %d (the model after %d ops)", len(got), len(want), n)
				}
			}
			check(done)
			r0 := kv.Repairs.Load()
			for i := done; i < kpOps; i++ {
				if err := kpDo(ctx, l, i); err != nil {
					t.Fatalf("op %d after the kill: %v", i, err)
				}
				if i == done {
					if r := kv.Repairs.Load() - r0; r != 1 {
						t.Fatalf("%d repairs by the next writer, want 1", r)
					}
					check(done + 1)
				}
			}
			check(kpOps)
			t.Logf("killed in op %d at %s; ops resumed from %d", inFlight, c.point, done)
		})
	}
}
