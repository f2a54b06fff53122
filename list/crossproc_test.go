package list

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// elem is what the cross-process test appends: who, which, and a checksum
// of both and the filler, so that a torn element shows.
type elem struct {
	W, Seq uint64
	Fill   [4]uint64
	Sum    uint64
}

func mkelem(w, seq uint64) elem {
	e := elem{W: w, Seq: seq}
	for i := range e.Fill {
		e.Fill[i] = w*1000003 + seq*31 + uint64(i)
	}
	e.Sum = e.check()
	return e
}

func (e elem) check() uint64 {
	s := e.W*0x9e3779b97f4a7c15 ^ e.Seq
	for _, f := range e.Fill {
		s = s*1099511628211 ^ f
	}
	return s
}

func (e elem) valid() bool { return e.Sum == e.check() }

func listOps() int {
	n := 20000
	if s, err := strconv.Atoi(os.Getenv("SHMKIT_STRESS")); err == nil && s > 1 {
		n *= s
	}
	return n
}

// openHelper opens, in a helper process, the list and the array of
// uint64 named; on an error it prints it for the parent and returns false.
func openHelper(ctx context.Context, list, arr string) (*List[elem], *array.Array[uint64], bool) {
	l, err := Open[elem](ctx, list)
	if err != nil {
		testproc.Printf("error %v", err)
		return nil, nil, false
	}
	a, err := array.Open[uint64](ctx, arr)
	if err != nil {
		l.Close()
		testproc.Printf("error %v", err)
		return nil, nil, false
	}
	return l, a, true
}

// ownSeqs returns writer w's sequence numbers in list order.
func ownSeqs(l *List[elem], w uint64) ([]uint64, error) {
	var seqs []uint64
	var bad error
	err := l.Range(func(i int, e elem) bool {
		if !e.valid() {
			bad = fmt.Errorf("torn element %d: %+v", i, e)
			return false
		}
		if e.W == w {
			seqs = append(seqs, e.Seq)
		}
		return true
	})
	if err == nil {
		err = bad
	}
	return seqs, err
}

func init() {
	testproc.Register("list-writer", func(args []string) int {
		name := args[0]
		w, _ := strconv.ParseUint(args[1], 10, 64)
		n, _ := strconv.ParseUint(args[2], 10, 64)
		ctx := context.Background()
		l, err := Open[elem](ctx, name)
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		// Resume after the last element of ours in the list.
		seqs, err := ownSeqs(l, w)
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		next := uint64(len(seqs))
		testproc.Printf("ready %d", next)
		for ; next < n; next++ {
			if _, err := l.Append(ctx, mkelem(w, next)); err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
		}
		testproc.Printf("done")
		return 0
	})
	testproc.Register("list-reader", func(args []string) int {
		ctx := context.Background()
		l, sa, ok := openHelper(ctx, args[0], args[1])
		if !ok {
			return 1
		}
		stop := array.AtomicOf(sa)
		r := rand.New(rand.NewPCG(uint64(os.Getpid()), 2))
		testproc.Printf("ready")
		gets := 0
		for stop.LoadAt(0) == 0 {
			n := l.Len()
			if n == 0 {
				continue
			}
			i := r.IntN(n)
			e, err := l.Get(i)
			if err != nil {
				testproc.Printf("error get %d of %d: %v", i, n, err)
				return 1
			}
			if !e.valid() {
				testproc.Printf("error torn element %d: %+v", i, e)
				return 1
			}
			gets++
		}
		testproc.Printf("gets %d", gets)
		return 0
	})
}

func TestCrossProcessKillList(t *testing.T) {
	const writers, readers = 3, 2
	n := listOps()
	name := fmt.Sprintf("test-list-kill-%d", os.Getpid())
	l, err := Create[elem](name)
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer l.Close()
	stopName := name + "-stop"
	sa, err := array.Create[uint64](stopName, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer array.Unlink(stopName)
	defer sa.Close()

	var rs []*testproc.Proc
	for range readers {
		p := testproc.Start(t, "list-reader", name, stopName)
		p.Expect(t, "ready")
		rs = append(rs, p)
	}
	start := func(w int) *testproc.Proc {
		p := testproc.Start(t, "list-writer", name, strconv.Itoa(w), strconv.Itoa(n))
		if l := p.Line(t); len(l) < 6 || l[:6] != "ready " {
			t.Fatalf("writer %d: %q", w, l)
		}
		return p
	}
	ws := make([]*testproc.Proc, writers)
	for w := range ws {
		ws[w] = start(w)
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	kills := 0
	finished := make([]bool, writers)
	for range 15 {
		w := r.IntN(writers)
		time.Sleep(time.Duration(r.IntN(4000)) * time.Microsecond)
		if finished[w] {
			continue
		}
		ws[w].Kill()
		err := ws[w].Wait()
		if !testproc.Killed(err) {
			if err != nil {
				t.Fatalf("writer %d: %v\n%s", w, err, ws[w].Stderr())
			}
			finished[w] = true // it had finished before the kill
			continue
		}
		kills++
		// Right after the kill: the victim's elements are 0, 1, ... in
		// order, each whole, with nothing missing or doubled.
		seqs, err := ownSeqs(l, uint64(w))
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range seqs {
			if s != uint64(i) {
				t.Fatalf("writer %d killed: element %d of its %d has seq %d", w, i, len(seqs), s)
			}
		}
		ws[w] = start(w)
	}
	for w, p := range ws {
		if finished[w] {
			continue
		}
		if l := p.Line(t); l != "done" {
			t.Fatalf("writer %d: %s", w, l)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	array.AtomicOf(sa).StoreAt(0, 1)
	for _, p := range rs {
		t.Logf("reader: %s", p.Line(t))
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if l.Len() != writers*n {
		t.Fatalf("length %d, want %d", l.Len(), writers*n)
	}
	for w := range writers {
		seqs, err := ownSeqs(l, uint64(w))
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) != n {
			t.Fatalf("writer %d: %d elements, want %d", w, len(seqs), n)
		}
		for i, s := range seqs {
			if s != uint64(i) {
				t.Fatalf("writer %d: element %d has seq %d", w, i, s)
			}
		}
	}
	t.Logf("%d writers x %d appends, %d kills", writers, n, kills)
}
