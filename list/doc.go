// Package list shares a growable list between processes: what Python's
// Manager().list() gives without the manager process, and what
// ShareableList cannot do (grow).
//
// List[T] holds fixed-size, pointer-free elements; Bytes holds byte
// strings up to a limit set at creation.
//
//	l, err := list.Create[int64]("jobs")   // or CreateAnonymous
//	_, err = l.Append(ctx, 1, 2, 3)
//	x, err := l.Get(0)                      // no lock, no allocation
//	last, err := l.Pop(ctx)
//
// Get, Len, Slice and Range take no lock; Append, Set, Pop and Clear take
// the list's robust lock. Each element's Append (and each Set, Pop and
// Clear) takes effect with one atomic store: a writer SIGKILLed at any
// instant leaves it applied or not, never half, and the next writer
// repairs what it left. The list grows within its segment's maximum size
// (WithMaxBytes; the file is sparse) and returns ErrFull when that is
// used up. The layout is docs/format/dict-list.md.
package list
