package list

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/testproc"
)

// Random kills inside every kind of list operation, with exact
// accounting: one writer process at a time runs a fixed sequence of
// Appends, Pops and Sets and is SIGKILLed at random moments; after each
// kill the list must equal the model after the ops before the one in
// flight, or after that one too (applied or not, never half), and the
// next writer carries on from there. Reader processes read meanwhile
// (Get at random indices, and Range) and check that every element is
// whole and that none is one whose operation was judged not applied: an
// element is (attempt, op), attempt counting the writers started, so a
// redone op writes a different element than the one that died with its
// writer.

const (
	roAppend = iota
	roPop
	roSet
)

func roKind(i int) int {
	switch {
	case i%4 == 3:
		return roPop
	case i%7 == 5:
		return roSet
	}
	return roAppend
}

// roModel is the list's ops after the first n ops, as each element's op.
func roModel(n int) []uint64 {
	var l []uint64
	for i := range n {
		switch roKind(i) {
		case roPop:
			if len(l) > 0 {
				l = l[:len(l)-1]
			}
		case roSet:
			if len(l) > 0 {
				l[i%len(l)] = uint64(i)
			}
		default:
			l = append(l, uint64(i))
		}
	}
	return l
}

// roDo runs op i with elements of the given attempt.
func roDo(ctx context.Context, l *List[elem], i int, attempt uint64) error {
	switch roKind(i) {
	case roPop:
		if _, err := l.Pop(ctx); err != nil && !errors.Is(err, ErrIndex) {
			return err
		}
		return nil
	case roSet:
		if n := l.Len(); n > 0 {
			return l.Set(ctx, i%n, mkelem(attempt, uint64(i)))
		}
		return nil
	}
	_, err := l.Append(ctx, mkelem(attempt, uint64(i)))
	return err
}

func roOps() int { return listOps() / 2 }

func init() {
	testproc.Register("list-ops-writer", func(args []string) int {
		ctx := context.Background()
		l, pa, ok := openHelper(ctx, args[0], args[1])
		if !ok {
			return 1
		}
		from, _ := strconv.Atoi(args[2])
		attempt, _ := strconv.ParseUint(args[3], 10, 64)
		progress := array.AtomicOf(pa)
		testproc.Printf("ready")
		for i := from; i < roOps(); i++ {
			progress.StoreAt(0, uint64(i))
			if err := roDo(ctx, l, i, attempt); err != nil {
				testproc.Printf("error op %d: %v", i, err)
				return 1
			}
		}
		testproc.Printf("done")
		return 0
	})
	testproc.Register("list-ops-reader", func(args []string) int {
		ctx := context.Background()
		l, sa, ok := openHelper(ctx, args[0], args[1])
		if !ok {
			return 1
		}
		ctl := array.AtomicOf(sa)
		seen := map[[2]uint64]bool{}
		look := func(e elem) error {
			if !e.valid() {
				return fmt.Errorf("torn element %+v", e)
			}
			seen[[2]uint64{e.W, e.Seq}] = true
			return nil
		}
		r := rand.New(rand.NewPCG(uint64(os.Getpid()), 3))
		testproc.Printf("ready")
		reads := 0
		for ctl.LoadAt(0) == 0 {
			var err error
			if reads%64 == 63 {
				err = l.Range(func(_ int, e elem) bool {
					err = look(e)
					return err == nil
				})
			} else if n := l.Len(); n > 0 {
				var e elem
				if e, err = l.Get(r.IntN(n)); errors.Is(err, ErrIndex) {
					err = nil // popped since Len
				} else if err == nil {
					err = look(e)
				}
			}
			if err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
			reads++
		}
		// The elements whose operation was not applied: [1] holds their
		// count, then (attempt, op) pairs.
		for k := range int(ctl.LoadAt(1)) {
			a, op := ctl.LoadAt(2+2*k), ctl.LoadAt(3+2*k)
			if seen[[2]uint64{a, op}] {
				testproc.Printf("error saw element (attempt %d, op %d), whose operation was not applied", a, op)
				return 1
			}
		}
		testproc.Printf("reads %d, %d elements seen", reads, len(seen))
		return 0
	})
}

func TestCrossProcessRandomKillOps(t *testing.T) {
	const readers, kills = 2, 20
	n := roOps()
	name := fmt.Sprintf("test-list-ro-%d", os.Getpid())
	l, err := Create[elem](name)
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer l.Close()
	prog, ctlName := name+"-p", name+"-c"
	pa, err := array.Create[uint64](prog, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer array.Unlink(prog)
	defer pa.Close()
	ca, err := array.Create[uint64](ctlName, 2+2*kills)
	if err != nil {
		t.Fatal(err)
	}
	defer array.Unlink(ctlName)
	defer ca.Close()
	ctl := array.AtomicOf(ca)

	var rs []*testproc.Proc
	for range readers {
		p := testproc.Start(t, "list-ops-reader", name, ctlName)
		p.Expect(t, "ready")
		rs = append(rs, p)
	}
	attempt := uint64(0)
	start := func(from int) *testproc.Proc {
		p := testproc.Start(t, "list-ops-writer", name, prog, strconv.Itoa(from), strconv.FormatUint(attempt, 10))
		p.Expect(t, "ready")
		return p
	}
	seqs := func() []uint64 {
		t.Helper()
		got, err := l.Slice(0, l.Len())
		if err != nil {
			t.Fatal(err)
		}
		s := make([]uint64, len(got))
		for i, e := range got {
			if !e.valid() {
				t.Fatalf("torn element %d: %+v", i, e)
			}
			s[i] = e.Seq
		}
		return s
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	w := start(0)
	notApplied, applied, finished := 0, 0, false
	var byKind [3]int // kills in Appends, Pops, Sets
	for range kills {
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		w.Kill()
		if err := w.Wait(); !testproc.Killed(err) {
			if err != nil {
				t.Fatalf("writer: %v\n%s", err, w.Stderr())
			}
			finished = true
			break
		}
		op := int(array.AtomicOf(pa).LoadAt(0))
		byKind[roKind(op)]++
		got := seqs()
		next := op
		switch {
		case slices.Equal(got, roModel(op+1)):
			next, applied = op+1, applied+1
		case slices.Equal(got, roModel(op)):
			if roKind(op) != roPop {
				k := ctl.LoadAt(1)
				ctl.StoreAt(2+2*int(k), attempt)
				ctl.StoreAt(3+2*int(k), uint64(op))
				ctl.StoreAt(1, k+1)
			}
			notApplied++
		default:
			t.Fatalf("killed in op %d (kind %d): the list (%d elements) is neither the model before it (%d) nor after it (%d)",
				op, roKind(op), len(got), len(roModel(op)), len(roModel(op+1)))
		}
		attempt++
		w = start(next)
	}
	if !finished {
		if line := w.Line(t); line != "done" {
			t.Fatalf("writer: %s", line)
		}
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	ctl.StoreAt(0, 1)
	for _, p := range rs {
		line := p.Line(t)
		t.Logf("reader: %s", line)
		if err := p.Wait(); err != nil {
			t.Fatalf("reader: %v (%s)", err, line)
		}
	}
	if got := seqs(); !slices.Equal(got, roModel(n)) {
		t.Fatalf("final list of %d elements differs from the model's %d", len(got), len(roModel(n)))
	}
	t.Logf("%d ops, %d kills (%d in an Append, %d in a Pop, %d in a Set): %d in-flight ops applied, %d not",
		n, applied+notApplied, byKind[roAppend], byKind[roPop], byKind[roSet], applied, notApplied)
}
