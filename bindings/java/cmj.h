/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/java/cmj.h: the C helpers of the Java typemaps (status -> exception,
 * the frees close() calls). Compiled with -Wall -Wextra -Werror (cmj.c). */
#ifndef CACHEMETER_CMJ_H
#define CACHEMETER_CMJ_H
#include <jni.h>
#include <cachemeter/cachemeter.h>

/* Throws org.cachemeter.CachemeterException.create(status, cm_errmsg()) in
 * the calling thread (whose cm_errmsg() is read here, right after the call).
 * Falls back to a RuntimeException if the class cannot be used. */
void cmj_throw(JNIEnv *env, int status);

/* The byte arrays of a jobjectArray of byte[] (NUL-terminated UTF-8, built by
 * the Java layer): takes each element's copy; cmj_strv_release gives them back
 * and is safe with an exception pending (it only calls Release and DeleteLocalRef). */
typedef struct cmj_strv {
  jsize n;
  const char **v;     /* n pinned copies */
  jbyteArray *refs;   /* their arrays (local references) */
} cmj_strv;
#define CMJ_STRV_INIT {0, NULL, NULL}
/* 0 on success; -1 with a Java exception pending. A NULL array is 0 strings. */
int cmj_strv_get(JNIEnv *env, jobjectArray arr, cmj_strv *sv);
void cmj_strv_release(JNIEnv *env, cmj_strv *sv);

/* cm_cache_get_or_load with a Java org.cachemeter.Cache.Loader (its
 * byte[] load(byte[] key); null = no value, CM_MISS) called on this thread
 * through env. A Throwable the loader throws is rethrown to this caller
 * (other callers waiting on the same load get CM_EBACKEND). Returns the
 * status; *val is a library buffer (freed by the typemap with cm_free). */
int cmj_get_or_load(JNIEnv *env, cm_cache *c, const void *key, size_t klen, jobject loader, int64_t ttl_ms,
                    void **val, size_t *vlen);

/* Callback exporters (cm_exporter_start_callback with a Java
 * org.cachemeter.Exporter.Batch): cmj_export_ctx_new takes a global
 * reference to batch and returns the context (0 with a Java exception
 * pending); cmj_exporter_start_callback starts the exporter with it;
 * cmj_export_ctx_free releases it once the exporter has stopped. Each flush
 * runs on the registry's flush thread (attached to the JVM as a daemon
 * thread, detached when it exits): batch.add(...) per sample, then
 * batch.deliver(), whose false (or exception) keeps the samples pending. */
int64_t cmj_export_ctx_new(JNIEnv *env, jobject batch);
void cmj_export_ctx_free(JNIEnv *env, int64_t ctx);
int cmj_exporter_start_callback(cm_exporter **out, cm_registry *reg, int64_t ctx, const char *options);

void cmj_registry_free(cm_registry *reg);
void cmj_cache_close(cm_cache *c);
void cmj_server_stop(cm_server *s);
void cmj_exporter_stop(cm_exporter *e);
#endif
