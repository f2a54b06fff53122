package value

import (
	"context"
	"net"
	"os"

	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/shm"
)

// Anonymous Values and passing them to other processes. Every Value and
// Raw is a shm.Shareable: hand its File to a child through
// exec.Cmd.ExtraFiles and attach there with OpenFile, or send its Segment
// over a Unix socket (shm.Segment.Send) and attach with Receive.

var (
	_ shm.Shareable = (*Value[int64])(nil)
	_ shm.Shareable = (*Raw[int64])(nil)
)

// CreateAnonymous creates a Value holding initial in an anonymous (memfd)
// segment with no name, sealed against resizing. It is gone when the last
// process holding it closes it.
func CreateAnonymous[T any](initial T, opts ...shm.Option) (*Value[T], error) {
	return newValue[T](object.CreateAnonymousOf[T](spec, 1, fillWith(initial), opts))
}

// OpenFile attaches to the Value in the segment behind f, typically one
// inherited through exec.Cmd.ExtraFiles (os.NewFile(3, "") in the child).
// f is duplicated: the caller keeps it and may close it. A descriptor that
// is not a shmkit segment gives an error matching shm.ErrNotSegment; a
// Value of another type ErrType.
func OpenFile[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*Value[T], error) {
	return newValue[T](object.OpenFileOf[T](ctx, spec, f, opts))
}

// Receive reads one segment sent with shm.Segment.Send from conn and
// attaches to the Value in it, validated as by OpenFile. ctx bounds the
// wait.
func Receive[T any](ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Value[T], error) {
	return newValue[T](object.ReceiveOf[T](ctx, spec, conn, opts))
}

// CreateAnonymousRaw creates a Raw value holding initial in an anonymous
// segment (see CreateAnonymous).
func CreateAnonymousRaw[T any](initial T, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.CreateAnonymousOf[T](rawSpec, 1, fillWith(initial), opts))
}

// OpenRawFile attaches to the Raw value (or the Value, ignoring its lock)
// in the segment behind f (see OpenFile).
func OpenRawFile[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.OpenFileOf[T](ctx, rawSpec, f, opts))
}

// ReceiveRaw attaches to the Raw value (or the Value, ignoring its lock)
// in a segment received from conn (see Receive).
func ReceiveRaw[T any](ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.ReceiveOf[T](ctx, rawSpec, conn, opts))
}

// Unlink removes the named Value (or Raw) from /dev/shm. Processes that
// have it open keep using it. A missing name gives an error matching
// fs.ErrNotExist.
func Unlink(name string) error { return shm.Unlink(name) }

// File returns the descriptor of the Value's segment, for
// exec.Cmd.ExtraFiles (see OpenFile). The Value owns it. It is nil for a
// placed Value (Init, At) and after Close.
func (v *Value[T]) File() *os.File { return v.obj.File() }

// Segment returns the Value's segment (for Send), or nil for a placed
// Value.
func (v *Value[T]) Segment() *shm.Segment { return v.obj.Segment() }

// File returns the descriptor of the Raw value's segment (see
// Value.File).
func (r *Raw[T]) File() *os.File { return r.obj.File() }

// Segment returns the Raw value's segment, or nil for a placed one.
func (r *Raw[T]) Segment() *shm.Segment { return r.obj.Segment() }
