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

// The messages of a pool's rings (docs/format/pool.md has every byte).
//
// A job message (parent to worker) carries the inputs of one chunk; a
// result message (worker to parent) the outcomes of some consecutive tasks
// of one chunk (a worker splits a chunk's results over several messages
// when they do not fit in one). Both have the same shape:
//
//	header      32 bytes: magic u32, n u32, seq u64, off u32, nExc u32,
//	            excLen u32, size u32
//	payload     plain values (size > 0): n*size bytes, every task's value
//	            in task order (an exception's bytes are zero), or none
//	            when every task is an exception; others (size 0): one
//	            Codec message of a []T of the values of the tasks that are
//	            not exceptions, in task order, or none when all are
//	exceptions  the last excLen bytes: nExc records, one per task without
//	            a value, by increasing index: index u32, status u8, then
//	            the status's strings (u32 length, bytes)
//
// So the success path of plain types is one memmove each way and no
// per-task byte; only the failed tasks cost more. Everything is
// little-endian. A message read from a ring is untrusted: every count,
// index and length is checked against the message's own size before use
// (and before any allocation sized by it), and a message that does not
// add up is errCorruptMsg.
const (
	magicJob    = 0x324a4b53 // "SKJ2"
	magicResult = 0x32524b53 // "SKR2"
	magicReady  = 0x32484b53 // "SKH2": a worker's first message, a bare header
	headerSize  = 32
	excMin      = 5 // the smallest exception record: index and status
)

// Task statuses in an exception record (0, stOK, is never in one: it is
// the status of every task not listed).
const (
	stOK       = 0 // a value, in the payload
	stZero     = 1 // the zero value (nil pointers and maps do not encode)
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
	n      uint32 // tasks in the message
	seq    uint64 // the job's sequence number on its worker
	off    uint32 // the first task's position in the job (0 in jobs)
	nExc   uint32 // exception records
	excLen uint32 // bytes of exception records, at the end
	size   uint32 // bytes of one plain value; 0: a codec payload
}

func putHeader(b []byte, h header) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], h.magic)
	le.PutUint32(b[4:], h.n)
	le.PutUint64(b[8:], h.seq)
	le.PutUint32(b[16:], h.off)
	le.PutUint32(b[20:], h.nExc)
	le.PutUint32(b[24:], h.excLen)
	le.PutUint32(b[28:], h.size)
}

// message is a parsed message whose parts still alias the buffer.
type message struct {
	header
	payload []byte
	exc     []byte
}

// parseMessage checks msg's framing against want (the expected magic) and
// size (the receiver's plain value size, 0 for a codec), but not the
// exception records (parseExceptions) nor a codec payload (decodeValues).
func parseMessage(msg []byte, want uint32, size int) (message, error) {
	var m message
	if len(msg) < headerSize {
		return m, fmt.Errorf("%w: %d bytes, shorter than a header", errCorruptMsg, len(msg))
	}
	le := binary.LittleEndian
	m.magic = le.Uint32(msg[0:])
	m.n = le.Uint32(msg[4:])
	m.seq = le.Uint64(msg[8:])
	m.off = le.Uint32(msg[16:])
	m.nExc = le.Uint32(msg[20:])
	m.excLen = le.Uint32(msg[24:])
	m.size = le.Uint32(msg[28:])
	switch {
	case m.magic != want:
		return m, fmt.Errorf("%w: magic %#x, want %#x", errCorruptMsg, m.magic, want)
	case uint64(m.size) != uint64(size):
		return m, fmt.Errorf("%w: values of %d bytes, want %d", errCorruptMsg, m.size, size)
	case uint64(m.excLen) > uint64(len(msg)-headerSize):
		return m, fmt.Errorf("%w: %d bytes of exceptions in %d", errCorruptMsg, m.excLen, len(msg))
	case m.nExc > m.n || uint64(m.nExc)*excMin > uint64(m.excLen):
		return m, fmt.Errorf("%w: %d exceptions of %d tasks in %d bytes", errCorruptMsg, m.nExc, m.n, m.excLen)
	}
	end := len(msg) - int(m.excLen)
	m.payload, m.exc = msg[headerSize:end:end], msg[end:]
	switch {
	case size > 0 && uint64(len(m.payload)) != uint64(m.n)*uint64(size) && !(m.nExc == m.n && len(m.payload) == 0):
		return m, fmt.Errorf("%w: %d payload bytes for %d values of %d", errCorruptMsg, len(m.payload), m.n, size)
	case size == 0 && m.nExc == m.n && len(m.payload) != 0:
		return m, fmt.Errorf("%w: %d payload bytes for no value", errCorruptMsg, len(m.payload))
	}
	return m, nil
}

// readyMessage is the message a worker sends first on its result ring,
// once it has opened its rings and is about to wait for its first job: a
// header with magic magicReady and the size of its plain result values,
// every other field zero. The parent gives a worker no job before it.
func readyMessage(size int) []byte {
	b := make([]byte, headerSize)
	putHeader(b, header{magic: magicReady, size: uint32(size)})
	return b
}

// parseReady checks a ready message against size, the parent's own size
// of a plain result value (0 for a codec).
func parseReady(msg []byte, size int) error {
	m, err := parseMessage(msg, magicReady, size)
	if err != nil {
		return err
	}
	if len(msg) != headerSize || m.n != 0 || m.seq != 0 || m.off != 0 || m.nExc != 0 || m.excLen != 0 {
		return fmt.Errorf("%w: ready message of %d bytes with n %d, seq %d, off %d, nExc %d, excLen %d",
			errCorruptMsg, len(msg), m.n, m.seq, m.off, m.nExc, m.excLen)
	}
	return nil
}

// exception is one task of a message without a value in the payload.
type exception struct {
	i      int  // the task's index in the message
	status byte // stZero..stMax
	text   string
	stack  string
}

// err is the task's error in the parent (nil for stZero).
func (e *exception) err() error {
	switch e.status {
	case stError:
		return &remoteError{e.text}
	case stPanic:
		return &PanicError{Value: e.text, Stack: e.stack}
	case stEncode:
		return fmt.Errorf("%w: the result: %s", ring.ErrEncode, e.text)
	case stTooLarge:
		return fmt.Errorf("%w: %s", ring.ErrTooLarge, e.text)
	}
	return nil
}

// size is the bytes of e's record.
func (e *exception) size() int {
	switch e.status {
	case stError, stEncode, stTooLarge:
		return excMin + 4 + min(len(e.text), maxText)
	case stPanic:
		return excMin + 8 + min(len(e.text), maxText) + min(len(e.stack), maxText)
	}
	return excMin
}

func appendException(b []byte, e *exception) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(e.i))
	b = append(b, e.status)
	switch e.status {
	case stError, stEncode, stTooLarge:
		b = appendString(b, e.text)
	case stPanic:
		b = appendString(b, e.text)
		b = appendString(b, e.stack)
	}
	return b
}

func excBytes(exc []exception) int {
	n := 0
	for i := range exc {
		n += exc[i].size()
	}
	return n
}

// parseExceptions appends m's exception records to dst, checked: nExc of
// them, indexes increasing and below n, known statuses, strings inside the
// section, no byte left over.
func parseExceptions(m message, dst []exception) ([]exception, error) {
	b := m.exc
	prev := -1
	for range m.nExc {
		if len(b) < excMin {
			return dst, fmt.Errorf("%w: exception records end early", errCorruptMsg)
		}
		e := exception{i: int(binary.LittleEndian.Uint32(b)), status: b[4]}
		b = b[excMin:]
		if e.i <= prev || e.i >= int(m.n) {
			return dst, fmt.Errorf("%w: exception for task %d after %d, of %d", errCorruptMsg, e.i, prev, m.n)
		}
		prev = e.i
		var err error
		switch e.status {
		case stZero:
		case stError, stEncode, stTooLarge:
			e.text, err = nextString(&b)
		case stPanic:
			if e.text, err = nextString(&b); err == nil {
				e.stack, err = nextString(&b)
			}
		default:
			err = fmt.Errorf("%w: task %d has status %d", errCorruptMsg, e.i, e.status)
		}
		if err != nil {
			return dst, err
		}
		dst = append(dst, e)
	}
	if len(b) != 0 {
		return dst, fmt.Errorf("%w: %d bytes left after the exceptions", errCorruptMsg, len(b))
	}
	return dst, nil
}

// nextString takes one length-prefixed string off *b.
func nextString(b *[]byte) (string, error) {
	if len(*b) < 4 {
		return "", fmt.Errorf("%w: a string's length is cut off", errCorruptMsg)
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

// valueCodec carries T in a payload: as raw bytes when T is plain (n, its
// size, > 0), through c otherwise.
type valueCodec[T any] struct {
	n int
	c ring.Codec
}

// codecFor picks the raw-bytes form for a plain T and c otherwise.
func codecFor[T any](c ring.Codec) valueCodec[T] {
	if size, _, _, err := typeinfo.Of[T](); err == nil {
		return valueCodec[T]{n: int(size)}
	}
	return valueCodec[T]{c: c}
}

// size is the bytes of one value when plain, 0 otherwise.
func (vc valueCodec[T]) size() int { return vc.n }

// rawBytes is the memory of a plain vs. Both ends run the same binary, so
// the layout is the same.
func rawBytes[T any](vs []T) []byte {
	if len(vs) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vs))), len(vs)*int(unsafe.Sizeof(vs[0])))
}

// viewPlain returns the n plain values of payload (n*size bytes): the
// payload itself when it is aligned for T (a ring message is 8-aligned and
// the payload follows a 32-byte header), else a copy in *scratch. Any
// bytes are a valid T: T holds no pointer (typeinfo checked).
func viewPlain[T any](payload []byte, n int, scratch *[]T) []T {
	if n == 0 {
		return nil
	}
	p := unsafe.Pointer(unsafe.SliceData(payload))
	var zero T
	if uintptr(p)%unsafe.Alignof(zero) == 0 {
		return unsafe.Slice((*T)(p), n)
	}
	*scratch = grow(*scratch, n)
	copy(rawBytes(*scratch), payload)
	return *scratch
}

// appendMessage appends the message of the tasks vs to dst: h with its
// counts filled in, the payload, then exc (the tasks without a value, by
// increasing index; their entries of a plain vs must be zero). A codec
// that refuses the run as a whole is tried value by value: a zero value
// it refuses becomes stZero and any other stEncode with its error (for a
// job, the caller fails those tasks and sends the others). The exceptions
// sent are returned.
func appendMessage[T any](vc valueCodec[T], dst []byte, h header, vs []T, exc []exception) ([]byte, []exception, error) {
	h.n, h.size = uint32(len(vs)), uint32(vc.n)
	start := len(dst)
	build := func(exc []exception) ([]byte, error) {
		h.nExc, h.excLen = uint32(len(exc)), uint32(excBytes(exc))
		b := append(dst[:start], make([]byte, headerSize)...)
		putHeader(b[start:], h)
		if vc.n > 0 {
			if len(exc) < len(vs) {
				b = append(b, rawBytes(vs)...)
			}
		} else if len(exc) < len(vs) {
			ok := vs
			if len(exc) > 0 {
				ok = make([]T, 0, len(vs)-len(exc))
				k := 0
				for i := range vs {
					if k < len(exc) && exc[k].i == i {
						k++
						continue
					}
					ok = append(ok, vs[i])
				}
			}
			enc, err := vc.c.Marshal(ok)
			if err != nil {
				return dst[:start], err
			}
			b = append(b, enc...)
		}
		for i := range exc {
			b = appendException(b, &exc[i])
		}
		return b, nil
	}
	b, err := build(exc)
	if err == nil || vc.n > 0 {
		return b, exc, err
	}
	// Find the values the codec refuses, one by one.
	var fixed []exception
	k := 0
	for i := range vs {
		if k < len(exc) && exc[k].i == i {
			fixed = append(fixed, exc[k])
			k++
			continue
		}
		if _, err := vc.c.Marshal(vs[i : i+1]); err != nil {
			if isZero(&vs[i]) {
				fixed = append(fixed, exception{i: i, status: stZero})
			} else {
				fixed = append(fixed, exception{i: i, status: stEncode, text: err.Error()})
			}
		}
	}
	b, err = build(fixed)
	return b, fixed, err // err: values that encode alone but not together
}

// decodeValues decodes the n values of a message whose exceptions are exc
// into dst, grown to m.n and returned; exceptions' entries are zero. A
// codec payload is decoded before dst is sized, so that a hostile n cannot
// make it allocate beyond what the codec produced.
func decodeValues[T any](vc valueCodec[T], m message, exc []exception, dst []T) ([]T, error) {
	n := int(m.n)
	if vc.n > 0 {
		dst = grow(dst, n)
		if len(m.payload) == 0 {
			clear(dst)
			return dst, nil
		}
		copy(rawBytes(dst), m.payload)
		for i := range exc {
			var zero T
			dst[exc[i].i] = zero
		}
		return dst, nil
	}
	var vs []T
	if len(exc) < n {
		if err := vc.c.Unmarshal(m.payload, &vs); err != nil {
			return dst, fmt.Errorf("%w: %w", ring.ErrDecode, err)
		}
	}
	if len(vs) != n-len(exc) {
		return dst, fmt.Errorf("%w: %d values decoded, want %d", errCorruptMsg, len(vs), n-len(exc))
	}
	dst = grow(dst, n)
	k, j := 0, 0
	for i := range dst {
		if k < len(exc) && exc[k].i == i {
			var zero T
			dst[i] = zero
			k++
			continue
		}
		dst[i] = vs[j]
		j++
	}
	return dst, nil
}

// isZero reports whether v is T's zero value (for values a codec may not
// encode, such as nil pointers).
func isZero[T any](v *T) bool { return reflect.ValueOf(v).Elem().IsZero() }

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
