//go:build !linux

package shmnet

import (
	"net"

	"github.com/shmkit/shmkit/shm"
)

type cred struct{ uid, pid int }

// peerCred is not supported off Linux (nor is the rest of shmnet).
func peerCred(*net.UnixConn) (cred, error) { return cred{}, shm.ErrNotSupported }
