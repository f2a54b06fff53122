package dict

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

type key8 [8]byte

type val64 struct {
	Key  uint64
	Ver  uint64
	Fill [5]uint64
	Sum  uint64
}

func mkval(k, ver uint64) val64 {
	v := val64{Key: k, Ver: ver}
	for i := range v.Fill {
		v.Fill[i] = k*31 + ver*7 + uint64(i)
	}
	v.Sum = v.check()
	return v
}

func (v val64) check() uint64 {
	s := v.Key*0x9e3779b97f4a7c15 ^ v.Ver
	for _, f := range v.Fill {
		s = s*1099511628211 ^ f
	}
	return s
}

func TestMapModel(t *testing.T) {
	ctx := context.Background()
	m, err := CreateAnonymous[uint64, val64](WithShards(4))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	model := map[uint64]val64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 {
		k := rng.Uint64N(3000)
		switch op := rng.IntN(10); {
		case op < 5:
			v := mkval(k, uint64(i))
			if err := m.Store(ctx, k, v); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		case op < 7:
			ok, err := m.Delete(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if _, want := model[k]; ok != want {
				t.Fatalf("delete %d: %v, want %v", k, ok, want)
			}
			delete(model, k)
		case op < 8:
			v := mkval(k, uint64(i))
			act, loaded, err := m.LoadOrStore(ctx, k, v)
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := model[k]; ok {
				if !loaded || act != old {
					t.Fatalf("LoadOrStore %d: %v %v", k, loaded, act)
				}
			} else {
				if loaded || act != v {
					t.Fatalf("LoadOrStore new %d: %v", k, loaded)
				}
				model[k] = v
			}
		case op < 9:
			nv, keep, err := m.Update(ctx, k, func(old val64, ok bool) (val64, bool) {
				if !ok {
					return val64{}, false
				}
				return mkval(k, old.Ver+1), true
			})
			if err != nil {
				t.Fatal(err)
			}
			if old, ok := model[k]; ok {
				if !keep || nv.Ver != old.Ver+1 {
					t.Fatal("update")
				}
				model[k] = nv
			} else if keep {
				t.Fatal("update of absent kept")
			}
		default:
			v, ok, err := m.Load(k)
			if err != nil {
				t.Fatal(err)
			}
			want, wok := model[k]
			if ok != wok || v != want {
				t.Fatalf("load %d: %v %v, want %v %v", k, v, ok, want, wok)
			}
		}
	}
	if m.Len() != len(model) {
		t.Fatalf("Len %d, want %d", m.Len(), len(model))
	}
	seen := 0
	for k, v := range m.All() {
		if model[k] != v {
			t.Fatalf("range %d", k)
		}
		seen++
	}
	if seen != len(model) {
		t.Fatalf("range saw %d, want %d", seen, len(model))
	}
	for k, v := range model {
		ok, err := m.CompareAndSwap(ctx, k, v, mkval(k, v.Ver+100))
		if err != nil || !ok {
			t.Fatalf("cas %d: %v %v", k, ok, err)
		}
		ok, err = m.CompareAndSwap(ctx, k, v, mkval(k, v.Ver+200))
		if err != nil || ok {
			t.Fatalf("cas stale %d: %v %v", k, ok, err)
		}
	}
	if err := m.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatal("Len after Clear")
	}
	for k := range model {
		if _, ok, _ := m.Load(k); ok {
			t.Fatal("found after Clear")
		}
	}
}

func TestBytesModel(t *testing.T) {
	ctx := context.Background()
	b, err := CreateAnonymousBytes(WithShards(8), WithMaxValue(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 100000 {
		k := fmt.Sprintf("key-%d", rng.IntN(2000))
		switch op := rng.IntN(10); {
		case op < 5:
			v := strings.Repeat(string(rune('a'+i%26)), rng.IntN(2000))
			if err := b.Store(ctx, k, []byte(v)); err != nil {
				t.Fatal(err)
			}
			model[k] = v
		case op < 7:
			ok, err := b.Delete(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if _, want := model[k]; ok != want {
				t.Fatal("delete")
			}
			delete(model, k)
		default:
			v, ok, err := b.Load(k)
			if err != nil {
				t.Fatal(err)
			}
			want, wok := model[k]
			if ok != wok || string(v) != want {
				t.Fatalf("load %s: %d bytes %v, want %d %v", k, len(v), ok, len(want), wok)
			}
		}
	}
	if b.Len() != len(model) {
		t.Fatalf("Len %d, want %d", b.Len(), len(model))
	}
	n := 0
	if err := b.Range(func(k string, v []byte) bool {
		if model[k] != string(v) {
			t.Fatalf("range %s", k)
		}
		n++
		return true
	}); err != nil || n != len(model) {
		t.Fatal(err, n)
	}
	err = b.Store(ctx, "big", make([]byte, 5000))
	var se *SizeError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &se) || se.Max != 4096 {
		t.Fatalf("oversized: %v", err)
	}
}

func TestFull(t *testing.T) {
	ctx := context.Background()
	m, err := CreateAnonymous[uint64, [64]byte](WithShards(1), WithMaxBytes(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var i uint64
	for ; ; i++ {
		err = m.Store(ctx, i, [64]byte{byte(i)})
		if err != nil {
			break
		}
	}
	var fe *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &fe) {
		t.Fatalf("got %v after %d", err, i)
	}
	t.Logf("full after %d entries: %v", i, err)
	for j := range i {
		v, ok, err := m.Load(j)
		if err != nil || !ok || v[0] != byte(j) {
			t.Fatalf("load %d after full: %v %v", j, ok, err)
		}
	}
	if m.Len() != int(i) {
		t.Fatalf("Len %d want %d", m.Len(), i)
	}
}
