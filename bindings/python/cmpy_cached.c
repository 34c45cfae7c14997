/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/python/cmpy_cached.c: the callable that @cached returns
 * (cachemeter._core.CachedFunction) and its codec.
 *
 * Why C: a hit has to stay within a few times a functools.lru_cache hit
 * while it counts a metric and goes through a real cache. A Python wrapper
 * frame, marshal.dumps for the key and pickle.loads for the value each cost
 * about as much as the whole lru_cache hit; here they are a vectorcall, a
 * key written into a stack buffer and a value decoded in place.
 *
 * Keys: tag_args (qualname NUL 'a') followed by exactly what
 * marshal.dumps(args, 2) writes, for positional arguments of the core types
 * (None, bool, int within 64 bits, float, str, bytes, tuple, list, dict;
 * exact types, nested at most kMaxDepth deep). Any other call asks the
 * Python side (slow_key), which writes the same bytes through marshal when it
 * can: so a call's key never depends on which side built it, and keys made by
 * earlier versions (all through marshal) still match.
 *
 * Values (cmpy.h, CMPY_SER_*): by default the same marshal encoding for the
 * same types and nothing else (a result of another type is a TypeError at
 * store time): the decoder builds only those types, so a value another
 * process wrote cannot run code here. CMPY_SER_PICKLE adds pickle (via
 * dumps/loads) for the rest; pickle's output always starts with 0x80
 * (PROTO, protocols 2 and up) and marshal version 2 never writes that byte
 * first, so the first byte tells them apart. cachemeter/_cached.py allows it
 * only with seal/unseal (HMAC-SHA256 in a value header, checked before any
 * byte reaches pickle) or on a memory:// cache, which no one else writes.
 * A value read back that does not verify or decode is refused: counted,
 * never decoded further, and replaced by the function's result.
 *
 * Lookups and loads are Cache.get_or_load's (cmpy.h): on a memory:// cache
 * cmpy_lookup_hit keeps the GIL (cm_cache_get_hit never waits for a load);
 * a miss, and every lookup on another backend, goes through cmpy_load,
 * which releases it around cm_cache_get_or_load. */
#include "cmpy.h" /* Python.h first */

#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000 /* public from 3.11 */
#define PyFloat_Pack8 _PyFloat_Pack8
#define PyFloat_Unpack8 _PyFloat_Unpack8
#endif

enum { kMaxDepth = 32, kUnsupported = 1 };

/* ---- a byte buffer on the stack, growing onto the heap -------------------- */

typedef struct {
  char *p;
  size_t n, cap;
  PyObject *unsupported; /* borrowed: what the encoder did not take, if known */
  char small[240];
} cmpy_buf;

static void buf_init(cmpy_buf *b) {
  b->p = b->small;
  b->n = 0;
  b->cap = sizeof b->small;
  b->unsupported = NULL;
}

static void buf_free(cmpy_buf *b) {
  if (b->p != b->small) PyMem_Free(b->p);
  buf_init(b);
}

static int buf_grow(cmpy_buf *b, size_t more) {
  if (more > (size_t)PY_SSIZE_T_MAX - b->n) {
    PyErr_NoMemory();
    return -1;
  }
  size_t cap = b->cap;
  while (cap - b->n < more) cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? b->n + more : cap * 2;
  char *p = (char *)PyMem_Malloc(cap);
  if (p == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  memcpy(p, b->p, b->n);
  if (b->p != b->small) PyMem_Free(b->p);
  b->p = p;
  b->cap = cap;
  return 0;
}

static inline int buf_put(cmpy_buf *b, const void *src, size_t n) {
  if (b->cap - b->n < n && buf_grow(b, n) < 0) return -1;
  memcpy(b->p + b->n, src, n);
  b->n += n;
  return 0;
}

static inline int buf_byte(cmpy_buf *b, char c) { return buf_put(b, &c, 1); }

/* marshal's w_long: 4 bytes, little-endian two's complement. */
static inline int buf_i32(cmpy_buf *b, int32_t v) {
  uint32_t u = (uint32_t)v;
  unsigned char x[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                        (unsigned char)(u >> 24)};
  return buf_put(b, x, 4);
}

static inline int buf_tagged(cmpy_buf *b, char tag, int32_t v) {
  if (b->cap - b->n < 5 && buf_grow(b, 5) < 0) return -1;
  b->p[b->n++] = tag;
  return buf_i32(b, v);
}

/* ---- the encoder (marshal version 2 of the core types) ------------------- */

/* marshal's w_PyLong for a value past 32 bits: the count of 15-bit digits
 * (negative for a negative value), then the digits, least significant first,
 * 2 bytes each, the top one non-zero. */
static int enc_long(cmpy_buf *b, long long x) {
  unsigned long long mag = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
  unsigned char digits[2 * 5];
  int n = 0;
  while (mag != 0) {
    unsigned d = (unsigned)(mag & 0x7fff);
    digits[2 * n] = (unsigned char)d;
    digits[2 * n + 1] = (unsigned char)(d >> 8);
    mag >>= 15;
    n++;
  }
  if (buf_tagged(b, 'l', x < 0 ? -n : n) < 0) return -1;
  return buf_put(b, digits, (size_t)(2 * n));
}

static int enc_sized(cmpy_buf *b, char tag, const char *p, Py_ssize_t n) {
  if (n > INT32_MAX) return kUnsupported;
  if (buf_tagged(b, tag, (int32_t)n) < 0) return -1;
  return buf_put(b, p, (size_t)n);
}

/* Appends obj's encoding: 0, kUnsupported (nothing set: the caller falls
 * back; b may hold a partial encoding), or -1 with an exception set. */
static int unsupported(cmpy_buf *b, PyObject *o) {
  b->unsupported = o;
  return kUnsupported;
}

static int enc_obj(cmpy_buf *b, PyObject *o, int depth) {
  if (o == Py_None) return buf_byte(b, 'N');
  if (o == Py_True) return buf_byte(b, 'T');
  if (o == Py_False) return buf_byte(b, 'F');
  PyTypeObject *t = Py_TYPE(o);
  if (t == &PyLong_Type) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) return unsupported(b, o);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (x >= INT32_MIN && x <= INT32_MAX) return buf_tagged(b, 'i', (int32_t)x);
    return enc_long(b, x);
  }
  if (t == &PyUnicode_Type) {
    Py_ssize_t n = 0;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) { /* lone surrogates: marshal writes them ("surrogatepass") */
      if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
      PyErr_Clear();
      return unsupported(b, o);
    }
    return enc_sized(b, 'u', s, n);
  }
  if (t == &PyFloat_Type) {
    unsigned char x[9];
    x[0] = 'g';
    if (PyFloat_Pack8(PyFloat_AS_DOUBLE(o), (char *)x + 1, 1) < 0) return -1;
    return buf_put(b, x, sizeof x);
  }
  if (t == &PyBytes_Type) return enc_sized(b, 's', PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
  if (t == &PyTuple_Type || t == &PyList_Type) {
    if (depth >= kMaxDepth) return unsupported(b, o);
    int tuple = t == &PyTuple_Type;
    Py_ssize_t n = tuple ? PyTuple_GET_SIZE(o) : PyList_GET_SIZE(o);
    if (n > INT32_MAX) return unsupported(b, o);
    if (buf_tagged(b, tuple ? '(' : '[', (int32_t)n) < 0) return -1;
    /* No Python code runs while encoding, so the list cannot change under us. */
    for (Py_ssize_t i = 0; i < n; i++) {
      int r = enc_obj(b, tuple ? PyTuple_GET_ITEM(o, i) : PyList_GET_ITEM(o, i), depth + 1);
      if (r != 0) return r;
    }
    return 0;
  }
  if (t == &PyDict_Type) {
    if (depth >= kMaxDepth) return unsupported(b, o);
    if (buf_byte(b, '{') < 0) return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(o, &pos, &k, &v)) {
      int r = enc_obj(b, k, depth + 1);
      if (r == 0) r = enc_obj(b, v, depth + 1);
      if (r != 0) return r;
    }
    return buf_byte(b, '0');
  }
  return unsupported(b, o);
}

/* ---- the decoder ---------------------------------------------------------- */

typedef struct {
  const unsigned char *p, *end;
} cmpy_reader;

static PyObject *corrupt(const char *why) {
  char msg[160];
  snprintf(msg, sizeof msg, "@cached value: %s (not written by cachemeter's codec)", why);
  cmpy_raise_msg(CM_ECORRUPT, msg);
  return NULL;
}

static int rd_i32(cmpy_reader *r, int32_t *out) {
  if (r->end - r->p < 4) return -1;
  uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
  r->p += 4;
  *out = (int32_t)u;
  return 0;
}

/* A size of n bytes or items (each at least one byte) that fits what is left. */
static int rd_size(cmpy_reader *r, Py_ssize_t *n) {
  int32_t v;
  if (rd_i32(r, &v) < 0 || v < 0 || (Py_ssize_t)v > r->end - r->p) return -1;
  *n = v;
  return 0;
}

static PyObject *dec_long(cmpy_reader *r) {
  int32_t n;
  if (rd_i32(r, &n) < 0) return corrupt("truncated int");
  if (n < -5 || n > 5) return corrupt("bad int"); /* before -n: -INT32_MIN overflows */
  int neg = n < 0;
  int32_t count = neg ? -n : n;
  if (count < 1 || count > 5 || r->end - r->p < 2 * count) return corrupt("bad int");
  unsigned long long mag = 0;
  for (int32_t i = count - 1; i >= 0; i--) {
    unsigned d = (unsigned)r->p[2 * i] | (unsigned)r->p[2 * i + 1] << 8;
    if (d > 0x7fff || (i == count - 1 && d == 0) || mag >> 49 != 0) return corrupt("bad int");
    mag = mag << 15 | d;
  }
  r->p += 2 * count;
  /* The encoder writes int64 values only: a larger magnitude is not ours. */
  if (!neg) {
    if (mag > (unsigned long long)INT64_MAX) return corrupt("int out of range");
    return PyLong_FromLongLong((long long)mag);
  }
  if (mag <= (unsigned long long)INT64_MAX) return PyLong_FromLongLong(-(long long)mag);
  if (mag == (unsigned long long)INT64_MAX + 1) return PyLong_FromLongLong(INT64_MIN);
  return corrupt("int out of range");
}

static PyObject *dec_obj(cmpy_reader *r, int depth) {
  if (r->p >= r->end) return corrupt("truncated");
  char tag = (char)*r->p++;
  if ((tag == '(' || tag == '[' || tag == '{') && depth >= kMaxDepth) return corrupt("nested too deep");
  Py_ssize_t n;
  int32_t i32;
  switch (tag) {
    case 'N':
      Py_RETURN_NONE;
    case 'T':
      Py_RETURN_TRUE;
    case 'F':
      Py_RETURN_FALSE;
    case 'i':
      if (rd_i32(r, &i32) < 0) return corrupt("truncated int");
      return PyLong_FromLong(i32);
    case 'l':
      return dec_long(r);
    case 'g': {
      if (r->end - r->p < 8) return corrupt("truncated float");
      double d = PyFloat_Unpack8((const char *)r->p, 1);
      if (d == -1.0 && PyErr_Occurred()) return NULL;
      r->p += 8;
      return PyFloat_FromDouble(d);
    }
    case 'u':
    case 's': {
      if (rd_size(r, &n) < 0) return corrupt("bad length");
      const char *s = (const char *)r->p;
      r->p += n;
      if (tag == 's') return PyBytes_FromStringAndSize(s, n);
      /* Strict: the encoder refuses lone surrogates, so none is ours. */
      PyObject *u = PyUnicode_DecodeUTF8(s, n, NULL);
      if (u == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return corrupt("bad UTF-8");
      }
      return u;
    }
    case '(':
    case '[': {
      if (rd_size(r, &n) < 0) return corrupt("bad length");
      PyObject *seq = tag == '(' ? PyTuple_New(n) : PyList_New(n);
      if (seq == NULL) return NULL;
      for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = dec_obj(r, depth + 1);
        if (item == NULL) {
          Py_DECREF(seq);
          return NULL;
        }
        if (tag == '(') {
          PyTuple_SET_ITEM(seq, k, item);
        } else {
          PyList_SET_ITEM(seq, k, item);
        }
      }
      return seq;
    }
    case '{': {
      PyObject *d = PyDict_New();
      if (d == NULL) return NULL;
      for (;;) {
        if (r->p >= r->end) {
          Py_DECREF(d);
          return corrupt("truncated dict");
        }
        if (*r->p == '0') {
          r->p++;
          return d;
        }
        PyObject *k = dec_obj(r, depth + 1);
        PyObject *v = k != NULL ? dec_obj(r, depth + 1) : NULL;
        int rc = v != NULL ? PyDict_SetItem(d, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc < 0) {
          Py_DECREF(d);
          if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* an unhashable key */
            PyErr_Clear();
            return corrupt("bad dict key");
          }
          return NULL;
        }
      }
    }
    default:
      return corrupt("unknown type byte");
  }
}

static PyObject *codec_loads(const char *p, size_t n) {
  cmpy_reader r = {(const unsigned char *)p, (const unsigned char *)p + n};
  PyObject *o = dec_obj(&r, 0);
  if (o != NULL && r.p != r.end) {
    Py_DECREF(o);
    return corrupt("trailing bytes");
  }
  return o;
}

/* obj's codec bytes: a new bytes object with *r 0; NULL with *r
 * kUnsupported (nothing set; *bad, if not NULL, borrows the object refused,
 * or obj) or -1 (an exception set). */
static PyObject *codec_encode(PyObject *obj, int *r, PyObject **bad) {
  cmpy_buf b;
  buf_init(&b);
  *r = enc_obj(&b, obj, 0);
  if (bad != NULL) *bad = b.unsupported != NULL ? b.unsupported : obj;
  PyObject *out = *r == 0 ? PyBytes_FromStringAndSize(b.p, (Py_ssize_t)b.n) : NULL;
  buf_free(&b);
  return out;
}

PyObject *cmpy_codec_dumps(PyObject *obj) {
  int r;
  PyObject *out = codec_encode(obj, &r, NULL);
  if (r == kUnsupported) Py_RETURN_NONE;
  return out;
}

PyObject *cmpy_codec_loads(PyObject *data) {
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "codec_loads takes bytes, not %.100s", Py_TYPE(data)->tp_name);
    return NULL;
  }
  return codec_loads(PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
}

/* ---- CachedFunction ------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  PyObject *fn;
  PyObject *keep;
  PyObject *tag_args; /* bytes */
  PyObject *slow_key;
  /* The function's positional-or-keyword parameter names in order (a tuple
   * of str), or NULL: a call spelling them as keywords is keyed as the same
   * call spelled positionally (see positional_spelling). */
  PyObject *params;
  PyObject *dumps, *loads;   /* NULL in CMPY_SER_CODEC */
  PyObject *seal, *unseal;   /* NULL: values are not signed */
  PyObject *dict;
  PyObject *weakrefs;
  cm_cache *c;
  cm_series *hit, *miss, *error;
  cm_series *rejected_unverified, *rejected_undecodable;
  int64_t ttl_ms;
  int local, mode, has_key_fn;
} cmpy_cached;

static PyTypeObject CachedFunctionType;

/* One call's encode context: result is the function's result once the
 * loader ran in this call and its value was encoded (owned). */
typedef struct {
  cmpy_cached *f;
  PyObject *result;
} cmpy_call;

/* The function's name (the key prefix before its NUL), for messages. */
static PyObject *cached_name(cmpy_cached *f) {
  Py_ssize_t n = PyBytes_GET_SIZE(f->tag_args);
  return PyUnicode_DecodeUTF8(PyBytes_AS_STRING(f->tag_args), n >= 2 ? n - 2 : 0, "replace");
}

/* The TypeError for a result the default serializer does not take; bad is
 * the object inside it that the encoder refused (result itself, or an item). */
static PyObject *refuse_type(cmpy_cached *f, PyObject *result, PyObject *bad) {
  PyObject *name = cached_name(f);
  if (name == NULL) return NULL;
  char inner[160] = "";
  if (bad != result) snprintf(inner, sizeof inner, " (holding a %.100s)", Py_TYPE(bad)->tp_name);
  PyErr_Format(PyExc_TypeError,
               "@cached %U: cannot store a result of type %.100s%s: the default serializer takes only None, "
               "bool, int (64-bit), float, str, bytes and tuples, lists and dicts of them, nested at most 32 "
               "deep (a value read back from a cache must never run code); pass serializer=\"pickle\" with "
               "secret=... (values signed with HMAC-SHA256), serializer=\"pickle-unsafe\" (memory:// caches "
               "only), or a serializer= object with dumps/loads",
               name, Py_TYPE(result)->tp_name, inner);
  Py_DECREF(name);
  return NULL;
}

/* The value stored for result under key (encode of cmpy_load_spec, and the
 * store after a refused value): a new bytes (or, unsigned CMPY_SER_USER,
 * whatever the serializer returned), or NULL with an exception set. */
static PyObject *value_dumps(void *vcall, const void *key, size_t klen, PyObject *result) {
  cmpy_call *call = (cmpy_call *)vcall;
  cmpy_cached *f = call->f;
  PyObject *out = NULL;
  if (f->mode != CMPY_SER_USER) {
    int r;
    PyObject *bad;
    out = codec_encode(result, &r, &bad);
    if (r < 0) return NULL;
    if (r == kUnsupported) {
      if (f->mode == CMPY_SER_CODEC) return refuse_type(f, result, bad);
      out = PyObject_CallOneArg(f->dumps, result);
      if (out != NULL &&
          (!PyBytes_Check(out) || PyBytes_GET_SIZE(out) == 0 || (unsigned char)PyBytes_AS_STRING(out)[0] != 0x80)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "@cached: the pickle serializer did not write a pickle (protocol >= 2)");
        return NULL;
      }
    }
  } else {
    out = PyObject_CallOneArg(f->dumps, result);
  }
  if (out != NULL && f->seal != NULL) {
    if (PyUnicode_Check(out)) { /* a text serializer (json): sign its UTF-8 */
      Py_SETREF(out, PyUnicode_AsUTF8String(out));
      if (out == NULL) return NULL;
    }
    PyObject *k = PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)klen);
    PyObject *sealed = k != NULL ? PyObject_CallFunctionObjArgs(f->seal, k, out, NULL) : NULL;
    Py_XDECREF(k);
    Py_SETREF(out, sealed);
  }
  if (out != NULL) Py_XSETREF(call->result, Py_NewRef(result));
  return out;
}

enum { kAccepted = 0, kUnverified = 1, kUndecodable = 2 };

/* After a failed decode: kUndecodable with the exception cleared for what
 * a hostile or stale value can cause (any Exception but MemoryError), else
 * kAccepted with it left set (propagates). */
static int decode_failure(void) {
  if (PyErr_ExceptionMatches(PyExc_Exception) && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
    PyErr_Clear();
    return kUndecodable;
  }
  return kAccepted;
}

/* The result a payload decodes to (the codec, or loads: see the modes). */
static PyObject *payload_loads(cmpy_cached *f, const char *p, size_t n, int *refused) {
  if (f->mode == CMPY_SER_CODEC || (f->mode == CMPY_SER_PICKLE && (n == 0 || (unsigned char)p[0] != 0x80))) {
    PyObject *out = codec_loads(p, n);
    if (out == NULL) *refused = decode_failure();
    return out;
  }
  PyObject *bytes = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
  if (bytes == NULL) return NULL;
  PyObject *out = PyObject_CallOneArg(f->loads, bytes);
  Py_DECREF(bytes);
  /* a pickle that no longer loads (a class renamed since) is refused too; a
   * user serializer's exceptions pass through as they are */
  if (out == NULL && f->mode == CMPY_SER_PICKLE) *refused = decode_failure();
  return out;
}

/* The result the value read under key decodes to; NULL with *refused
 * kUnverified or kUndecodable (no exception set: the caller recomputes), or
 * NULL with an exception set. With unseal, nothing of the value is decoded
 * before its HMAC tag verified. */
static PyObject *value_loads(cmpy_cached *f, const char *key, size_t klen, const char *p, size_t n, int *refused) {
  *refused = kAccepted;
  if (f->unseal == NULL) return payload_loads(f, p, n, refused);
  PyObject *k = PyBytes_FromStringAndSize(key, (Py_ssize_t)klen);
  PyObject *v = k != NULL ? PyBytes_FromStringAndSize(p, (Py_ssize_t)n) : NULL;
  PyObject *payload = v != NULL ? PyObject_CallFunctionObjArgs(f->unseal, k, v, NULL) : NULL;
  Py_XDECREF(k);
  Py_XDECREF(v);
  if (payload == NULL) return NULL;
  if (payload == Py_None) {
    Py_DECREF(payload);
    *refused = kUnverified;
    return NULL;
  }
  if (!PyBytes_Check(payload)) {
    PyErr_Format(PyExc_TypeError, "@cached: unseal returned %.100s, not bytes", Py_TYPE(payload)->tp_name);
    Py_DECREF(payload);
    return NULL;
  }
  PyObject *out = payload_loads(f, PyBytes_AS_STRING(payload), (size_t)PyBytes_GET_SIZE(payload), refused);
  Py_DECREF(payload);
  return out;
}

/* After a refused value: runs the function here (counted as a miss, or an
 * error when it raises or its result cannot be stored) and overwrites the
 * value with its result; a failing store is counted by the cache and does
 * not fail the call, as in get_or_load. Returns the result or NULL with an
 * exception set. */
static PyObject *recompute(cmpy_cached *f, const char *key, size_t klen, PyObject *const *args, size_t nargs,
                           PyObject *kwnames) {
  PyObject *result = PyObject_Vectorcall(f->fn, args, nargs, kwnames);
  cmpy_call call = {f, NULL};
  PyObject *value = result != NULL ? value_dumps(&call, key, klen, result) : NULL;
  Py_XDECREF(call.result);
  cmpy_bytes b = CMPY_BYTES_INIT;
  if (value == NULL || cmpy_bytes_get(value, &b, "the serializer's value") < 0) {
    if (f->error != NULL) cm_counter_add(f->error, 1);
    Py_XDECREF(value);
    Py_XDECREF(result);
    return NULL;
  }
  if (f->miss != NULL) cm_counter_add(f->miss, 1);
  int status;
  if (f->local) {
    status = cm_cache_set(f->c, key, klen, b.p, (size_t)b.n, f->ttl_ms);
  } else {
    Py_BEGIN_ALLOW_THREADS
    status = cm_cache_set(f->c, key, klen, b.p, (size_t)b.n, f->ttl_ms);
    Py_END_ALLOW_THREADS
  }
  (void)status; /* counted in cache_errors_total / cache_rejections_total by the cache */
  cmpy_bytes_release(&b);
  Py_DECREF(value);
  return result;
}

/* slow_key(args_tuple, kwargs_dict_or_None) for a call the encoder does not take. */
static PyObject *slow_key(cmpy_cached *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
  PyObject *tuple = PyTuple_New(nargs);
  PyObject *kwargs = nkw > 0 ? PyDict_New() : Py_NewRef(Py_None);
  PyObject *key = NULL;
  if (tuple == NULL || kwargs == NULL) goto done;
  for (Py_ssize_t i = 0; i < nargs; i++) PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
  for (Py_ssize_t i = 0; i < nkw; i++)
    if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) goto done;
  key = PyObject_CallFunctionObjArgs(f->slow_key, tuple, kwargs, NULL);
  if (key != NULL && !PyBytes_Check(key)) {
    PyErr_Format(PyExc_TypeError, "@cached: the key function returned %.100s, not bytes", Py_TYPE(key)->tp_name);
    Py_CLEAR(key);
  }
done:
  Py_XDECREF(tuple);
  Py_XDECREF(kwargs);
  return key;
}

/* Keyword arguments naming positional-or-keyword parameters, with no
 * parameter left out before the last one given, spell the same call as
 * positional arguments (what inspect.signature(fn).bind() makes of them):
 * fills out[0 .. *n) and returns 1. 0: the call needs the slow key (a
 * keyword-only or unknown name, a gap, a parameter given twice). */
#define CMPY_MAX_PARAMS 32
static int positional_spelling(cmpy_cached *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                               PyObject **out, Py_ssize_t *n) {
  if (f->params == NULL) return 0;
  Py_ssize_t np = PyTuple_GET_SIZE(f->params), nkw = PyTuple_GET_SIZE(kwnames);
  if (np > CMPY_MAX_PARAMS || nargs + nkw > np) return 0;
  for (Py_ssize_t i = 0; i < np; i++) out[i] = i < nargs ? args[i] : NULL;
  for (Py_ssize_t j = 0; j < nkw; j++) {
    PyObject *name = PyTuple_GET_ITEM(kwnames, j);
    Py_ssize_t idx = -1;
    for (Py_ssize_t i = nargs; i < np && idx < 0; i++) /* interned: the pointer usually matches */
      if (PyTuple_GET_ITEM(f->params, i) == name) idx = i;
    for (Py_ssize_t i = nargs; i < np && idx < 0; i++)
      if (PyUnicode_Compare(PyTuple_GET_ITEM(f->params, i), name) == 0) idx = i;
    if (PyErr_Occurred()) PyErr_Clear();
    if (idx < 0 || out[idx] != NULL) return 0;
    out[idx] = args[nargs + j];
  }
  *n = nargs + nkw;
  for (Py_ssize_t i = nargs; i < *n; i++)
    if (out[i] == NULL) return 0; /* a gap: some are keywords for good */
  return 1;
}

/* The key of a call: written into kb by the encoder (*key_obj NULL), or
 * built by slow_key (*key_obj, owned). 0, or -1 with an exception set. */
static int make_key(cmpy_cached *f, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, cmpy_buf *kb,
                    PyObject **key_obj, const char **key, size_t *klen) {
  *key_obj = NULL;
  int r = kUnsupported;
  /* The arguments the key is made of: the positional ones, or a keyword
   * call's positional spelling. */
  PyObject *spelled[CMPY_MAX_PARAMS];
  PyObject *const *kargs = args;
  Py_ssize_t nk = nargs;
  int plain = kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0;
  if (!plain && !f->has_key_fn && positional_spelling(f, args, nargs, kwnames, spelled, &nk)) {
    kargs = spelled;
    plain = 1;
  }
  if (!f->has_key_fn && plain && nk <= INT32_MAX) {
    r = buf_put(kb, PyBytes_AS_STRING(f->tag_args), (size_t)PyBytes_GET_SIZE(f->tag_args));
    if (r == 0) r = buf_tagged(kb, '(', (int32_t)nk);
    for (Py_ssize_t i = 0; r == 0 && i < nk; i++) r = enc_obj(kb, kargs[i], 1);
    if (r < 0) return -1;
  }
  if (r == 0) {
    *key = kb->p;
    *klen = kb->n;
    return 0;
  }
  *key_obj = slow_key(f, args, nargs, kwnames);
  if (*key_obj == NULL) return -1;
  *key = PyBytes_AS_STRING(*key_obj);
  *klen = (size_t)PyBytes_GET_SIZE(*key_obj);
  return 0;
}

static PyObject *cached_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
  cmpy_cached *f = (cmpy_cached *)self;
  if (f->fn == NULL) {
    cmpy_raise_msg(CM_ESTATE, "@cached function called after the garbage collector cleared it");
    return NULL;
  }
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  cmpy_buf kb;
  buf_init(&kb);
  PyObject *key_obj = NULL, *result = NULL;
  const char *key;
  size_t klen;
  void *val = NULL;
  size_t vlen = 0;
  if (make_key(f, args, nargs, kwnames, &kb, &key_obj, &key, &klen) < 0) goto done;

  /* hit is counted here once the value decoded: a refused value is a miss */
  cmpy_call call = {f, NULL};
  int got = f->local ? cmpy_lookup_hit(f->c, key, klen, NULL, &val, &vlen) : 0;
  if (got == 0) {
    cmpy_load_spec spec = {f->fn, args, (size_t)nargs, kwnames, value_dumps, &call, NULL, f->miss, f->error};
    got = cmpy_load(f->c, key, klen, f->ttl_ms, &spec, &val, &vlen);
  }
  if (got > 0) {
    int refused;
    result = value_loads(f, key, klen, (const char *)val, vlen, &refused);
    cm_free(val);
    if (refused != kAccepted) {
      cm_series *count = refused == kUnverified ? f->rejected_unverified : f->rejected_undecodable;
      if (count != NULL) cm_counter_add(count, 1);
      /* the function's own fresh value (a pickle that cannot load): return
       * its result rather than run it twice; else run it now */
      result = call.result != NULL ? Py_NewRef(call.result) : recompute(f, key, klen, args, (size_t)nargs, kwnames);
    } else if (result != NULL && call.result == NULL && f->hit != NULL) {
      cm_counter_add(f->hit, 1);
    }
  } else if (got == 0) { /* the encoder turns every result into bytes: not reached */
    result = Py_NewRef(Py_None);
  }
  Py_XDECREF(call.result);
done:
  Py_XDECREF(key_obj);
  buf_free(&kb);
  return result;
}

PyObject *cmpy_cached_new(PyObject *fn, cm_cache *c, PyObject *keep, PyObject *tag_args, int64_t ttl_ms, int local,
                          cm_series *hit, cm_series *miss, cm_series *error, PyObject *slow_key_fn,
                          PyObject *dumps, PyObject *loads, int mode, int has_key_fn, PyObject *seal,
                          PyObject *unseal, cm_series *rejected_unverified, cm_series *rejected_undecodable,
                          PyObject *params) {
  if (c == NULL) {
    PyErr_SetString(PyExc_ValueError, "cached_function: the cache is NULL");
    return NULL;
  }
  if (mode != CMPY_SER_USER && mode != CMPY_SER_CODEC && mode != CMPY_SER_PICKLE) {
    PyErr_Format(PyExc_ValueError, "cached_function: unknown mode %d", mode);
    return NULL;
  }
  int codec_only = mode == CMPY_SER_CODEC;
  if (!PyCallable_Check(fn) || !PyCallable_Check(slow_key_fn) || (!codec_only && !PyCallable_Check(dumps)) ||
      (!codec_only && !PyCallable_Check(loads))) {
    PyErr_SetString(PyExc_TypeError, "cached_function: fn, slow_key, dumps and loads must be callable");
    return NULL;
  }
  if ((seal == Py_None) != (unseal == Py_None) || (seal != Py_None && (!PyCallable_Check(seal) ||
                                                                      !PyCallable_Check(unseal)))) {
    PyErr_SetString(PyExc_TypeError, "cached_function: seal and unseal must both be callable, or both None");
    return NULL;
  }
  if (!PyBytes_Check(tag_args)) {
    PyErr_SetString(PyExc_TypeError, "cached_function: tag_args must be bytes");
    return NULL;
  }
  if (params != Py_None) {
    int ok = PyTuple_Check(params);
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(params); i++) ok = PyUnicode_CheckExact(PyTuple_GET_ITEM(params, i));
    if (!ok) {
      PyErr_SetString(PyExc_TypeError, "cached_function: params must be a tuple of str, or None");
      return NULL;
    }
  }
  cmpy_cached *f = PyObject_GC_New(cmpy_cached, &CachedFunctionType);
  if (f == NULL) return NULL;
  f->vectorcall = cached_call;
  f->fn = Py_NewRef(fn);
  f->keep = Py_NewRef(keep);
  f->tag_args = Py_NewRef(tag_args);
  f->slow_key = Py_NewRef(slow_key_fn);
  f->params = params != Py_None ? Py_NewRef(params) : NULL;
  f->dumps = codec_only ? NULL : Py_NewRef(dumps);
  f->loads = codec_only ? NULL : Py_NewRef(loads);
  f->seal = seal != Py_None ? Py_NewRef(seal) : NULL;
  f->unseal = unseal != Py_None ? Py_NewRef(unseal) : NULL;
  f->dict = NULL;
  f->weakrefs = NULL;
  f->c = c;
  f->hit = hit;
  f->miss = miss;
  f->error = error;
  f->rejected_unverified = rejected_unverified;
  f->rejected_undecodable = rejected_undecodable;
  f->ttl_ms = ttl_ms;
  f->local = local != 0;
  f->mode = mode;
  f->has_key_fn = has_key_fn != 0;
  PyObject_GC_Track(f);
  return (PyObject *)f;
}

static int cached_traverse(PyObject *self, visitproc visit, void *arg) {
  cmpy_cached *f = (cmpy_cached *)self;
  Py_VISIT(f->fn);
  Py_VISIT(f->keep);
  Py_VISIT(f->slow_key);
  Py_VISIT(f->dumps);
  Py_VISIT(f->loads);
  Py_VISIT(f->seal);
  Py_VISIT(f->unseal);
  Py_VISIT(f->dict);
  return 0;
}

/* Drops every reference but the cache's (keep): a call after a GC clear
 * raises instead of crashing. */
static int cached_clear(PyObject *self) {
  cmpy_cached *f = (cmpy_cached *)self;
  Py_CLEAR(f->fn);
  Py_CLEAR(f->slow_key);
  Py_CLEAR(f->dumps);
  Py_CLEAR(f->loads);
  Py_CLEAR(f->seal);
  Py_CLEAR(f->unseal);
  Py_CLEAR(f->dict);
  return 0;
}

static void cached_dealloc(PyObject *self) {
  cmpy_cached *f = (cmpy_cached *)self;
  PyObject_GC_UnTrack(self);
  if (f->weakrefs != NULL) PyObject_ClearWeakRefs(self);
  cached_clear(self);
  Py_CLEAR(f->tag_args);
  Py_CLEAR(f->params);
  Py_CLEAR(f->keep); /* last: may close the cache */
  PyObject_GC_Del(self);
}

/* Binds like a function: obj.method(...) passes obj as the first argument. */
static PyObject *cached_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
  (void)type;
  if (obj == NULL || obj == Py_None) return Py_NewRef(self);
  return PyMethod_New(self, obj);
}

static PyObject *cached_repr(PyObject *self) {
  cmpy_cached *f = (cmpy_cached *)self;
  return PyUnicode_FromFormat("<cachemeter cached function %R>", f->fn != NULL ? f->fn : Py_None);
}

/* Pickled by reference, as functions are: the qualified name. */
static PyObject *cached_reduce(PyObject *self, PyObject *unused) {
  (void)unused;
  return PyObject_GetAttrString(self, "__qualname__");
}

/* For async @cached (cachemeter/_cached.py), which runs the lookups and the
 * load itself: the same key and value codec as a call of this object. */
static PyObject *cached_key(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames) {
  cmpy_cached *f = (cmpy_cached *)self;
  if (f->slow_key == NULL) {
    cmpy_raise_msg(CM_ESTATE, "@cached function used after the garbage collector cleared it");
    return NULL;
  }
  cmpy_buf kb;
  buf_init(&kb);
  PyObject *key_obj = NULL, *out = NULL;
  const char *key;
  size_t klen;
  if (make_key(f, args, PyVectorcall_NARGS((size_t)nargsf), kwnames, &kb, &key_obj, &key, &klen) == 0)
    out = key_obj != NULL ? Py_NewRef(key_obj) : PyBytes_FromStringAndSize(key, (Py_ssize_t)klen);
  Py_XDECREF(key_obj);
  buf_free(&kb);
  return out;
}

/* _encode(key, result) -> the value stored (bytes), as a call stores it. */
static PyObject *cached_encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyBytes_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "_encode(key: bytes, result)");
    return NULL;
  }
  cmpy_call call = {(cmpy_cached *)self, NULL};
  PyObject *out = value_dumps(&call, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]), args[1]);
  Py_XDECREF(call.result);
  return out;
}

/* _decode(key, value) -> (result, 0), or (None, 1) unverified / (None, 2)
 * undecodable: refused, not counted here. */
static PyObject *cached_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
    PyErr_SetString(PyExc_TypeError, "_decode(key: bytes, value: bytes)");
    return NULL;
  }
  int refused;
  PyObject *out = value_loads((cmpy_cached *)self, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]),
                              PyBytes_AS_STRING(args[1]), (size_t)PyBytes_GET_SIZE(args[1]), &refused);
  if (out == NULL && refused == kAccepted) return NULL;
  PyObject *t = Py_BuildValue("(Oi)", out != NULL ? out : Py_None, refused);
  Py_XDECREF(out);
  return t;
}

static PyMethodDef cached_methods[] = {
    {"__reduce__", cached_reduce, METH_NOARGS, NULL},
    {"_key", (PyCFunction)(void (*)(void))cached_key, METH_FASTCALL | METH_KEYWORDS,
     "_key(*args, **kwargs) -> bytes: the cache key of that call"},
    {"_encode", (PyCFunction)(void (*)(void))cached_encode, METH_FASTCALL,
     "_encode(key, result) -> bytes: the value a call stores for result"},
    {"_decode", (PyCFunction)(void (*)(void))cached_decode, METH_FASTCALL,
     "_decode(key, value) -> (result, refused): 0 accepted, 1 unverified, 2 undecodable"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cached_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CachedFunctionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cachemeter._core.CachedFunction",
    .tp_basicsize = sizeof(cmpy_cached),
    .tp_dealloc = cached_dealloc,
    .tp_vectorcall_offset = offsetof(cmpy_cached, vectorcall),
    .tp_repr = cached_repr,
    .tp_call = PyVectorcall_Call,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "A function memoized by @cachemeter.cached (see cachemeter.cached).",
    .tp_traverse = cached_traverse,
    .tp_clear = cached_clear,
    .tp_weaklistoffset = offsetof(cmpy_cached, weakrefs),
    .tp_methods = cached_methods,
    .tp_getset = cached_getset,
    .tp_descr_get = cached_descr_get,
    .tp_dictoffset = offsetof(cmpy_cached, dict),
};

int cmpy_init_module(PyObject *module) {
  if (cmpy_update_init(module) < 0) return -1;
  if (PyType_Ready(&CachedFunctionType) < 0) return -1;
  Py_INCREF(&CachedFunctionType);
  if (PyModule_AddObject(module, "CachedFunction", (PyObject *)&CachedFunctionType) < 0) {
    Py_DECREF(&CachedFunctionType);
    return -1;
  }
  return 0;
}
