package list

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestListModel(t *testing.T) {
	ctx := context.Background()
	l, err := CreateAnonymous[uint64]()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var model []uint64
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 100000 {
		switch op := rng.IntN(10); {
		case op < 5:
			idx, err := l.Append(ctx, uint64(i))
			if err != nil || idx != len(model) {
				t.Fatalf("append: %d %v", idx, err)
			}
			model = append(model, uint64(i))
		case op < 6 && len(model) > 0:
			j := rng.IntN(len(model))
			if err := l.Set(ctx, j, uint64(i)*3); err != nil {
				t.Fatal(err)
			}
			model[j] = uint64(i) * 3
		case op < 8:
			v, err := l.Pop(ctx)
			if len(model) == 0 {
				if !errors.Is(err, ErrIndex) {
					t.Fatalf("pop empty: %v", err)
				}
				continue
			}
			if err != nil || v != model[len(model)-1] {
				t.Fatalf("pop: %v %v", v, err)
			}
			model = model[:len(model)-1]
		default:
			if len(model) == 0 {
				if _, err := l.Get(0); !errors.Is(err, ErrIndex) {
					t.Fatal("get of empty")
				}
				continue
			}
			j := rng.IntN(len(model))
			v, err := l.Get(j)
			if err != nil || v != model[j] {
				t.Fatalf("get %d: %v %v want %v", j, v, err, model[j])
			}
		}
	}
	if l.Len() != len(model) {
		t.Fatalf("len %d want %d", l.Len(), len(model))
	}
	got, err := l.Slice(0, l.Len())
	if err != nil || !slices.Equal(got, model) {
		t.Fatalf("slice: %v", err)
	}
	if _, err := l.Get(len(model)); !errors.Is(err, ErrIndex) {
		t.Fatal("get past end")
	}
	if err := l.Clear(ctx); err != nil || l.Len() != 0 {
		t.Fatal("clear", err)
	}
}

func TestBytesList(t *testing.T) {
	ctx := context.Background()
	b, err := CreateAnonymousBytes(WithMaxValue(100))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 1000 {
		if _, err := b.Append(ctx, []byte(string(rune('a'+i%26))+string(make([]byte, i%50)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		v, err := b.Get(i)
		if err != nil || len(v) != 1+i%50 || v[0] != byte('a'+i%26) {
			t.Fatalf("get %d: %q %v", i, v, err)
		}
	}
	if _, err := b.Append(ctx, make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	all, err := b.Slice(10, 20)
	if err != nil || len(all) != 10 || all[0][0] != 'k' {
		t.Fatal(err)
	}
}

// TestClearUnderReaders: readers racing Append, Pop and Clear see whole
// elements or ErrIndex, never ErrCorrupt.
func TestClearUnderReaders(t *testing.T) {
	ctx := context.Background()
	l, err := CreateAnonymous[[4]uint64]()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			v, err := l.Get(i % 64)
			if err != nil && !errors.Is(err, ErrIndex) {
				errc <- err
				return
			}
			if err == nil && (v[1] != v[0]*3 || v[2] != v[0]*5 || v[3] != v[0]*7) {
				errc <- errors.New("torn element")
				return
			}
		}
	}()
	for round := range 300 {
		for i := range 40 + round%30 {
			x := uint64(round*100 + i)
			if _, err := l.Append(ctx, [4]uint64{x, x * 3, x * 5, x * 7}); err != nil {
				t.Fatal(err)
			}
		}
		if round%3 == 0 {
			if _, err := l.Pop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Clear(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
