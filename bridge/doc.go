// Package bridge carries a shmkit ring.Queue across machines through NATS
// JetStream, keeping the ring's promise: every message a local producer
// put is delivered exactly once to a local consumer on the other side, or
// counted lost.
//
// An Out bridge is the consumer of a local SPSC queue. It holds messages
// with Next, publishes each to a JetStream subject with a message id made
// of the queue's identity, the queue's incarnation (its creator's pid and
// start time) and the message's ring position (ring.Queue.Position), and
// releases them from the ring only after JetStream acknowledged them. A
// bridge killed before the release leaves the messages in the ring; the
// next Out bridge takes the consumer role over, publishes them again with
// the same ids, and JetStream drops the copies it already stored (within
// the stream's duplicate window). A JetStream that is full or unreachable
// is retried with back-off; meanwhile the ring fills and slows the local
// producers: nothing is dropped. A message the stream refuses for good
// (larger than its maximum message size, for example) is counted in
// Stats.Lost and logged.
//
// An In bridge is the producer of a local SPSC queue. It fetches from a
// durable pull consumer and double-acknowledges each message only after
// its Put returned nil. Before each Put it records the message's stream
// sequence and the ring position the Put publishes at (ring.Queue.
// WritePosition) in a small state segment; a bridge that restarts after a
// crash compares those positions with where the ring's published records
// end, so it knows exactly which of the messages JetStream redelivers were
// already put, and acknowledges them without putting them again. A
// message that reaches the consumer's MaxDeliver without being put (its
// Put kept failing) is counted lost, from JetStream's max-deliveries
// advisory.
//
// # The guarantee and its limits
//
// Exactly once, end to end, for every message whose Put on the sending
// side returned nil, provided that: the local queues are not deleted
// while a bridge runs; a restarted Out bridge republishes within the
// stream's duplicate window (Duplicates in its config, 2 minutes by
// default; an Out bridge down for longer may publish duplicates, which
// the In side then receives twice); the stream keeps messages until the
// In bridge has taken them (a limits or interest retention that discards
// them first loses them, outside the bridge's view); and the state segment
// of an In bridge survives its restarts (it lives in /dev/shm, as the
// queue does).
//
// Per-producer order is kept: the Out bridge chains its publishes (each
// expects the one before it as the stream's last message), so the stream
// stores them in ring order even when a connection breaks mid-batch
// (OutConfig.Unordered turns this off, for a stream several publishers
// share, and order is then lost on such breaks); the In bridge puts in
// stream order, exactly: a message is put only once every stream
// sequence below it is settled, that is put, or known to hold nothing for
// its consumer (first deliveries with consecutive consumer sequences
// prove that the sequences between them hold nothing; a sequence no such
// pair covers, after deliveries were lost in transit or left
// unacknowledged by a dead predecessor, is looked up in the stream, which
// needs permission for $JS.API.STREAM.MSG.GET), or waited for in vain:
// the bridge waits 2 x AckWait + 2 s for a missing message's redelivery;
// past that it logs an error and goes on, and that message arrives late.
//
// Counted losses: messages the stream refuses (larger than its maximum
// message size or the server's max_payload), messages larger than the In
// side's queue, and messages JetStream gives up after MaxDeliver (from
// its advisory, which a bridge only sees while connected and permitted to
// subscribe to $JS.EVENT.ADVISORY.>). Only the message being put is kept
// alive with in-progress notices while its Put waits for room: messages
// waiting behind it (in the pull buffer, or held back for order) for
// MaxDeliver x AckWait are given up by JetStream and counted lost, and
// may then still be put by the bridge that holds them (counted lost and
// delivered: the count errs on the side of loss, never of silence).
//
// Waiting: the local consumer of an In bridge's queue, the handle an Out
// bridge is given and the local producers usually run in processes busy
// with other goroutines, and wait often and briefly for a stream that
// arrives at network speed. Give their handles naps (ring.Queue.SetNap,
// for example SetSpin(0) and SetNap(50*time.Microsecond, 10*time.Millisecond))
// rather than spins, which take the CPU the bridge and the client need,
// or futex sleeps at once, which block an OS thread per wait: with naps
// the In path with a local consumer ran at 0.76-1.06 of a plain
// JetStream consumer on two CPUs, against 0.60-0.68 with SetSpin(0)
// alone (BENCHMARKS.md).
package bridge
