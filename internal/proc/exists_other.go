//go:build !unix

package proc

import "os"

// readStat returns the contents of a small /proc file.
func readStat(path string) ([]byte, error) { return os.ReadFile(path) }

// exists is only consulted when /proc lacks an entry; without /proc and
// without kill(2) nothing better than "gone" can be said.
func exists(pid int) bool { return false }
