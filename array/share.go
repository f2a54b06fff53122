package array

import (
	"context"
	"net"
	"os"

	"github.com/shmkit/shmkit/internal/object"
	"github.com/shmkit/shmkit/shm"
)

// Anonymous Arrays and passing them to other processes. Every Array and
// Raw is a shm.Shareable: hand its File to a child through
// exec.Cmd.ExtraFiles and attach there with OpenFile, or send its Segment
// over a Unix socket (shm.Segment.Send) and attach with Receive.

var (
	_ shm.Shareable = (*Array[int64])(nil)
	_ shm.Shareable = (*Raw[int64])(nil)
)

func createAnonymous[T any](s object.Spec, n int, src []T, opts []shm.Option) (*object.Object, error) {
	un, err := length(n)
	if err != nil {
		return nil, err
	}
	return object.CreateAnonymousOf[T](s, un, fillFrom(src), opts)
}

// CreateAnonymous creates an Array of n zero elements in an anonymous
// (memfd) segment with no name, sealed against resizing. It is gone when
// the last process holding it closes it.
func CreateAnonymous[T any](n int, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](createAnonymous[T](spec, n, nil, opts))
}

// CreateAnonymousFrom creates an anonymous Array holding a copy of src.
func CreateAnonymousFrom[T any](src []T, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](createAnonymous(spec, len(src), src, opts))
}

// OpenFile attaches to the Array in the segment behind f, typically one
// inherited through exec.Cmd.ExtraFiles (os.NewFile(3, "") in the child).
// f is duplicated: the caller keeps it and may close it. A descriptor that
// is not a shmkit segment gives an error matching shm.ErrNotSegment; an
// Array of another element type ErrType.
func OpenFile[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](object.OpenFileOf[T](ctx, spec, f, opts))
}

// Receive reads one segment sent with shm.Segment.Send from conn and
// attaches to the Array in it, validated as by OpenFile. ctx bounds the
// wait.
func Receive[T any](ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Array[T], error) {
	return newArray[T](object.ReceiveOf[T](ctx, spec, conn, opts))
}

// CreateAnonymousRaw creates a Raw array of n zero elements in an
// anonymous segment (see CreateAnonymous).
func CreateAnonymousRaw[T any](n int, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](createAnonymous[T](rawSpec, n, nil, opts))
}

// OpenRawFile attaches to the Raw array (or the Array, ignoring its lock)
// in the segment behind f (see OpenFile).
func OpenRawFile[T any](ctx context.Context, f *os.File, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.OpenFileOf[T](ctx, rawSpec, f, opts))
}

// ReceiveRaw attaches to the Raw array (or the Array, ignoring its lock)
// in a segment received from conn (see Receive).
func ReceiveRaw[T any](ctx context.Context, conn *net.UnixConn, opts ...shm.Option) (*Raw[T], error) {
	return newRaw[T](object.ReceiveOf[T](ctx, rawSpec, conn, opts))
}

// Unlink removes the named Array (or Raw) from /dev/shm. Processes that
// have it open keep using it. A missing name gives an error matching
// fs.ErrNotExist.
func Unlink(name string) error { return shm.Unlink(name) }

// File returns the descriptor of the Array's segment, for
// exec.Cmd.ExtraFiles (see OpenFile). The Array owns it. It is nil for a
// placed Array (Init, At) and after Close.
func (a *Array[T]) File() *os.File { return a.obj.File() }

// Segment returns the Array's segment (for Send), or nil for a placed
// Array.
func (a *Array[T]) Segment() *shm.Segment { return a.obj.Segment() }

// File returns the descriptor of the Raw array's segment (see
// Array.File).
func (r *Raw[T]) File() *os.File { return r.obj.File() }

// Segment returns the Raw array's segment, or nil for a placed one.
func (r *Raw[T]) Segment() *shm.Segment { return r.obj.Segment() }
