"""Value and Array of numeric elements (docs/format/value-array.md), with
the typecodes of multiprocessing.Value and Array, shared with Go's
value.Value[T] and array.Array[T] of the matching Go type."""
import struct

from . import segment as _seg
from .errors import VersionError, CorruptError, InvalidSizeError, KindError, TypeMismatchError
from .errors import OwnerDeadError
from .sem import MAGIC_MUTEX, Mutex

OBJ_HEADER = 128
_MAGIC_VALUE = int.from_bytes(b"SHMKVALU", "little")
_MAGIC_ARRAY = int.from_bytes(b"SHMKARRY", "little")
_FLAG_LOCKED = 1

# typecode -> (Go type, size, struct/memoryview format, atomic word size or 0)
TYPECODES = {
    "b": ("int8", 1, "b", 0), "B": ("uint8", 1, "B", 0), "?": ("bool", 1, "?", 0),
    "h": ("int16", 2, "h", 0), "H": ("uint16", 2, "H", 0),
    "i": ("int32", 4, "i", 4), "I": ("uint32", 4, "I", 4),
    "l": ("int64", 8, "q", 8), "L": ("uint64", 8, "Q", 8),
    "q": ("int64", 8, "q", 8), "Q": ("uint64", 8, "Q", 8),
    "f": ("float32", 4, "f", 0), "d": ("float64", 8, "d", 0),
}
_DESC = {"int8": "i8", "uint8": "u8", "bool": "b", "int16": "i16", "uint16": "u16", "int32": "i32",
         "uint32": "u32", "int64": "i64", "uint64": "u64", "float32": "f32", "float64": "f64"}


def type_desc(typecode):
    """The (size, align, fingerprint) of a typecode's Go type."""
    go, size, _, _ = _code(typecode)
    return _seg.TypeDesc(size, size, _seg.fnv1a64(b"shmkit/typeinfo/v1 " + _DESC[go].encode()))


def _code(typecode):
    try:
        return TYPECODES[typecode]
    except (KeyError, TypeError):
        raise TypeError("shmkit: unsupported typecode %r (supported: %s)" % (typecode, " ".join(sorted(TYPECODES)))) from None


def _init_object(mem, base, magic, typecode, n, data):
    go, size, fmt, _ = _code(typecode)
    Mutex._init_bytes(mem, base + 64, MAGIC_MUTEX)
    desc = type_desc(typecode)
    hdr = bytearray(struct.pack("<QIIIIQQ", 0, 1, _FLAG_LOCKED, size, size, desc[2], n))
    hdr += struct.pack("<Q", _seg.fnv1a64(hdr[8:40]))
    return bytes(hdr), fmt, size


class _Obj:
    _magic = 0
    _other = 0
    _what = ""

    def __init__(self, seg, typecode, base=_seg.HEADER_SIZE, owns=False):
        go, size, fmt, atomic = _code(typecode)
        self._seg, self._mem, self._base, self.typecode = seg, seg.mem, base, typecode
        self._size, self._fmt, self._atomic, self._signed = size, fmt, atomic, fmt.islower()
        self._owns = owns
        view = seg.view
        if base % 8 or base + OBJ_HEADER > _seg.HEADER_SIZE + seg.size:
            raise CorruptError("shmkit: corrupt %s: object at %d outside the memory" % (self._what, base))
        m = self._mem.load64(base)
        if m != self._magic:
            if m == self._other:
                raise KindError(self._what, "the other object kind")
            raise CorruptError("shmkit: corrupt %s: bad magic %#x" % (self._what, m))
        version, flags, esize, ealign, fp, length, csum = struct.unpack_from("<IIIIQQQ", view, base + 8)
        if version != 1:
            raise VersionError("shmkit: %s: unknown version %d" % (self._what, version))
        if _seg.fnv1a64(bytes(view[base + 8:base + 40])) != csum:
            raise CorruptError("shmkit: corrupt %s: header checksum" % self._what)
        if flags & ~_FLAG_LOCKED or ealign == 0 or ealign & (ealign - 1) or ealign > 64 or esize == 0 or esize % ealign:
            raise CorruptError("shmkit: corrupt %s: flags %#x, element size %d, align %d" % (self._what, flags, esize, ealign))
        want = type_desc(typecode)
        if (esize, ealign, fp) != tuple(want):
            raise TypeMismatchError("%s %r" % (go, want), repr(_seg.TypeDesc(esize, ealign, fp)), seg.name)
        if self._magic == _MAGIC_VALUE and length != 1:
            raise CorruptError("shmkit: corrupt value: length %d" % length)
        if base + OBJ_HEADER + length * esize > _seg.HEADER_SIZE + seg.size:
            raise CorruptError("shmkit: corrupt %s: %d elements do not fit the memory" % (self._what, length))
        if not flags & _FLAG_LOCKED:
            raise KindError("locked " + self._what, "raw " + self._what, seg.name)
        self._lock = Mutex(seg, base + 64)
        if base == _seg.HEADER_SIZE and seg.kind in (_seg.KIND_VALUE, _seg.KIND_ARRAY) and (
                seg.params[0] != length or seg.size != OBJ_HEADER + length * esize):
            raise CorruptError("shmkit: corrupt %s: segment params %r do not match length %d" % (self._what, seg.params, length))
        self._len = length
        self._data = base + OBJ_HEADER
        self._cast = view[self._data:self._data + length * esize].cast(fmt)

    @classmethod
    def _create(cls, name, typecode, n, data, mode, anonymous=False):
        if n <= 0:
            raise InvalidSizeError("shmkit: %s length %d" % (cls._what, n))
        _, size, fmt, _ = _code(typecode)
        desc = type_desc(typecode)

        def init(payload, mem):
            hdr, _, _ = _init_object(mem, _seg.HEADER_SIZE, cls._magic, typecode, n, data)
            payload[8:48] = hdr[8:48]
            if data is not None:
                payload[OBJ_HEADER:OBJ_HEADER + n * size] = struct.pack("<%d%s" % (n, fmt), *data)
            mem.store64(_seg.HEADER_SIZE, cls._magic)

        kw = dict(kind=_seg.KIND_VALUE if cls._magic == _MAGIC_VALUE else _seg.KIND_ARRAY, type=desc,
                  params=(n, 0), type_name=_code(typecode)[0], init=init)
        if anonymous:
            seg = _seg.create_anonymous(OBJ_HEADER + n * size, **kw)
        else:
            seg = _seg.create(name, OBJ_HEADER + n * size, mode=mode, **kw)
        return cls._wrap(seg, typecode)

    @classmethod
    def _wrap(cls, seg, typecode):
        try:
            return cls(seg, typecode, owns=True)
        except BaseException:
            seg.close()
            raise

    @classmethod
    def open(cls, name, typecode):
        """Open the named object; its Go type must match the typecode."""
        kind = _seg.KIND_VALUE if cls._magic == _MAGIC_VALUE else _seg.KIND_ARRAY
        return cls._wrap(_seg.open(name, kind=kind, type=type_desc(typecode)), typecode)

    @classmethod
    def open_fd(cls, fd, typecode):
        kind = _seg.KIND_VALUE if cls._magic == _MAGIC_VALUE else _seg.KIND_ARRAY
        return cls._wrap(_seg.open_fd(fd, kind=kind, type=type_desc(typecode)), typecode)

    def get_lock(self):
        """The object's robust Mutex (as multiprocessing's get_lock)."""
        return self._lock

    def fileno(self):
        return self._seg.fileno()

    def _held(self):
        return (self._mem.load64(self._lock._off) & ~(1 << 31)) == self._lock._me

    def _locked(self, op):
        """Run op() under the lock. When the previous owner died, op still
        runs (as in Go: the operation is applied), the mutex is marked
        consistent, and OwnerDeadError is raised with ``applied = True`` and
        ``result`` set."""
        try:
            self._lock.acquire()
        except OwnerDeadError as e:
            try:
                e.result, e.applied = op(), True
                self._lock.mark_consistent()
            finally:
                self._lock.release()
            raise
        try:
            return op()
        finally:
            self._lock.release()

    def _load(self, i):
        if self._atomic == 8:
            v = self._mem.load64(self._data + 8 * i)
            return v - (1 << 64) if self._signed and v >> 63 else v
        if self._atomic == 4:
            v = self._mem.load32(self._data + 4 * i)
            return v - (1 << 32) if self._signed and v >> 31 else v
        return self._cast[i]

    def _store(self, i, x):
        if self._atomic:
            struct.pack(self._fmt, x)  # range check: struct.error for out of range
            (self._mem.store64 if self._atomic == 8 else self._mem.store32)(self._data + self._atomic * i, x)
        else:
            self._cast[i] = x

    def close(self):
        if self._cast is not None:
            self._cast.release()
            self._cast = None
        if self._owns:
            self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Value(_Obj):
    """A single shared number, as multiprocessing.Value(typecode)."""

    _magic, _other, _what = _MAGIC_VALUE, _MAGIC_ARRAY, "value"

    @classmethod
    def create(cls, name, typecode, value=0, mode=0o600):
        """Create the named Value (a Go value.Value[T] of the typecode's type)."""
        return cls._create(name, typecode, 1, [value], mode)

    @classmethod
    def create_anonymous(cls, typecode, value=0):
        return cls._create("", typecode, 1, [value], 0, anonymous=True)

    @property
    def value(self):
        """The number. 4- and 8-byte integers are read atomically; other
        types under the lock (or plainly when this process holds it)."""
        if self._atomic or self._held():
            return self._load(0)
        return self._locked(lambda: self._load(0))

    @value.setter
    def value(self, x):
        if self._atomic or self._held():
            self._store(0, x)
            return
        self._locked(lambda: self._store(0, x))

    def update(self, fn):
        """Replace the value with fn(value) under the lock (for integers the
        same compare-and-swap loop as Go's Update, composing with lock-free
        stores); returns the new value."""
        return self._locked(lambda: self._update(0, fn))

    def _update(self, i, fn):
        if not self._atomic:
            x = fn(self._load(i))
            self._store(i, x)
            return x
        off, mask = self._data + self._atomic * i, (1 << (8 * self._atomic)) - 1
        cas = self._mem.cas64 if self._atomic == 8 else self._mem.cas32
        while True:
            old = self._load(i)
            x = fn(old)
            struct.pack(self._fmt, x)
            if cas(off, old & mask, x & mask):
                return x

    def __repr__(self):
        return "<shmkit.Value(%r, %r)>" % (self.typecode, self._load(0))


class Array(_Obj):
    """A shared fixed-length array, as multiprocessing.Array(typecode, n)."""

    _magic, _other, _what = _MAGIC_ARRAY, _MAGIC_VALUE, "array"

    @classmethod
    def create(cls, name, typecode, size_or_initializer, mode=0o600):
        """Create the named Array: a length, or a sequence of initial values."""
        data = None
        if isinstance(size_or_initializer, int):
            n = size_or_initializer
        else:
            data = list(size_or_initializer)
            n = len(data)
        return cls._create(name, typecode, n, data, mode)

    @classmethod
    def create_anonymous(cls, typecode, size_or_initializer):
        data = None
        if isinstance(size_or_initializer, int):
            n = size_or_initializer
        else:
            data = list(size_or_initializer)
            n = len(data)
        return cls._create("", typecode, n, data, 0, anonymous=True)

    def __len__(self):
        return self._len

    def _index(self, i):
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("shmkit: array index out of range")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._load(j) for j in range(*i.indices(self._len))]
        return self._load(self._index(i))

    def __setitem__(self, i, x):
        if isinstance(i, slice):
            idx = range(*i.indices(self._len))
            x = list(x)
            if len(x) != len(idx):
                raise ValueError("shmkit: slice assignment of %d values to %d elements" % (len(x), len(idx)))
            for j, v in zip(idx, x):
                self._store(j, v)
            return
        self._store(self._index(i), x)

    def update(self, i, fn):
        """Replace element i with fn(element) under the lock."""
        i = self._index(i)
        return self._locked(lambda: Value._update(self, i, fn))

    def memoryview(self):
        """A memoryview of the elements (no copy; plain, unsynchronised
        access). Release it before closing the array."""
        return self._cast[:]

    def numpy(self):
        """A numpy array over the elements, no copy (needs numpy)."""
        import numpy as np
        return np.frombuffer(self._cast, dtype=np.dtype(self._fmt).newbyteorder("<"))

    def __repr__(self):
        return "<shmkit.Array(%r, %d)>" % (self.typecode, self._len)
