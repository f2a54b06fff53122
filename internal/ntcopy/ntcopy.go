// Package ntcopy copies a message into shared memory with non-temporal
// stores on amd64 (MOVNTDQ, then SFENCE), which write the lines to memory
// instead of keeping them in the writer's caches.
//
// That is the right place for a large message that another process is
// about to read: from the writer's cache every line would cross to the
// reader's CPU as a snoop, one cache line per round trip between the two
// cores (on a two-vCPU virtual machine of ours, 6.5 GB/s for 64 KiB
// messages), where from memory the reader's prefetchers stream it (27
// GB/s on the same machine). For small messages the writer's cache is the
// better place (they cross faster than memory answers), so callers use it
// above a threshold only.
//
// Elsewhere, Copy is the built-in copy.
package ntcopy

import "unsafe"

// chunk bounds one assembly call, so that copying a very large message
// does not hold off the scheduler's preemption for long (an assembly
// loop is not preemptible): 256 KiB take about 10 µs.
const chunk = 256 << 10

// Copy copies src into dst, which must be at least as long, and returns
// once every byte is visible to other CPUs in the order of any later
// store (the non-temporal stores are fenced). The bytes of dst before its
// first 64-byte boundary and after its last are copied with ordinary
// stores.
func Copy(dst, src []byte) {
	n := len(src)
	if n == 0 {
		return
	}
	_ = dst[n-1] // bounds check: dst holds src
	d := uintptr(unsafe.Pointer(&dst[0]))
	head := int((64 - d&63) & 63)
	if head >= n || n-head < 64 {
		copy(dst, src)
		return
	}
	copy(dst[:head], src[:head])
	body := (n - head) &^ 63
	for off := head; off < head+body; off += chunk {
		k := min(chunk, head+body-off)
		copyNT(unsafe.Pointer(&dst[off]), unsafe.Pointer(&src[off]), uintptr(k))
	}
	copy(dst[head+body:n], src[head+body:])
}
