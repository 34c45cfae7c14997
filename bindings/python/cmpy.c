/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/python/cmpy.c: the CPython half of the SWIG binding (see cmpy.h):
 * status -> exception, byte and string views for the typemaps, the loader
 * trampoline of get_or_load, and the hot-path series updates. */
#include "cmpy.h"

#include <math.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------ */

/* Set once by cachemeter._errors at import; read under the GIL. */
static PyObject *g_error_base;
static PyObject *g_error_factory;

PyObject *cmpy_register_errors(PyObject *base, PyObject *factory) {
  if (!PyType_Check(base) || !PyCallable_Check(factory)) {
    PyErr_SetString(PyExc_TypeError, "register_errors(base: type, factory: callable)");
    return NULL;
  }
  PyObject *old_base = g_error_base, *old_factory = g_error_factory;
  Py_INCREF(base);
  Py_INCREF(factory);
  g_error_base = base;
  g_error_factory = factory;
  Py_XDECREF(old_base);
  Py_XDECREF(old_factory);
  Py_RETURN_NONE;
}

void cmpy_raise(int status) { cmpy_raise_msg(status, cm_errmsg()); }

void cmpy_raise_msg(int status, const char *msg) {
  if (msg == NULL || *msg == '\0') msg = cm_strerror(status);
  /* "replace": a message may quote the caller's bytes (an invalid label value) */
  PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
  if (text == NULL) return;
  if (g_error_factory == NULL) {
    PyErr_Format(PyExc_RuntimeError, "%s: %U", cm_status_name(status), text);
    Py_DECREF(text);
    return;
  }
  PyObject *exc = PyObject_CallFunction(g_error_factory, "iO", status, text);
  Py_DECREF(text);
  if (exc == NULL) return; /* the factory's own exception stands */
  PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
  Py_DECREF(exc);
}

/* ---- byte views -------------------------------------------------------- */

int cmpy_bytes_get(PyObject *o, cmpy_bytes *b, const char *what) {
  b->has_view = 0;
  if (PyBytes_Check(o)) {
    b->p = PyBytes_AS_STRING(o);
    b->n = PyBytes_GET_SIZE(o);
    return 0;
  }
  if (PyUnicode_Check(o)) {
    /* UTF-8 cached in the str object: valid as long as o lives */
    b->p = PyUnicode_AsUTF8AndSize(o, &b->n);
    return b->p != NULL ? 0 : -1;
  }
  if (PyObject_CheckBuffer(o)) {
    if (PyObject_GetBuffer(o, &b->view, PyBUF_SIMPLE) < 0) return -1;
    b->has_view = 1;
    b->p = (const char *)b->view.buf;
    b->n = b->view.len;
    return 0;
  }
  PyErr_Format(PyExc_TypeError, "%s must be bytes or str, not %.100s", what, Py_TYPE(o)->tp_name);
  return -1;
}

void cmpy_bytes_release(cmpy_bytes *b) {
  if (b->has_view) {
    PyBuffer_Release(&b->view);
    b->has_view = 0;
  }
}

/* ---- string vectors ---------------------------------------------------- */

int cmpy_strv_get(PyObject *o, cmpy_strv *sv, const char *what) {
  sv->v = NULL;
  sv->n = 0;
  sv->seq = NULL;
  if (o == Py_None) return 0;
  if (PyUnicode_Check(o) || PyBytes_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s must be a sequence of str, not a single string", what);
    return -1;
  }
  PyObject *seq = PySequence_Fast(o, "expected a sequence of str");
  if (seq == NULL) return -1;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  const char **v = sv->small;
  if ((size_t)n > sizeof sv->small / sizeof sv->small[0]) {
    v = (const char **)PyMem_Malloc((size_t)n * sizeof *v);
    if (v == NULL) {
      Py_DECREF(seq);
      PyErr_NoMemory();
      return -1;
    }
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
    if (!PyUnicode_Check(item)) {
      PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(item)->tp_name);
      goto fail;
    }
    Py_ssize_t len = 0;
    const char *s = PyUnicode_AsUTF8AndSize(item, &len);
    if (s == NULL) goto fail;
    if (strlen(s) != (size_t)len) {
      PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters", what);
      goto fail;
    }
    v[i] = s;
  }
  sv->v = v;
  sv->n = (size_t)n;
  sv->seq = seq; /* keeps the strings, hence their UTF-8, alive */
  return 0;
fail:
  if (v != sv->small) PyMem_Free((void *)v);
  Py_DECREF(seq);
  return -1;
}

void cmpy_strv_release(cmpy_strv *sv) {
  if (sv->v != NULL && sv->v != sv->small) PyMem_Free((void *)sv->v);
  sv->v = NULL;
  sv->n = 0;
  Py_CLEAR(sv->seq);
}

/* ---- double vectors ---------------------------------------------------- */

int cmpy_doubles_get(PyObject *o, cmpy_doubles *d) {
  d->v = NULL;
  d->n = 0;
  if (o == Py_None) return 0;
  PyObject *seq = PySequence_Fast(o, "buckets must be a sequence of numbers");
  if (seq == NULL) return -1;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  if (n > 0) {
    d->v = (double *)PyMem_Malloc((size_t)n * sizeof *d->v);
    if (d->v == NULL) {
      Py_DECREF(seq);
      PyErr_NoMemory();
      return -1;
    }
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    double x = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
    if (x == -1.0 && PyErr_Occurred()) {
      PyMem_Free(d->v);
      d->v = NULL;
      Py_DECREF(seq);
      return -1;
    }
    d->v[i] = x;
  }
  d->n = (size_t)n;
  Py_DECREF(seq);
  return 0;
}

void cmpy_doubles_release(cmpy_doubles *d) {
  PyMem_Free(d->v);
  d->v = NULL;
  d->n = 0;
}

/* ---- series updates ---------------------------------------------------- */

PyObject *cmpy_counter_inc(cm_series *s, double v) {
  cm_counter_add(s, v);
  if (!(v >= 0)) { /* negative or NaN: the C call ignored and counted it */
    cmpy_raise(CM_EINVAL);
    return NULL;
  }
  Py_RETURN_NONE;
}

PyObject *cmpy_gauge_add(cm_series *s, double v) {
  cm_gauge_add(s, v);
  Py_RETURN_NONE;
}

PyObject *cmpy_gauge_dec(cm_series *s, double v) {
  cm_gauge_add(s, -v);
  Py_RETURN_NONE;
}

PyObject *cmpy_gauge_set(cm_series *s, double v) {
  cm_gauge_set(s, v);
  Py_RETURN_NONE;
}

PyObject *cmpy_histogram_observe(cm_series *s, double v) {
  cm_histogram_observe(s, v);
  if (isnan(v)) {
    cmpy_raise(CM_EINVAL);
    return NULL;
  }
  Py_RETURN_NONE;
}

/* ---- cache calls that keep the GIL -------------------------------------- */

int cmpy_cache_get_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen) {
  return cm_cache_get(c, key, klen, val, vlen);
}

int cmpy_cache_get_hit_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen) {
  return cm_cache_get_hit(c, key, klen, val, vlen);
}

int cmpy_cache_set_gil(cm_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                       int64_t ttl_ms) {
  return cm_cache_set(c, key, klen, val, vlen, ttl_ms);
}

int cmpy_cache_delete_gil(cm_cache *c, const void *key, size_t klen) {
  return cm_cache_delete(c, key, klen);
}

/* ---- get_or_load ------------------------------------------------------- */

typedef struct {
  const cmpy_load_spec *spec;
  PyObject *exc_type, *exc_value, *exc_tb; /* the loader's exception, owned */
  int called;
} cmpy_load_ctx;

/* The status a loader's exception hands to the callers waiting for its load:
 * a cachemeter.Error's own negative status, else CM_EBACKEND. */
static int loader_failure_status(PyObject *exc) {
  int status = CM_EBACKEND;
  if (g_error_base != NULL && exc != NULL && PyObject_IsInstance(exc, g_error_base) == 1) {
    PyObject *st = PyObject_GetAttrString(exc, "status");
    if (st != NULL) {
      long v = PyLong_AsLong(st);
      if (v < 0 && v >= INT32_MIN && strcmp(cm_status_name((int)v), "CM_UNKNOWN") != 0) status = (int)v;
      Py_DECREF(st);
    }
  }
  PyErr_Clear(); /* a failing isinstance/getattr leaves the default status */
  return status;
}

static int cmpy_trampoline(void *vctx, const void *key, size_t klen, void **val, size_t *vlen) {
  cmpy_load_ctx *ctx = (cmpy_load_ctx *)vctx;
  const cmpy_load_spec *spec = ctx->spec;
  /* the loader gets the caller's own arguments; key is for encode */
  *val = NULL;
  *vlen = 0;
  PyGILState_STATE gil = PyGILState_Ensure();
  int status = CM_OK;
  ctx->called = 1;
  PyObject *r = PyObject_Vectorcall(spec->loader, spec->vargs, spec->nargs, spec->kwnames);
  if (r != NULL && spec->encode != NULL) { /* @cached: the result's bytes, None included */
    PyObject *encoded = spec->encode(spec->encode_ctx, key, klen, r);
    Py_DECREF(r);
    r = encoded;
  }
  if (r == NULL) goto failed;
  if (r == Py_None) {
    status = CM_MISS;
  } else {
    cmpy_bytes b = CMPY_BYTES_INIT;
    if (cmpy_bytes_get(r, &b, "the loader's return value") < 0) goto failed;
    void *p = cm_alloc((size_t)b.n);
    if (p == NULL) {
      cmpy_bytes_release(&b);
      PyErr_NoMemory();
      goto failed;
    }
    if (b.n > 0) memcpy(p, b.p, (size_t)b.n);
    cmpy_bytes_release(&b);
    *val = p;
    *vlen = (size_t)b.n;
  }
  Py_DECREF(r);
  if (spec->miss != NULL) cm_counter_add(spec->miss, 1);
  PyGILState_Release(gil);
  return status;

failed:
  Py_XDECREF(r);
  if (spec->error != NULL) cm_counter_add(spec->error, 1);
  {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL && v != NULL) PyException_SetTraceback(v, tb);
    status = loader_failure_status(v);
    /* a loader runs at most once per call; keep the latest to be safe */
    Py_XDECREF(ctx->exc_type);
    Py_XDECREF(ctx->exc_value);
    Py_XDECREF(ctx->exc_tb);
    ctx->exc_type = t;
    ctx->exc_value = v;
    ctx->exc_tb = tb;
  }
  PyGILState_Release(gil);
  return status;
}

int cmpy_load(cm_cache *c, const void *key, size_t klen, int64_t ttl_ms, const cmpy_load_spec *spec, void **val,
              size_t *vlen) {
  cmpy_load_ctx ctx = {spec, NULL, NULL, NULL, 0};
  int status;
  *val = NULL;
  *vlen = 0;
  /* What the call uses (key, loader, arguments) is referenced by the
   * caller's frame, so it outlives the call with the GIL released. */
  Py_BEGIN_ALLOW_THREADS
  status = cm_cache_get_or_load(c, key, klen, cmpy_trampoline, &ctx, ttl_ms, val, vlen);
  Py_END_ALLOW_THREADS

  if (ctx.exc_type != NULL || ctx.exc_value != NULL) {
    if (status != CM_OK) { /* re-raise the loader's own exception here */
      cm_free(*val);
      *val = NULL;
      *vlen = 0;
      PyErr_Restore(ctx.exc_type, ctx.exc_value, ctx.exc_tb);
      return -1;
    }
    /* a stale value was served after the failed refresh: as in C, no error */
    Py_XDECREF(ctx.exc_type);
    Py_XDECREF(ctx.exc_value);
    Py_XDECREF(ctx.exc_tb);
  }
  if (status < 0) {
    cmpy_raise(status);
    return -1;
  }
  if (status != CM_OK) return 0; /* CM_MISS: the loader found nothing */
  if (!ctx.called && spec->hit != NULL) cm_counter_add(spec->hit, 1);
  return 1;
}

PyObject *cmpy_get_or_load(cm_cache *c, PyObject *key, PyObject *loader, int64_t ttl_ms, int local) {
  if (!PyCallable_Check(loader)) {
    PyErr_Format(PyExc_TypeError, "the loader must be callable, not %.100s", Py_TYPE(loader)->tp_name);
    return NULL;
  }
  cmpy_bytes kb = CMPY_BYTES_INIT;
  if (cmpy_bytes_get(key, &kb, "key") < 0) return NULL;
  cmpy_load_spec spec = {loader, &key, 1, NULL, NULL, NULL, NULL, NULL, NULL};
  void *val = NULL;
  size_t vlen = 0;
  int got = local ? cmpy_lookup_hit(c, kb.p, (size_t)kb.n, NULL, &val, &vlen) : 0;
  if (got == 0) got = cmpy_load(c, kb.p, (size_t)kb.n, ttl_ms, &spec, &val, &vlen);
  cmpy_bytes_release(&kb);
  if (got < 0) return NULL;
  if (got == 0) Py_RETURN_NONE;
  PyObject *r = PyBytes_FromStringAndSize((const char *)val, (Py_ssize_t)vlen);
  cm_free(val);
  return r;
}

/* ---- destructors ------------------------------------------------------- */

/* {int(address of a cache or server): the registry object it holds}; only
 * touched with the GIL held. */
static PyObject *g_holds;

PyObject *cmpy_hold(void *handle, PyObject *owner) {
  if (handle == NULL) {
    PyErr_SetString(PyExc_ValueError, "hold: NULL handle");
    return NULL;
  }
  if (g_holds == NULL && (g_holds = PyDict_New()) == NULL) return NULL;
  PyObject *key = PyLong_FromVoidPtr(handle);
  if (key == NULL) return NULL;
  int rc;
  if (owner == Py_None) {
    rc = PyDict_DelItem(g_holds, key);
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
      PyErr_Clear();
      rc = 0;
    }
  } else {
    rc = PyDict_SetItem(g_holds, key, owner);
  }
  Py_DECREF(key);
  if (rc < 0) return NULL;
  Py_RETURN_NONE;
}

/* Removes and returns (owned) what handle holds, or NULL. Called before the
 * handle is freed, so a new handle at the same address cannot be confused
 * with it. Never leaves an exception set. */
static PyObject *take_hold(void *handle) {
  if (g_holds == NULL) return NULL;
  PyObject *key = PyLong_FromVoidPtr(handle);
  PyObject *owner = NULL;
  if (key != NULL) {
    owner = PyDict_GetItemWithError(g_holds, key);
    if (owner != NULL) {
      Py_INCREF(owner);
      if (PyDict_DelItem(g_holds, key) < 0) PyErr_Clear();
    }
    Py_DECREF(key);
  }
  PyErr_Clear();
  return owner;
}

/* Releasing the GIL while the interpreter finalizes could end this thread
 * (a non-main thread that re-takes it then exits); there, keep it. */
static int cmpy_finalizing(void) {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

/* Runs the statement CALL with the GIL released, except while finalizing. */
#define CMPY_RELEASED(CALL)    \
  do {                         \
    if (cmpy_finalizing()) {   \
      CALL;                    \
    } else {                   \
      Py_BEGIN_ALLOW_THREADS   \
      CALL;                    \
      Py_END_ALLOW_THREADS     \
    }                          \
  } while (0)

void cmpy_registry_free(cm_registry *reg) { CMPY_RELEASED(cm_registry_free(reg)); }

void cmpy_cache_close(cm_cache *c) {
  PyObject *registry = take_hold(c);
  CMPY_RELEASED(cm_cache_close(c));
  Py_XDECREF(registry); /* the registry may go now: the cache is closed */
}

void cmpy_server_stop(cm_server *s) {
  PyObject *registry = take_hold(s);
  CMPY_RELEASED(cm_server_stop(s));
  Py_XDECREF(registry);
}

void cmpy_exporter_stop(cm_exporter *e) {
  PyObject *held = take_hold(e); /* the registry, and the callable of a callback exporter */
  CMPY_RELEASED(cm_exporter_stop(e));
  Py_XDECREF(held);
}

/* One cm_sample as the tuple cmpy_exporter_start_callback documents. */
static PyObject *sample_tuple(const cm_sample *s) {
  static const char *const types[] = {"counter", "gauge", "histogram"};
  PyObject *labels = PyDict_New();
  if (labels == NULL) return NULL;
  for (size_t i = 0; i < s->nlabels; i++) {
    PyObject *v = PyUnicode_DecodeUTF8(s->label_values[i], (Py_ssize_t)strlen(s->label_values[i]), "replace");
    if (v == NULL || PyDict_SetItemString(labels, s->label_names[i], v) < 0) {
      Py_XDECREF(v);
      Py_DECREF(labels);
      return NULL;
    }
    Py_DECREF(v);
  }
  PyObject *buckets = Py_None;
  Py_INCREF(buckets);
  if (s->type == CM_SAMPLE_HISTOGRAM) {
    Py_DECREF(buckets);
    buckets = PyTuple_New((Py_ssize_t)s->nbounds + 1);
    if (buckets == NULL) {
      Py_DECREF(labels);
      return NULL;
    }
    for (size_t i = 0; i <= s->nbounds; i++) {
      PyObject *pair = Py_BuildValue("(dK)", i < s->nbounds ? s->bounds[i] : (double)INFINITY,
                                     (unsigned long long)s->bucket_counts[i]);
      if (pair == NULL) {
        Py_DECREF(buckets);
        Py_DECREF(labels);
        return NULL;
      }
      PyTuple_SET_ITEM(buckets, (Py_ssize_t)i, pair);
    }
  }
  unsigned type = (unsigned)s->type < 3 ? (unsigned)s->type : 0;
  return Py_BuildValue("(ssNdKNO)", s->name, types[type], labels, s->value, (unsigned long long)s->count, buckets,
                       s->removed ? Py_True : Py_False);
}

/* The C callback of a Python callback exporter: runs on the registry's flush
 * thread (or a thread stopping or flushing it), takes the GIL. While the
 * interpreter finalizes, nothing is called: the samples stay pending. */
static int export_trampoline(void *ctx, const cm_sample *samples, size_t n) {
  if (cmpy_finalizing()) return 1;
  PyGILState_STATE st = PyGILState_Ensure();
  int rc = 1;
  PyObject *list = PyList_New((Py_ssize_t)n);
  if (list != NULL) {
    size_t i = 0;
    for (; i < n; i++) {
      PyObject *t = sample_tuple(&samples[i]);
      if (t == NULL) break;
      PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    if (i == n) {
      PyObject *r = PyObject_CallOneArg((PyObject *)ctx, list);
      if (r != NULL) {
        rc = 0;
        Py_DECREF(r);
      }
    }
    Py_DECREF(list);
  }
  if (rc != 0 && PyErr_Occurred()) PyErr_WriteUnraisable((PyObject *)ctx);
  PyGILState_Release(st);
  return rc;
}

int cmpy_exporter_start_callback(cm_exporter **out, cm_registry *reg, PyObject *fn, const char *options) {
  /* fn is checked callable by the caller (cachemeter/_export.py); were it
   * not, each flush would report a TypeError and keep its samples pending. */
  int rc;
  CMPY_RELEASED(rc = cm_exporter_start_callback(out, reg, export_trampoline, fn, options));
  return rc;
}
