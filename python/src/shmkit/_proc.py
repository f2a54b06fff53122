"""Process identity: a pid with its start time (field 22 of /proc/PID/stat),
so that a recycled pid is not mistaken for a process that died."""
import errno
import os


def start_time(pid):
    """Return the start time of pid in clock ticks after boot, None if
    /proc has no such process, -1 for a zombie, 0 when unreadable."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            b = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:
        return 0
    i = b.rfind(b")")
    if i < 0:
        return 0
    fields = b[i + 2:].split()
    if len(fields) < 20:
        return 0
    if fields[0] in (b"Z", b"X"):
        return -1
    return int(fields[19])


_self = None


def self_id():
    """(pid, start time) of this process, recomputed after a fork."""
    global _self
    pid = os.getpid()
    if _self is None or _self[0] != pid:
        _self = (pid, max(start_time(pid) or 0, 0))
    return _self


def _exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as e:
        return e.errno != errno.ESRCH
    return True


def alive(pid, start=0, mask=(1 << 64) - 1):
    """Whether the process pid is alive and, when start is not 0, started
    at start (compared under mask: the low 32 bits for an owner word)."""
    if pid <= 0 or pid > 0x7FFFFFFF:
        return False
    st = start_time(pid)
    if st is None:
        # Missing from /proc: dead, unless a hidepid mount hides it.
        return _exists(pid)
    if st < 0:
        return False  # a zombie
    return start == 0 or st == 0 or (st & mask) == start


def owner_word(pid, start):
    """The ring's owner word: pid << 32 | low 32 bits of the start time."""
    return (pid << 32) | (start & 0xFFFFFFFF)


def owner_alive(w):
    """Whether the process an owner word names is alive (a start time of 0
    matches any process with that pid)."""
    return alive(w >> 32, w & 0xFFFFFFFF, 0xFFFFFFFF)
