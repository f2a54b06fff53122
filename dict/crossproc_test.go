package dict

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/kv"
	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) { testproc.Main(m) }

// The cross-process test: P writer processes run a deterministic sequence
// of operations each (writer w's own keys, and a set of keys every writer
// updates, each in its own field), R reader processes load and range
// concurrently and check every value's checksum, and the test SIGKILLs
// writers at random moments, checks right after each kill that the
// victim's last operation is applied or not (never half), restarts it
// where it stopped, and at the end requires the map to equal the model.

const (
	xpShared   = 16   // keys every writer updates (field w of the value)
	xpOwn      = 1500 // keys of each writer
	xpSharedAt = 1 << 40
)

// xpOps is the number of operations of each writer; SHMKIT_STRESS=N
// multiplies it.
func xpOps() int {
	n := 40000
	if s, err := strconv.Atoi(os.Getenv("SHMKIT_STRESS")); err == nil && s > 1 {
		n *= s
	}
	return n
}

// xpOp is writer w's operation i: what it does to which key.
type xpOp struct {
	kind int // 0 store, 1 delete, 2 update shared, 3 load-or-store, 4 compare-and-swap
	key  uint64
}

func xpPlan(w, i int) xpOp {
	r := rand.New(rand.NewPCG(uint64(w), uint64(i)))
	k := r.IntN(10)
	switch {
	case k < 4:
		return xpOp{0, uint64(w*xpOwn + r.IntN(xpOwn))}
	case k < 6:
		return xpOp{1, uint64(w*xpOwn + r.IntN(xpOwn))}
	case k < 8:
		return xpOp{2, xpSharedAt + uint64(r.IntN(xpShared))}
	case k < 9:
		return xpOp{3, uint64(w*xpOwn + r.IntN(xpOwn))}
	default:
		return xpOp{4, uint64(w*xpOwn + r.IntN(xpOwn))}
	}
}

// xpModel is the state writer w's first n operations leave: its own keys'
// values, and its field of the shared keys.
type xpModel struct {
	own    map[uint64]val64
	shared [xpShared]uint64
}

func xpRun(w, n int) xpModel {
	m := xpModel{own: map[uint64]val64{}}
	for i := range n {
		op := xpPlan(w, i)
		switch op.kind {
		case 0:
			m.own[op.key] = mkval(op.key, uint64(i+1))
		case 1:
			delete(m.own, op.key)
		case 2:
			m.shared[op.key-xpSharedAt] = uint64(i + 1)
		case 3:
			if _, ok := m.own[op.key]; !ok {
				m.own[op.key] = mkval(op.key, uint64(i+1))
			}
		case 4:
			if _, ok := m.own[op.key]; ok {
				m.own[op.key] = mkval(op.key, uint64(i+1))
			}
		}
	}
	return m
}

// sharedVal is a shared key's value: field w is writer w's last update
// (Fill holds 5 writers), checksummed like every value.
func sharedVal(k uint64, fields [5]uint64) val64 {
	v := val64{Key: k, Fill: fields}
	v.Sum = v.check()
	return v
}

func init() {
	testproc.Register("dict-writer", func(args []string) int {
		name, prog := args[0], args[1]
		w, _ := strconv.Atoi(args[2])
		n, _ := strconv.Atoi(args[3])
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
		progress := array.AtomicOf(pa)
		start := int(progress.LoadAt(w))
		testproc.Printf("ready %d", start)
		for i := start; i < n; i++ {
			op := xpPlan(w, i)
			var err error
			switch op.kind {
			case 0:
				err = m.Store(ctx, op.key, mkval(op.key, uint64(i+1)))
			case 1:
				_, err = m.Delete(ctx, op.key)
			case 2:
				_, _, err = m.Update(ctx, op.key, func(old val64, ok bool) (val64, bool) {
					if ok && (old.Key != op.key || old.Sum != old.check()) {
						panic(fmt.Sprintf("torn shared value under the lock: %+v", old))
					}
					f := old.Fill
					f[w] = uint64(i + 1)
					return sharedVal(op.key, f), true
				})
			case 3:
				_, _, err = m.LoadOrStore(ctx, op.key, mkval(op.key, uint64(i+1)))
			case 4:
				var old val64
				var ok bool
				old, ok, err = m.Load(op.key)
				if err == nil && ok {
					_, err = m.CompareAndSwap(ctx, op.key, old, mkval(op.key, uint64(i+1)))
				}
			}
			if err != nil {
				testproc.Printf("error op %d: %v", i, err)
				return 1
			}
			progress.StoreAt(w, uint64(i+1))
		}
		testproc.Printf("done")
		testproc.Printf("repairs %d", kv.Repairs.Load())
		return 0
	})
	testproc.Register("dict-reader", func(args []string) int {
		name, prog := args[0], args[1]
		writers, _ := strconv.Atoi(args[2])
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
		stop := array.AtomicOf(pa)
		r := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
		check := func(k uint64, v val64) error {
			if v.Key != k || v.Sum != v.check() {
				return fmt.Errorf("torn value under %d: %+v", k, v)
			}
			return nil
		}
		testproc.Printf("ready")
		var loads, hits, ranges int
		for stop.LoadAt(len(pa.Slice())-1) == 0 {
			var k uint64
			if r.IntN(4) == 0 {
				k = xpSharedAt + uint64(r.IntN(xpShared))
			} else {
				k = uint64(r.IntN(writers * xpOwn))
			}
			v, ok, err := m.Load(k)
			if err == nil && ok {
				err = check(k, v)
				hits++
			}
			if err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
			loads++
			if loads%20000 == 0 {
				if err := m.Range(func(k uint64, v val64) bool { err = check(k, v); return err == nil }); err != nil {
					testproc.Printf("error range %v", err)
					return 1
				}
				ranges++
			}
		}
		testproc.Printf("reads %d hits %d ranges %d", loads, hits, ranges)
		return 0
	})
}

func TestCrossProcessKill(t *testing.T) {
	const writers, readers = 3, 2
	n := xpOps()
	name := fmt.Sprintf("test-dict-kill-%d", os.Getpid())
	prog := name + "-progress"
	m, err := Create[uint64, val64](name, WithShards(4))
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer m.Close()
	pa, err := array.Create[uint64](prog, writers+1)
	if err != nil {
		t.Fatal(err)
	}
	defer array.Unlink(prog)
	defer pa.Close()
	progress := array.AtomicOf(pa)

	var rs []*testproc.Proc
	for range readers {
		p := testproc.Start(t, "dict-reader", name, prog, strconv.Itoa(writers))
		p.Expect(t, "ready")
		rs = append(rs, p)
	}
	start := func(w int) *testproc.Proc {
		p := testproc.Start(t, "dict-writer", name, prog, strconv.Itoa(w), strconv.Itoa(n))
		if l := p.Line(t); len(l) < 6 || l[:6] != "ready " {
			t.Fatalf("writer %d: %q", w, l)
		}
		return p
	}
	ws := make([]*testproc.Proc, writers)
	for w := range ws {
		ws[w] = start(w)
	}
	// Kill writers at random moments until each has been killed a few
	// times or has finished.
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, repairs := 0, 0
	var mu sync.Mutex
	for round := 0; round < 15; round++ {
		w := r.IntN(writers)
		time.Sleep(time.Duration(r.IntN(4000)) * time.Microsecond)
		if int(progress.LoadAt(w)) >= n {
			continue
		}
		ws[w].Kill()
		err := ws[w].Wait()
		if !testproc.Killed(err) {
			if err != nil {
				t.Fatalf("writer %d: %v\n%s", w, err, ws[w].Stderr())
			}
			continue // it had finished
		}
		kills++
		p := int(progress.LoadAt(w))
		mu.Lock()
		xpCheckVictim(t, m, w, p)
		mu.Unlock()
		ws[w] = start(w)
	}
	for w, p := range ws {
		for {
			l := p.Line(t)
			if l == "done" {
				break
			}
			t.Fatalf("writer %d: %s", w, l)
		}
		l := p.Line(t)
		var rep int
		if _, err := fmt.Sscanf(l, "repairs %d", &rep); err != nil {
			t.Fatalf("writer %d: %s", w, l)
		}
		repairs += rep
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	progress.StoreAt(writers, 1)
	for _, p := range rs {
		l := p.Line(t)
		t.Logf("reader: %s", l)
		var loads, hits, ranges int
		if _, err := fmt.Sscanf(l, "reads %d hits %d ranges %d", &loads, &hits, &ranges); err != nil {
			t.Fatalf("reader: %s", l)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d writers x %d ops, %d kills, %d shards repaired by the last writers", writers, n, kills, repairs)

	// The final map equals the model.
	want := map[uint64]val64{}
	var fields [xpShared][5]uint64
	for w := range writers {
		md := xpRun(w, n)
		for k, v := range md.own {
			want[k] = v
		}
		for j, f := range md.shared {
			fields[j][w] = f
		}
	}
	for j, f := range fields {
		if f != ([5]uint64{}) {
			want[xpSharedAt+uint64(j)] = sharedVal(xpSharedAt+uint64(j), f)
		}
	}
	got := map[uint64]val64{}
	if err := m.Range(func(k uint64, v val64) bool { got[k] = v; return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || m.Len() != len(want) {
		t.Fatalf("%d entries (Len %d), want %d", len(got), m.Len(), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %d: %+v, want %+v", k, got[k], v)
		}
		if lv, ok, err := m.Load(k); err != nil || !ok || lv != v {
			t.Fatalf("Load %d: %+v %v %v", k, lv, ok, err)
		}
	}
}

// xpCheckVictim checks, right after writer w was killed having completed
// p operations, that its keys and fields show the state after p or after
// p+1 operations (the one it was inside applied or not), never anything
// else.
func xpCheckVictim(t *testing.T, m *Map[uint64, val64], w, p int) {
	t.Helper()
	before, after := xpRun(w, p), xpRun(w, p+1)
	match := func(md xpModel) error {
		for k := uint64(w * xpOwn); k < uint64((w+1)*xpOwn); k++ {
			v, ok, err := m.Load(k)
			if err != nil {
				return err
			}
			mv, mok := md.own[k]
			if ok != mok || v != mv {
				return fmt.Errorf("key %d: %+v %v, model %+v %v", k, v, ok, mv, mok)
			}
		}
		for j := range xpShared {
			k := xpSharedAt + uint64(j)
			v, ok, err := m.Load(k)
			if err != nil {
				return err
			}
			if got := v.Fill[w]; (ok || md.shared[j] != 0) && got != md.shared[j] {
				return fmt.Errorf("shared key %d field %d: %d, model %d", k, w, got, md.shared[j])
			}
		}
		return nil
	}
	e1 := match(before)
	if e1 == nil {
		return
	}
	if e2 := match(after); e2 != nil {
		t.Fatalf("writer %d killed after %d ops: neither before (%v) nor after (%v) its last op", w, p, e1, e2)
	}
	// Applied: the restarted writer redoes it, and every operation here
	// is idempotent (its result does not depend on the state it finds).

}
