package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/shmkit/shmkit/dict"
	"github.com/shmkit/shmkit/shm"
)

// The dict pattern: each of 1 or 2 processes (goroutines for the
// in-process maps) loops on one operation against one shared map of
// dictKeys entries, and the rate is operations per second, all processes
// together. Two shapes, named by the value size: 64 B values under 8-byte
// keys (typed: dict.Map[uint64, [8]uint64]) and 1 KiB values under 32-byte
// string keys (dict.Bytes). Every value read is checked: its first 8
// bytes are its key's number.
const dictKeys = 4096

var (
	dictSizes      = []int{64, 1 << 10}
	dictQuickSizes = []int{64}
	dictProcs      = []int{1, 2}
	// dictQuick are the dict rows of -quick.
	dictQuick = []string{"dict-load", "syncmap-load", "redis-get-p64", "py-manager-get"}
)

// dictOp is what a dict row does.
type dictOp int

const (
	opLoad  dictOp = iota // Load of a present key
	opMiss                // Load of an absent key
	opStore               // Store over a present key (each process its own keys)
)

// dictKey is key i of the shape of size: 8 bytes (its number, little-
// endian) for 64 B values, else 32 bytes of text. Misses use numbers from
// dictKeys up, never stored.
func dictKey(size int, i uint64) string {
	if size <= 64 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], i)
		return string(b[:])
	}
	s := strconv.FormatUint(i, 10)
	return "key-" + strings.Repeat("0", max(28-len(s), 0)) + s
}

// dictValue fills v (the value size) for key i, version ver.
func dictValue(v []byte, i, ver uint64) {
	binary.LittleEndian.PutUint64(v, i)
	if len(v) >= 16 {
		binary.LittleEndian.PutUint64(v[8:], ver)
	}
}

// checkValue checks that v is a value of key i.
func checkValue(v []byte, size int, i uint64) error {
	if len(v) != size || binary.LittleEndian.Uint64(v) != i {
		n := uint64(0)
		if len(v) >= 8 {
			n = binary.LittleEndian.Uint64(v)
		}
		return fmt.Errorf("key %d: got a value of %d bytes for key %d", i, len(v), n)
	}
	return nil
}

// dictCursor walks the keys a process uses: all of them for loads,
// those of its residue for stores, the absent ones for misses.
type dictCursor struct {
	op         dictOp
	next, step uint64
}

func newCursor(op dictOp, index, procs int) dictCursor {
	c := dictCursor{op: op, step: 1, next: uint64(index) * 977 % dictKeys}
	if op == opStore {
		c.next, c.step = uint64(index), uint64(max(procs, 1))
	}
	return c
}

// key returns the number of the next key.
func (c *dictCursor) key() uint64 {
	k := c.next
	c.next += c.step
	if c.next >= dictKeys {
		c.next -= dictKeys
	}
	if c.op == opMiss {
		return k + dictKeys
	}
	return k
}

// shmDict measures package dict across processes.
type shmDict struct {
	name string
	op   dictOp
}

func init() {
	register(&shmDict{name: "dict-load", op: opLoad})
	register(&shmDict{name: "dict-miss", op: opMiss})
	register(&shmDict{name: "dict-store", op: opStore})
}

// Spec implements Transport.
func (t *shmDict) Spec() Spec {
	what := map[dictOp]string{opLoad: "Load (a present key; lock-free, copies the value)",
		opMiss: "Load of an absent key", opStore: "Store over a present key (each process its own keys)"}[t.op]
	return Spec{Name: t.name, Kind: KindShmkit, NoProducer: true, Patterns: []Pattern{PatDict},
		Desc:     "shmkit dict.Map[uint64, [8]uint64] (64 B) or dict.Bytes (32 B keys, 1 KiB values): " + what,
		Batching: "none: one operation per call"}
}

// Unavailable implements Transport.
func (t *shmDict) Unavailable() string { return shmUnavailable() }

// Setup implements Transport: it creates the map and stores every key.
func (t *shmDict) Setup(m *Measurement) (*Setup, error) {
	ctx := context.Background()
	name := segName("dict")
	val := make([]byte, m.Size)
	if m.Size <= 64 {
		d, err := dict.Create[uint64, [8]uint64](name, dict.WithCapacity(dictKeys), dict.WithMaxBytes(64<<20))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		for i := range uint64(dictKeys) {
			var v [8]uint64
			v[0] = i
			if err := d.Store(ctx, i, v); err != nil {
				shm.Unlink(name)
				return nil, err
			}
		}
	} else {
		d, err := dict.CreateBytes(name, dict.WithCapacity(dictKeys), dict.WithMaxBytes(256<<20))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		for i := range uint64(dictKeys) {
			dictValue(val, i, 0)
			if err := d.Store(ctx, dictKey(m.Size, i), val); err != nil {
				shm.Unlink(name)
				return nil, err
			}
		}
	}
	return &Setup{Args: map[string]string{"name": name}, Cleanup: func() { shm.Unlink(name) }}, nil
}

// Open implements Transport.
func (t *shmDict) Open(env *PeerEnv) ([]Endpoint, error) {
	ctx := context.Background()
	e := &shmDictEndpoint{op: t.op, size: env.M.Size, cur: newCursor(t.op, env.Index, env.M.Consumers),
		buf: make([]byte, 0, env.M.Size)}
	var err error
	if env.M.Size <= 64 {
		e.typed, err = dict.Open[uint64, [8]uint64](ctx, env.Args["name"])
	} else {
		e.bytes, err = dict.OpenBytes(ctx, env.Args["name"])
		e.keys = make([]string, 2*dictKeys)
		for i := range e.keys {
			e.keys[i] = dictKey(env.M.Size, uint64(i))
		}
	}
	if err != nil {
		return nil, err
	}
	return []Endpoint{e}, nil
}

type shmDictEndpoint struct {
	op    dictOp
	size  int
	cur   dictCursor
	typed *dict.Map[uint64, [8]uint64]
	bytes *dict.Bytes
	keys  []string // the 1 KiB shape's keys, made once (present, then absent)
	buf   []byte
	ver   uint64
}

// Send implements Endpoint.
func (e *shmDictEndpoint) Send(uint64) error { return errUnsupported }

// Recv performs one operation and checks what it read.
func (e *shmDictEndpoint) Recv() (uint64, error) {
	k := e.cur.key()
	ctx := context.Background()
	if e.typed != nil {
		switch e.op {
		case opStore:
			e.ver++
			return 0, e.typed.Store(ctx, k, [8]uint64{k, e.ver})
		default:
			v, ok, err := e.typed.Load(k)
			if err != nil {
				return 0, err
			}
			if ok != (e.op == opLoad) || ok && v[0] != k {
				return 0, fmt.Errorf("key %d: Load = %v, %v", k, v[0], ok)
			}
			return 0, nil
		}
	}
	switch e.op {
	case opStore:
		e.ver++
		e.buf = e.buf[:e.size]
		dictValue(e.buf, k, e.ver)
		return 0, e.bytes.Store(ctx, e.keys[k], e.buf)
	default:
		v, ok, err := e.bytes.AppendLoad(e.buf[:0], e.keys[k])
		if err != nil {
			return 0, err
		}
		if ok != (e.op == opLoad) {
			return 0, fmt.Errorf("key %d: present %v", k, ok)
		}
		if ok {
			return 0, checkValue(v, e.size, k)
		}
		return 0, nil
	}
}

// Close implements Endpoint.
func (e *shmDictEndpoint) Close() error {
	if e.typed != nil {
		return e.typed.Close()
	}
	return e.bytes.Close()
}

// inprocDict is the in-process yardstick: goroutines of one process on a
// sync.Map or a map under a sync.RWMutex, each Load copying the value out
// as dict's Load does.
type inprocDict struct {
	name   string
	rw     bool
	once   sync.Once
	sm     sync.Map // key → *[8]uint64 (64 B) or []byte (1 KiB)
	mu     sync.RWMutex
	m8     map[uint64][8]uint64
	mbytes map[string][]byte
}

func init() {
	register(&inprocDict{name: "syncmap-load"})
	register(&inprocDict{name: "rwmap-load", rw: true})
}

// Spec implements Transport.
func (t *inprocDict) Spec() Spec {
	desc := "Go sync.Map in ONE process, Load and copy (in-process yardstick)"
	if t.rw {
		desc = "Go map under sync.RWMutex (RLock) in ONE process, copy (in-process yardstick)"
	}
	return Spec{Name: t.name, Kind: KindInProcess, InProcess: true, NoProducer: true,
		Patterns: []Pattern{PatDict}, Desc: desc, Batching: "none: one operation per call"}
}

// Unavailable implements Transport.
func (t *inprocDict) Unavailable() string { return "" }

// Setup implements Transport.
func (t *inprocDict) Setup(m *Measurement) (*Setup, error) { return &Setup{}, nil }

// Open implements Transport.
func (t *inprocDict) Open(env *PeerEnv) ([]Endpoint, error) {
	size := env.M.Size
	t.once.Do(func() {
		t.m8, t.mbytes = map[uint64][8]uint64{}, map[string][]byte{}
		for i := range uint64(dictKeys) {
			if size <= 64 {
				v := [8]uint64{i}
				t.m8[i] = v
				t.sm.Store(i, &v)
				continue
			}
			b := make([]byte, size)
			dictValue(b, i, 0)
			t.mbytes[dictKey(size, i)] = b
			t.sm.Store(dictKey(size, i), b)
		}
	})
	e := &inprocDictEndpoint{t: t, size: size, cur: newCursor(opLoad, env.Index, env.M.Consumers), buf: make([]byte, size)}
	if size > 64 {
		for i := range uint64(dictKeys) {
			e.keys = append(e.keys, dictKey(size, i))
		}
	}
	return []Endpoint{e}, nil
}

type inprocDictEndpoint struct {
	t    *inprocDict
	size int
	cur  dictCursor
	keys []string
	buf  []byte
}

// Send implements Endpoint.
func (e *inprocDictEndpoint) Send(uint64) error { return errUnsupported }

// Recv performs one Load and checks it.
func (e *inprocDictEndpoint) Recv() (uint64, error) {
	k := e.cur.key()
	t := e.t
	if e.size <= 64 {
		var v [8]uint64
		if t.rw {
			t.mu.RLock()
			v = t.m8[k]
			t.mu.RUnlock()
		} else {
			p, _ := t.sm.Load(k)
			v = *p.(*[8]uint64)
		}
		if v[0] != k {
			return 0, fmt.Errorf("key %d: value of %d", k, v[0])
		}
		return 0, nil
	}
	if t.rw {
		t.mu.RLock()
		copy(e.buf, t.mbytes[e.keys[k]])
		t.mu.RUnlock()
	} else {
		p, _ := t.sm.Load(e.keys[k])
		copy(e.buf, p.([]byte))
	}
	return 0, checkValue(e.buf, e.size, k)
}

// Close implements Endpoint.
func (e *inprocDictEndpoint) Close() error { return nil }
