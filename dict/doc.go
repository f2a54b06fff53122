// Package dict shares a hash map between processes: what Python's
// Manager().dict() gives, without the manager process, living in a
// segment of shared memory that survives any one process.
//
// Map[K, V] holds fixed-size, pointer-free keys and values (numbers,
// bools, fixed-size arrays and structs of them); Bytes holds string keys
// and byte-string values of any length up to limits set at creation.
//
//	m, err := dict.Create[uint64, float64]("prices")     // or CreateAnonymous
//	err = m.Store(ctx, 42, 9.99)
//	v, ok, err := m.Load(42)                               // no lock, no allocation
//	_, _, err = m.Update(ctx, 42, func(old float64, ok bool) (float64, bool) { return old * 1.1, true })
//
// Another process attaches with Open (named) or OpenFile/Receive (an
// anonymous map's File, for example as an argument of a proc worker).
//
// # Concurrency
//
// Load and Range take no lock: a reader copies a committed record and
// checks that its shard was not rebuilt meanwhile, retrying a bounded
// number of times. Writers lock the key's shard (WithShards, default 64),
// a robust sem.Mutex, so writers of keys in different shards do not wait
// for each other. Range copies one shard at a time, each entry as one
// committed record; the whole is not one snapshot.
//
// # Growth and memory
//
// The segment is created at its maximum size (WithMaxBytes), which costs
// nothing until written: tmpfs files are sparse. Each shard grows by
// copying its live entries into a larger space, which also reclaims the
// space of overwritten and deleted entries. No process remaps, so nothing
// can tear during growth. When the segment has no room left a write
// returns ErrFull (a *FullError) and changes nothing.
//
// # Crash safety
//
// Every operation takes effect with one atomic store. A writer SIGKILLed
// at any instant leaves its last operation applied or not, never half: the
// next writer of that shard, told by the robust lock, repairs the shard's
// counts by itself. Readers see the old entry or the new one.
//
// Everything read from the segment is validated; what does not make sense
// is ErrCorrupt, never a panic. The layout is docs/format/dict-list.md.
package dict
