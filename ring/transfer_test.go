package ring

import (
	"bytes"
	"context"
	"testing"
)

func TestCrossProcess(t *testing.T) {
	const per = 3000
	cases := []struct {
		name     string
		mode     Mode
		np, nc   int
		put, get string
		lo, hi   int
	}{
		{"1P1C/spsc", SPSC, 1, 1, "put", "get", 8, 200},
		{"1P1C/spsc/batch", SPSC, 1, 1, "batch", "batch", 8, 200},
		{"1P1C/spsc/zerocopy", SPSC, 1, 1, "reserve", "next", 8, 200},
		{"1P1C/spsc/append", SPSC, 1, 1, "put", "append", 8, 200},
		{"1P1C/mpmc", MPMC, 1, 1, "put", "get", 8, 200},
		{"4P1C", MPMC, 4, 1, "put", "get", 8, 200},
		{"1P4C", MPMC, 1, 4, "put", "next", 8, 200},
		{"4P4C", MPMC, 4, 4, "put", "get", 8, 200},
		{"4P4C/batch", MPMC, 4, 4, "batch", "batch", 8, 200},
		{"4P4C/zerocopy", MPMC, 4, 4, "reserve", "next", 8, 200},
		// "+x": each process's handle is SetExclusive.
		{"4P4C/exclusive", MPMC, 4, 4, "put+x", "get+x", 8, 200},
		{"4P4C/exclusive/batch", MPMC, 4, 4, "batch+x", "batch+x", 8, 200},
		{"4P4C/exclusive/zerocopy", MPMC, 4, 4, "reserve+x", "next+x", 8, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runMatrix(t, Config{Mode: c.mode, MaxMessage: 200, Capacity: 16}, c.np, c.nc, per, c.lo, c.hi, c.put, c.get, 100)
		})
	}
}

// TestSizes sends every size from 0 to the maximum, in both modes, through
// a ring small enough to wrap many times.
func TestSizes(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		t.Run(mode.String(), func(t *testing.T) {
			const max = 1000
			runMatrix(t, Config{Mode: mode, MaxMessage: max, Capacity: 4}, 1, 1, 3*(max+1), 0, max, "put", "get", 100)
		})
	}
}

// TestLargeMessages sends messages of 16 KiB to 100,000 bytes, most of
// them at or above ntMin (written with non-temporal stores), across
// processes in both modes, one at a time and in batches, every byte
// checked, through rings that wrap many times.
func TestLargeMessages(t *testing.T) {
	const lo, hi, per = 16 << 10, 100000, 200
	cases := []struct {
		name     string
		mode     Mode
		np, nc   int
		put, get string
	}{
		{"spsc", SPSC, 1, 1, "put", "get"},
		{"spsc/batch", SPSC, 1, 1, "batch", "batch"},
		{"mpmc/2P2C", MPMC, 2, 2, "put", "get"},
		{"mpmc/2P2C/batch", MPMC, 2, 2, "batch", "batch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runMatrix(t, Config{Mode: c.mode, MaxMessage: hi, Capacity: 4}, c.np, c.nc, per, lo, hi, c.put, c.get, 100)
		})
	}
}

// TestCopyIn fills reservations below and above ntMin with CopyIn and
// checks what the consumer reads, and that CopyIn copies the shorter
// length, as copy does.
func TestCopyIn(t *testing.T) {
	q := newQueue(t, Config{Mode: SPSC, MaxMessage: 100000, Capacity: 4})
	ctx := context.Background()
	for _, n := range []int{0, 1, 100, ntMin - 1, ntMin, 100000} {
		src := make([]byte, n)
		fillMsg(src, 1, n)
		b, err := q.Reserve(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if k := CopyIn(b, src); k != n {
			t.Fatalf("CopyIn of %d bytes copied %d", n, k)
		}
		if err := q.Commit(n); err != nil {
			t.Fatal(err)
		}
		m, err := q.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, src) {
			t.Fatalf("%d bytes: the consumer read other bytes", n)
		}
		if err := q.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if k := CopyIn(make([]byte, 10), make([]byte, 20)); k != 10 {
		t.Fatalf("CopyIn into 10 bytes from 20 copied %d", k)
	}
	if k := CopyIn(make([]byte, ntMin+10), make([]byte, ntMin)); k != ntMin {
		t.Fatalf("CopyIn from %d bytes copied %d", ntMin, k)
	}
}
