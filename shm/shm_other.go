//go:build !linux

package shm

import (
	"context"
	"net"
	"os"
)

// Create is not supported on this system.
func Create(name string, size int, opts ...Option) (*Segment, error) { return nil, ErrNotSupported }

// Open is not supported on this system.
func Open(ctx context.Context, name string, opts ...Option) (*Segment, error) {
	return nil, ErrNotSupported
}

// OpenOrCreate is not supported on this system.
func OpenOrCreate(ctx context.Context, name string, size int, opts ...Option) (*Segment, bool, error) {
	return nil, false, ErrNotSupported
}

// Unlink is not supported on this system.
func Unlink(name string) error { return ErrNotSupported }

// CreateAnonymous is not supported on this system.
func CreateAnonymous(size int, opts ...Option) (*Segment, error) { return nil, ErrNotSupported }

// OpenFile is not supported on this system.
func OpenFile(ctx context.Context, f *os.File, opts ...Option) (*Segment, error) {
	return nil, ErrNotSupported
}

// Receive is not supported on this system.
func Receive(ctx context.Context, conn *net.UnixConn, opts ...Option) (*Segment, error) {
	return nil, ErrNotSupported
}

// List is not supported on this system.
func List() ([]Info, error) { return nil, ErrNotSupported }

// Inspect is not supported on this system.
func Inspect(name string) (Info, error) { return Info{Name: name}, ErrNotSupported }

// Send is not supported on this system.
func (s *Segment) Send(conn *net.UnixConn) error { return ErrNotSupported }

// Close is not supported on this system.
func (s *Segment) Close() error { return ErrNotSupported }

// Unlink is not supported on this system.
func (s *Segment) Unlink() error { return ErrNotSupported }
