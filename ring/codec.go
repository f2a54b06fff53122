package ring

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/shmkit/shmkit/shm"
)

// Codec turns values into messages and back: the hook for queues of
// arbitrary Go values (the analogue of pickling). Implementations must be
// safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Gob encodes each message as a self-contained encoding/gob stream (type
// information included), so consumers need no shared decoder state.
var Gob Codec = gobCodec{}

// JSON encodes each message with encoding/json.
var JSON Codec = jsonCodec{}

type gobCodec struct{}

func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Encoded is a queue of T values carried through a Codec. A value the
// codec cannot encode, or whose encoding exceeds MaxMessage, is an error
// at Put (wrapping ErrEncode or ErrTooLarge); nothing is queued.
type Encoded[T any] struct {
	q     *Queue
	codec Codec
	mu    sync.Mutex
	buf   []byte
}

// NewEncoded wraps q to carry T values with codec.
func NewEncoded[T any](q *Queue, codec Codec) *Encoded[T] {
	return &Encoded[T]{q: q, codec: codec}
}

// Queue returns the underlying queue.
func (e *Encoded[T]) Queue() *Queue { return e.q }

// File returns the file behind the queue's segment (see Queue.File).
func (e *Encoded[T]) File() *os.File { return e.q.File() }

// Segment returns the segment holding the queue (see Queue.Segment).
func (e *Encoded[T]) Segment() *shm.Segment { return e.q.Segment() }

// Put encodes v and appends it, waiting while the queue is full.
func (e *Encoded[T]) Put(ctx context.Context, v T) error {
	b, err := e.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %T: %w", ErrEncode, v, err)
	}
	if len(b) > e.q.MaxMessage() {
		return fmt.Errorf("%w (an encoded %T)", tooLarge(len(b), uint64(e.q.MaxMessage())), v)
	}
	return e.q.Put(ctx, b)
}

// Get takes the next message and decodes it, waiting while the queue is
// empty; io.EOF once it is closed and drained. A message the codec cannot
// decode is consumed and reported with an error wrapping ErrDecode.
func (e *Encoded[T]) Get(ctx context.Context) (T, error) {
	var v T
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := e.q.GetAppend(ctx, e.buf[:0])
	e.buf = b[:0]
	if err != nil {
		return v, err
	}
	if err := e.codec.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return v, nil
}

// Close releases the handle (see Queue.Close).
func (e *Encoded[T]) Close() error { return e.q.Close() }
