// Package kv is the storage engine under packages dict and list: a table
// of shards in one shared segment, each shard a robust lock and a current
// "space" (a slot table and a heap of immutable records), copied into a
// second space when it must grow or compact.
//
// The promises it keeps, and how:
//
//   - Readers take no lock and never see a torn entry. A record is
//     written once, in heap space nobody references yet, and published by
//     one atomic store of its slot word. Records are only overwritten when
//     a later rebuild reuses their space, and every rebuild first makes the
//     shard's descriptor word odd and publishes the new space with a new
//     even one: a reader that loads the same descriptor before and after
//     its copy has a copy of one committed record.
//   - A writer killed at any instant leaves the shard consistent. Each
//     operation's effect is one atomic store (a slot word; a list's
//     length); a rebuild writes only the space no reader uses and is
//     published by one store. What a dead writer leaves is garbage heap
//     bytes, a stale count, or an odd descriptor, and the next writer, told
//     by the robust lock (sem.ErrOwnerDead), recounts the shard and makes
//     the descriptor even again (Repair).
//   - Everything read from the segment is validated before use: offsets,
//     sizes, slot counts, record lengths, against the mapping and the
//     header's limits. A value that does not fit is ErrCorrupt.
//
// The byte layout is docs/format/dict-list.md.
package kv
