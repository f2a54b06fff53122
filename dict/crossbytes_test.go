package dict

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/shmkit/shmkit/array"
	"github.com/shmkit/shmkit/internal/testproc"
)

// The Bytes form across processes: a writer process stores and deletes
// string keys with values of varying length (each value names its key and
// version and ends with a CRC of the rest), is SIGKILLed at random and
// restarted where it stopped, while a reader process checks every value it
// loads; at the end the map equals the model.

const cbKeys = 400

func cbOp(i int) (key string, del bool, n int) {
	r := rand.New(rand.NewPCG(uint64(i), 99))
	return "key/" + strconv.Itoa(r.IntN(cbKeys)), r.IntN(6) == 0, r.IntN(3000)
}

// cbVal is the value op i stores under key: the key, the version, filler,
// and a CRC-32 of all that.
func cbVal(key string, ver, n int) []byte {
	b := binary.AppendUvarint(nil, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(ver))
	for i := range n {
		b = append(b, byte(ver+i))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func cbValid(key string, v []byte) bool {
	if len(v) < 4 {
		return false
	}
	body := v[:len(v)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return false
	}
	kl, n := binary.Uvarint(body)
	return n > 0 && uint64(len(body)-n) >= kl && string(body[n:n+int(kl)]) == key
}

func cbModel(n int) map[string][]byte {
	m := map[string][]byte{}
	for i := range n {
		k, del, sz := cbOp(i)
		if del {
			delete(m, k)
		} else {
			m[k] = cbVal(k, i+1, sz)
		}
	}
	return m
}

func init() {
	testproc.Register("bytes-writer", func(args []string) int {
		ctx := context.Background()
		b, err := OpenBytes(ctx, args[0])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		pa, err := array.Open[uint64](ctx, args[1])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		n, _ := strconv.Atoi(args[2])
		progress := array.AtomicOf(pa)
		start := int(progress.LoadAt(0))
		testproc.Printf("ready")
		for i := start; i < n; i++ {
			k, del, sz := cbOp(i)
			if del {
				_, err = b.Delete(ctx, k)
			} else {
				err = b.Store(ctx, k, cbVal(k, i+1, sz))
			}
			if err != nil {
				testproc.Printf("error %v", err)
				return 1
			}
			progress.StoreAt(0, uint64(i+1))
		}
		testproc.Printf("done")
		return 0
	})
	testproc.Register("bytes-reader", func(args []string) int {
		ctx := context.Background()
		b, err := OpenBytes(ctx, args[0])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		pa, err := array.Open[uint64](ctx, args[1])
		if err != nil {
			testproc.Printf("error %v", err)
			return 1
		}
		stop := array.AtomicOf(pa)
		testproc.Printf("ready")
		var buf []byte
		loads, hits := 0, 0
		for i := 0; stop.LoadAt(1) == 0; i++ {
			k := "key/" + strconv.Itoa(i%cbKeys)
			var ok bool
			buf, ok, err = b.AppendLoad(buf[:0], k)
			if err != nil || ok && !cbValid(k, buf) {
				testproc.Printf("error %q: %v (%d bytes)", k, err, len(buf))
				return 1
			}
			loads++
			if ok {
				hits++
			}
		}
		testproc.Printf("loads %d hits %d", loads, hits)
		return 0
	})
}

func TestCrossProcessBytes(t *testing.T) {
	n := xpOps() / 2
	name := fmt.Sprintf("test-dict-bytes-%d", os.Getpid())
	b, err := CreateBytes(name, WithShards(8), WithMaxValue(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer Unlink(name)
	defer b.Close()
	prog := name + "-p"
	pa, err := array.Create[uint64](prog, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer array.Unlink(prog)
	defer pa.Close()
	progress := array.AtomicOf(pa)
	rd := testproc.Start(t, "bytes-reader", name, prog)
	rd.Expect(t, "ready")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	kills := 0
	for {
		w := testproc.Start(t, "bytes-writer", name, prog, strconv.Itoa(n))
		w.Expect(t, "ready")
		if kills < 6 {
			time.Sleep(time.Duration(r.IntN(5000)) * time.Microsecond)
			w.Kill()
			err := w.Wait()
			if testproc.Killed(err) {
				kills++
				// Right after the kill: the state after p or p+1 ops.
				p := int(progress.LoadAt(0))
				if e1 := cbMatch(b, cbModel(p)); e1 != nil {
					if e2 := cbMatch(b, cbModel(p+1)); e2 != nil {
						t.Fatalf("killed after %d ops: neither before (%v) nor after (%v)", p, e1, e2)
					}
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break // it had finished
		}
		if l := w.Line(t); l != "done" {
			t.Fatalf("writer: %s", l)
		}
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
		break
	}
	progress.StoreAt(1, 1)
	t.Logf("reader: %s", rd.Line(t))
	if err := rd.Wait(); err != nil {
		t.Fatal(err)
	}
	want := cbModel(n)
	if err := cbMatch(b, want); err != nil {
		t.Fatal(err)
	}
	if b.Len() != len(want) {
		t.Fatalf("Len %d, want %d", b.Len(), len(want))
	}
	t.Logf("%d ops, %d kills, %d keys", n, kills, len(want))
}

func cbMatch(b *Bytes, want map[string][]byte) error {
	got := 0
	var bad error
	if err := b.Range(func(k string, v []byte) bool {
		got++
		if !bytes.Equal(v, want[k]) {
			bad = fmt.Errorf("key %q: %d bytes, want %d", k, len(v), len(want[k]))
			return false
		}
		return true
	}); err != nil {
		return err
	}
	if bad != nil {
		return bad
	}
	if got != len(want) {
		return fmt.Errorf("%d entries, want %d", got, len(want))
	}
	return nil
}
