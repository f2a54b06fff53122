//go:build !amd64

package ntcopy

import "unsafe"

// copyNT is the built-in copy where no non-temporal store is wired up.
func copyNT(dst, src unsafe.Pointer, n uintptr) {
	copy(unsafe.Slice((*byte)(dst), n), unsafe.Slice((*byte)(src), n))
}
