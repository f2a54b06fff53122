//go:build linux

package objecttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// ShareAcross starts the helper registered as helper twice, each given
// obj its own way, with args after the first two: once as a child that
// inherits obj's File as ExtraFiles[0] (helper args "fd", "-"), and once
// as a process that inherits nothing and receives obj's segment over a
// Unix socket from this one (helper args "sock", PATH). It returns both,
// started; the helpers attach with Attach.
func ShareAcross(t *testing.T, obj shm.Shareable, helper string, args ...string) []*testproc.Proc {
	t.Helper()
	if obj.File() == nil || obj.Segment() == nil {
		t.Fatal("object has no File or Segment to share")
	}
	cmd := testproc.Command(t, helper, append([]string{"fd", "-"}, args...)...)
	cmd.ExtraFiles = []*os.File{obj.File()}
	child := testproc.StartCmd(t, helper, cmd)

	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	Must(t, err)
	defer ln.Close()
	other := testproc.Start(t, helper, append([]string{"sock", sock}, args...)...)
	conn, err := ln.AcceptUnix()
	Must(t, err)
	defer conn.Close()
	Must(t, obj.Segment().Send(conn))
	return []*testproc.Proc{child, other}
}

// Attach, in a helper started by ShareAcross, attaches to the shared
// object with openFile or receive as its first two arguments say.
func Attach[H any](ctx context.Context, args []string,
	openFile func(context.Context, *os.File, ...shm.Option) (H, error),
	receive func(context.Context, *net.UnixConn, ...shm.Option) (H, error)) (H, error) {
	var zero H
	switch args[0] {
	case "fd":
		f := os.NewFile(3, "shared")
		defer f.Close()
		return openFile(ctx, f)
	case "sock":
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: args[1], Net: "unix"})
		if err != nil {
			return zero, err
		}
		defer conn.Close()
		return receive(ctx, conn)
	}
	return zero, fmt.Errorf("Attach: unknown way %q", args[0])
}

// SendReceive sends obj's segment over a fresh Unix socket pair and
// attaches to it with receive, under ctx.
func SendReceive[H any](t *testing.T, ctx context.Context, obj shm.Shareable,
	receive func(context.Context, *net.UnixConn, ...shm.Option) (H, error)) (H, error) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	Must(t, err)
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "sock")
		c, err := net.FileConn(f)
		f.Close()
		Must(t, err)
		defer c.Close()
		conns[i] = c.(*net.UnixConn)
	}
	Must(t, obj.Segment().Send(conns[0]))
	return receive(ctx, conns[1])
}
