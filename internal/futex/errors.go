package futex

import "errors"

// ErrTimeout is returned by Wait when the timeout elapsed.
var ErrTimeout = errors.New("futex: timeout")

// ErrNotSupported is returned on systems without futexes.
var ErrNotSupported = errors.New("futex: not supported on this system")
