package proc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/ring"
)

// The pool message parsers get hostile bytes: they must return an error,
// never panic, read out of bounds or allocate beyond what the message
// holds. The seeds (testdata/fuzz/FuzzPoolMessage, written by
// SHMKIT_WRITE_SEEDS=1 go test -run TestPoolFuzzSeeds ./proc/) reach
// every check of parseMessage, parseExceptions and decodeValues.

type fuzzPlain struct {
	X   int64
	Op  int32
	Arg int64
}

type fuzzNamed struct {
	Name string
	N    int
}

// fuzzSeeds are crafted messages, named after the check they reach.
func fuzzSeeds() map[string][]byte {
	le := binary.LittleEndian
	hdr := func(magic, n uint32, seq uint64, off, nExc, excLen, size uint32) []byte {
		b := make([]byte, headerSize)
		putHeader(b, header{magic: magic, n: n, seq: seq, off: off, nExc: nExc, excLen: excLen, size: size})
		return b
	}
	ints := func(vs ...int64) []byte {
		var b []byte
		for _, v := range vs {
			b = le.AppendUint64(b, uint64(v))
		}
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	rec := func(i uint32, st byte, strs ...string) []byte {
		b := le.AppendUint32(nil, i)
		b = append(b, st)
		for _, s := range strs {
			b = appendString(b, s)
		}
		return b
	}
	exc := func(e []exception) []byte {
		var b []byte
		for i := range e {
			b = appendException(b, &e[i])
		}
		return b
	}
	mustMsg := func(b []byte, _ []exception, err error) []byte {
		if err != nil {
			panic(err)
		}
		return b
	}
	gobStrs := mustMsg(appendMessage(codecFor[string](ring.Gob), nil, header{magic: magicResult, seq: 3, off: 2},
		[]string{"a", "", "ccc"}, []exception{{i: 1, status: stError, text: "no"}}))
	jsonNamed := mustMsg(appendMessage(codecFor[fuzzNamed](ring.JSON), nil, header{magic: magicJob},
		[]fuzzNamed{{"x", 1}, {}, {"z", 3}}, []exception{{i: 1, status: stZero}}))
	allExc := []exception{{i: 0, status: stPanic, text: "boom", stack: "goroutine 1"}, {i: 1, status: stTooLarge, text: "big"}}
	each := cat(rec(0, stZero), rec(1, stError, "e"), rec(2, stPanic, "p", "stack"), rec(3, stEncode, "enc"))
	return map[string][]byte{
		"short":               {0x53, 0x4b, 0x52},
		"bad-magic":           cat(hdr(0x31524b53, 1, 0, 0, 0, 0, 8), ints(1)),
		"wrong-size":          cat(hdr(magicResult, 1, 0, 0, 0, 0, 7), ints(1)),
		"excLen-too-big":      cat(hdr(magicResult, 1, 0, 0, 0, 1000, 8), ints(1)),
		"nExc-over-n":         cat(hdr(magicResult, 1, 0, 0, 2, 10, 8), ints(0), rec(0, stZero), rec(1, stZero)),
		"nExc-over-excLen":    cat(hdr(magicResult, 4, 0, 0, 3, 5, 8), ints(0, 0, 0, 0), rec(0, stZero)),
		"plain-payload-short": cat(hdr(magicResult, 3, 0, 0, 0, 0, 8), ints(1, 2)),
		"plain-huge-n":        cat(hdr(magicResult, 0xffffffff, 0, 0, 0, 0, 8), ints(1)),
		"codec-all-exc-payload": cat(hdr(magicResult, 1, 0, 0, 1, 5, 0),
			[]byte{1, 2, 3}, rec(0, stZero)),
		"exc-records-end":      cat(hdr(magicResult, 2, 0, 0, 2, 12, 8), ints(0, 0), rec(0, stError, "abc")),
		"exc-index-repeat":     cat(hdr(magicResult, 2, 0, 0, 2, 10, 8), ints(0, 0), rec(1, stZero), rec(1, stZero)),
		"exc-index-over-n":     cat(hdr(magicResult, 2, 0, 0, 1, 5, 8), ints(0, 0), rec(2, stZero)),
		"exc-status-0":         cat(hdr(magicResult, 1, 0, 0, 1, 5, 8), ints(0), rec(0, stOK)),
		"exc-status-6":         cat(hdr(magicResult, 1, 0, 0, 1, 5, 8), ints(0), rec(0, 6)),
		"exc-string-len-cut":   cat(hdr(magicResult, 1, 0, 0, 1, 7, 8), ints(0), rec(0, stError), []byte{1, 0}),
		"exc-string-too-long":  cat(hdr(magicResult, 1, 0, 0, 1, 11, 8), ints(0), rec(0, stError), le.AppendUint32(nil, 0xfffffff0), []byte{1, 2}),
		"exc-panic-no-stack":   cat(hdr(magicResult, 1, 0, 0, 1, 12, 8), ints(0), rec(0, stPanic, "boo")),
		"exc-leftover":         cat(hdr(magicResult, 1, 0, 0, 1, 7, 8), ints(0), rec(0, stZero), []byte{9, 9}),
		"plain-ok":             cat(hdr(magicResult, 3, 7, 4, 0, 0, 8), ints(1, 4, 9)),
		"plain-job":            cat(hdr(magicJob, 2, 1, 0, 0, 0, 8), ints(5, 6)),
		"plain-struct":         cat(hdr(magicJob, 1, 0, 0, 0, 0, 24), make([]byte, 24)),
		"plain-each-status":    cat(hdr(magicResult, 5, 9, 0, 4, uint32(len(each)), 8), ints(0, 0, 0, 0, 25), each),
		"plain-all-exc-empty":  cat(hdr(magicResult, 2, 0, 0, 2, uint32(len(exc(allExc))), 8), exc(allExc)),
		"ready-ok":             readyMessage(8),
		"ready-size":           readyMessage(24),
		"ready-long":           cat(readyMessage(8), ints(0)),
		"ready-n":              hdr(magicReady, 1, 0, 0, 0, 0, 8),
		"ready-seq":            hdr(magicReady, 0, 1, 0, 0, 0, 8),
		"ready-result":         hdr(magicResult, 0, 0, 0, 0, 0, 8),
		"codec-gob":            gobStrs,
		"codec-gob-garbage":    cat(hdr(magicResult, 2, 0, 0, 0, 0, 0), []byte{0xff, 0x01, 0x02, 0x7f, 0x00}),
		"codec-count-mismatch": cat(gobStrs[:4], le.AppendUint32(nil, 4), gobStrs[8:]),
		"codec-json":           jsonNamed,
		"codec-json-short":     cat(hdr(magicJob, 3, 0, 0, 0, 0, 0), []byte(`[{"Name":"x"}]`)),
		"codec-json-huge-n":    cat(hdr(magicJob, 0xffffffff, 0, 0, 0, 0, 0), []byte(`[{"Name":""}]`)),
	}
}

// fuzzReceive runs one receiver's parsers on msg and checks what they
// accept.
func fuzzReceive[T any](t *testing.T, vc valueCodec[T], msg []byte, magic uint32) {
	m, err := parseMessage(msg, magic, vc.n)
	if err != nil {
		return
	}
	exc, err := parseExceptions(m, nil)
	if err != nil {
		return
	}
	if len(exc) != int(m.nExc) {
		t.Fatalf("%d exceptions parsed, header says %d", len(exc), m.nExc)
	}
	for k := range exc {
		if exc[k].i >= int(m.n) || (k > 0 && exc[k].i <= exc[k-1].i) || exc[k].status == stOK || exc[k].status > stMax {
			t.Fatalf("accepted exception %+v (n %d)", exc[k], m.n)
		}
		_ = exc[k].err()
	}
	vals, err := decodeValues(vc, m, exc, nil)
	if err != nil {
		return
	}
	if len(vals) != int(m.n) {
		t.Fatalf("%d values decoded, n %d", len(vals), m.n)
	}
	if vc.n > 0 && len(m.payload) > 0 {
		if v := viewPlain(m.payload, int(m.n), new([]T)); len(v) != int(m.n) {
			t.Fatalf("view of %d values, n %d", len(v), m.n)
		}
	}
	// What was accepted encodes again into a message that parses the same.
	b, exc2, err := appendMessage(vc, nil, m.header, vals, exc)
	if err != nil {
		return // a codec that decodes what it cannot encode (JSON, gob of odd values)
	}
	m2, err := parseMessage(b, magic, vc.n)
	if err != nil {
		t.Fatalf("re-encoded message does not parse: %v", err)
	}
	exc3, err := parseExceptions(m2, nil)
	if err != nil || len(exc3) != len(exc2) || m2.n != m.n || m2.seq != m.seq || m2.off != m.off {
		t.Fatalf("re-encoded message differs: %v, %d/%d exceptions", err, len(exc3), len(exc2))
	}
}

func FuzzPoolMessage(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, size := range []int{0, 8, 24} {
			if parseReady(msg, size) == nil && !bytes.Equal(msg, readyMessage(size)) {
				t.Fatalf("accepted ready message %x for size %d", msg, size)
			}
		}
		for _, magic := range []uint32{magicJob, magicResult} {
			fuzzReceive(t, codecFor[int](nil), msg, magic)
			fuzzReceive(t, codecFor[fuzzPlain](nil), msg, magic)
			fuzzReceive(t, codecFor[string](ring.Gob), msg, magic)
			fuzzReceive(t, codecFor[fuzzNamed](ring.JSON), msg, magic)
		}
	})
}

// TestPoolFuzzSeeds checks that each seed stops at the check it is named
// after (or passes, for the valid ones), and writes the seed corpus when
// SHMKIT_WRITE_SEEDS=1.
func TestPoolFuzzSeeds(t *testing.T) {
	valid := map[string]bool{"plain-ok": true, "plain-job": true, "plain-struct": true, "plain-each-status": true,
		"plain-all-exc-empty": true, "codec-gob": true, "codec-json": true, "ready-ok": true}
	for name, b := range fuzzSeeds() {
		magic := uint32(magicResult)
		if len(b) >= 4 && binary.LittleEndian.Uint32(b) == magicJob {
			magic = magicJob
		}
		var err error
		switch {
		case strings.HasPrefix(name, "ready-"):
			err = parseReady(b, 8)
		case len(b) >= headerSize && binary.LittleEndian.Uint32(b[28:]) == 24:
			err = fuzzCheck(codecFor[fuzzPlain](nil), b, magic)
		case len(b) >= headerSize && binary.LittleEndian.Uint32(b[28:]) == 0 && bytes.Contains(b, []byte("Name")):
			err = fuzzCheck(codecFor[fuzzNamed](ring.JSON), b, magic)
		case len(b) >= headerSize && binary.LittleEndian.Uint32(b[28:]) == 0:
			err = fuzzCheck(codecFor[string](ring.Gob), b, magic)
		default:
			err = fuzzCheck(codecFor[int](nil), b, magic)
		}
		t.Logf("seed %s: %v", name, err)
		if valid[name] != (err == nil) {
			t.Errorf("seed %s: %v", name, err)
		}
	}
	writeFuzzSeeds(t, "FuzzPoolMessage", fuzzSeeds())
}

func fuzzCheck[T any](vc valueCodec[T], msg []byte, magic uint32) error {
	m, err := parseMessage(msg, magic, vc.n)
	if err != nil {
		return err
	}
	exc, err := parseExceptions(m, nil)
	if err != nil {
		return err
	}
	_, err = decodeValues(vc, m, exc, nil)
	return err
}

// writeFuzzSeeds writes seeds as the corpus of fuzz test name in testdata
// when SHMKIT_WRITE_SEEDS=1, and does nothing otherwise.
func writeFuzzSeeds(t *testing.T, name string, seeds map[string][]byte) {
	t.Helper()
	if os.Getenv("SHMKIT_WRITE_SEEDS") != "1" {
		return
	}
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for seed, b := range seeds {
		data := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, seed), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
