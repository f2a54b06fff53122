package proc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/shmkit/shmkit/ring"
)

// The event ring carries, from the child to the parent, the worker's slog
// records and then its final status. Each message starts with its type.
const (
	evLog    = 'L' // followed by one record as slog.JSONHandler writes it
	evStatus = 'S' // followed by a JSON status; the last message
)

// eventRingConfig sizes the event ring: small records pack tightly in an
// SPSC ring, and a record larger than MaxMessage is cut down (logWriter).
var eventRingConfig = ring.Config{Mode: ring.SPSC, MaxMessage: 32 << 10, Capacity: 8}

// status is the worker's final word, sent before it exits.
type status struct {
	Err           string `json:"err,omitempty"`
	Panic         string `json:"panic,omitempty"`
	NotRegistered bool   `json:"notreg,omitempty"`
}

// logWriter is the io.Writer under the child's slog.JSONHandler: each
// Write is one record (the handler writes a record with one Write, under
// its own lock), put into the event ring.
type logWriter struct {
	mu  sync.Mutex
	q   *ring.Queue
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(append(w.buf[:0], evLog), bytes.TrimSuffix(p, []byte("\n"))...)
	if len(w.buf) > w.q.MaxMessage() {
		// Too large for the ring: send a record saying so instead.
		var r struct {
			Time  string `json:"time"`
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		_ = json.Unmarshal(p, &r)
		b, _ := json.Marshal(map[string]any{"time": r.Time, "level": r.Level,
			"msg": truncate(r.Msg, 1024), "proc.truncated": len(p)})
		w.buf = append(append(w.buf[:0], evLog), b...)
	}
	if err := w.q.Put(context.Background(), w.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sendStatus puts the final status into the event ring and closes it for
// writing, so that the parent's reader ends.
func (w *logWriter) sendStatus(st status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Bound the message by its encoding, not by the strings' lengths: JSON
	// writes '<', '>', '&' and control bytes as six-byte escapes. Halve
	// the error and the panic until it fits.
	limit := w.q.MaxMessage() - 1
	b, _ := json.Marshal(st)
	for n := max(len(st.Err), len(st.Panic)); len(b) > limit && n > 0; {
		n /= 2
		st.Err, st.Panic = truncate(st.Err, n), truncate(st.Panic, n)
		b, _ = json.Marshal(st)
	}
	_ = w.q.Put(context.Background(), append([]byte{evStatus}, b...))
	_ = w.q.CloseWrite()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...(truncated)"
}

// readEvents reads the event ring until EOF, or until stop is done and
// the ring is drained (the child is dead: whatever it put is there). It
// hands each log record to h and returns the status, if one came.
func readEvents(stop context.Context, q *ring.Queue, h slog.Handler) (st *status) {
	buf := make([]byte, q.MaxMessage())
	handle := func(msg []byte) {
		if len(msg) == 0 {
			return
		}
		switch msg[0] {
		case evLog:
			emit(h, msg[1:])
		case evStatus:
			var s status
			if json.Unmarshal(msg[1:], &s) == nil {
				st = &s
			}
		}
	}
	for {
		n, err := q.Get(stop, buf)
		if err != nil {
			break
		}
		handle(buf[:n])
	}
	for {
		n, ok, err := q.TryGet(buf)
		if !ok || err != nil {
			break
		}
		handle(buf[:n])
	}
	return st
}

// emit decodes one JSON record and hands it to h.
func emit(h slog.Handler, rec []byte) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	attrs, err := decodeObject(dec)
	if err != nil {
		attrs = []slog.Attr{slog.String("msg", string(rec))}
	}
	var (
		t     time.Time
		level slog.Level
		msg   string
		rest  = attrs[:0]
	)
	for _, a := range attrs {
		switch a.Key {
		case slog.TimeKey:
			t, _ = time.Parse(time.RFC3339Nano, a.Value.String())
		case slog.LevelKey:
			_ = level.UnmarshalText([]byte(a.Value.String()))
		case slog.MessageKey:
			msg = a.Value.String()
		default:
			rest = append(rest, a)
		}
	}
	ctx := context.Background()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(rest...)
	_ = h.Handle(ctx, r)
}

// decodeObject decodes a JSON object into attributes, keeping their order;
// nested objects become groups.
func decodeObject(dec *json.Decoder) ([]slog.Attr, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.Join(err, fmt.Errorf("not an object"))
	}
	var attrs []slog.Attr
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		v, err := decodeValue(dec)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, slog.Attr{Key: key, Value: v})
	}
	_, err := dec.Token() // '}'
	return attrs, err
}

func decodeValue(dec *json.Decoder) (slog.Value, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return slog.Value{}, err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		attrs, err := decodeObject(d)
		if err != nil {
			return slog.Value{}, err
		}
		return slog.GroupValue(attrs...), nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return slog.Value{}, err
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return slog.Int64Value(i), nil
		}
		f, _ := n.Float64()
		return slog.Float64Value(f), nil
	}
	return slog.AnyValue(v), nil
}

// lowestLevel returns the lowest level h is enabled for, so that the child
// does not send records the parent would drop.
func lowestLevel(h slog.Handler) slog.Level {
	ctx := context.Background()
	for _, l := range []slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if h.Enabled(ctx, l) {
			return l
		}
	}
	return slog.LevelError + 4
}

// copyLines copies r to w line by line, each line written with one
// Write and prefixed (the default for a worker's stdout and stderr). A
// last line without a newline gets one.
func copyLines(w io.Writer, r io.Reader, prefix string) {
	var pending []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			_, _ = w.Write(append([]byte(prefix), pending[:i+1]...))
			pending = pending[i+1:]
		}
		if len(pending) > 64<<10 { // an endless line: pass it on in pieces
			_, _ = w.Write(append([]byte(prefix), append(pending, '\n')...))
			pending = nil
		}
		if err != nil {
			break
		}
	}
	if len(pending) > 0 {
		_, _ = w.Write([]byte(prefix + strings.TrimSuffix(string(pending), "\n") + "\n"))
	}
}
