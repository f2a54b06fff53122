package ntcopy

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"
)

// TestCopy checks every alignment of dst and of src against the built-in
// copy, for lengths around the 64-byte boundaries and the chunk size,
// and that nothing past len(src) is written.
func TestCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([]byte, 2*chunk+300)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	lengths := []int{0, 1, 63, 64, 65, 127, 128, 129, 1000, 4096, 4097, chunk - 1, chunk, chunk + 65, 2*chunk + 200}
	for _, n := range lengths {
		for _, da := range []int{0, 1, 8, 16, 63} {
			for _, sa := range []int{0, 3, 32} {
				buf := make([]byte, n+da+64+128)
				for i := range buf {
					buf[i] = 0xAA
				}
				// Align the destination's base to 64, then offset by da.
				base := int((64 - uintptr(addr(buf))&63) & 63)
				dst := buf[base+da : base+da+n+64]
				s := src[sa : sa+n]
				Copy(dst, s)
				if !bytes.Equal(dst[:n], s) {
					t.Fatalf("n=%d da=%d sa=%d: bytes differ", n, da, sa)
				}
				for i, b := range dst[n:] {
					if b != 0xAA {
						t.Fatalf("n=%d da=%d sa=%d: byte %d past the end written", n, da, sa, n+i)
					}
				}
			}
		}
	}
}

// TestCopyShortDst checks that a destination shorter than the source is
// refused with a panic (a bounds check), as copying into it would
// overrun.
func TestCopyShortDst(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Copy(make([]byte, 100), make([]byte, 200))
}

func BenchmarkCopy(b *testing.B) {
	for _, n := range []int{4 << 10, 64 << 10, 1 << 20} {
		src, dst := make([]byte, n), make([]byte, n+64)
		b.Run(sizeName(n)+"/nt", func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				Copy(dst, src)
			}
		})
		b.Run(sizeName(n)+"/copy", func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				copy(dst, src)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

func addr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
