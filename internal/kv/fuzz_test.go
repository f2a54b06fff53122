package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The fuzz input of FuzzStore:
//
//	byte 0  mode (the fuzzList... bits below)
//	byte 1  fill: entries the engine itself writes before the damage
//	        (fill % 97; every fifth one deleted again, for tombstones)
//	then    patches, each: u16 offset (mod fuzzMem), u8 n, n bytes that
//	        overwrite the payload at offset (cut at its end)
//
// The store is laid out by Init in guarded memory (an access past its
// end faults), filled, patched, then attached and driven through every
// reader and writer. No call may panic, fault, hang (a watchdog fails the
// input) or copy more bytes than the payload holds.
const (
	fuzzList     = 1 << 0 // a list, else a dict
	fuzzBytes    = 1 << 1 // variable-length keys and values, else 8-byte ones
	fuzzShards   = 3 << 2 // dict: log2 of the shard count
	fuzzResum    = 1 << 4 // recompute the header checksum after the patches
	fuzzMutex    = 1 << 5 // keep patches to the shards' sem.Mutex bytes (else restored)
	fuzzClear    = 1 << 6 // end the writes with Clear
	fuzzWriteFst = 1 << 7 // write before the first reads

	fuzzMem     = 32 << 10
	fuzzMaxKey  = 32
	fuzzMaxVal  = 200
	fuzzSeed    = 0x5eed5eed5eed5eed
	fuzzWatch   = 20 * time.Second
	fuzzLockTTL = 20 * time.Millisecond
)

// guardedMem returns n bytes (a multiple of 64) of fresh anonymous memory
// that end right before a PROT_NONE page, and the function that unmaps
// it (not called after a hang: the looping goroutine still reads it).
func guardedMem(tb testing.TB, n int) ([]byte, func()) {
	tb.Helper()
	page := os.Getpagesize()
	total := (n+page-1)/page*page + page
	region, err := unix.Mmap(-1, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mprotect(region[total-page:], unix.PROT_NONE); err != nil {
		tb.Fatal(err)
	}
	end := total - page
	return region[end-n : end : end], func() { _ = unix.Munmap(region) }
}

func fuzzConfig(mode byte) Config {
	c := Config{Magic: MagicDict, Shards: 1 << (mode & fuzzShards >> 2), Seed: fuzzSeed}
	if mode&fuzzList != 0 {
		c.Magic, c.Shards = MagicList, 1
	}
	switch {
	case mode&fuzzBytes != 0:
		c.MaxKey, c.MaxVal = fuzzMaxKey, fuzzMaxVal
	case c.Magic == MagicList:
		c.ValSize, c.MaxVal = 8, 8
	default:
		c.KeySize, c.ValSize, c.MaxKey, c.MaxVal = 8, 8, 8, 8
	}
	if c.Magic == MagicList {
		c.MaxKey = 0
	}
	return c
}

// fuzzKey and fuzzVal are entry i's key and value in a store of c.
func fuzzKey(c *Config, i int) []byte {
	if c.KeySize != 0 {
		return binary.LittleEndian.AppendUint64(nil, uint64(i))
	}
	return []byte("key-" + strconv.Itoa(i))
}

func fuzzVal(c *Config, i, ver int) []byte {
	if c.ValSize != 0 {
		return binary.LittleEndian.AppendUint64(nil, uint64(i*1000+ver))
	}
	v := make([]byte, (i*7+ver)%(fuzzMaxVal+1))
	for j := range v {
		v[j] = byte(i + j + ver)
	}
	return v
}

// fuzzBuild lays out and fills the store of mode in mem, and closes it.
// It returns the number of entries written (fewer than fill when the
// payload is full).
func fuzzBuild(tb testing.TB, mem []byte, mode, fill byte) (Config, int) {
	c := fuzzConfig(mode)
	s, err := Init(mem, c)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	n := int(fill % 97)
	for i := range n {
		if c.Magic == MagicList {
			tx, err := s.Begin(nil, 0)
			if err != nil {
				tb.Fatal(err)
			}
			_, err = tx.Append(fuzzVal(&c, i, 0))
			if err == nil && i%5 == 4 {
				_, err = tx.Pop()
			}
			tx.End()
			if errors.Is(err, ErrFull) {
				return c, i
			}
			if err != nil {
				tb.Fatal(err)
			}
			continue
		}
		k := fuzzKey(&c, i)
		h := Hash(c.Seed, k)
		tx, err := s.Begin(nil, s.ShardOf(h))
		if err != nil {
			tb.Fatal(err)
		}
		err = tx.Put(k, h, fuzzVal(&c, i, 0))
		if err == nil && i%5 == 4 {
			_, err = tx.Delete(k, h)
		}
		tx.End()
		if errors.Is(err, ErrFull) {
			return c, i
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return c, n
}

// fuzzPatch applies the patches in p to mem and reports how many there were.
func fuzzPatch(mem, p []byte) int {
	n := 0
	for len(p) >= 3 {
		off := int(binary.LittleEndian.Uint16(p)) % len(mem)
		l := int(p[2])
		p = p[3:]
		l = min(l, len(p))
		copy(mem[off:], p[:l])
		p = p[l:]
		n++
	}
	return n
}

func readerErr(err error) bool {
	return err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrIndex)
}

func FuzzStore(f *testing.F) {
	for _, mode := range []byte{0, fuzzBytes, 2 << 2, fuzzBytes | 3<<2, fuzzList, fuzzList | fuzzBytes} {
		f.Add([]byte{mode, 30})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 8192 {
			return
		}
		mode, fill := data[0], data[1]
		mem, free := guardedMem(t, fuzzMem)
		c, filled := fuzzBuild(t, mem, mode, fill)
		var locks [][MutexSize]byte
		if mode&fuzzMutex == 0 {
			locks = make([][MutexSize]byte, c.Shards)
			for i := range locks {
				copy(locks[i][:], mem[HeaderSize+i*ShardSize:])
			}
		}
		patched := fuzzPatch(mem, data[2:])
		for i := range locks {
			copy(mem[HeaderSize+i*ShardSize:], locks[i][:])
		}
		if mode&fuzzResum != 0 {
			binary.LittleEndian.PutUint64(mem[offChecksum:], headerChecksum(mem))
		}
		done := make(chan string, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- fmt.Sprintf("panic: %v", r)
				}
			}()
			done <- fuzzDrive(mem, mode, filled, patched == 0)
		}()
		select {
		case msg := <-done:
			free()
			if msg != "" {
				t.Fatal(msg)
			}
		case <-time.After(fuzzWatch):
			t.Fatalf("no return after %v: an endless loop", fuzzWatch)
		}
	})
}

// fuzzDrive attaches to mem and calls every reader and writer, returning
// what went wrong ("" if nothing). clean says that mem was not patched:
// then every call must succeed and find what fuzzBuild stored.
func fuzzDrive(mem []byte, mode byte, n int, clean bool) string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	s, err := Attach(mem)
	if err != nil {
		if clean {
			bad("attach: %v", err)
		}
		return join(problems)
	}
	defer s.Close()
	c := fuzzConfig(mode)
	check := func(op string, err error, writer bool) {
		switch {
		case err == nil:
		case clean && !(writer && errors.Is(err, ErrFull)) && !errors.Is(err, ErrIndex):
			bad("%s on a clean store: %v", op, err)
		case !writer && !readerErr(err):
			bad("%s: %v does not match ErrCorrupt", op, err)
		}
	}
	list := s.Cfg.Magic == MagicList
	dst := make([]byte, min(s.Cfg.MaxVal, 4096))
	wrote := false
	reads := func() {
		_ = s.Len()
		if list {
			ln := min(uint64(s.Len()), 300)
			for i := range ln + 2 {
				_, _, err := s.Index(i, dst)
				check("index", err, false)
			}
		} else {
			for i := range n + 3 {
				k := fuzzKey(&c, i)
				vl, ok, err := s.Get(k, Hash(s.Cfg.Seed, k), dst)
				check("get", err, false)
				if clean && !wrote && i < n && err == nil {
					want := fuzzVal(&c, i, 0)
					if ok != (i%5 != 4) || ok && (vl != len(want) || string(dst[:min(vl, len(dst))]) != string(want)) {
						bad("get %d on a clean store: %v %d", i, ok, vl)
					}
				}
			}
		}
		for i := range s.Shards() {
			buf, ents, err := s.Snapshot(i, 0, nil, nil)
			check("snapshot", err, false)
			if len(buf) > len(mem) || len(ents) > len(mem)/8 {
				bad("snapshot of shard %d copied %d bytes in %d entries out of a %d-byte payload", i, len(buf), len(ents), len(mem))
			}
			for _, e := range ents {
				if e.Key[0] > e.Key[1] || e.Key[1] != e.Val[0] || e.Val[0] > e.Val[1] || e.Val[1] > uint64(len(buf)) {
					bad("snapshot entry %v outside its buffer of %d", e, len(buf))
				}
			}
		}
		if list {
			_, _, err := s.Snapshot(0, 3, nil, nil)
			check("snapshot from 3", err, false)
		}
	}
	writes := func() {
		wrote = true
		for i := range min(s.Shards(), 16) {
			ctx := context.Background()
			if mode&fuzzMutex != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, fuzzLockTTL)
				defer cancel()
			}
			tx, err := s.Begin(ctx, i)
			if err != nil {
				if clean {
					bad("begin %d on a clean store: %v", i, err)
				}
				continue
			}
			if list {
				for j := range 3 {
					_, err := tx.Append(fuzzVal(&c, n+j, 1))
					check("append", err, true)
				}
				ln := tx.Len()
				err := tx.Set(0, fuzzVal(&c, 0, 2))
				check("set 0", err, true)
				err = tx.Set(ln-1, fuzzVal(&c, 1, 2))
				check("set last", err, true)
				_, err = tx.At(ln / 2)
				check("at", err, true)
				for range 2 {
					_, err := tx.Pop()
					check("pop", err, true)
				}
			} else {
				done := 0
				for k := 0; k < n+64 && done < 6; k++ {
					key := fuzzKey(&c, k)
					h := Hash(s.Cfg.Seed, key)
					if s.ShardOf(h) != i {
						continue
					}
					done++
					_, _, err := tx.Lookup(key, h)
					check("lookup", err, true)
					switch done % 3 {
					case 0:
						_, err = tx.Delete(key, h)
						check("delete", err, true)
					default:
						err = tx.Put(key, h, fuzzVal(&c, k, done))
						check("put", err, true)
					}
				}
				big := make([]byte, int(s.Cfg.MaxVal)+1)
				if err := tx.Put(fuzzKey(&c, 0), Hash(s.Cfg.Seed, fuzzKey(&c, 0)), big); !errors.Is(err, ErrTooLarge) {
					bad("put of a value over the limit: %v", err)
				}
			}
			if mode&fuzzClear != 0 {
				check("clear", tx.Clear(), true)
			}
			tx.End()
		}
	}
	if mode&fuzzWriteFst != 0 {
		writes()
	}
	reads()
	writes()
	reads()
	if err := s.Close(); err != nil {
		bad("close: %v", err)
	}
	if _, err := s.Begin(nil, 0); !errors.Is(err, ErrClosed) {
		bad("begin after close: %v", err)
	}
	return join(problems)
}

func join(p []string) string {
	out := ""
	for i, s := range p {
		if i == 8 {
			return out + fmt.Sprintf("\n(and %d more)", len(p)-i)
		}
		if i > 0 {
			out += "\n"
		}
		out += s
	}
	return out
}

// TestWriteFuzzSeeds writes the seed corpus of FuzzStore (valid stores
// and stores damaged in the ways hostile_test.go of dict and list name)
// into testdata/fuzz/FuzzStore when KV_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KV_WRITE_SEEDS") != "1" {
		t.Skip("set KV_WRITE_SEEDS=1 to rewrite the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzStore")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, seed := range fuzzSeeds(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// patch is one fuzz patch: the bytes b at off.
func patch(off uint64, b ...byte) []byte {
	p := binary.LittleEndian.AppendUint16(nil, uint16(off))
	return append(append(p, byte(len(b))), b...)
}

func u64b(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// fuzzSeeds returns the named seeds, computed from the layout fuzzBuild
// produces.
func fuzzSeeds(t *testing.T) map[string][]byte {
	seeds := map[string][]byte{}
	add := func(name string, mode, fill byte, patches ...[]byte) {
		in := []byte{mode, fill}
		for _, p := range patches {
			in = append(in, p...)
		}
		seeds[name] = in
	}
	// layout returns shard 0's space offset, its slot count and the
	// offset of the first committed slot and its record.
	layout := func(mode, fill byte) (sp space, slot, rec uint64) {
		mem, free := guardedMem(t, fuzzMem)
		defer free()
		fuzzBuild(t, mem, mode, fill)
		s, err := Attach(mem)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sp, err = s.spaceOf(atomic.LoadUint64(s.desc(0)))
		if err != nil {
			t.Fatal(err)
		}
		for j := range sp.slots {
			if w := *s.slot(sp, j); w > SlotTomb {
				return sp, sp.off + SpaceHdr + 8*j, sp.off + w&offMask
			}
		}
		t.Fatalf("mode %#x fill %d: no committed slot", mode, fill)
		return
	}
	sh0 := uint64(HeaderSize)

	add("valid-dict", 0, 20)
	add("valid-dict-bytes-4", fuzzBytes|2<<2, 40)
	add("valid-dict-8-writefirst", 3<<2|fuzzWriteFst|fuzzClear, 90)
	add("valid-list", fuzzList, 30)
	add("valid-list-bytes", fuzzList|fuzzBytes, 10)
	add("valid-list-clear", fuzzList|fuzzClear|fuzzWriteFst, 60)

	add("bad-magic", 0, 10, patch(0, 'X'))
	add("bad-checksum", 0, 10, patch(offShards, 2))
	add("maxval-huge-resummed", fuzzBytes|fuzzResum, 10, patch(offMaxVal, u64b(1 << 30)[:4]...))
	add("shards-resummed", fuzzResum, 10, patch(offShards, 64))
	add("end-past-mem-resummed", fuzzResum, 10, patch(offEnd, u64b(1<<40)...))

	add("desc-outside", 0, 10, patch(sh0+shDesc, u64b(descOffMask)...))
	add("desc-zero", 0, 10, patch(sh0+shDesc, u64b(0)...))
	add("desc-odd", 0, 10, patch(sh0+shDesc+5, 1))
	add("list-desc-outside", fuzzList, 10, patch(sh0+shDesc, u64b(fuzzMem/64)...))

	sp, slot, rec := layout(0, 20)
	add("slot-past-space", 0, 20, patch(slot, u64b(tag(0)<<offBits|sp.size+8)...))
	add("slot-misaligned", 0, 20, patch(slot, 3))
	add("space-slots-huge", 0, 20, patch(sp.off+spSlots, u64b(1<<40)...))
	add("space-size-huge", 0, 20, patch(sp.off+spSize, u64b(1<<40)...))
	add("space-top-past", 0, 20, patch(sp.off+spTop, u64b(sp.size+64)...))
	add("counts-huge", 0, 20, patch(sh0+shCount, u64b(1<<62)...), patch(sh0+shTombs, u64b(1<<62)...))
	// Counts that undercount a full heap: the rebuild the next Put
	// starts is sized for one entry and must still stop.
	add("counts-zero-heap-full", 0, 20, patch(sh0+shCount, u64b(0)...), patch(sh0+shLive, u64b(0)...),
		patch(sp.off+spTop, u64b(sp.size)...))
	add("spare-is-current", 0, 20, patch(sh0+shOther, u64b(sp.off)...), patch(sp.off+spTop, u64b(sp.size)...))
	add("spare-overlaps", 0, 20, patch(sh0+shOther, u64b(sp.off+64)...), patch(sp.off+spTop, u64b(sp.size)...))
	add("brk-outside", 0, 20, patch(offBrk, u64b(fuzzMem+64)...), patch(sp.off+spTop, u64b(sp.size)...))
	add("brk-misaligned", 0, 20, patch(offBrk, 7), patch(sp.off+spTop, u64b(sp.size)...))
	add("dead-owner", fuzzMutex, 20, patch(sh0, u64b(1<<32|0x3ffff0)...))
	add("dead-owner-odd", fuzzMutex, 20, patch(sh0, u64b(1<<32|0x3ffff0)...), patch(sh0+shDesc+5, 1))

	_, _, brec := layout(fuzzBytes, 20)
	add("record-klen-huge", fuzzBytes, 20, patch(brec, u64b(1 << 31)[:4]...))
	add("record-vlen-huge", fuzzBytes, 20, patch(brec+4, u64b(1 << 31)[:4]...))
	add("record-klen-fixed", 0, 20, patch(rec, 9))

	// Every slot of shard 0 naming one record: a snapshot must not copy
	// more than the space holds.
	var dup []byte
	for j := range sp.slots {
		dup = append(dup, patch(sp.off+SpaceHdr+8*j, u64b(tag(0)<<offBits|(rec-sp.off))...)...)
	}
	add("slots-one-record", 0, 20, dup)
	// A space whose 512 slots all name one 200-byte value: a snapshot
	// that copies it 512 times copies three times the payload.
	bsp, _, _ := layout(fuzzBytes, 20)
	const many = 512
	heap := bsp.off + SpaceHdr + 8*many
	big := []byte{}
	big = append(big, patch(bsp.off+spSize, u64b(fuzzMem-bsp.off)...)...)
	big = append(big, patch(bsp.off+spSlots, u64b(many)...)...)
	big = append(big, patch(bsp.off+spTop, u64b(heap-bsp.off+RecSize(0, fuzzMaxVal))...)...)
	rech := append(u64b(uint64(fuzzMaxVal)<<32), u64b(0)...)
	big = append(big, patch(heap, rech...)...)
	words := []byte{}
	for range many {
		words = append(words, u64b(heap-bsp.off)...)
	}
	for at := uint64(0); len(words) > 0; at += 248 {
		n := min(len(words), 248)
		big = append(big, patch(bsp.off+SpaceHdr+at, words[:n]...)...)
		words = words[n:]
	}
	if heap+RecSize(0, fuzzMaxVal) > fuzzMem {
		t.Fatalf("space at %d: no room for %d slots", bsp.off, many)
	}
	add("slots-one-big-record", fuzzBytes, 20, big)

	lsp, _, _ := layout(fuzzList, 30)
	add("list-len-past-cap", fuzzList, 30, patch(sh0+shCount, u64b(lsp.slots+1)...))
	add("list-len-huge", fuzzList, 30, patch(sh0+shCount, u64b(1<<63)...))
	add("list-hole", fuzzList, 30, patch(lsp.off+SpaceHdr+8*2, u64b(SlotTomb)...))
	add("list-top-full", fuzzList, 30, patch(lsp.off+spTop, u64b(lsp.size)...), patch(sh0+shLive, u64b(0)...))
	add("list-dead-owner", fuzzList|fuzzMutex, 30, patch(sh0, u64b(1<<32|0x3ffff0)...), patch(sh0+shCount, u64b(lsp.slots+9)...))
	return seeds
}
