/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/java/cachemeter_java.i: the Java module over cachemeter.i. The
 * typemaps below must come before cachemeter.i's %include of the headers; the
 * catalogue (what converts what, who frees what) is bindings/README.md.
 *
 * Generated into package org.cachemeter as the package-private classes CM and
 * CMJNI: the public API is the hand-written layer beside them (src/). Handles
 * cross as Java longs that only that layer holds; it frees each exactly once. */
%module CM

%{
#include <cachemeter/cachemeter.h>
#include "cmj.h"
%}

%include <enumtypeunsafe.swg>
%javaconst(1);
%pragma(java) moduleclassmodifiers="final class"
%pragma(java) jniclassclassmodifiers="final class"
%typemap(javaclassmodifiers) enum SWIGTYPE "final class"
%pragma(java) jniclasscode=%{
  static { Native.load(); }
%}

/* No proxy classes for the handle structs (cachemeter.i defines them empty):
 * handles are longs, see #2. */
%ignore cm_registry;
%ignore cm_family;
%ignore cm_series;
%ignore cm_cache;
%ignore cm_server;
%ignore cm_exporter;

%include "typemaps_java.i"
%include "cachemeter.i"

/* ---- the frees cachemeter.i leaves unwrapped, for close() only ------------- */
/* get_or_load with a Java loader (cmj.c): jenv passed in, the loader as a
 * Cache.Loader, the value out as byte[] (null on CM_MISS). */
%typemap(in, numinputs=0) JNIEnv *env %{ $1 = jenv; %}
%typemap(jni) jobject loader "jobject"
%typemap(jtype) jobject loader "Cache.Loader"
%typemap(jstype) jobject loader "Cache.Loader"
%typemap(javain) jobject loader "$javainput"
%typemap(in) jobject loader %{ $1 = $input; %}
CMJ_RETURNS(cmj_get_or_load, jbyteArray, byte[])
%rename(get_or_load) cmj_get_or_load;
int cmj_get_or_load(JNIEnv *env, cm_cache *c, const void *key, size_t klen, jobject loader, int64_t ttl_ms,
                    void **val, size_t *vlen);

%rename(registry_free) cmj_registry_free;
%rename(cache_close) cmj_cache_close;
%rename(server_stop) cmj_server_stop;
%rename(exporter_stop) cmj_exporter_stop;
void cmj_registry_free(cm_registry *reg);
void cmj_cache_close(cm_cache *c);
void cmj_server_stop(cm_server *s);
void cmj_exporter_stop(cm_exporter *e);

/* Callback exporters (cmj.h): the Batch object in, the context as a long. */
%typemap(jni) jobject batch "jobject"
%typemap(jtype) jobject batch "Exporter.Batch"
%typemap(jstype) jobject batch "Exporter.Batch"
%typemap(javain) jobject batch "$javainput"
%typemap(in) jobject batch %{ $1 = $input; %}
%rename(export_ctx_new) cmj_export_ctx_new;
%rename(export_ctx_free) cmj_export_ctx_free;
%rename(exporter_start_callback) cmj_exporter_start_callback;
CMJ_RETURNS(cmj_exporter_start_callback, jlong, long)
int64_t cmj_export_ctx_new(JNIEnv *env, jobject batch);
void cmj_export_ctx_free(JNIEnv *env, int64_t ctx);
int cmj_exporter_start_callback(cm_exporter **out, cm_registry *reg, int64_t ctx, const char *options);
