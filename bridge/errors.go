package bridge

import "errors"

// Errors returned at start; test with errors.Is.
var (
	// ErrQueueKind is returned for a queue a bridge cannot use: an Out
	// bridge consumes, and an In bridge produces into, an SPSC queue (the
	// bridge must hold many messages at once and be the only one on its
	// side, which the MPMC mode does not allow).
	ErrQueueKind = errors.New("bridge: the queue must be SPSC")

	// ErrNoStream is returned when no JetStream stream captures the
	// subject (Out) or the named stream does not exist (In).
	ErrNoStream = errors.New("bridge: no such JetStream stream")

	// ErrConfig is returned for a missing or invalid configuration field.
	ErrConfig = errors.New("bridge: invalid configuration")

	// ErrState is returned when an In bridge's state segment is not one
	// (wrong size or magic) or belongs to another stream and consumer.
	ErrState = errors.New("bridge: bad state segment")
)
