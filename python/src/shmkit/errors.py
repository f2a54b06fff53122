"""Exceptions raised by shmkit, one per error of the Go packages.

Each has the meaning of the Go sentinel named in its docstring, and also
derives from the built-in exception a Python user would catch for it
(``FileNotFoundError``, ``PermissionError``, ``ValueError``...).
"""


class ShmkitError(Exception):
    """Base of every shmkit exception."""


class NotFoundError(ShmkitError, FileNotFoundError):
    """No segment of that name exists (Go: os.ErrNotExist)."""


class ExistsError(ShmkitError, FileExistsError):
    """A segment of that name exists already (Go: os.ErrExist)."""


class PermissionDenied(ShmkitError, PermissionError):
    """The segment's file mode refuses this process (Go: os.ErrPermission)."""


class InvalidNameError(ShmkitError, ValueError):
    """A name outside 1..MAX_NAME_LEN bytes of [A-Za-z0-9._-], starting with
    '.' or containing '..' (Go: shm.ErrInvalidName)."""


class InvalidSizeError(ShmkitError, ValueError):
    """A size or option out of range (Go: shm.ErrInvalidSize)."""


class CorruptError(ShmkitError):
    """Shared bytes that fail validation: bad magic, checksum, impossible
    sizes, a garbage lock word (Go: shm.ErrCorrupt and the packages' own)."""


class VersionError(ShmkitError):
    """A format version (or flag) this package does not understand (Go:
    shm.ErrVersion, ring.ErrVersion)."""


class MismatchError(ShmkitError):
    """An object that is not what the caller asked for. ``what`` is
    "kind", "type" or "size"; ``want`` and ``got`` describe both sides."""

    def __init__(self, what, want, got, name=""):
        self.what, self.want, self.got, self.name = what, want, got, name
        super().__init__("shmkit: %s mismatch%s: want %s, got %s" % (what, " in %r" % name if name else "", want, got))


class KindError(MismatchError):
    """The segment holds another kind of object (Go: shm.ErrKind)."""

    def __init__(self, want, got, name=""):
        super().__init__("kind", want, got, name)


class TypeMismatchError(MismatchError, TypeError):
    """The element type differs (Go: shm.ErrType)."""

    def __init__(self, want, got, name=""):
        super().__init__("type", want, got, name)


class SizeMismatchError(MismatchError):
    """An existing segment's size differs from the size asked for (Go: shm.ErrSize)."""

    def __init__(self, want, got, name=""):
        super().__init__("size", want, got, name)


class CreatorDiedError(ShmkitError):
    """The segment's creator died while initialising it (Go: shm.ErrCreatorDied)."""


class NotSegmentError(ShmkitError, ValueError):
    """A descriptor that is not a shmkit segment at all (Go: shm.ErrNotSegment)."""


class ClosedError(ShmkitError, ValueError):
    """The handle was closed, or the queue closed for writing (Go: ErrClosed)."""


class BusyError(ShmkitError):
    """A queue role (SPSC producer or consumer, a pipe end) is held by a
    live process (Go: ring.ErrBusy). ``pid`` names it."""

    def __init__(self, role, pid):
        self.role, self.pid = role, pid
        super().__init__("shmkit: the %s role is held by live process %d" % (role, pid))


class PeerDiedError(ShmkitError, EOFError):
    """The process at the other end of a pipe died (Go: ring.ErrPeerDied)."""


class TooLargeError(ShmkitError, ValueError):
    """A message larger than the queue's max_message (Go: ring.ErrTooLarge)."""


class OwnerDeadError(ShmkitError):
    """The lock was acquired, but its previous owner died holding it (or an
    earlier one did and nobody called ``mark_consistent`` since). Go:
    sem.ErrOwnerDead. The lock **is held** when ``acquire`` raises this;
    ``pid`` and ``start`` name the dead owner (0 when unknown)."""

    def __init__(self, pid, start):
        self.pid, self.start = pid, start
        super().__init__("shmkit: the previous owner of the lock (pid %d) died holding it; the lock is held, state may be inconsistent" % pid)


class OverReleaseError(ShmkitError, ValueError):
    """A semaphore released past its maximum (Go: sem.ErrOverRelease)."""


class NotSupportedError(ShmkitError):
    """Not possible on this system (Go: ErrNotSupported)."""
