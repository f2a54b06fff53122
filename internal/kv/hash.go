package kv

import "encoding/binary"

// Hash is the hash of a key, the same in every process and every language
// (docs/format/dict-list.md): seed mixed with the length, each whole
// 8-byte little-endian word and then the zero-padded tail mixed in, and
// the splitmix64 finaliser.
func Hash(seed uint64, b []byte) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := seed ^ uint64(len(b))*m
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * m
		h ^= h >> 31
		b = b[8:]
	}
	if len(b) > 0 {
		var w uint64
		for i, c := range b {
			w |= uint64(c) << (8 * i)
		}
		h = (h ^ w) * m
		h ^= h >> 31
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// tag is the part of a hash kept in a slot word.
func tag(h uint64) uint64 { return h >> offBits }
