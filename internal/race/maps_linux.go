//go:build race && linux

package race

import (
	"bytes"
	"os"
	"strconv"
)

// fileKey names a byte of a shared file mapping independently of where it
// is mapped.
type fileKey struct {
	dev string
	ino uint64
	off uint64
}

// mappedKey finds addr in /proc/self/maps. It only runs under the race
// detector, when a lock handle is made.
func mappedKey(addr uintptr) (fileKey, bool) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return fileKey{}, false
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// start-end perms offset dev inode [path]
		f := bytes.Fields(line)
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte{'-'})
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || uint64(addr) < start || uint64(addr) >= end {
			continue
		}
		off, err1 := strconv.ParseUint(string(f[2]), 16, 64)
		ino, err2 := strconv.ParseUint(string(f[4]), 10, 64)
		// Only shared mappings of a real inode alias other mappings.
		if err1 != nil || err2 != nil || ino == 0 || len(f[1]) < 4 || f[1][3] != 's' {
			return fileKey{}, false
		}
		return fileKey{string(f[3]), ino, off + uint64(addr) - start}, true
	}
	return fileKey{}, false
}
