/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/java/cmj.c: status -> Java exception and the label-array helper of
 * the Java typemaps (typemaps_java.i). */
#include "cmj.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- callback exporters */

typedef struct cmj_export_ctx {
  JavaVM *vm;
  jobject batch;     /* global reference: an org.cachemeter.Exporter.Batch */
  jmethodID add;     /* void add(byte[] name, int type, byte[][] names, byte[][] values, double value,
                        long count, double[] bounds, long[] buckets, boolean removed) */
  jmethodID deliver; /* boolean deliver() */
} cmj_export_ctx;

static pthread_key_t cmj_detach_key;
static pthread_once_t cmj_detach_once = PTHREAD_ONCE_INIT;

/* A thread this file attached detaches at its exit (the JVM must not keep a
 * dead thread). */
static void cmj_detach(void *vm) { (*(JavaVM *)vm)->DetachCurrentThread((JavaVM *)vm); }
static void cmj_detach_key_make(void) { (void)pthread_key_create(&cmj_detach_key, cmj_detach); }

static JNIEnv *cmj_env_for(JavaVM *vm) {
  JNIEnv *env = NULL;
  if ((*vm)->GetEnv(vm, (void **)&env, JNI_VERSION_1_8) == JNI_OK) return env;
  if ((*vm)->AttachCurrentThreadAsDaemon(vm, (void **)&env, NULL) != JNI_OK) return NULL;
  pthread_once(&cmj_detach_once, cmj_detach_key_make);
  (void)pthread_setspecific(cmj_detach_key, vm);
  return env;
}

static jbyteArray cmj_bytes(JNIEnv *env, const char *s) {
  jsize n = (jsize)strlen(s);
  jbyteArray a = (*env)->NewByteArray(env, n);
  if (a != NULL) (*env)->SetByteArrayRegion(env, a, 0, n, (const jbyte *)s);
  return a;
}

static jobjectArray cmj_bytes_array(JNIEnv *env, const char *const *v, size_t n) {
  jclass cls = (*env)->FindClass(env, "[B");
  if (cls == NULL) return NULL;
  jobjectArray a = (*env)->NewObjectArray(env, (jsize)n, cls, NULL);
  for (size_t i = 0; a != NULL && i < n; i++) {
    jbyteArray b = cmj_bytes(env, v[i]);
    if (b == NULL) return NULL;
    (*env)->SetObjectArrayElement(env, a, (jsize)i, b);
    (*env)->DeleteLocalRef(env, b);
  }
  return a;
}

/* One sample handed to batch.add; 0, or -1 with an exception pending. */
static int cmj_add_sample(JNIEnv *env, cmj_export_ctx *x, const cm_sample *s) {
  if ((*env)->PushLocalFrame(env, 16) < 0) return -1;
  jbyteArray name = cmj_bytes(env, s->name);
  jobjectArray names = name ? cmj_bytes_array(env, s->label_names, s->nlabels) : NULL;
  jobjectArray values = names ? cmj_bytes_array(env, s->label_values, s->nlabels) : NULL;
  jdoubleArray bounds = NULL;
  jlongArray buckets = NULL;
  int ok = values != NULL;
  if (ok && s->type == CM_SAMPLE_HISTOGRAM) {
    bounds = (*env)->NewDoubleArray(env, (jsize)s->nbounds);
    buckets = (*env)->NewLongArray(env, (jsize)(s->nbounds + 1));
    ok = bounds != NULL && buckets != NULL;
    if (ok) {
      (*env)->SetDoubleArrayRegion(env, bounds, 0, (jsize)s->nbounds, s->bounds);
      for (size_t i = 0; i <= s->nbounds; i++) {
        jlong c = (jlong)s->bucket_counts[i];
        (*env)->SetLongArrayRegion(env, buckets, (jsize)i, 1, &c);
      }
    }
  }
  if (ok)
    (*env)->CallVoidMethod(env, x->batch, x->add, name, (jint)s->type, names, values, (jdouble)s->value,
                           (jlong)s->count, bounds, buckets, (jboolean)(s->removed != 0));
  (*env)->PopLocalFrame(env, NULL);
  return ok && !(*env)->ExceptionCheck(env) ? 0 : -1;
}

static int cmj_export_trampoline(void *ctx, const cm_sample *samples, size_t n) {
  cmj_export_ctx *x = (cmj_export_ctx *)ctx;
  JNIEnv *env = cmj_env_for(x->vm);
  if (env == NULL) return 1;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = cmj_add_sample(env, x, &samples[i]);
  jboolean taken = JNI_FALSE;
  if (rc == 0) taken = (*env)->CallBooleanMethod(env, x->batch, x->deliver);
  if ((*env)->ExceptionCheck(env)) {
    (*env)->ExceptionClear(env); /* Batch keeps what the callback threw; nobody else to tell */
    taken = JNI_FALSE;
  }
  return taken ? 0 : 1;
}

int64_t cmj_export_ctx_new(JNIEnv *env, jobject batch) {
  cmj_export_ctx *x = calloc(1, sizeof *x);
  if (x == NULL) {
    cmj_throw_class(env, "java/lang/OutOfMemoryError", "cachemeter: exporter context");
    return 0;
  }
  jclass cls = (*env)->GetObjectClass(env, batch);
  if ((*env)->GetJavaVM(env, &x->vm) != 0 || cls == NULL) goto fail;
  x->add = (*env)->GetMethodID(env, cls, "add", "([BI[[B[[BDJ[D[JZ)V");
  x->deliver = x->add ? (*env)->GetMethodID(env, cls, "deliver", "()Z") : NULL;
  (*env)->DeleteLocalRef(env, cls);
  if (x->deliver == NULL) goto fail; /* NoSuchMethodError pending */
  x->batch = (*env)->NewGlobalRef(env, batch);
  if (x->batch == NULL) goto fail;
  return (int64_t)(intptr_t)x;
fail:
  free(x);
  if (!(*env)->ExceptionCheck(env)) cmj_throw_class(env, "java/lang/IllegalStateException", "cachemeter: exporter context");
  return 0;
}

void cmj_export_ctx_free(JNIEnv *env, int64_t ctx) {
  cmj_export_ctx *x = (cmj_export_ctx *)(intptr_t)ctx;
  if (x == NULL) return;
  (*env)->DeleteGlobalRef(env, x->batch);
  free(x);
}

int cmj_exporter_start_callback(cm_exporter **out, cm_registry *reg, int64_t ctx, const char *options) {
  return cm_exporter_start_callback(out, reg, cmj_export_trampoline, (void *)(intptr_t)ctx, options);
}

