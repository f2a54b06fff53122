package shmnet

import (
	"net"

	"golang.org/x/sys/unix"
)

// cred is the process at the other end of a Unix socket.
type cred struct{ uid, pid int }

// peerCred reads the credentials of uc's peer (SO_PEERCRED), as the
// kernel recorded them at connect.
func peerCred(uc *net.UnixConn) (cred, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return cred{}, err
	}
	var uc2 *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		uc2, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return cred{}, err
	}
	if cerr != nil {
		return cred{}, cerr
	}
	return cred{uid: int(uc2.Uid), pid: int(uc2.Pid)}, nil
}
