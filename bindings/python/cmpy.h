/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/python/cmpy.h: the CPython half of the SWIG binding. The typemaps
 * in typemaps_python.i call these helpers; the functions cachemeter.i wraps
 * (cmpy_counter_inc, cmpy_get_or_load, ...) are the Python-specific entry
 * points. Compiled on its own (cmpy.c) with the project's strict warnings;
 * the SWIG-generated wrapper only calls into it. */
#ifndef CACHEMETER_CMPY_H
#define CACHEMETER_CMPY_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <cachemeter/cachemeter.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

/* Installs the Python side of the error mapping (cachemeter._errors calls it
 * at import): base is cachemeter.Error, factory(status, message) returns the
 * exception instance for a status. Returns None. */
PyObject *cmpy_register_errors(PyObject *base, PyObject *factory);

/* Sets the Python exception for a negative status: the registered factory's
 * instance carrying cm_errmsg() of the calling thread (cm_strerror(status)
 * when that is empty). Before registration: RuntimeError. Call with the GIL. */
void cmpy_raise(int status);

/* The same with message msg (NULL or empty: cm_strerror(status)). */
void cmpy_raise_msg(int status, const char *msg);

/* ---- byte views (keys, values) ---------------------------------------- */

/* A read-only view of a bytes, str (its UTF-8) or buffer-protocol object.
 * Valid while the object lives; release with cmpy_bytes_release. */
typedef struct {
  const char *p;
  Py_ssize_t n;
  Py_buffer view; /* used for buffer-protocol objects only */
  int has_view;
} cmpy_bytes;
#define CMPY_BYTES_INIT {NULL, 0, {0}, 0}

/* Fills b from o; what ("key", "value") names the argument in the TypeError.
 * Returns 0, or -1 with a Python exception set. */
int cmpy_bytes_get(PyObject *o, cmpy_bytes *b, const char *what);
void cmpy_bytes_release(cmpy_bytes *b);

/* ---- string vectors (label names and values) --------------------------- */

typedef struct {
  const char **v;
  size_t n;
  PyObject *seq; /* the PySequence_Fast that keeps the strings alive */
  const char *small[8];
} cmpy_strv;
#define CMPY_STRV_INIT {NULL, 0, NULL, {NULL}}

/* Fills sv from None (empty) or a sequence of str. Returns 0, or -1 with a
 * Python exception set (TypeError; ValueError for an embedded NUL). */
int cmpy_strv_get(PyObject *o, cmpy_strv *sv, const char *what);
void cmpy_strv_release(cmpy_strv *sv);

/* ---- double vectors (histogram bounds) --------------------------------- */

typedef struct {
  double *v;
  size_t n;
} cmpy_doubles;
#define CMPY_DOUBLES_INIT {NULL, 0}

/* None or an empty sequence: v NULL, n 0. Returns 0 or -1 (exception set). */
int cmpy_doubles_get(PyObject *o, cmpy_doubles *d);
void cmpy_doubles_release(cmpy_doubles *d);

/* ---- series updates that raise on rejected input ----------------------- */
/* They call the C update (so a rejected value is still counted in
 * invalid_observations_total), then raise InvalidArgument for what the C
 * function ignored: a negative or NaN counter increment, a NaN observation.
 * Each returns None, or NULL with the exception set. They keep the GIL: a
 * lock-free update costs less than releasing it (bindings/README.md). */
PyObject *cmpy_counter_inc(cm_series *s, double v);
PyObject *cmpy_gauge_add(cm_series *s, double v);
PyObject *cmpy_gauge_dec(cm_series *s, double v);
PyObject *cmpy_gauge_set(cm_series *s, double v);
PyObject *cmpy_histogram_observe(cm_series *s, double v);

/* The operations of cmpy_series_update. */
enum cmpy_update_op {
  CMPY_COUNTER_INC = 0,
  CMPY_GAUGE_INC = 1,
  CMPY_GAUGE_DEC = 2,
  CMPY_GAUGE_SET = 3,
  CMPY_HISTOGRAM_OBSERVE = 4
};
/* A callable doing operation op on s when called with the value (one
 * positional or keyword `v`; inc and dec default to 1): what a Python
 * series stores as its inc/dec/set/observe. keep (the SWIG handle of s) is
 * held as long as the callable lives. New reference, or NULL with an
 * exception set (InvalidArgument for a NULL series or an unknown op). */
PyObject *cmpy_series_update(cm_series *s, int op, PyObject *keep);
int cmpy_update_init(PyObject *module);

/* ---- cache calls that keep the GIL (memory:// caches) ------------------ */
/* Plain forwarders to cm_cache_get/set/delete, wrapped without releasing the
 * GIL: a memory:// operation never blocks on anything that needs Python, and
 * takes less time than a GIL hand-off. */
int cmpy_cache_get_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);
/* cm_cache_get_hit keeping the GIL (memory:// only: async @cached's inline lookup). */
int cmpy_cache_get_hit_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);
int cmpy_cache_set_gil(cm_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                       int64_t ttl_ms);
int cmpy_cache_delete_gil(cm_cache *c, const void *key, size_t klen);

/* ---- get_or_load with a Python loader ---------------------------------- */

/* cm_cache_get_or_load with loader(key) as the loader. The GIL is released
 * around the C call; the loader runs with it re-acquired (PyGILState_Ensure),
 * and must return bytes, str (stored as UTF-8), a buffer, or None (a miss:
 * nothing is cached).
 * An exception raised by the loader is kept and re-raised here, to this
 * caller, with its traceback; the status handed to concurrent waiters is the
 * exception's .status when it is a cachemeter.Error with a negative status,
 * else CM_EBACKEND. When the C call still returns a value (a stale entry kept
 * after a failed refresh), the loader's exception is dropped.
 * local: first cmpy_lookup_hit (a memory:// cache).
 * Returns bytes, None (miss), or NULL with an exception set. */
PyObject *cmpy_get_or_load(cm_cache *c, PyObject *key, PyObject *loader, int64_t ttl_ms, int local);

/* A load for cmpy_load: the loader is called as the vectorcall
 * loader(vargs[0..nargs), kwnames). encode NULL: its result must be bytes,
 * str, a buffer, or None (a miss, nothing cached); else encode(encode_ctx,
 * key, klen, result) turns any result into the bytes stored under key (new
 * reference, or NULL with an exception set). Every object is borrowed from
 * the caller's frame.
 * hit, miss, error: NULL, or counter series incremented when the call got a
 * value without running the loader / ran it and it returned / it raised
 * (disjoint: a loader that raised is an error, not a miss). */
typedef struct {
  PyObject *loader;
  PyObject *const *vargs;
  size_t nargs;
  PyObject *kwnames;
  PyObject *(*encode)(void *encode_ctx, const void *key, size_t klen, PyObject *result);
  void *encode_ctx;
  cm_series *hit, *miss, *error;
} cmpy_load_spec;

/* The first step of cmpy_get_or_load and @cached on a memory:// cache (their
 * "local" lookup): cm_cache_get_hit keeping the GIL (it never waits for a
 * load), counting hit (NULL: nothing) on a hit. Returns 1 with *val and
 * *vlen (cm_free() it), 0 on a miss (go on with cmpy_load, which counts
 * it), -1 with the exception set. Inline: it is the whole of a hit. */
static inline int cmpy_lookup_hit(cm_cache *c, const void *key, size_t klen, cm_series *hit, void **val,
                                  size_t *vlen) {
  int status = cm_cache_get_hit(c, key, klen, val, vlen);
  if (status == CM_OK) {
    if (hit != NULL) cm_counter_add(hit, 1);
    return 1;
  }
  if (status < 0) {
    cmpy_raise(status);
    return -1;
  }
  return 0;
}

/* The engine of cmpy_get_or_load and @cached: cm_cache_get_or_load with the
 * GIL released and spec's loader. Returns 1 with *val and *vlen (cm_free()
 * it), 0 for CM_MISS, -1 with the exception set (the loader's own,
 * re-raised, or the status's). */
int cmpy_load(cm_cache *c, const void *key, size_t klen, int64_t ttl_ms, const cmpy_load_spec *spec, void **val,
              size_t *vlen);

/* ---- @cached (cmpy_cached.c) --------------------------------------------- */

/* How CachedFunction stores values (cachemeter/_cached.py chooses):
 * CMPY_SER_CODEC    the built-in codec only (the default): a result of another
 *                   type is a TypeError naming serializer=;
 * CMPY_SER_PICKLE   the codec, else dumps (pickle, protocol >= 2: first byte
 *                   0x80, which the codec never writes first);
 * CMPY_SER_USER     dumps/loads only (a user's serializer= object). */
enum { CMPY_SER_USER = 0, CMPY_SER_CODEC = 1, CMPY_SER_PICKLE = 2 };

/* A cachemeter._core.CachedFunction: the callable @cached returns (see
 * cachemeter/_cached.py for the contract). fn: the function; c: the cache
 * (keep: a tuple of the objects to keep alive while the wrapper lives, the
 * cache's handle object first); tag_args: the key prefix of positional-only
 * calls (qualname NUL 'a'); local: look hits up keeping the GIL
 * (cm_cache_get_hit; memory:// only); hit, miss, error: the function's
 * counters; slow_key(args, kwargs) -> bytes: the key of any call the C
 * encoder does not take (keyword arguments, user key=, arguments outside
 * the core types); mode: CMPY_SER_*, with dumps/loads (None for
 * CMPY_SER_CODEC); seal, unseal: None (values stored as encoded), or
 * seal(key, payload) -> bytes and unseal(key, value) -> payload bytes, or
 * None when the value's HMAC does not verify; rejected_unverified,
 * rejected_undecodable: counters (or NULL) of values read back and refused
 * (unseal said None / the decoder refused them): such a value is never
 * decoded further; the function runs and its result overwrites it.
 * Returns the new object, or NULL with an exception set. */
PyObject *cmpy_cached_new(PyObject *fn, cm_cache *c, PyObject *keep, PyObject *tag_args, int64_t ttl_ms, int local,
                          cm_series *hit, cm_series *miss, cm_series *error, PyObject *slow_key, PyObject *dumps,
                          PyObject *loads, int mode, int has_key_fn, PyObject *seal, PyObject *unseal,
                          cm_series *rejected_unverified, cm_series *rejected_undecodable,
                          PyObject *params);

/* The built-in value codec of @cached on its own (tests, tools): codec_dumps
 * returns marshal-format (version 2) bytes for None, bool, int (64-bit),
 * float, str, bytes and tuples, lists and dicts of them (exact types,
 * nesting up to 32), or None for anything else; codec_loads decodes them
 * (Corrupt for anything else, trailing bytes included). */
PyObject *cmpy_codec_dumps(PyObject *obj);
PyObject *cmpy_codec_loads(PyObject *data);

/* Called by the module's init: readies and adds the CachedFunction and
 * SeriesUpdate types.
 * Returns 0, or -1 with an exception set. */
int cmpy_init_module(PyObject *module);

/* ---- destructors (called by the SWIG handle objects) -------------------- */
/* Makes the C handle `handle` (a cache or a server) hold a reference to
 * owner (its registry's SWIG object) until the handle's destructor has
 * closed it: the registry must outlive the cache. Not the handle's __dict__:
 * SWIG's builtin dealloc releases the dict before calling the destructor.
 * owner None drops the hold. Returns None. */
PyObject *cmpy_hold(void *handle, PyObject *owner);

/* Free the handle with the GIL released (a registry's last persistence
 * flush, a redis cache's disconnect and a server's thread joins take time),
 * then drop what cmpy_hold made it hold. */
void cmpy_registry_free(cm_registry *reg);
void cmpy_cache_close(cm_cache *c);
void cmpy_server_stop(cm_server *s);
void cmpy_exporter_stop(cm_exporter *e);

/* cm_exporter_start_callback with a Python callable: fn(samples) gets a list
 * of tuples (name, type, labels, value, count, buckets, removed) per flush
 * (type "counter"/"gauge"/"histogram"; labels a dict; buckets a tuple of
 * (upper bound, count) pairs, +inf last, or None). Raising keeps the samples
 * pending (the exception is reported by sys.unraisablehook). fn is borrowed:
 * the caller keeps it alive until the exporter's destructor (cmpy_hold).
 * The GIL is released around the start. */
int cmpy_exporter_start_callback(cm_exporter **out, cm_registry *reg, PyObject *fn, const char *options);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_CMPY_H */
