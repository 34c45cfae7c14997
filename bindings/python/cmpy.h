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

/* ---- cache calls that keep the GIL (memory:// caches) ------------------ */
/* Plain forwarders to cm_cache_get/set/delete, wrapped without releasing the
 * GIL: a memory:// operation never blocks on anything that needs Python, and
 * takes less time than a GIL hand-off. */
int cmpy_cache_get_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);
int cmpy_cache_set_gil(cm_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                       int64_t ttl_ms);
int cmpy_cache_delete_gil(cm_cache *c, const void *key, size_t klen);

/* ---- get_or_load with a Python loader ---------------------------------- */

/* cm_cache_get_or_load with loader(*args, **kwargs) (args: a tuple; kwargs:
 * None or a dict) as the loader. The GIL is released around the C call; the
 * loader runs with it re-acquired (PyGILState_Ensure), and must return bytes,
 * str (stored as UTF-8), a buffer, or None (a miss: nothing is cached).
 * An exception raised by the loader is kept and re-raised here, to this
 * caller, with its traceback; the status handed to concurrent waiters is the
 * exception's .status when it is a cachemeter.Error with a negative status,
 * else CM_EBACKEND. When the C call still returns a value (a stale entry kept
 * after a failed refresh), the loader's exception is dropped.
 * hit, miss, error: NULL, or counter series incremented when this call got a
 * value without running the loader / ran it and it returned / it raised
 * (disjoint: a loader that raised is an error, not a miss).
 * Returns bytes, None (miss), or NULL with an exception set. */
PyObject *cmpy_get_or_load(cm_cache *c, PyObject *key, PyObject *loader, PyObject *args, PyObject *kwargs,
                           int64_t ttl_ms, cm_series *hit, cm_series *miss, cm_series *error);

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

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_CMPY_H */
