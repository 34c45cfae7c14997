/* bindings/java/cmj.c: status -> Java exception and the label-array helper of
 * the Java typemaps (typemaps_java.i). */
#include "cmj.h"

#include <stdlib.h>

static void cmj_throw_class(JNIEnv *env, const char *cls_name, const char *msg) {
  jclass cls = (*env)->FindClass(env, cls_name);
  if (cls != NULL) (*env)->ThrowNew(env, cls, msg);
}

void cmj_throw(JNIEnv *env, int status) {
  if ((*env)->ExceptionCheck(env)) return; /* the loader's own exception is on its way */
  const char *msg = cm_errmsg();  /* this thread's, read before any other call */
  if (msg == NULL || *msg == '\0') msg = cm_strerror(status);
  jclass cls = (*env)->FindClass(env, "org/cachemeter/CachemeterException");
  if (cls != NULL) {
    jmethodID create = (*env)->GetStaticMethodID(env, cls, "create",
                                                 "(ILjava/lang/String;)Lorg/cachemeter/CachemeterException;");
    jstring jmsg = create != NULL ? (*env)->NewStringUTF(env, msg) : NULL;
    if (jmsg != NULL) {
      jobject ex = (*env)->CallStaticObjectMethod(env, cls, create, (jint)status, jmsg);
      if (ex != NULL && !(*env)->ExceptionCheck(env)) {
        (*env)->Throw(env, (jthrowable)ex);
        return;
      }
    }
  }
  (*env)->ExceptionClear(env);
  cmj_throw_class(env, "java/lang/RuntimeException", msg);
}

int cmj_strv_get(JNIEnv *env, jobjectArray arr, cmj_strv *sv) {
  sv->n = 0;
  sv->v = NULL;
  sv->refs = NULL;
  if (arr == NULL) return 0;
  jsize n = (*env)->GetArrayLength(env, arr);
  if (n == 0) return 0;
  if ((*env)->EnsureLocalCapacity(env, n) != 0) return -1;  /* OutOfMemoryError pending */
  sv->v = calloc((size_t)n, sizeof *sv->v);
  sv->refs = calloc((size_t)n, sizeof *sv->refs);
  if (sv->v == NULL || sv->refs == NULL) {
    cmj_throw_class(env, "java/lang/OutOfMemoryError", "cachemeter: label array");
    return -1;
  }
  for (jsize i = 0; i < n; i++) {
    jbyteArray b = (jbyteArray)(*env)->GetObjectArrayElement(env, arr, i);
    if (b == NULL) {
      cmj_throw_class(env, "java/lang/NullPointerException", "cachemeter: null label");
      return -1;
    }
    sv->refs[i] = b;
    sv->n = i + 1;
    sv->v[i] = (const char *)(*env)->GetByteArrayElements(env, b, NULL);
    if (sv->v[i] == NULL) return -1;  /* OutOfMemoryError pending */
  }
  return 0;
}

void cmj_strv_release(JNIEnv *env, cmj_strv *sv) {
  for (jsize i = 0; i < sv->n; i++) {
    if (sv->v[i] != NULL)
      (*env)->ReleaseByteArrayElements(env, sv->refs[i], (jbyte *)(void *)sv->v[i], JNI_ABORT);
    (*env)->DeleteLocalRef(env, sv->refs[i]);
  }
  free(sv->v);
  free(sv->refs);
  sv->v = NULL;
  sv->refs = NULL;
  sv->n = 0;
}

void cmj_registry_free(cm_registry *reg) { cm_registry_free(reg); }
void cmj_cache_close(cm_cache *c) { cm_cache_close(c); }
void cmj_server_stop(cm_server *s) { cm_server_stop(s); }
void cmj_exporter_stop(cm_exporter *e) { cm_exporter_stop(e); }

/* ---- get_or_load with a Java loader */

typedef struct cmj_load_ctx {
  JNIEnv *env;
  jobject loader;
  jthrowable error; /* what the loader threw (a local reference), rethrown after the call */
} cmj_load_ctx;

static int cmj_trampoline(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  cmj_load_ctx *x = (cmj_load_ctx *)ctx;
  JNIEnv *env = x->env;
  jbyteArray k = (*env)->NewByteArray(env, (jsize)klen);
  jbyteArray r = NULL;
  if (k != NULL) {
    (*env)->SetByteArrayRegion(env, k, 0, (jsize)klen, (const jbyte *)key);
    jclass cls = (*env)->GetObjectClass(env, x->loader);
    jmethodID m = cls != NULL ? (*env)->GetMethodID(env, cls, "load", "([B)[B") : NULL;
    if (m != NULL) r = (jbyteArray)(*env)->CallObjectMethod(env, x->loader, m, k);
    if (cls != NULL) (*env)->DeleteLocalRef(env, cls);
    (*env)->DeleteLocalRef(env, k);
  }
  if ((*env)->ExceptionCheck(env)) {
    if (x->error == NULL) x->error = (*env)->ExceptionOccurred(env);
    (*env)->ExceptionClear(env);
    if (r != NULL) (*env)->DeleteLocalRef(env, r);
    return CM_EBACKEND;
  }
  if (r == NULL) return CM_MISS;
  jsize n = (*env)->GetArrayLength(env, r);
  void *buf = cm_alloc(n > 0 ? (size_t)n : 1);
  if (buf == NULL) {
    (*env)->DeleteLocalRef(env, r);
    return CM_ENOMEM;
  }
  (*env)->GetByteArrayRegion(env, r, 0, n, (jbyte *)buf);
  (*env)->DeleteLocalRef(env, r);
  *val = buf;
  *vlen = (size_t)n;
  return CM_OK;
}

int cmj_get_or_load(JNIEnv *env, cm_cache *c, const void *key, size_t klen, jobject loader, int64_t ttl_ms,
                    void **val, size_t *vlen) {
  if (loader == NULL) {
    cmj_throw_class(env, "java/lang/NullPointerException", "loader is null");
    return CM_EINVAL;
  }
  cmj_load_ctx x = {env, loader, NULL};
  int rc = cm_cache_get_or_load(c, key, klen, cmj_trampoline, &x, ttl_ms, val, vlen);
  if (x.error != NULL) {
    if (rc == CM_OK) { /* a failed refresh kept the stale value (the C contract): no exception */
      (*env)->DeleteLocalRef(env, x.error);
      return rc;
    }
    (*env)->Throw(env, x.error); /* the status typemap sees it pending and adds nothing */
    (*env)->DeleteLocalRef(env, x.error);
    return rc < 0 ? rc : CM_EBACKEND;
  }
  return rc;
}
