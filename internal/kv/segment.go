package kv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// Spec is what a dict or list asks of its segment.
type Spec struct {
	Cfg      Config
	Kind     shm.Kind
	TypeName string       // the Go type, recorded in the segment header
	MaxBytes uint64       // payload size; 0 for DefaultMaxBytes
	Shm      []shm.Option // the caller's segment options
}

// DefaultMaxBytes is the payload reserved when the caller does not say:
// 256 MiB, or a quarter of /dev/shm's free space when that is less (at
// least what the first spaces need). The file is sparse: pages cost
// memory only once written.
const DefaultMaxBytes = 256 << 20

func (sp *Spec) size() (uint64, error) {
	need := MinSize(&sp.Cfg)
	if sp.MaxBytes != 0 {
		if sp.MaxBytes < need {
			return 0, fmt.Errorf("%w: maximum size %d bytes, the first spaces need %d", shm.ErrInvalidSize, sp.MaxBytes, need)
		}
		return sp.MaxBytes, nil
	}
	n := uint64(DefaultMaxBytes)
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Blocks > 0 {
		n = min(n, st.Bavail*uint64(st.Bsize)/4)
	}
	return max(n, need) &^ 63, nil
}

func (sp *Spec) seed() {
	if sp.Cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		sp.Cfg.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
}

// TypeDesc is the segment type descriptor of a store: the key and value
// sizes and a fingerprint of both.
func (c *Config) TypeDesc() shm.TypeDesc {
	fp := c.KeyFP*0x9e3779b97f4a7c15 ^ c.ValFP ^ uint64(c.KeySize)<<32 ^ uint64(c.ValSize)
	return shm.TypeDesc{Size: c.KeySize + c.ValSize, Align: 8, Fingerprint: fp}
}

func (sp *Spec) createOpts() ([]shm.Option, int, error) {
	if err := sp.Cfg.Validate(); err != nil {
		return nil, 0, err
	}
	size, err := sp.size()
	if err != nil {
		return nil, 0, err
	}
	if size > shm.MaxSize {
		return nil, 0, fmt.Errorf("%w: %d bytes", shm.ErrInvalidSize, size)
	}
	sp.seed()
	all := append([]shm.Option(nil), sp.Shm...)
	all = append(all, shm.WithKind(sp.Kind), shm.WithType(sp.Cfg.TypeDesc()), shm.WithTypeName(sp.TypeName),
		shm.WithInit(func(payload []byte) error {
			st, err := Init(payload, sp.Cfg)
			if err == nil {
				st.closeLocks()
			}
			return err
		}))
	return all, int(size), nil
}

func (sp *Spec) openOpts() []shm.Option {
	return append(append([]shm.Option(nil), sp.Shm...), shm.WithKind(sp.Kind), shm.WithType(sp.Cfg.TypeDesc()), shm.WithTypeName(sp.TypeName))
}

// Handle is an attached store and its segment.
type Handle struct {
	Seg *shm.Segment
	St  *Store
}

// Close closes the store, then the segment.
func (h *Handle) Close() error {
	if err := h.St.Close(); err != nil {
		return err
	}
	return h.Seg.Close()
}

func (sp *Spec) attach(seg *shm.Segment, err error) (*Handle, error) {
	if err != nil {
		return nil, err
	}
	st, err := Attach(seg.Bytes())
	if err == nil {
		err = sp.check(seg, &st.Cfg)
	}
	if err != nil {
		if st != nil {
			st.closeLocks()
		}
		_ = seg.Close()
		return nil, err
	}
	return &Handle{Seg: seg, St: st}, nil
}

// check compares what the store header records with the Spec.
func (sp *Spec) check(seg *shm.Segment, got *Config) error {
	w := &sp.Cfg
	if got.Magic != w.Magic {
		return fmt.Errorf("%w: the header is a %s's, the segment a %s's", ErrCorrupt, magicName(got.Magic), magicName(w.Magic))
	}
	mis := func(what string, want, have any) error {
		return &shm.MismatchError{Name: seg.Name(), What: "type", Want: what + " " + fmt.Sprint(want), Got: what + " " + fmt.Sprint(have),
			Err: shm.ErrType, WantType: sp.TypeName, GotType: seg.TypeName()}
	}
	switch {
	case got.KeySize != w.KeySize || got.KeyFP != w.KeyFP:
		return mis("key", typeWords(w.KeySize, w.KeyFP), typeWords(got.KeySize, got.KeyFP))
	case got.ValSize != w.ValSize || got.ValFP != w.ValFP:
		return mis("value", typeWords(w.ValSize, w.ValFP), typeWords(got.ValSize, got.ValFP))
	}
	return nil
}

func typeWords(size uint32, fp uint64) string {
	if size == 0 {
		return "bytes"
	}
	return fmt.Sprintf("%d bytes, fingerprint %#x", size, fp)
}

func magicName(m uint64) string {
	if m == MagicList {
		return "list"
	}
	return "dict"
}

// Create creates a named store.
func (sp *Spec) Create(name string) (*Handle, error) {
	all, size, err := sp.createOpts()
	if err != nil {
		return nil, err
	}
	return sp.attach(shm.Create(name, size, all...))
}

// CreateAnonymous creates an anonymous store.
func (sp *Spec) CreateAnonymous() (*Handle, error) {
	all, size, err := sp.createOpts()
	if err != nil {
		return nil, err
	}
	return sp.attach(shm.CreateAnonymous(size, all...))
}

// OpenOrCreate opens the named store or creates it.
func (sp *Spec) OpenOrCreate(ctx context.Context, name string) (*Handle, bool, error) {
	all, size, err := sp.createOpts()
	if err != nil {
		return nil, false, err
	}
	seg, created, err := shm.OpenOrCreate(ctx, name, size, all...)
	if err != nil && errors.Is(err, shm.ErrSize) {
		// An existing one keeps the size it was created with.
		var seg2 *shm.Segment
		seg2, err = shm.Open(ctx, name, sp.openOpts()...)
		h, err := sp.attach(seg2, err)
		return h, false, err
	}
	h, err := sp.attach(seg, err)
	return h, created, err
}

// Open opens a named store.
func (sp *Spec) Open(ctx context.Context, name string) (*Handle, error) {
	return sp.attach(shm.Open(ctx, name, sp.openOpts()...))
}

// OpenFile attaches to the store behind f.
func (sp *Spec) OpenFile(ctx context.Context, f *os.File) (*Handle, error) {
	return sp.attach(shm.OpenFile(ctx, f, sp.openOpts()...))
}

// Receive attaches to a store received from conn.
func (sp *Spec) Receive(ctx context.Context, conn *net.UnixConn) (*Handle, error) {
	return sp.attach(shm.Receive(ctx, conn, sp.openOpts()...))
}
