"""shmkit for Python: a first-class peer of the Go shmkit packages.

Segments, locks (Mutex, Semaphore, Event), Value and Array, and the ring
Queue (SPSC and MPMC) and Pipe, in the byte formats of docs/format/, so a
Python process shares them with Go processes (or other Python ones).

>>> import shmkit
>>> q = shmkit.Queue.create("jobs", mode="spsc", capacity=1024)   # doctest: +SKIP
>>> q.put(b"hello")                                                 # doctest: +SKIP
"""
try:
    from . import _native  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        "shmkit: the compiled extension shmkit._native is missing or broken (%s). "
        "shmkit needs it for 8-byte atomics and futexes: install a C compiler and the "
        "Python headers (Debian: apt-get install gcc python3-dev), then pip install ./python again." % e
    ) from e

from .errors import *  # noqa: F401,F403
from .segment import (  # noqa: F401
    HEADER_SIZE, MAX_NAME_LEN, Segment, TypeDesc, create, create_anonymous, open, open_fd, receive, send, unlink,
)

__version__ = "0.1.0"

from .sem import Event, Mutex, Semaphore  # noqa: E402,F401
from .value import Array, Value  # noqa: E402,F401
from .ring import MPMC, SPSC, Pipe, Queue  # noqa: E402,F401
