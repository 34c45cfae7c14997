/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/python/typemaps_python.i: the Python typemaps of cachemeter.i.
 * The catalogue (what each converts, who frees what) is bindings/README.md;
 * keep the two in step. Helpers are in cmpy.h. */

/* ---- 1. status -> exception: THE status typemap --------------------------
 * Every function of the C API that returns int returns a status, except the
 * two below, which keep SWIG's plain int conversion (copied before the status
 * typemap replaces it). A negative status raises the cachemeter.Error
 * subclass for it carrying cm_errmsg(); CM_OK and CM_MISS come back as ints
 * (or are replaced by the argout typemaps below). */
%typemap(out) int cm_server_port = int;
%typemap(out) int cm_version_number = int;
%typemap(out) int {
  if ($1 < 0) {
    cmpy_raise($1);
    SWIG_fail;
  }
  $result = PyLong_FromLong($1);
}

/* ---- 2. handles out ---------------------------------------------------------
 * cm_registry_new, cm_cache_open(_tiered) and cm_server_start hand out a
 * handle the caller owns: the SWIG object owns it (SWIG_POINTER_OWN) and its
 * destructor frees it. Families and series belong to their registry: the SWIG
 * object only points at them. The handle replaces the CM_OK result. */
%define CMPY_HANDLE_OUT(TYPE, FLAGS)
%typemap(in, numinputs=0) TYPE **out (TYPE *tmp = NULL) { $1 = &tmp; }
%typemap(argout) TYPE **out {
  Py_DECREF($result);
  $result = SWIG_NewPointerObj(SWIG_as_voidptr(*$1), $*1_descriptor, FLAGS);
  if ($result == NULL) SWIG_fail;
}
%enddef
CMPY_HANDLE_OUT(cm_registry, SWIG_POINTER_OWN)
CMPY_HANDLE_OUT(cm_cache, SWIG_POINTER_OWN)
CMPY_HANDLE_OUT(cm_server, SWIG_POINTER_OWN)
CMPY_HANDLE_OUT(cm_exporter, SWIG_POINTER_OWN)
CMPY_HANDLE_OUT(cm_family, 0)
CMPY_HANDLE_OUT(cm_series, 0)

/* ---- 3. keys and values in: bytes, str (UTF-8) or any contiguous buffer ----
 * A view of the caller's object, valid for the call (the object is referenced
 * by the caller while the GIL is released); buffer views are released by
 * freearg. Nothing is copied. */
%typemap(in) (const void *key, size_t klen) (cmpy_bytes view = CMPY_BYTES_INIT) {
  if (cmpy_bytes_get($input, &view, "key") < 0) SWIG_fail;
  $1 = (void *)view.p;
  $2 = (size_t)view.n;
}
%typemap(freearg) (const void *key, size_t klen) { cmpy_bytes_release(&view$argnum); }
%typemap(in) (const void *val, size_t vlen) (cmpy_bytes view = CMPY_BYTES_INIT) {
  if (cmpy_bytes_get($input, &view, "value") < 0) SWIG_fail;
  $1 = (void *)view.p;
  $2 = (size_t)view.n;
}
%typemap(freearg) (const void *val, size_t vlen) { cmpy_bytes_release(&view$argnum); }

/* ---- 4. values out: bytes, or None on CM_MISS ---------------------------
 * The library's buffer is copied into a bytes object and cm_free()d by
 * freearg, on success and on every error path alike. */
%typemap(in, numinputs=0) (void **val, size_t *vlen) (void *buf = NULL, size_t len = 0) {
  $1 = &buf;
  $2 = &len;
}
%typemap(argout) (void **val, size_t *vlen) {
  Py_DECREF($result);
  if (result == CM_OK) {
    $result = PyBytes_FromStringAndSize((const char *)*$1, (Py_ssize_t)*$2);
    if ($result == NULL) SWIG_fail;
  } else {
    Py_INCREF(Py_None);
    $result = Py_None;
  }
}
%typemap(freearg) (void **val, size_t *vlen) { cm_free(buf$argnum); }

/* ---- 5. rendered text out: str ----------------------------------------------
 * cm_registry_render's buffer and cm_cache_stats_json's JSON are decoded as
 * UTF-8 into a str and cm_free()d by freearg. */
%typemap(in, numinputs=0) (char **out, size_t *len) (char *buf = NULL, size_t len = 0) {
  $1 = &buf;
  $2 = &len;
}
%typemap(argout) (char **out, size_t *len) {
  Py_DECREF($result);
  $result = PyUnicode_DecodeUTF8(*$1, (Py_ssize_t)*$2, "strict");
  if ($result == NULL) SWIG_fail;
}
%typemap(freearg) (char **out, size_t *len) { cm_free(buf$argnum); }

%typemap(in, numinputs=0) char **json (char *buf = NULL) { $1 = &buf; }
%typemap(argout) char **json {
  Py_DECREF($result);
  $result = PyUnicode_DecodeUTF8(*$1, (Py_ssize_t)strlen(*$1), "strict");
  if ($result == NULL) SWIG_fail;
}
%typemap(freearg) char **json { cm_free(buf$argnum); }

/* ---- 6. label names and values in: a sequence of str (or None) ------------
 * Pointers into the strings' cached UTF-8; the array (on the stack up to 8,
 * else PyMem) and the sequence reference are released by freearg. */
%typemap(in) (const char *const *label_names, size_t nlabels) (cmpy_strv sv = CMPY_STRV_INIT) {
  if (cmpy_strv_get($input, &sv, "label names") < 0) SWIG_fail;
  $1 = ($1_ltype)sv.v;
  $2 = sv.n;
}
%typemap(freearg) (const char *const *label_names, size_t nlabels) { cmpy_strv_release(&sv$argnum); }
%typemap(in) (const char *const *values, size_t nvalues) (cmpy_strv sv = CMPY_STRV_INIT) {
  if (cmpy_strv_get($input, &sv, "label values") < 0) SWIG_fail;
  $1 = ($1_ltype)sv.v;
  $2 = sv.n;
}
%typemap(freearg) (const char *const *values, size_t nvalues) { cmpy_strv_release(&sv$argnum); }

/* ---- 7. histogram bounds in: a sequence of numbers, or None (defaults) -----
 * Copied into a PyMem array freed by freearg. */
%typemap(in) (const double *bounds, size_t nbounds) (cmpy_doubles d = CMPY_DOUBLES_INIT) {
  if (cmpy_doubles_get($input, &d) < 0) SWIG_fail;
  $1 = d.v;
  $2 = d.n;
}
%typemap(freearg) (const double *bounds, size_t nbounds) { cmpy_doubles_release(&d$argnum); }
