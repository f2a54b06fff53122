package shm

import (
	"fmt"
	"strings"
)

// shmDir is where named segments live (shm_open semantics).
const shmDir = "/dev/shm"

// validateName checks a segment name (without NamePrefix).
func validateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidName, len(name), MaxNameLen)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidName, name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w: %q contains \"..\"", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: %q contains %q (allowed: A-Z a-z 0-9 . _ -)", ErrInvalidName, name, c)
	}
	return nil
}

// validateSize checks a payload size.
func validateSize(size int) error {
	if size <= 0 || uint64(size) > MaxSize {
		return fmt.Errorf("%w: %d (want 1..%d)", ErrInvalidSize, size, uint64(MaxSize))
	}
	return nil
}

// path returns the file path of a named segment.
func path(name string) string { return shmDir + "/" + NamePrefix + name }

// cutPrefix returns the segment name of a /dev/shm file name, and whether
// the file is ours (it starts with NamePrefix).
func cutPrefix(file string) (string, bool) {
	return strings.CutPrefix(file, NamePrefix)
}
