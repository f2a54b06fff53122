/*
 * shmkit._native: what the Python standard library cannot do on a shared
 * mapping: 4- and 8-byte atomic loads, stores, compare-and-swap and
 * fetch-add, and futex wait/wake (shared, not private). Every operation is
 * sequentially consistent (the compiler's __atomic builtins with
 * __ATOMIC_SEQ_CST, inlined on amd64 and arm64: no libatomic).
 *
 * A Mem holds a writable buffer (an mmap object) for its lifetime and
 * checks every offset against it: an offset out of range or misaligned is
 * a ValueError, never a fault.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    char *base;
    Py_ssize_t len;
    int held;
} Mem;

static int Mem_init(Mem *self, PyObject *args, PyObject *kw) {
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj)) return -1;
    if (self->held || self->base) {
        /* Objects built on this Mem keep raw pointers into its buffer. */
        PyErr_SetString(PyExc_RuntimeError, "shmkit: a Mem cannot be re-initialised");
        return -1;
    }
    if (PyObject_GetBuffer(obj, &self->view, PyBUF_WRITABLE | PyBUF_SIMPLE) < 0) return -1;
    self->held = 1;
    self->base = self->view.buf;
    self->len = self->view.len;
    if (((uintptr_t)self->base & 7) != 0) {
        PyBuffer_Release(&self->view);
        self->held = 0;
        PyErr_SetString(PyExc_ValueError, "shmkit: mapping is not 8-byte aligned");
        return -1;
    }
    return 0;
}

static void Mem_dealloc(Mem *self) {
    if (self->held) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Mem_release(Mem *self, PyObject *unused) {
    if (self->held) {
        PyBuffer_Release(&self->view);
        self->held = 0;
    }
    self->base = NULL;
    self->len = 0;
    Py_RETURN_NONE;
}

/* at returns the address of a size-byte word at off, or NULL with an
 * exception set. */
static inline void *at(Mem *m, PyObject *o, Py_ssize_t size) {
    Py_ssize_t off = PyLong_AsSsize_t(o);
    if (off == -1 && PyErr_Occurred()) return NULL;
    if (!m->held) {
        PyErr_SetString(PyExc_ValueError, "shmkit: memory released");
        return NULL;
    }
    if (off < 0 || off > m->len - size || (off & (size - 1)) != 0) {
        PyErr_Format(PyExc_ValueError, "shmkit: offset %zd out of range or misaligned for %zd bytes (mapping %zd bytes)", off, size, m->len);
        return NULL;
    }
    return m->base + off;
}

static inline int u64arg(PyObject *o, uint64_t *v) {
    /* Accept any int; negative values wrap (two's complement), as Go's
     * uint64 conversions do. */
    *v = (uint64_t)PyLong_AsUnsignedLongLongMask(o);
    return (*v == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

#define CHECKN(n) if (nargs != n) { PyErr_Format(PyExc_TypeError, "expected %d arguments, got %zd", n, nargs); return NULL; }

static PyObject *Mem_load64(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(1);
    uint64_t *p = at(m, a[0], 8);
    if (!p) return NULL;
    return PyLong_FromUnsignedLongLong(__atomic_load_n(p, __ATOMIC_SEQ_CST));
}
static PyObject *Mem_load32(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(1);
    uint32_t *p = at(m, a[0], 4);
    if (!p) return NULL;
    return PyLong_FromUnsignedLong(__atomic_load_n(p, __ATOMIC_SEQ_CST));
}
static PyObject *Mem_store64(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint64_t *p = at(m, a[0], 8), v;
    if (!p || u64arg(a[1], &v)) return NULL;
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}
static PyObject *Mem_store32(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint32_t *p = at(m, a[0], 4);
    uint64_t v;
    if (!p || u64arg(a[1], &v)) return NULL;
    __atomic_store_n(p, (uint32_t)v, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}
static PyObject *Mem_cas64(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(3);
    uint64_t *p = at(m, a[0], 8), old, new;
    if (!p || u64arg(a[1], &old) || u64arg(a[2], &new)) return NULL;
    return PyBool_FromLong(__atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
}
static PyObject *Mem_cas32(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(3);
    uint32_t *p = at(m, a[0], 4);
    uint64_t old, new;
    if (!p || u64arg(a[1], &old) || u64arg(a[2], &new)) return NULL;
    uint32_t o = (uint32_t)old;
    return PyBool_FromLong(__atomic_compare_exchange_n(p, &o, (uint32_t)new, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
}
/* add64/add32 return the new value (as Go's atomic.Add); the delta wraps. */
static PyObject *Mem_add64(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint64_t *p = at(m, a[0], 8), d;
    if (!p || u64arg(a[1], &d)) return NULL;
    return PyLong_FromUnsignedLongLong(__atomic_add_fetch(p, d, __ATOMIC_SEQ_CST));
}
static PyObject *Mem_add32(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint32_t *p = at(m, a[0], 4);
    uint64_t d;
    if (!p || u64arg(a[1], &d)) return NULL;
    return PyLong_FromUnsignedLong(__atomic_add_fetch(p, (uint32_t)d, __ATOMIC_SEQ_CST));
}
/* or64/or32 return the old value. */
static PyObject *Mem_or64(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint64_t *p = at(m, a[0], 8), d;
    if (!p || u64arg(a[1], &d)) return NULL;
    return PyLong_FromUnsignedLongLong(__atomic_fetch_or(p, d, __ATOMIC_SEQ_CST));
}
static PyObject *Mem_or32(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint32_t *p = at(m, a[0], 4);
    uint64_t d;
    if (!p || u64arg(a[1], &d)) return NULL;
    return PyLong_FromUnsignedLong(__atomic_fetch_or(p, (uint32_t)d, __ATOMIC_SEQ_CST));
}

/* futex_wait(off, expected, timeout) waits on the u32 at off while it holds
 * expected, at most timeout seconds (None: no limit). Returns 0 when woken
 * (or a spurious wake-up), 1 on timeout, 2 when the word did not hold
 * expected, 3 when interrupted by a signal. The GIL is released. */
static PyObject *Mem_futex_wait(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(3);
    uint32_t *p = at(m, a[0], 4);
    uint64_t v;
    if (!p || u64arg(a[1], &v)) return NULL;
    struct timespec ts, *tsp = NULL;
    if (a[2] != Py_None) {
        double t = PyFloat_AsDouble(a[2]);
        if (t == -1.0 && PyErr_Occurred()) return NULL;
        if (!(t >= 0)) t = 0; /* NaN too */
        if (t > 1e9) t = 1e9;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        tsp = &ts;
    }
    long r;
    int e;
    Py_BEGIN_ALLOW_THREADS
    r = syscall(SYS_futex, p, FUTEX_WAIT, (uint32_t)v, tsp, NULL, 0);
    e = errno;
    Py_END_ALLOW_THREADS
    if (r == 0) return PyLong_FromLong(0);
    switch (e) {
    case ETIMEDOUT: return PyLong_FromLong(1);
    case EAGAIN: return PyLong_FromLong(2);
    case EINTR: return PyLong_FromLong(3);
    }
    errno = e;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* futex_wake(off, n) wakes up to n waiters; returns how many woke. */
static PyObject *Mem_futex_wake(Mem *m, PyObject *const *a, Py_ssize_t nargs) {
    CHECKN(2);
    uint32_t *p = at(m, a[0], 4);
    if (!p) return NULL;
    long n = PyLong_AsLong(a[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0 || n > INT32_MAX) n = INT32_MAX;
    long r = syscall(SYS_futex, p, FUTEX_WAKE, (int)n, NULL, NULL, 0);
    if (r < 0) return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(r);
}

static PyMethodDef Mem_methods[] = {
    {"load64", (PyCFunction)(void (*)(void))Mem_load64, METH_FASTCALL, "load64(off) -> int: atomic load of the u64 at off"},
    {"load32", (PyCFunction)(void (*)(void))Mem_load32, METH_FASTCALL, "load32(off) -> int: atomic load of the u32 at off"},
    {"store64", (PyCFunction)(void (*)(void))Mem_store64, METH_FASTCALL, "store64(off, v): atomic store"},
    {"store32", (PyCFunction)(void (*)(void))Mem_store32, METH_FASTCALL, "store32(off, v): atomic store"},
    {"cas64", (PyCFunction)(void (*)(void))Mem_cas64, METH_FASTCALL, "cas64(off, old, new) -> bool"},
    {"cas32", (PyCFunction)(void (*)(void))Mem_cas32, METH_FASTCALL, "cas32(off, old, new) -> bool"},
    {"add64", (PyCFunction)(void (*)(void))Mem_add64, METH_FASTCALL, "add64(off, delta) -> new value (wraps)"},
    {"add32", (PyCFunction)(void (*)(void))Mem_add32, METH_FASTCALL, "add32(off, delta) -> new value (wraps)"},
    {"or64", (PyCFunction)(void (*)(void))Mem_or64, METH_FASTCALL, "or64(off, bits) -> old value"},
    {"or32", (PyCFunction)(void (*)(void))Mem_or32, METH_FASTCALL, "or32(off, bits) -> old value"},
    {"futex_wait", (PyCFunction)(void (*)(void))Mem_futex_wait, METH_FASTCALL, "futex_wait(off, expected, timeout) -> 0 woken, 1 timeout, 2 value differs, 3 interrupted"},
    {"futex_wake", (PyCFunction)(void (*)(void))Mem_futex_wake, METH_FASTCALL, "futex_wake(off, n) -> number woken"},
    {"release", (PyCFunction)Mem_release, METH_NOARGS, "release the buffer; later calls fail"},
    {NULL}
};

static PyTypeObject MemType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shmkit._native.Mem",
    .tp_basicsize = sizeof(Mem),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Mem(buffer): atomic access to a writable, 8-byte aligned buffer",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Mem_init,
    .tp_dealloc = (destructor)Mem_dealloc,
    .tp_methods = Mem_methods,
};

/* ------------------------------------------------------------------ */
/* Spsc: the fast paths of one handle's roles on an SPSC ring
 * (docs/format/ring.md, "SPSC data area"). Python owns the slow parts
 * (role claims, takeover walks, sleeping, timeouts) and this type the
 * per-message work, so that a put or get is one call. The private
 * positions live here; Python seeds them with p_init / c_init. */

#define R_TAIL 64
#define R_DATASEQ 256
#define R_GETWAITERS 260
#define R_PUTS 80
#define R_HEAD 128
#define R_SPACESEQ 320
#define R_PUTWAITERS 324
#define R_GETS 144
#define R_CLOSED 232
#define R_HDR 384
#define PADLEN 0xFFFFFFFFu

enum { ST_OK = 0, ST_FULL = 1, ST_CLOSED = 2, ST_CLOSED_VISIBLE = 3, ST_SIZE = 4 };
enum { G_EMPTY = 0, G_EOF = 1 };

typedef struct {
    PyObject_HEAD
    Mem *mem;
    PyObject *corrupt;
    char *ring;
    uint64_t data_off, cap, mask, max_msg, type_size;
    /* producer */
    uint64_t tail, pub, cached_head, puts, first, resv_off, resv_need, resv_n;
    int deferred;
    /* consumer */
    uint64_t head, view, held, gets;
    int eof;
} Spsc;

static inline uint64_t a8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }
static inline uint64_t *w64(Spsc *q, uint64_t off) { return (uint64_t *)(q->ring + off); }
static inline uint32_t *w32(Spsc *q, uint64_t off) { return (uint32_t *)(q->ring + off); }
static inline uint64_t *hdrp(Spsc *q, uint64_t off) { return (uint64_t *)(q->ring + R_HDR + off); }

static int Spsc_init(Spsc *q, PyObject *args, PyObject *kw) {
    /* Spsc(mem, ring_offset, region_bytes, capacity, max_message,
     * type_size, corrupt_exception): the geometry is the caller's validated
     * copy of the checksummed header, never re-read from shared memory. */
    PyObject *mem, *corrupt;
    Py_ssize_t off, region;
    unsigned long long cap, max_msg, type_size;
    if (!PyArg_ParseTuple(args, "O!nnKKKO", &MemType, &mem, &off, &region, &cap, &max_msg, &type_size, &corrupt))
        return -1;
    Mem *m = (Mem *)mem;
    if (!m->held || off < 0 || off % 64 || region < R_HDR || off > m->len || region > m->len - off) {
        PyErr_SetString(PyExc_ValueError, "shmkit: ring offset or size out of range");
        return -1;
    }
    char *ring = m->base + off;
    if (cap < 64 || (cap & (cap - 1)) || (uint64_t)(region - R_HDR) < cap || max_msg > (1u << 30) ||
        cap < 2 * (8 + a8(max_msg)) || type_size > max_msg) {
        PyErr_SetString(corrupt, "shmkit: corrupt ring: impossible SPSC geometry");
        return -1;
    }
    Py_INCREF(mem);
    Py_XSETREF(q->mem, m);
    Py_INCREF(corrupt);
    Py_XSETREF(q->corrupt, corrupt);
    q->ring = ring;
    q->cap = cap;
    q->mask = cap - 1;
    q->max_msg = max_msg;
    q->type_size = type_size;
    return 0;
}

static void Spsc_dealloc(Spsc *q) {
    Py_XDECREF(q->mem);
    Py_XDECREF(q->corrupt);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static inline int alive_mem(Spsc *q) {
    if (!q->mem || !q->mem->held) {
        PyErr_SetString(PyExc_ValueError, "shmkit: memory released");
        return 0;
    }
    return 1;
}

static inline void wake1(Spsc *q, uint64_t seq_off, uint64_t waiters_off) {
    if (__atomic_load_n(w32(q, waiters_off), __ATOMIC_SEQ_CST) == 0) return;
    __atomic_add_fetch(w32(q, seq_off), 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, w32(q, seq_off), FUTEX_WAKE, 1, NULL, NULL, 0);
}

static inline int closed(Spsc *q) { return __atomic_load_n(w32(q, R_CLOSED), __ATOMIC_SEQ_CST) != 0; }

static PyObject *Spsc_p_init(Spsc *q, PyObject *args) {
    unsigned long long t, h, puts;
    if (!PyArg_ParseTuple(args, "KKK", &t, &h, &puts)) return NULL;
    q->tail = q->pub = t;
    q->cached_head = h;
    q->puts = puts;
    q->deferred = 0;
    q->resv_need = 0;
    Py_RETURN_NONE;
}

static PyObject *Spsc_c_init(Spsc *q, PyObject *args) {
    unsigned long long h, gets;
    if (!PyArg_ParseTuple(args, "KK", &h, &gets)) return NULL;
    q->head = q->view = h;
    q->gets = gets;
    q->held = 0;
    q->eof = 0;
    Py_RETURN_NONE;
}

static inline void set_header(Spsc *q, uint64_t off, uint64_t w) {
    if (!q->deferred) {
        q->first = w;
        q->deferred = 1;
        return;
    }
    *hdrp(q, off) = w; /* plain: published by the first header's atomic store */
}

/* room finds room for n payload bytes at the write position; returns 1
 * with *off (data offset of the record) and *need, 0 when full, -1 on a
 * corrupt head (exception set). */
static int room(Spsc *q, uint64_t n, uint64_t *off, uint64_t *need) {
    uint64_t c = q->cap, span = 8 + a8(n);
    *off = q->tail & q->mask;
    *need = span;
    if (*off + span > c) *need += c - *off;
    if (q->tail + *need + 8 - q->cached_head > c) {
        uint64_t h = __atomic_load_n(w64(q, R_HEAD), __ATOMIC_SEQ_CST);
        if (h > q->pub || q->pub - h > c || (h & 7)) {
            PyErr_Format(q->corrupt, "shmkit: corrupt ring: head %llu with tail %llu", (unsigned long long)h, (unsigned long long)q->pub);
            return -1;
        }
        q->cached_head = h;
        if (q->tail + *need + 8 - h > c) return 0;
    }
    if (*need != span) {
        set_header(q, *off, PADLEN);
        *off = 0;
    }
    return 1;
}

static inline void write_rec(Spsc *q, uint64_t off, uint64_t need, const char *p, uint64_t n) {
    memcpy(q->ring + R_HDR + off + 8, p, n);
    set_header(q, off, n | ((8 + a8(n)) << 32));
    q->tail += need;
}

/* publish makes what was written since the last publication visible. */
static int publish(Spsc *q, uint64_t k) {
    if (q->tail == q->pub) return ST_OK;
    if (closed(q)) {
        q->tail = q->pub;
        q->deferred = 0;
        return ST_CLOSED;
    }
    *hdrp(q, q->tail & q->mask) = 0; /* the terminator */
    __atomic_store_n(hdrp(q, q->pub & q->mask), q->first, __ATOMIC_SEQ_CST);
    q->deferred = 0;
    q->pub = q->tail;
    q->puts += k;
    __atomic_store_n(w64(q, R_TAIL), q->tail, __ATOMIC_RELAXED);
    __atomic_store_n(w64(q, R_PUTS), q->puts, __ATOMIC_RELAXED);
    wake1(q, R_DATASEQ, R_GETWAITERS);
    return closed(q) ? ST_CLOSED_VISIBLE : ST_OK;
}

static inline int size_ok(Spsc *q, uint64_t n) {
    return q->type_size ? n == q->type_size : n <= q->max_msg;
}

/* put(buffer) -> status: 0 published, 1 full (nothing written), 2 closed
 * (nothing published), 3 closed after publishing, 4 wrong size. */
static PyObject *Spsc_put(Spsc *q, PyObject *arg) {
    if (!alive_mem(q)) return NULL;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    long st;
    uint64_t off, need;
    if (q->resv_need) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_RuntimeError, "shmkit: a reservation is pending (commit it first)");
        return NULL;
    }
    if (!size_ok(q, (uint64_t)b.len)) {
        st = ST_SIZE;
    } else {
        int r = room(q, (uint64_t)b.len, &off, &need);
        if (r < 0) {
            PyBuffer_Release(&b);
            return NULL;
        }
        if (r == 0) {
            st = ST_FULL;
        } else {
            write_rec(q, off, need, b.buf, (uint64_t)b.len);
            st = publish(q, 1);
        }
    }
    PyBuffer_Release(&b);
    return PyLong_FromLong(st);
}

/* put_batch(seq, start) -> (k, status): writes seq[start:] as far as it fits
 * and publishes them together; k messages were taken. */
static PyObject *Spsc_put_batch(Spsc *q, PyObject *args) {
    PyObject *seq;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "On", &seq, &start)) return NULL;
    if (!alive_mem(q)) return NULL;
    /* A tuple copy: the loop's length cannot change under it. */
    PyObject *fast = PySequence_Tuple(seq);
    if (!fast) return NULL;
    Py_ssize_t len = PyTuple_GET_SIZE(fast), k = 0;
    if (start < 0 || start > len) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_IndexError, "shmkit: put_batch start out of range");
        return NULL;
    }
    long st = ST_OK;
    for (Py_ssize_t i = start; i < len; i++) {
        Py_buffer b;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(fast, i), &b, PyBUF_SIMPLE) < 0) {
            q->tail = q->pub;
            q->deferred = 0;
            Py_DECREF(fast);
            return NULL;
        }
        if (!size_ok(q, (uint64_t)b.len)) {
            PyBuffer_Release(&b);
            if (k == 0) st = ST_SIZE;
            break;
        }
        uint64_t off, need;
        int r = room(q, (uint64_t)b.len, &off, &need);
        if (r <= 0) {
            PyBuffer_Release(&b);
            if (r < 0) {
                q->tail = q->pub;
                q->deferred = 0;
                Py_DECREF(fast);
                return NULL;
            }
            if (k == 0) st = ST_FULL;
            break;
        }
        write_rec(q, off, need, b.buf, (uint64_t)b.len);
        PyBuffer_Release(&b);
        k++;
        if (q->tail - q->pub >= 65536) break; /* publish every 64 KiB, as the Go side */
    }
    Py_DECREF(fast);
    if (k > 0) {
        st = publish(q, (uint64_t)k);
        if (st == ST_CLOSED) k = 0;
    }
    return Py_BuildValue("nl", k, st);
}

/* reserve(n) -> mapping offset of n writable payload bytes (relative to
 * the Mem), or -1 when full, -4 for a wrong size. */
static PyObject *Spsc_reserve(Spsc *q, PyObject *arg) {
    if (!alive_mem(q)) return NULL;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (q->resv_need) {
        PyErr_SetString(PyExc_RuntimeError, "shmkit: a reservation is pending (commit it first)");
        return NULL;
    }
    if (n < 0 || !(q->type_size ? (uint64_t)n == q->type_size : (uint64_t)n <= q->max_msg)) return PyLong_FromLong(-4);
    uint64_t off, need;
    int r = room(q, (uint64_t)n, &off, &need);
    if (r < 0) return NULL;
    if (r == 0) return PyLong_FromLong(-1);
    q->resv_off = off;
    q->resv_need = need;
    q->resv_n = (uint64_t)n;
    return PyLong_FromSsize_t((Py_ssize_t)((q->ring - q->mem->base) + R_HDR + off + 8));
}

/* commit(n) publishes the reserved record with n <= reserved bytes. */
static PyObject *Spsc_commit(Spsc *q, PyObject *arg) {
    if (!alive_mem(q)) return NULL;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (!q->resv_need) {
        PyErr_SetString(PyExc_RuntimeError, "shmkit: commit without a reservation");
        return NULL;
    }
    if (n < 0 || (uint64_t)n > q->resv_n || (q->type_size && (uint64_t)n != q->type_size)) {
        PyErr_Format(PyExc_ValueError, "shmkit: commit of %zd bytes, %llu reserved", n, (unsigned long long)q->resv_n);
        return NULL;
    }
    set_header(q, q->resv_off, (uint64_t)n | ((8 + a8(q->resv_n)) << 32));
    q->tail += q->resv_need;
    q->resv_need = 0;
    return PyLong_FromLong(publish(q, 1));
}

/* abort drops a pending reservation (and a pad written for it). */
static PyObject *Spsc_abort(Spsc *q, PyObject *unused) {
    q->resv_need = 0;
    q->tail = q->pub;
    q->deferred = 0;
    Py_RETURN_NONE;
}

/* peek: 1 with the record's data offset and length, 0 empty, -1 EOF, -2 corrupt. */
static int peek(Spsc *q, uint64_t *off, uint64_t *n, uint64_t *span) {
    if (q->eof) return -1;
    for (int i = 0; i < 2; i++) {
        *off = q->view & q->mask;
        uint64_t w = __atomic_load_n(hdrp(q, *off), __ATOMIC_SEQ_CST);
        if (w == 0) {
            if (!closed(q)) return 0;
            w = __atomic_load_n(hdrp(q, *off), __ATOMIC_SEQ_CST);
            if (w == 0) {
                q->eof = 1;
                return -1;
            }
        }
        *n = w & 0xFFFFFFFFu;
        *span = w >> 32;
        if (*n == PADLEN) {
            if (*off == 0) {
                PyErr_SetString(q->corrupt, "shmkit: corrupt ring: pad record at offset 0");
                return -2;
            }
            *span = q->cap - *off;
        } else if (*n > q->max_msg || *span < 8 + a8(*n) || *span > 8 + a8(q->max_msg) || (*span & 7) || *off + *span > q->cap) {
            PyErr_Format(q->corrupt, "shmkit: corrupt ring: record length %llu span %llu at offset %llu",
                         (unsigned long long)*n, (unsigned long long)*span, (unsigned long long)*off);
            return -2;
        }
        if (q->view + *span - q->head > q->cap) {
            PyErr_SetString(q->corrupt, "shmkit: corrupt ring: records past the capacity");
            return -2;
        }
        if (*n == PADLEN) {
            q->view += *span;
            continue;
        }
        return 1;
    }
    PyErr_SetString(q->corrupt, "shmkit: corrupt ring: pad record after a pad");
    return -2;
}

static void release_to_view(Spsc *q, uint64_t k) {
    q->head = q->view;
    __atomic_store_n(w64(q, R_HEAD), q->head, __ATOMIC_SEQ_CST);
    q->gets += k;
    __atomic_store_n(w64(q, R_GETS), q->gets, __ATOMIC_RELAXED);
    wake1(q, R_SPACESEQ, R_PUTWAITERS);
}

static PyObject *peek_code(int r) {
    return r == -2 ? NULL : PyLong_FromLong(r == 0 ? G_EMPTY : G_EOF);
}

/* get() -> bytes, or 0 (empty) or 1 (closed and drained). */
static PyObject *Spsc_get(Spsc *q, PyObject *unused) {
    if (!alive_mem(q)) return NULL;
    if (q->held) {
        PyErr_SetString(PyExc_RuntimeError, "shmkit: records held by next() (release them first)");
        return NULL;
    }
    uint64_t off, n, span;
    int r = peek(q, &off, &n, &span);
    if (r != 1) return peek_code(r);
    PyObject *o = PyBytes_FromStringAndSize(q->ring + R_HDR + off + 8, (Py_ssize_t)n);
    if (!o) return NULL;
    q->view += span;
    release_to_view(q, 1);
    return o;
}

/* get_batch(max) -> list of bytes (at least one), or 0 / 1 as get. */
static PyObject *Spsc_get_batch(Spsc *q, PyObject *arg) {
    if (!alive_mem(q)) return NULL;
    Py_ssize_t max = PyLong_AsSsize_t(arg);
    if (max == -1 && PyErr_Occurred()) return NULL;
    if (max <= 0) return PyList_New(0);
    if (q->held) {
        PyErr_SetString(PyExc_RuntimeError, "shmkit: records held by next() (release them first)");
        return NULL;
    }
    uint64_t off, n, span;
    int r = peek(q, &off, &n, &span);
    if (r != 1) return peek_code(r);
    PyObject *list = PyList_New(0);
    if (!list) return NULL;
    uint64_t k = 0;
    for (;;) {
        PyObject *o = PyBytes_FromStringAndSize(q->ring + R_HDR + off + 8, (Py_ssize_t)n);
        if (!o || PyList_Append(list, o) < 0) {
            Py_XDECREF(o);
            Py_DECREF(list);
            if (k) release_to_view(q, k);
            return NULL;
        }
        Py_DECREF(o);
        q->view += span;
        k++;
        if ((Py_ssize_t)k >= max) break;
        r = peek(q, &off, &n, &span);
        if (r == -2) PyErr_Clear(); /* reported by the next call */
        if (r != 1) break;
    }
    release_to_view(q, k);
    return list;
}

/* next() -> (mapping offset, length) of the next record, held until
 * release(); or 0 / 1 as get. */
static PyObject *Spsc_next(Spsc *q, PyObject *unused) {
    if (!alive_mem(q)) return NULL;
    uint64_t off, n, span;
    int r = peek(q, &off, &n, &span);
    if (r != 1) return peek_code(r);
    q->view += span;
    q->held++;
    return Py_BuildValue("nn", (Py_ssize_t)((q->ring - q->mem->base) + R_HDR + off + 8), (Py_ssize_t)n);
}

/* ready() -> 1 when a record is waiting, 0 when empty, 2 at EOF; consumes nothing. */
static PyObject *Spsc_ready(Spsc *q, PyObject *unused) {
    if (!alive_mem(q)) return NULL;
    uint64_t off, n, span;
    int r = peek(q, &off, &n, &span);
    if (r == -2) return NULL;
    return PyLong_FromLong(r == 1 ? 1 : r == 0 ? 0 : 2);
}

/* release() gives back every record held by next(); returns how many. */
static PyObject *Spsc_release(Spsc *q, PyObject *unused) {
    if (!alive_mem(q)) return NULL;
    uint64_t k = q->held;
    if (k) {
        q->held = 0;
        release_to_view(q, k);
    }
    return PyLong_FromUnsignedLongLong(k);
}

static PyObject *Spsc_state(Spsc *q, PyObject *unused) {
    return Py_BuildValue("{sKsKsKsKsKsKsisi}", "tail", (unsigned long long)q->tail, "pub", (unsigned long long)q->pub,
                         "head", (unsigned long long)q->head, "view", (unsigned long long)q->view,
                         "held", (unsigned long long)q->held, "gets", (unsigned long long)q->gets, "eof", q->eof,
                         "reserved", q->resv_need != 0);
}

static PyMethodDef Spsc_methods[] = {
    {"p_init", (PyCFunction)Spsc_p_init, METH_VARARGS, "p_init(tail, cached_head, puts): seed the producer"},
    {"c_init", (PyCFunction)Spsc_c_init, METH_VARARGS, "c_init(head, gets): seed the consumer"},
    {"put", (PyCFunction)Spsc_put, METH_O, "put(buf) -> 0 ok, 1 full, 2 closed, 3 closed after publishing, 4 wrong size"},
    {"put_batch", (PyCFunction)Spsc_put_batch, METH_VARARGS, "put_batch(seq, start) -> (k, status)"},
    {"reserve", (PyCFunction)Spsc_reserve, METH_O, "reserve(n) -> offset, -1 full, -4 wrong size"},
    {"commit", (PyCFunction)Spsc_commit, METH_O, "commit(n) -> status as put"},
    {"abort", (PyCFunction)Spsc_abort, METH_NOARGS, "drop a pending reservation"},
    {"get", (PyCFunction)Spsc_get, METH_NOARGS, "get() -> bytes, 0 empty, 1 EOF"},
    {"get_batch", (PyCFunction)Spsc_get_batch, METH_O, "get_batch(max) -> list, 0 empty, 1 EOF"},
    {"next", (PyCFunction)Spsc_next, METH_NOARGS, "next() -> (offset, n), 0 empty, 1 EOF"},
    {"ready", (PyCFunction)Spsc_ready, METH_NOARGS, "ready() -> 1 waiting, 0 empty, 2 EOF"},
    {"release", (PyCFunction)Spsc_release, METH_NOARGS, "release held records -> count"},
    {"state", (PyCFunction)Spsc_state, METH_NOARGS, "the private positions, for tests"},
    {NULL}
};

static PyTypeObject SpscType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shmkit._native.Spsc",
    .tp_basicsize = sizeof(Spsc),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Spsc(mem, ring_offset, corrupt_exception): SPSC ring fast paths",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Spsc_init,
    .tp_dealloc = (destructor)Spsc_dealloc,
    .tp_methods = Spsc_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "shmkit._native", "Atomics and futexes on shared mappings.", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&MemType) < 0 || PyType_Ready(&SpscType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&MemType);
    if (PyModule_AddObject(m, "Mem", (PyObject *)&MemType) < 0) {
        Py_DECREF(&MemType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&SpscType);
    if (PyModule_AddObject(m, "Spsc", (PyObject *)&SpscType) < 0) {
        Py_DECREF(&SpscType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
