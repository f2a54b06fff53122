package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/shmkit/shmkit/internal/typeinfo"
	"github.com/shmkit/shmkit/ring"
)

// The messages of a pool's rings (docs/format/pool.md has the bytes).
//
// A job message (parent to worker) carries the inputs of one chunk; a
// result message (worker to parent) the outcomes of some consecutive tasks
// of one chunk (a worker splits a chunk's results over several messages
// when they do not fit in one). Both have the same shape:
//
//	header   24 bytes: magic u32, n u32, seq u64, off u32, strLen u32
//	status   n bytes, one per task
//	strings  strLen bytes: the texts of the tasks whose status carries one
//	payload  the values of the tasks whose status is stOK, in task order:
//	         plain types as their raw bytes, others as one Codec message
//	         of a []T
//
// Everything is little-endian. A message read from a ring is untrusted:
// every count and length is checked against the message's own size before
// use, and a message that does not add up is errCorruptMsg.
const (
	magicJob    = 0x314a4b53 // "SKJ1"
	magicResult = 0x31524b53 // "SKR1"
	headerSize  = 24
)

// Task statuses in a message.
const (
	stOK       = 0 // a value, in the payload
	stZero     = 1 // the zero value, not in the payload (nil pointers and maps do not encode)
	stError    = 2 // the function returned an error: one string, its message
	stPanic    = 3 // the function panicked: two strings, the value and the stack
	stEncode   = 4 // the worker could not encode the result: one string, why
	stTooLarge = 5 // the result does not fit in a message: one string, why
	stMax      = stTooLarge
)

// maxText bounds an error message or stack carried in a result.
const maxText = 32 << 10

var errCorruptMsg = errors.New("proc: corrupt pool message")

// header is a message's fixed part.
type header struct {
	magic  uint32
	n      uint32
	seq    uint64
	off    uint32
	strLen uint32
}

func putHeader(b []byte, h header) {
	binary.LittleEndian.PutUint32(b[0:], h.magic)
	binary.LittleEndian.PutUint32(b[4:], h.n)
	binary.LittleEndian.PutUint64(b[8:], h.seq)
	binary.LittleEndian.PutUint32(b[16:], h.off)
	binary.LittleEndian.PutUint32(b[20:], h.strLen)
}

// message is a decoded message whose parts still alias the buffer.
type message struct {
	header
	status  []byte
	strs    []byte
	payload []byte
}

// parseMessage checks msg's framing (not its payload, which the value
// codec checks) against want, the expected magic.
func parseMessage(msg []byte, want uint32) (message, error) {
	var m message
	if len(msg) < headerSize {
		return m, fmt.Errorf("%w: %d bytes, shorter than a header", errCorruptMsg, len(msg))
	}
	m.magic = binary.LittleEndian.Uint32(msg[0:])
	m.n = binary.LittleEndian.Uint32(msg[4:])
	m.seq = binary.LittleEndian.Uint64(msg[8:])
	m.off = binary.LittleEndian.Uint32(msg[16:])
	m.strLen = binary.LittleEndian.Uint32(msg[20:])
	if m.magic != want {
		return m, fmt.Errorf("%w: magic %#x, want %#x", errCorruptMsg, m.magic, want)
	}
	rest := msg[headerSize:]
	if uint64(m.n) > uint64(len(rest)) || uint64(m.strLen) > uint64(len(rest))-uint64(m.n) {
		return m, fmt.Errorf("%w: %d tasks and %d bytes of text in %d bytes", errCorruptMsg, m.n, m.strLen, len(msg))
	}
	m.status = rest[:m.n]
	m.strs = rest[m.n : uint64(m.n)+uint64(m.strLen)]
	m.payload = rest[uint64(m.n)+uint64(m.strLen):]
	for i, s := range m.status {
		if s > stMax {
			return m, fmt.Errorf("%w: task %d has status %d", errCorruptMsg, i, s)
		}
	}
	return m, nil
}

// nextString takes one length-prefixed string off *b.
func nextString(b *[]byte) (string, error) {
	if len(*b) < 4 {
		return "", fmt.Errorf("%w: strings section ends early", errCorruptMsg)
	}
	n := binary.LittleEndian.Uint32(*b)
	if uint64(n) > uint64(len(*b)-4) {
		return "", fmt.Errorf("%w: a string of %d bytes in %d", errCorruptMsg, n, len(*b)-4)
	}
	s := string((*b)[4 : 4+n])
	*b = (*b)[4+n:]
	return s, nil
}

func appendString(b []byte, s string) []byte {
	if len(s) > maxText {
		s = s[:maxText]
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// valueCodec turns a run of values into a payload and back.
type valueCodec[T any] interface {
	// appendValues appends the payload of vs to dst.
	appendValues(dst []byte, vs []T) ([]byte, error)
	// decodeValues decodes a payload of exactly n values into dst[:n].
	decodeValues(payload []byte, dst []T) error
	// size is the bytes of one value when fixed, 0 otherwise.
	size() int
}

// codecFor picks the raw-bytes codec for a plain T and c otherwise.
func codecFor[T any](c ring.Codec) valueCodec[T] {
	if size, _, _, err := typeinfo.Of[T](); err == nil {
		return plainCodec[T]{n: int(size)}
	}
	return encCodec[T]{c: c}
}

// plainCodec carries fixed-size pointer-free values as their bytes: both
// ends run the same binary, so the layout is the same.
type plainCodec[T any] struct{ n int }

func (p plainCodec[T]) size() int { return p.n }

func (p plainCodec[T]) appendValues(dst []byte, vs []T) ([]byte, error) {
	if len(vs) == 0 {
		return dst, nil
	}
	return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), len(vs)*p.n)...), nil
}

func (p plainCodec[T]) decodeValues(payload []byte, dst []T) error {
	if len(payload) != len(dst)*p.n {
		return fmt.Errorf("%w: %d bytes for %d values of %d", errCorruptMsg, len(payload), len(dst), p.n)
	}
	if len(dst) > 0 {
		// Any bytes are a valid T: T holds no pointer (typeinfo checked).
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(payload)), payload)
	}
	return nil
}

// encCodec carries values through a ring.Codec, a whole run as one []T.
type encCodec[T any] struct{ c ring.Codec }

func (encCodec[T]) size() int { return 0 }

func (e encCodec[T]) appendValues(dst []byte, vs []T) ([]byte, error) {
	if len(vs) == 0 {
		return dst, nil
	}
	b, err := e.c.Marshal(vs)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (e encCodec[T]) decodeValues(payload []byte, dst []T) error {
	if len(dst) == 0 {
		if len(payload) != 0 {
			return fmt.Errorf("%w: %d payload bytes for no value", errCorruptMsg, len(payload))
		}
		return nil
	}
	var vs []T
	if err := e.c.Unmarshal(payload, &vs); err != nil {
		return fmt.Errorf("%w: %w", ring.ErrDecode, err)
	}
	if len(vs) != len(dst) {
		return fmt.Errorf("%w: %d values decoded, want %d", errCorruptMsg, len(vs), len(dst))
	}
	copy(dst, vs)
	return nil
}

// isZero reports whether v is T's zero value (for values a codec may not
// encode, such as nil pointers).
func isZero[T any](v *T) bool { return reflect.ValueOf(v).Elem().IsZero() }

// outcome is one task's result as a worker reports it.
type outcome struct {
	status byte
	text   string // stError, stEncode, stTooLarge: the message; stPanic: the value
	stack  string // stPanic
}

// encodeValues appends header, statuses and payload for vs to dst. A run
// the codec refuses as a whole is encoded value by value: zero values are
// sent as stZero and values that cannot be encoded get stEncode with the
// codec's error (jobs: the caller turns those into task errors). outs may
// be nil (all stOK) or give each value's outcome; values whose outcome is
// not stOK are not encoded.
func encodeValues[T any](vc valueCodec[T], dst []byte, h header, vs []T, outs []outcome) ([]byte, []outcome, error) {
	n := len(vs)
	h.n = uint32(n)
	ok := vs
	if outs != nil {
		ok = nil
		for i := range vs {
			if outs[i].status == stOK {
				ok = append(ok, vs[i])
			}
		}
	}
	start := len(dst)
	build := func(outs []outcome, ok []T) ([]byte, error) {
		b := append(dst[:start], make([]byte, headerSize)...)
		var strs []byte
		for i := range n {
			st := byte(stOK)
			if outs != nil {
				st = outs[i].status
			}
			b = append(b, st)
			switch st {
			case stError, stEncode, stTooLarge:
				strs = appendString(strs, outs[i].text)
			case stPanic:
				strs = appendString(strs, outs[i].text)
				strs = appendString(strs, outs[i].stack)
			}
		}
		b = append(b, strs...)
		h.strLen = uint32(len(strs))
		putHeader(b[start:], h)
		return vc.appendValues(b, ok)
	}
	b, err := build(outs, ok)
	if err == nil {
		return b, outs, nil
	}
	// Find the values the codec refuses, one by one.
	fixed := make([]outcome, n)
	if outs != nil {
		copy(fixed, outs)
	}
	ok = ok[:0:0]
	for i := range vs {
		if fixed[i].status != stOK {
			continue
		}
		if _, err := vc.appendValues(nil, vs[i:i+1]); err != nil {
			if isZero(&vs[i]) {
				fixed[i] = outcome{status: stZero}
			} else {
				fixed[i] = outcome{status: stEncode, text: err.Error()}
			}
			continue
		}
		ok = append(ok, vs[i])
	}
	b, err = build(fixed, ok)
	if err != nil {
		return dst[:start], fixed, err // values that encode alone but not together
	}
	return b, fixed, nil
}

// decodeValues decodes a message's outcomes and values into dst[:m.n] and
// outs[:m.n]; values whose status is not stOK are left zero.
func decodeValues[T any](vc valueCodec[T], m message, dst []T, outs []outcome) error {
	if len(dst) != int(m.n) || len(outs) != int(m.n) {
		return fmt.Errorf("%w: %d tasks, want %d", errCorruptMsg, m.n, len(dst))
	}
	strs := m.strs
	k := 0
	var err error
	for i, st := range m.status {
		outs[i] = outcome{status: st}
		switch st {
		case stOK:
			k++
		case stError, stEncode, stTooLarge:
			outs[i].text, err = nextString(&strs)
		case stPanic:
			if outs[i].text, err = nextString(&strs); err == nil {
				outs[i].stack, err = nextString(&strs)
			}
		}
		if err != nil {
			return err
		}
	}
	if len(strs) != 0 {
		return fmt.Errorf("%w: %d bytes left in the strings section", errCorruptMsg, len(strs))
	}
	var zero T
	if k == len(dst) {
		return vc.decodeValues(m.payload, dst)
	}
	vals := make([]T, k)
	if err := vc.decodeValues(m.payload, vals); err != nil {
		return err
	}
	k = 0
	for i, st := range m.status {
		if st == stOK {
			dst[i] = vals[k]
			k++
		} else {
			dst[i] = zero
		}
	}
	return nil
}
