//go:build !linux

package shmnet

import (
	"context"
	"net"
	"os"

	"github.com/shmkit/shmkit/ring"
	"github.com/shmkit/shmkit/shm"
)

// notifier is Linux-only (eventfd); shmnet as a whole is.
type notifier struct {
	inAsleep, wAsleep *uint32
	in, space         *os.File
	inPark, spacePark parker
}

type parker struct{}

func (*parker) sleep(*epoch) error { return shm.ErrNotSupported }

func (n *notifier) wake()       {}
func (n *notifier) poke()       {}
func (n *notifier) self()       {}
func (n *notifier) selfWriter() {}
func (n *notifier) wakeWriter() {}
func (n *notifier) pokeWriter() {}
func (n *notifier) close()      {}

func dialerSide(*net.UnixConn, ring.Config) (*ring.Conn, *notifier, error) {
	return nil, nil, shm.ErrNotSupported
}

func listenerSide(context.Context, *net.UnixConn) (*ring.Conn, *notifier, error) {
	return nil, nil, shm.ErrNotSupported
}
