//go:build !linux

package refring

import (
	"errors"
	"os"
)

// errNotSupported is returned on systems other than Linux.
var errNotSupported = errors.New("refring: not supported on this system")

// Anonymous is not supported on this system.
func Anonymous(size int) ([]byte, *os.File, error) { return nil, nil, errNotSupported }

// MapFile is not supported on this system.
func MapFile(f *os.File, size int) ([]byte, error) { return nil, errNotSupported }

// Unmap is not supported on this system.
func Unmap(mem []byte) error { return errNotSupported }
