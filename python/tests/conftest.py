"""Fixtures for the Python peer's tests: the Go side is internal/pypeer,
built once per session with the repository's go toolchain."""
import itertools
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_names = itertools.count()


@pytest.fixture(scope="session")
def pypeer():
    """Path of the built Go peer binary."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    d = tempfile.mkdtemp(prefix="pypeer-")
    out = os.path.join(d, "pypeer")
    subprocess.run([go, "build", "-o", out, "./internal/pypeer"], cwd=REPO, check=True)
    yield out
    shutil.rmtree(d, ignore_errors=True)


class Peer:
    """A running Go peer process whose stdout is read line by line."""

    def __init__(self, binary, *args):
        self.args = [str(a) for a in args]
        self.p = subprocess.Popen([binary] + self.args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)

    def line(self, timeout=30):
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            self.kill()
            raise AssertionError("pypeer %s: no output within %ss" % (" ".join(self.args), timeout))
        s = self.p.stdout.readline().strip()
        if s.startswith("error:"):
            raise AssertionError("pypeer %s: %s" % (" ".join(self.args), s))
        return s

    def wait(self, timeout=60):
        """Wait for exit; return the remaining output (last line)."""
        out, _ = self.p.communicate(timeout=timeout)
        lines = [s for s in out.splitlines() if s.strip()]
        if self.p.returncode != 0:
            raise AssertionError("pypeer %s exited %d: %s" % (" ".join(self.args), self.p.returncode, "\n".join(lines)))
        return lines[-1] if lines else ""

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    @property
    def pid(self):
        return self.p.pid


@pytest.fixture
def peer(pypeer):
    started = []

    def start(*args):
        p = Peer(pypeer, *args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture
def name():
    """A fresh segment name, unlinked after the test."""
    n = "pytest-%d-%d" % (os.getpid(), next(_names))
    yield n
    try:
        os.unlink("/dev/shm/shmkit." + n)
    except FileNotFoundError:
        pass


# The message pattern shared with internal/pypeer (message(i)).
PATTERN = bytes((i * 131 + 7) & 0xFF for i in range(512))


def message(i):
    return i.to_bytes(8, "little") + PATTERN[i % 256:i % 256 + i % 200]
