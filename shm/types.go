package shm

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

const (
	// HeaderSize is the size of the segment header. The payload starts at
	// this offset in the file and in the mapping, so it is 64-byte aligned
	// (the mapping itself is page aligned).
	HeaderSize = 128

	// NamePrefix is prepended to a segment's name to form its file name in
	// /dev/shm, so that tools (shmctl, List) can tell our segments apart.
	NamePrefix = "shmkit."

	// MaxSize is the largest payload size accepted (1 TiB).
	MaxSize = 1 << 40

	// MaxNameLen is the longest name accepted: NAME_MAX (255) less the
	// length of NamePrefix.
	MaxNameLen = 255 - len(NamePrefix)
)

// Kind says what object a segment holds. It is recorded by Create and
// checked by Open when the caller passes WithKind.
type Kind uint32

// The kinds known to shmkit. Higher layers record theirs; KindRaw is the
// default for a bare segment.
const (
	KindRaw Kind = iota + 1
	KindMutex
	KindSemaphore
	KindEvent
	KindValue
	KindArray
	KindQueue
	KindPipe
	KindBarrier
	KindCond
	KindDict
	KindList
)

var kindNames = [...]string{
	KindRaw:       "raw",
	KindMutex:     "mutex",
	KindSemaphore: "semaphore",
	KindEvent:     "event",
	KindValue:     "value",
	KindArray:     "array",
	KindQueue:     "queue",
	KindPipe:      "pipe",
	KindBarrier:   "barrier",
	KindCond:      "cond",
	KindDict:      "dict",
	KindList:      "list",
}

// String returns the kind's lower-case name, or "Kind(N)" for an unknown one.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(" + strconv.FormatUint(uint64(k), 10) + ")"
}

// TypeDesc describes the element type stored in a segment (for Value[T],
// Array[T], typed queues). The zero value means untyped. Open compares all
// three fields when the caller passes WithType.
type TypeDesc struct {
	// Size is the element size in bytes (0: untyped).
	Size uint32
	// Align is the element alignment in bytes: 0 or a power of two.
	Align uint32
	// Fingerprint is a structural hash of the element type, computed by
	// the layer that records it (internal/typeinfo for shmkit's own types).
	Fingerprint uint64
}

// String formats the descriptor for error messages and tools.
func (t TypeDesc) String() string {
	if t == (TypeDesc{}) {
		return "untyped"
	}
	return fmt.Sprintf("size=%d align=%d fp=%#016x", t.Size, t.Align, t.Fingerprint)
}

// State is a segment's initialisation state, the one mutable word of the
// header.
type State uint32

// Initialisation states.
const (
	StateUninitialised State = 0 // zero memory: nobody has started
	StateInitialising  State = 1 // the creator is writing the header and payload
	StateReady         State = 2 // the segment may be used
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateUninitialised:
		return "uninitialised"
	case StateInitialising:
		return "initialising"
	case StateReady:
		return "ready"
	}
	return "State(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Info describes a named segment, as List and Inspect report it. Inspect
// reads the header without mapping or waiting; Info of a corrupt segment
// has Err set and only Name, Path, Mode, Inode and FileSize filled in (or
// fewer, when the file could not be opened).
type Info struct {
	Name         string      // segment name, without NamePrefix
	Path         string      // file path in /dev/shm
	Mode         os.FileMode // permission bits
	Inode        uint64      // inode number in /dev/shm (matches the inode column of /proc/PID/maps)
	FileSize     int64       // file size, header included
	Size         int         // payload size in bytes
	Kind         Kind        // recorded kind
	Type         TypeDesc    // recorded element type
	TypeName     string      // recorded type name (WithTypeName), "" if none
	Params       [2]uint64   // kind-specific parameters (WithParams)
	State        State       // initialisation state
	CreatorPid   int         // pid of the process that created the segment
	CreatorStart uint64      // its start time (clock ticks after boot)
	CreatorAlive bool        // whether that process still runs
	Err          error       // why the header is not valid, if it is not
}

// Option configures Create, Open, OpenOrCreate, CreateAnonymous, OpenFile
// and Receive. Options that only make sense at creation (WithMode,
// WithParams, WithInit) are ignored when an existing segment is opened, so
// one option list can be passed to OpenOrCreate.
type Option func(*options)

type options struct {
	mode     os.FileMode
	populate bool
	lock     bool
	kind     Kind
	typ      TypeDesc
	typed    bool
	typeName string
	received bool // set by Receive, for NotSegmentError
	p0, p1   uint64
	init     func([]byte) error
}

func collect(opts []Option) options {
	o := options{mode: 0o600}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// validate checks the options that Create records in the header.
func (o *options) validate() error {
	if a := o.typ.Align; a&(a-1) != 0 {
		return fmt.Errorf("WithType: alignment %d is not a power of two: %w", a, fs.ErrInvalid)
	}
	return nil
}

// WithMode sets the permission bits of a new named segment (default 0600).
// The umask does not apply. Only the permission bits of mode are used.
func WithMode(mode os.FileMode) Option {
	return func(o *options) { o.mode = mode.Perm() }
}

// WithPopulate pre-faults the mapping writable (MADV_POPULATE_WRITE, or
// MAP_POPULATE on kernels older than 5.14), so that first accesses do not
// page-fault. Each process that maps the segment faults its own page
// tables, so give it to Open as well as to Create. At creation it also allocates the file's
// space (fallocate), so that a full /dev/shm fails Create with ENOSPC
// instead of killing the process with SIGBUS when a page is first touched.
func WithPopulate() Option {
	return func(o *options) { o.populate = true }
}

// WithLockedPages locks the mapping in memory (mlock), so it is never
// swapped out. It fails with a wrapped EPERM or ENOMEM when RLIMIT_MEMLOCK
// is too small.
func WithLockedPages() Option {
	return func(o *options) { o.lock = true }
}

// WithKind records the kind at creation; on Open, the segment must have
// this kind or Open fails with a *MismatchError matching ErrKind.
func WithKind(k Kind) Option {
	return func(o *options) { o.kind = k }
}

// WithType records the element type at creation; on Open, the segment must
// have this type or Open fails with a *MismatchError matching ErrType.
func WithType(t TypeDesc) Option {
	return func(o *options) { o.typ, o.typed = t, true }
}

// WithTypeName records the name of the Go type (or any type) the segment
// holds, for error messages and tools such as cmd/shmctl; given to Open
// with WithType, it names the type asked for in a type *MismatchError. It
// is purely descriptive: Open never compares it (WithType does), and a
// name longer than MaxTypeName bytes is shortened, keeping its end (see
// TypeName). Bytes outside printable ASCII are replaced by '?'.
func WithTypeName(name string) Option {
	return func(o *options) { o.typeName = name }
}

// WithParams records two kind-specific parameters (a length, a capacity)
// at creation. They are covered by the header checksum. Open does not
// check them; read them with Segment.Params.
func WithParams(p0, p1 uint64) Option {
	return func(o *options) { o.p0, o.p1 = p0, p1 }
}

// WithInit runs init on the fresh, zeroed payload before the segment
// becomes visible to any other process. If init returns an error, Create
// fails with it and nothing is published.
func WithInit(init func(payload []byte) error) Option {
	return func(o *options) { o.init = init }
}
