/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/cachemeter.i: the SWIG interface over cachemeter's public C API
 * (include/cachemeter/*.h, wrapped as they are, so the binding follows the
 * headers). The language-specific typemaps live beside it (python/
 * typemaps_python.i); bindings/README.md catalogues every typemap and says
 * who frees what.
 *
 * Python: built with -builtin -threads into the extension module
 * cachemeter._core (the "core" module of package "cachemeter"). The public
 * API is the pure-Python package around it (bindings/python/cachemeter). */
%module(package="cachemeter") core

%{
#include <cachemeter/cachemeter.h>
#ifdef SWIGPYTHON
#include "cmpy.h"
#endif
%}

%include <stdint.i>

/* ---- handles -------------------------------------------------------------
 * The headers only declare the handle structs. SWIG sees empty definitions so
 * that each handle becomes a type of its own (under -builtin: a Python type
 * whose instances carry a __dict__, used for keep-alive references).
 * Nothing is constructed from the target language; the three handles the
 * caller owns are freed by their destructors and only there, so the C
 * free/close functions are not wrapped (a second call would free twice). */
%nodefaultctor cm_registry;
%nodefaultctor cm_family;
%nodefaultctor cm_series;
%nodefaultctor cm_cache;
%nodefaultctor cm_server;
%nodefaultctor cm_exporter;
struct cm_registry {};
struct cm_family {};
struct cm_series {};
struct cm_cache {};
struct cm_server {};
struct cm_exporter {};

#ifdef SWIGPYTHON
/* The destructors release the GIL themselves (cmpy.c), so SWIG must not. */
%nothread cm_registry::~cm_registry;
%nothread cm_cache::~cm_cache;
%nothread cm_server::~cm_server;
%nothread cm_exporter::~cm_exporter;
%extend cm_registry { ~cm_registry() { cmpy_registry_free($self); } }
%extend cm_cache    { ~cm_cache()    { cmpy_cache_close($self); } }
%extend cm_server   { ~cm_server()   { cmpy_server_stop($self); } }
%extend cm_exporter { ~cm_exporter() { cmpy_exporter_stop($self); } }
/* Families and series belong to their registry: their SWIG objects never own
 * them (the destructor is never called). It must exist all the same: a
 * -builtin type without one gets SwigPyBuiltin_BadDealloc, which never frees
 * the Python object, so every handle object would leak (test_leaks.py). */
%nothread cm_family::~cm_family;
%nothread cm_series::~cm_series;
%extend cm_family   { ~cm_family()   { (void)$self; } }
%extend cm_series   { ~cm_series()   { (void)$self; } }
#endif

%ignore cm_registry_free;    /* destructor of cm_registry */
%ignore cm_cache_close;      /* destructor of cm_cache */
%ignore cm_server_stop;      /* destructor of cm_server */
%ignore cm_exporter_stop;    /* destructor of cm_exporter */
%ignore cm_exporter_start_callback; /* wrapped as exporter_start_callback with a Python callable */
%ignore cm_export_fn;
%ignore cm_sample;
%ignore cm_alloc;            /* buffers are copied and freed by the typemaps */
%ignore cm_free;
%ignore cm_cache_get_or_load; /* wrapped as get_or_load with a target-language loader */
%ignore cm_loader_fn;
%ignore cm_cache_get_into;    /* a C caller's buffer: not wrapped yet */

/* ---- the GIL ---------------------------------------------------------------
 * -threads releases the GIL around every wrapped call: the default is right
 * for whatever may block (backend I/O, server start, render, persistence,
 * flush, registry and cache creation). These calls keep it: each is a
 * lock-free update, a read of a few words, or registration under a short
 * lock, and costs less than releasing and re-taking the GIL (measured:
 * releasing it makes a counter increment ~60% slower; bindings/README.md). */
#ifdef SWIGPYTHON
%nothread cm_version;
%nothread cm_version_number;
%nothread cm_strerror;
%nothread cm_status_name;
%nothread cm_errmsg;
%nothread cm_errclear;
%nothread cm_registry_default;
%nothread cm_counter_new;
%nothread cm_gauge_new;
%nothread cm_histogram_new;
%nothread cm_family_series;
%nothread cm_counter_add;
%nothread cm_gauge_set;
%nothread cm_gauge_add;
%nothread cm_histogram_observe;
%nothread cm_series_value;
%nothread cm_histogram_sum;
%nothread cm_server_port;

%include "python/typemaps_python.i"
#endif

/* The public headers, wrapped as they are. */
%include <cachemeter/common.h>
%include <cachemeter/metrics.h>
%include <cachemeter/cache.h>
%include <cachemeter/server.h>
%include <cachemeter/export.h>

#ifdef SWIGPYTHON
/* ---- Python-specific entry points (cmpy.h) ---------------------------------
 * Every function taking PyObject* keeps the GIL in SWIG's wrapper: it needs
 * it to read its arguments, and releases it itself around the C call. */
%nothread;
%feature("compactdefaultargs");
%feature("kwargs") cmpy_counter_inc;
%feature("kwargs") cmpy_gauge_add;
%feature("kwargs") cmpy_gauge_dec;
%feature("kwargs") cmpy_gauge_set;
%feature("kwargs") cmpy_histogram_observe;

%rename(register_errors) cmpy_register_errors;
PyObject *cmpy_register_errors(PyObject *base, PyObject *factory);
%rename(hold) cmpy_hold;
%feature("docstring") cmpy_hold "hold(cache_or_server, registry): keep registry alive until the handle is closed";
PyObject *cmpy_hold(void *handle, PyObject *owner);

%rename(counter_inc) cmpy_counter_inc;
%rename(gauge_inc) cmpy_gauge_add;
%rename(gauge_dec) cmpy_gauge_dec;
%rename(gauge_set) cmpy_gauge_set;
%rename(histogram_observe) cmpy_histogram_observe;
%feature("docstring") cmpy_counter_inc "counter_inc(s, v=1.0): add v >= 0; InvalidArgument otherwise";
PyObject *cmpy_counter_inc(cm_series *s, double v = 1.0);
PyObject *cmpy_gauge_add(cm_series *s, double v = 1.0);
PyObject *cmpy_gauge_dec(cm_series *s, double v = 1.0);
PyObject *cmpy_gauge_set(cm_series *s, double v);
PyObject *cmpy_histogram_observe(cm_series *s, double v);
%rename(series_update) cmpy_series_update;
%feature("docstring") cmpy_series_update "series_update(s, op, keep): a callable doing op (0 counter inc, 1 gauge inc, 2 gauge dec, 3 gauge set, 4 observe) on s";
PyObject *cmpy_series_update(cm_series *s, int op, PyObject *keep);

/* cm_cache_get/set/delete again, keeping the GIL (for memory:// caches). */
%rename(cache_get_gil) cmpy_cache_get_gil;
%rename(cache_get_hit_gil) cmpy_cache_get_hit_gil;
%rename(cache_set_gil) cmpy_cache_set_gil;
%rename(cache_delete_gil) cmpy_cache_delete_gil;
int cmpy_cache_get_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);
int cmpy_cache_get_hit_gil(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);
int cmpy_cache_set_gil(cm_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                       int64_t ttl_ms);
int cmpy_cache_delete_gil(cm_cache *c, const void *key, size_t klen);

%rename(exporter_start_callback) cmpy_exporter_start_callback;
%feature("docstring") cmpy_exporter_start_callback
"exporter_start_callback(registry, fn, options) -> cm_exporter: fn(samples) once per flush (cmpy.h)";
int cmpy_exporter_start_callback(cm_exporter **out, cm_registry *reg, PyObject *fn, const char *options);

%rename(get_or_load) cmpy_get_or_load;
%feature("docstring") cmpy_get_or_load
"get_or_load(cache, key, loader, ttl_ms, local) -> bytes | None

cm_cache_get_or_load with loader(key) as the loader (bytes, str, buffer, or
None for a miss); its exception is re-raised here. local (memory://): look a
hit up keeping the GIL.";
PyObject *cmpy_get_or_load(cm_cache *c, PyObject *key, PyObject *loader, int64_t ttl_ms, int local);

/* @cached's callable and its value codec (cmpy_cached.c). */
%rename(cached_function) cmpy_cached_new;
%feature("docstring") cmpy_cached_new
"cached_function(fn, cache, keep, tag_args, ttl_ms, local, hit, miss, error, slow_key, dumps, loads, mode,
has_key_fn, seal, unseal, rejected_unverified, rejected_undecodable, params) -> CachedFunction: the callable of @cached
(cachemeter/_cached.py builds it)";
PyObject *cmpy_cached_new(PyObject *fn, cm_cache *c, PyObject *keep, PyObject *tag_args, int64_t ttl_ms, int local,
                          cm_series *hit, cm_series *miss, cm_series *error, PyObject *slow_key, PyObject *dumps,
                          PyObject *loads, int mode, int has_key_fn, PyObject *seal, PyObject *unseal,
                          cm_series *rejected_unverified, cm_series *rejected_undecodable,
                          PyObject *params);
%rename(codec_dumps) cmpy_codec_dumps;
%rename(codec_loads) cmpy_codec_loads;
%feature("docstring") cmpy_codec_dumps "codec_dumps(obj) -> bytes | None: @cached's value codec (marshal format 2 of the core types); None when it does not take obj";
%feature("docstring") cmpy_codec_loads "codec_loads(data: bytes) -> object: decodes codec_dumps's output; Corrupt for anything else";
PyObject *cmpy_codec_dumps(PyObject *obj);
PyObject *cmpy_codec_loads(PyObject *data);
%thread;

%init %{
  if (cmpy_init_module(m) < 0) return NULL;
%}
#endif
