//go:build linux

// Package objecttest holds the test helpers shared by the tests of value
// and array: segment names removed when a test ends, a start gate that
// makes helper processes begin together, aligned memory for fuzzing, the
// header checksum a hostile peer would recompute, and the seed-corpus
// writer. Only tests import it.
package objecttest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/sem"
	"github.com/shmkit/shmkit/shm"
)

// Must fails the test on a non-nil error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SegName returns a segment name unique to this test and process, starting
// with prefix, removed now (if a previous run left it) and when the test
// ends.
func SegName(t testing.TB, prefix string, suffix ...string) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "-")
	name := fmt.Sprintf("%s-%d-%s%s", prefix, os.Getpid(), r.Replace(t.Name()), strings.Join(suffix, ""))
	_ = shm.Unlink(name)
	t.Cleanup(func() { _ = shm.Unlink(name) })
	return name
}

// Gate starts counting helpers at once, so that their operations really
// overlap: each calls WaitGate, which prints "ready" and waits on a shared
// Event that the parent sets (Open) when all are ready.
type Gate struct {
	Name string // the Event's segment name, for the helpers' arguments
	ev   *sem.Event
}

// NewGate creates a Gate named name (use SegName), closed when the test
// ends.
func NewGate(t *testing.T, name string) *Gate {
	ev, err := sem.CreateEvent(name)
	Must(t, err)
	t.Cleanup(func() { ev.Close() })
	return &Gate{Name: name, ev: ev}
}

// Open waits for every helper's "ready" line, then lets them all go.
func (g *Gate) Open(t *testing.T, ps []*testproc.Proc) {
	for _, p := range ps {
		p.Expect(t, "ready")
	}
	Must(t, g.ev.Set())
}

// WaitGate, in a helper process, reports "ready" and waits for the gate
// named name to open.
func WaitGate(ctx context.Context, name string) error {
	ev, err := sem.OpenEvent(ctx, name)
	if err != nil {
		return err
	}
	defer ev.Close()
	testproc.Printf("ready")
	return ev.Wait(ctx)
}

// Aligned copies data into 64-byte-aligned memory, as a mapping would be.
func Aligned(data []byte) []byte {
	words := make([]uint64, (len(data)+7)/8+8)
	p := uintptr(unsafe.Pointer(&words[0]))
	off := int((64 - p%64) % 64)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)[off:]
	n := copy(buf, data)
	return buf[:n:n]
}

// FixChecksum recomputes the object header's checksum (FNV-1a 64 of bytes
// [8, 40) stored at 40), as a hostile peer would, so that tests and
// fuzzing reach the checks behind it.
func FixChecksum(b []byte) {
	if len(b) < 48 {
		return
	}
	h := fnv.New64a()
	h.Write(b[8:40])
	binary.LittleEndian.PutUint64(b[40:], h.Sum64())
}

// WriteCorpus writes seeds as the seed corpus of the fuzz test fuzzName
// (arguments: the bytes and false) under testdata/fuzz, when
// SHMKIT_WRITE_CORPUS=1; otherwise it skips the test.
func WriteCorpus(t *testing.T, fuzzName string, seeds map[string][]byte) {
	if os.Getenv("SHMKIT_WRITE_CORPUS") != "1" {
		t.Skip("set SHMKIT_WRITE_CORPUS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	Must(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(false)\n", b)
		Must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}
