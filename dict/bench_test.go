package dict

// Benchmarks of the shared map against the in-process maps a Go program
// would otherwise use, side by side in one run, with allocations:
//
//	go test -run '^$' -bench . -benchtime 1s ./dict/
//
//	BenchmarkDict/8B-64B/{dict,syncmap,rwmap}/{load-hit,load-miss,store,load-parallel}
//	    Map[uint64, [64]byte] against sync.Map and map+sync.RWMutex
//	BenchmarkDict/32B-1KiB/{dict,syncmap,rwmap}/{...}
//	    Bytes (32-byte string keys, 1 KiB values, AppendLoad into a reused
//	    buffer) against the same maps of string to []byte
//	BenchmarkDictReaders/8B-64B/{1,2}proc
//	    typed Loads (hits) in 1 and 2 reader processes at once (this test
//	    binary re-executed), the benchmark process only coordinating: ns/op
//	    is per Load of all readers together, and loads/s their total
//
// Keys are read in a scattered order over benchKeys keys (benchKeys others
// for the misses); Store overwrites present keys. The shapes and key
// counts are those of cmd/shmbench's dict pattern. BENCHMARKS.md (Issue
// 10) has the figures and the targets.

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/testproc"
)

// benchKeys is how many keys the maps hold.
const benchKeys = 1 << 14

// benchStride scatters the key order: i*benchStride mod benchKeys visits
// every key (the stride is odd) in an order that is not the insertion's.
const benchStride = 40503

type bv64 = [64]byte

// benchKey is the typed key number i (present for i < benchKeys, a miss
// for benchKeys <= i < 2*benchKeys).
func benchKey(i int) uint64 { return uint64(i)*0x9E3779B97F4A7C15 + 1 }

// benchVal64 is a value that names its key in its first 8 bytes.
func benchVal64(k uint64) (v bv64) {
	binary.LittleEndian.PutUint64(v[:], k)
	return v
}

// benchStrKeys returns the 32-byte string keys: hits, then misses.
func benchStrKeys() (hit, miss []string) {
	for i := range 2 * benchKeys {
		k := fmt.Sprintf("key:%028d", i)
		if i < benchKeys {
			hit = append(hit, k)
		} else {
			miss = append(miss, k)
		}
	}
	return hit, miss
}

// benchVal1K is a 1 KiB value naming its key.
func benchVal1K(k string) []byte {
	v := make([]byte, 1<<10)
	copy(v, k)
	return v
}

func benchTyped(tb testing.TB, opts ...Option) *Map[uint64, bv64] {
	m, err := CreateAnonymous[uint64, bv64](append([]Option{WithCapacity(benchKeys)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for i := range benchKeys {
		k := benchKey(i)
		if err := m.Store(ctx, k, benchVal64(k)); err != nil {
			tb.Fatal(err)
		}
	}
	return m
}

func BenchmarkDict(b *testing.B) {
	b.Run("8B-64B", benchTypedShape)
	b.Run("32B-1KiB", benchBytesShape)
}

func benchTypedShape(b *testing.B) {
	ctx := context.Background()
	hits := make([]uint64, benchKeys)
	misses := make([]uint64, benchKeys)
	for i := range benchKeys {
		hits[i] = benchKey(i * benchStride % benchKeys)
		misses[i] = benchKey(benchKeys + i)
	}
	mask := benchKeys - 1

	b.Run("dict", func(b *testing.B) {
		m := benchTyped(b)
		defer m.Close()
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok, err := m.Load(k)
				if !ok || err != nil || binary.LittleEndian.Uint64(v[:]) != k {
					b.Fatal(k, ok, err)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok, err := m.Load(misses[i&mask]); ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v := benchVal64(k)
				v[8] = byte(i)
				if err := m.Store(ctx, k, v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					k := hits[i&mask]
					if _, ok, err := m.Load(k); !ok || err != nil {
						b.Error(k, ok, err)
						return
					}
					i++
				}
			})
		})
	})

	b.Run("syncmap", func(b *testing.B) {
		var m sync.Map
		for i := range benchKeys {
			k := benchKey(i)
			m.Store(k, benchVal64(k))
		}
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok := m.Load(k)
				if !ok {
					b.Fatal(k)
				}
				if w := v.(bv64); binary.LittleEndian.Uint64(w[:8]) != k {
					b.Fatal(k, ok)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := m.Load(misses[i&mask]); ok {
					b.Fatal(ok)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v := benchVal64(k)
				v[8] = byte(i)
				m.Store(k, v)
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := m.Load(hits[i&mask]); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	})

	b.Run("rwmap", func(b *testing.B) {
		var mu sync.RWMutex
		m := make(map[uint64]bv64, benchKeys)
		for i := range benchKeys {
			k := benchKey(i)
			m[k] = benchVal64(k)
		}
		load := func(k uint64) (bv64, bool) {
			mu.RLock()
			v, ok := m[k]
			mu.RUnlock()
			return v, ok
		}
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok := load(k)
				if !ok || binary.LittleEndian.Uint64(v[:]) != k {
					b.Fatal(k, ok)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := load(misses[i&mask]); ok {
					b.Fatal(ok)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v := benchVal64(k)
				v[8] = byte(i)
				mu.Lock()
				m[k] = v
				mu.Unlock()
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, ok := load(hits[i&mask]); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	})
}

func benchBytesShape(b *testing.B) {
	ctx := context.Background()
	hitKeys, missKeys := benchStrKeys()
	hits := make([]string, benchKeys)
	for i := range hits {
		hits[i] = hitKeys[i*benchStride%benchKeys]
	}
	mask := benchKeys - 1
	vals := make(map[string][]byte, benchKeys)
	for _, k := range hitKeys {
		vals[k] = benchVal1K(k)
	}
	newVal := make([]byte, 1<<10)

	b.Run("dict", func(b *testing.B) {
		m, err := CreateAnonymousBytes(WithCapacity(benchKeys), WithMaxValue(1<<10), WithMaxKey(64))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		for _, k := range hitKeys {
			if err := m.Store(ctx, k, vals[k]); err != nil {
				b.Fatal(err)
			}
		}
		buf := make([]byte, 0, 1<<10)
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok, err := m.AppendLoad(buf[:0], k)
				if !ok || err != nil || len(v) != 1<<10 || string(v[:32]) != k {
					b.Fatal(k, ok, err)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok, err := m.AppendLoad(buf[:0], missKeys[i&mask]); ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				copy(newVal, k)
				newVal[40] = byte(i)
				if err := m.Store(ctx, k, newVal); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 1<<10)
				i := 0
				for pb.Next() {
					var ok bool
					var err error
					if buf, ok, err = m.AppendLoad(buf[:0], hits[i&mask]); !ok || err != nil {
						b.Error(ok, err)
						return
					}
					i++
				}
			})
		})
	})

	// The in-process maps copy the value out on Load (into a reused
	// buffer, as AppendLoad does): a shared value cannot be handed out by
	// reference. Their Store keeps the caller's slice (sync.Map) or copies
	// it into the map's own (rwmap), as a program would.
	b.Run("syncmap", func(b *testing.B) {
		var m sync.Map
		for _, k := range hitKeys {
			m.Store(k, vals[k])
		}
		buf := make([]byte, 0, 1<<10)
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok := m.Load(k)
				if !ok {
					b.Fatal(k)
				}
				buf = append(buf[:0], v.([]byte)...)
				if string(buf[:32]) != k {
					b.Fatal(k)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := m.Load(missKeys[i&mask]); ok {
					b.Fatal(ok)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				m.Store(k, vals[k])
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 1<<10)
				i := 0
				for pb.Next() {
					v, ok := m.Load(hits[i&mask])
					if !ok {
						b.Error("miss")
						return
					}
					buf = append(buf[:0], v.([]byte)...)
					i++
				}
			})
		})
	})

	b.Run("rwmap", func(b *testing.B) {
		var mu sync.RWMutex
		m := make(map[string][]byte, benchKeys)
		for _, k := range hitKeys {
			m[k] = benchVal1K(k)
		}
		load := func(dst []byte, k string) ([]byte, bool) {
			mu.RLock()
			v, ok := m[k]
			dst = append(dst, v...)
			mu.RUnlock()
			return dst, ok
		}
		buf := make([]byte, 0, 1<<10)
		b.Run("load-hit", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				v, ok := load(buf[:0], k)
				if !ok || string(v[:32]) != k {
					b.Fatal(k)
				}
			}
		})
		b.Run("load-miss", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, ok := load(buf[:0], missKeys[i&mask]); ok {
					b.Fatal(ok)
				}
			}
		})
		b.Run("store", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := hits[i&mask]
				copy(newVal, k)
				newVal[40] = byte(i)
				mu.Lock()
				m[k] = append(m[k][:0], newVal...)
				mu.Unlock()
			}
		})
		b.Run("load-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 1<<10)
				i := 0
				for pb.Next() {
					var ok bool
					if buf, ok = load(buf[:0], hits[i&mask]); !ok {
						b.Error("miss")
						return
					}
					i++
				}
			})
		})
	})
}

// benchRequested reports whether this run was asked for benchmarks: the
// reader helper is only registered then (and in the helpers themselves),
// since a full test run fails on helpers it never starts.
func benchRequested() bool {
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "-test.bench="); ok && v != "" {
			return true
		}
	}
	return false
}

// The control array of BenchmarkDictReaders: word 0 is the start flag,
// word 1+i reader i's count of bad loads.
func init() {
	if !testproc.IsHelper() && !benchRequested() {
		return
	}
	// bench-reader N INDEX: fd 3 the map, fd 4 the control array; N
	// Loads of present keys after the start flag.
	testproc.Register("bench-reader", func(args []string) int {
		ctx := context.Background()
		n, _ := strconv.Atoi(args[0])
		idx, _ := strconv.Atoi(args[1])
		m, err := OpenFile[uint64, bv64](ctx, os.NewFile(3, "map"))
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		ca, err := array.OpenFile[uint64](ctx, os.NewFile(4, "ctl"))
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		ctl := array.AtomicOf(ca)
		keys := make([]uint64, benchKeys)
		for i := range keys {
			keys[i] = benchKey((i + idx*977) * benchStride % benchKeys)
		}
		testproc.Printf("ready")
		for ctl.LoadAt(0) == 0 {
			time.Sleep(20 * time.Microsecond)
		}
		var bad uint64
		for i := range n {
			k := keys[i&(benchKeys-1)]
			v, ok, err := m.Load(k)
			if !ok || err != nil || binary.LittleEndian.Uint64(v[:]) != k {
				bad++
			}
		}
		ctl.StoreAt(1+idx, bad)
		testproc.Printf("done")
		return 0
	})
}

// BenchmarkDictReaders is typed Loads in 1 and 2 reader processes at
// once, over a map this process created: ns/op is the time per Load of
// all readers together (each does b.N/readers), so a halving from 1proc
// to 2proc is perfect scaling; loads/s is the total rate.
func BenchmarkDictReaders(b *testing.B) {
	b.Run("8B-64B", func(b *testing.B) {
		for _, procs := range []int{1, 2} {
			b.Run(strconv.Itoa(procs)+"proc", func(b *testing.B) { benchReaders(b, procs) })
		}
	})
}

func benchReaders(b *testing.B, procs int) {
	m := benchTyped(b)
	defer m.Close()
	ca, err := array.CreateAnonymous[uint64](1 + procs)
	if err != nil {
		b.Fatal(err)
	}
	defer ca.Close()
	ctl := array.AtomicOf(ca)
	per := (b.N + procs - 1) / procs
	var ps []*testproc.Proc
	for i := range procs {
		cmd := testproc.Command(b, "bench-reader", strconv.Itoa(per), strconv.Itoa(i))
		cmd.ExtraFiles = []*os.File{m.File(), ca.File()}
		p := testproc.StartCmd(b, "bench-reader", cmd)
		p.Expect(b, "ready")
		ps = append(ps, p)
	}
	// Allocations are the readers', in their own processes: not reported.
	b.ResetTimer()
	t0 := time.Now()
	ctl.StoreAt(0, 1)
	for _, p := range ps {
		p.Expect(b, "done")
	}
	d := time.Since(t0)
	b.StopTimer()
	for i, p := range ps {
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		if bad := ctl.LoadAt(1 + i); bad != 0 {
			b.Fatalf("reader %d: %d bad loads", i, bad)
		}
	}
	b.ReportMetric(float64(per*procs)/d.Seconds(), "loads/s")
}
