package shm

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// docHeaderV1 is the example header of format version 1 (before the type
// name), which Open must refuse with ErrVersion.
const docHeaderV1 = `00000000  73 68 6d 6b 69 74 53 47  01 00 00 00 06 00 00 00  |shmkitSG........|
00000010  00 10 00 00 00 00 00 00  80 00 00 00 00 00 00 00  |................|
00000020  18 00 00 00 08 00 00 00  ef cd ab 89 67 45 23 01  |............gE#.|
00000030  92 10 00 00 00 00 00 00  ee ff c0 00 00 00 00 00  |................|
00000040  00 02 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000050  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000060  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000070  05 ed 22 da 23 85 fa bb  02 00 00 00 00 00 00 00  |..".#...........|
`

// docHeader is the example header of docs/format/shm.md, byte for byte as
// hexdump -C (and hex.Dump) print it.
const docHeader = `00000000  73 68 6d 6b 69 74 53 47  02 00 00 00 06 00 00 00  |shmkitSG........|
00000010  00 10 00 00 00 00 00 00  80 00 00 00 00 00 00 00  |................|
00000020  18 00 00 00 08 00 00 00  ef cd ab 89 67 45 23 01  |............gE#.|
00000030  92 10 00 00 00 00 00 00  ee ff c0 00 00 00 00 00  |................|
00000040  00 02 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000050  6d 61 69 6e 2e 50 6f 69  6e 74 00 00 00 00 00 00  |main.Point......|
00000060  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
00000070  13 35 e5 b2 ac d1 75 5c  02 00 00 00 00 00 00 00  |.5....u\........|
`

// TestHeaderBytes checks that the code writes exactly the example header
// of docs/format/shm.md and reads it back, and that the document still
// shows that dump: the layout cannot change without the document.
func TestHeaderBytes(t *testing.T) {
	want := header{version: 2, kind: KindArray, size: 4096, offset: HeaderSize,
		typ: TypeDesc{Size: 24, Align: 8, Fingerprint: 0x0123456789abcdef}, creatorPid: 4242,
		creatorStart: 0xc0ffee, p0: 512, typeName: "main.Point", state: StateReady}
	b := make([]byte, HeaderSize)
	for i := range b {
		b[i] = 0xaa // encodeHeader must write every byte of 0..119 itself
	}
	encodeHeader(b, &want)
	// The state word and the last reserved word are written by Create, not
	// by encodeHeader; their documented offsets, as literals.
	binary.LittleEndian.PutUint32(b[120:], uint32(StateReady))
	binary.LittleEndian.PutUint32(b[124:], 0)
	if got := hex.Dump(b); got != docHeader {
		t.Fatalf("encoded header:\n%s\nthe document's example:\n%s", got, docHeader)
	}
	got, err := parseHeader(b, HeaderSize+4096)
	if err != nil || got != want {
		t.Fatalf("parseHeader of the document's example = %+v, %v; want %+v", got, err, want)
	}
	doc, err := os.ReadFile("../docs/format/shm.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```\n"+docHeader+"```\n") {
		t.Fatal("docs/format/shm.md no longer shows the example header this test checks")
	}
}
