package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/shmkit/shmkit/shm"
)

// TestCapHolds checks that an SPSC queue holds Cap() messages of
// MaxMessage bytes, and Cap() >= the Capacity asked for, whatever the
// read position (so whatever wrap pad the messages need), and that MPMC
// holds exactly Cap().
func TestCapHolds(t *testing.T) {
	for _, mode := range []Mode{SPSC, MPMC} {
		for _, maxMsg := range []int{0, 8, 20, 56, 100, 4096} {
			for _, capacity := range []int{1, 2, 3, 8, 13, 64} {
				t.Run(fmt.Sprintf("%v/%d/%d", mode, maxMsg, capacity), func(t *testing.T) {
					q := newQueue(t, Config{Mode: mode, MaxMessage: maxMsg, Capacity: capacity})
					if q.Cap() < capacity {
						t.Fatalf("Cap %d < Capacity %d", q.Cap(), capacity)
					}
					msg := make([]byte, maxMsg)
					buf := make([]byte, maxMsg)
					// Start from several read positions: j one-byte
					// messages (or empty ones) put and taken first.
					for j := range 12 {
						for range j {
							if ok, err := q.TryPut(msg[:min(1, maxMsg)]); !ok || err != nil {
								t.Fatal(ok, err)
							}
							if _, ok, err := q.TryGet(buf); !ok || err != nil {
								t.Fatal(ok, err)
							}
						}
						n := 0
						for ; n < q.Cap()+2; n++ {
							ok, err := q.TryPut(msg)
							if err != nil {
								t.Fatal(err)
							}
							if !ok {
								break
							}
						}
						if n < q.Cap() || (mode == MPMC && n != q.Cap()) {
							t.Fatalf("after %d small messages: %d of Cap %d fit", j, n, q.Cap())
						}
						for range n {
							if _, ok, err := q.TryGet(buf); !ok || err != nil {
								t.Fatal(ok, err)
							}
						}
					}
				})
			}
		}
	}
}

// TestGeometryOverflow checks that sizes whose products would overflow
// are refused: a Config as ErrConfig, a hostile header (with a valid
// checksum) as ErrCorrupt, never a small wrapped size.
func TestGeometryOverflow(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: SPSC, MaxMessage: 1 << 30, Capacity: 1 << 40},
		{Mode: SPSC, MaxMessage: 1 << 24, Capacity: 1 << 20},
		{Mode: MPMC, MaxMessage: 1<<24 - 16, Capacity: 1 << 40},
		{Mode: MPMC, MaxMessage: 1 << 30, Capacity: 1 << 12},
	} {
		if n, err := SizeOf(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("SizeOf(%+v) = %d, %v; want ErrConfig", cfg, n, err)
		}
	}
	// A real MPMC header, rewritten with a capacity whose slots would
	// need 2^64 bytes and more, and its checksum fixed.
	_, mem := newInMem(t, Config{Mode: MPMC, MaxMessage: 1<<24 - 16, Capacity: 2})
	binary.LittleEndian.PutUint64(mem[offCapacity:], 1<<40)
	binary.LittleEndian.PutUint64(mem[offChecksum:], fnv64a(mem[:offChecksum]))
	if _, err := At(mem); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("At of a ring of 2^40 slots of 16 MiB in %d bytes = %v", len(mem), err)
	}
}

// TestPipeParamsHostile opens pipe segments whose header params (the
// ring size and the second ring's offset) are hostile: ErrCorrupt, no
// panic, for offsets and sizes whose sums overflow.
func TestPipeParamsHostile(t *testing.T) {
	for _, p := range [][2]uint64{
		{64, 1<<64 - 64},  // second+size wraps to 0
		{1<<64 - 64, 128}, // second < size
		{0, 64},
		{4096, 4096 + 64},
		{64, 96}, // not a multiple of 64
	} {
		seg, err := shm.CreateAnonymous(8192, shm.WithKind(shm.KindPipe), shm.WithParams(p[0], p[1]))
		if err != nil {
			t.Fatal(err)
		}
		c, err := OpenPipeFile(context.Background(), seg.File())
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("params %#x: OpenPipeFile = %v, want ErrCorrupt", p, err)
		}
		if c != nil {
			c.Close()
		}
		seg.Close()
	}
}

// TestPipeWriteMaxMessageZero checks that Write on a pipe of empty
// messages (a geometry Config cannot ask for, as 0 means the default, but
// a peer's header may give) fails instead of sending empty chunks for
// ever.
func TestPipeWriteMaxMessageZero(t *testing.T) {
	a, err := NewPipe(Config{MaxMessage: 8, Capacity: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mem := a.seg.Bytes()
	size, second := a.seg.Params()
	for _, r := range [][]byte{mem[:size], mem[second : second+size]} {
		binary.LittleEndian.PutUint32(r[offMaxMsg:], 0)
		binary.LittleEndian.PutUint64(r[offChecksum:], fnv64a(r[:offChecksum]))
	}
	b, err := OpenPipeFile(context.Background(), a.File())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, err := b.Write([]byte("x")); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write = %d, %v; want ErrTooLarge", n, err)
	}
	if n, err := b.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
}
