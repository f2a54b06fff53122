package ntcopy

import "unsafe"

// copyNT copies n bytes, a non-zero multiple of 64, from src to the
// 64-byte aligned dst with non-temporal stores, then fences them
// (SFENCE): ntcopy_amd64.s.
//
//go:noescape
func copyNT(dst, src unsafe.Pointer, n uintptr)
