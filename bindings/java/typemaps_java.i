/* SPDX-License-Identifier: Apache-2.0 */
/* bindings/java/typemaps_java.i: the Java typemaps of cachemeter_java.i. The
 * catalogue (what each converts, who frees what) is bindings/README.md; keep
 * the two in step. Helpers are in cmj.h.
 *
 * No typemap returns early: on an error the exception is made pending, the
 * wrapper runs on (argout skips its work, freearg releases what in took) and
 * the JVM throws when the native method returns. */

/* ---- 1. status -> exception: THE status typemap ---------------------------
 * Every int the C API returns is a status, except these two (plain ints,
 * copied before the status typemap replaces the default). */
%typemap(out) int cm_server_port = int;
%typemap(out) int cm_version_number = int;
%typemap(out) int {
  if ($1 < 0) cmj_throw(jenv, $1);
  $result = (jint)$1;
}

/* Functions whose status is replaced by what they hand out (#2, #4): the
 * Java return type becomes that; the status still throws. */
%define CMJ_RETURNS(FUNC, JNITYPE, JTYPE)
%typemap(jni) int FUNC "JNITYPE"
%typemap(jtype) int FUNC "JTYPE"
%typemap(jstype) int FUNC "JTYPE"
%typemap(javaout) int FUNC { return $jnicall; }
%typemap(out) int FUNC { if ($1 < 0) cmj_throw(jenv, $1); }
%enddef

/* ---- 2. handles: Java longs ------------------------------------------------
 * Only the hand-written layer (Registry, Family, Series, Cache, Server) holds
 * them; it frees the three owned ones exactly once (close()). */
%define CMJ_HANDLE(TYPE)
%typemap(jni) TYPE *, const TYPE * "jlong"
%typemap(jtype) TYPE *, const TYPE * "long"
%typemap(jstype) TYPE *, const TYPE * "long"
%typemap(javain) TYPE *, const TYPE * "$javainput"
%typemap(javaout) TYPE *, const TYPE * { return $jnicall; }
%typemap(in) TYPE *, const TYPE * %{ $1 = ($1_ltype)(intptr_t)$input; %}
%typemap(out) TYPE *, const TYPE * %{ $result = (jlong)(intptr_t)$1; %}
%typemap(in, numinputs=0) TYPE **out (TYPE *tmp = NULL) %{ $1 = &tmp; %}
%typemap(argout) TYPE **out %{ $result = (jlong)(intptr_t)tmp$argnum; %}
%enddef
CMJ_HANDLE(cm_registry)
CMJ_HANDLE(cm_family)
CMJ_HANDLE(cm_series)
CMJ_HANDLE(cm_cache)
CMJ_HANDLE(cm_server)
CMJ_HANDLE(cm_exporter)
CMJ_RETURNS(cm_registry_new, jlong, long)
CMJ_RETURNS(cm_counter_new, jlong, long)
CMJ_RETURNS(cm_gauge_new, jlong, long)
CMJ_RETURNS(cm_gauge_new_mode, jlong, long)
CMJ_RETURNS(cm_histogram_new, jlong, long)
CMJ_RETURNS(cm_family_series, jlong, long)
CMJ_RETURNS(cm_cache_open, jlong, long)
CMJ_RETURNS(cm_cache_open_tiered, jlong, long)
CMJ_RETURNS(cm_server_start, jlong, long)
CMJ_RETURNS(cm_exporter_start, jlong, long)

/* ---- 3. keys and values in: byte[] -----------------------------------------
 * The JVM's copy (or pinned array) for the call, released unchanged. null is
 * (NULL, 0): the library answers CM_EINVAL for a key. */
%define CMJ_BYTES_IN(PTR, LEN)
%typemap(jni) (const void *PTR, size_t LEN) "jbyteArray"
%typemap(jtype) (const void *PTR, size_t LEN) "byte[]"
%typemap(jstype) (const void *PTR, size_t LEN) "byte[]"
%typemap(javain) (const void *PTR, size_t LEN) "$javainput"
%typemap(in) (const void *PTR, size_t LEN) (jbyte *bytes = NULL) {
  if ($input != NULL) {
    bytes = (*jenv)->GetByteArrayElements(jenv, $input, NULL);
    if (bytes == NULL) return $null;  /* OutOfMemoryError pending; nothing taken */
    $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
  } else {
    $2 = 0;
  }
  $1 = bytes;
}
%typemap(freearg) (const void *PTR, size_t LEN) {
  if (bytes$argnum != NULL) (*jenv)->ReleaseByteArrayElements(jenv, $input, bytes$argnum, JNI_ABORT);
}
%enddef
CMJ_BYTES_IN(key, klen)
CMJ_BYTES_IN(val, vlen)

/* ---- 4. library buffers out: byte[] (null on CM_MISS) ----------------------
 * Cache values, rendered text and stats JSON: copied into a new byte[] (the
 * Java layer decodes text as UTF-8) and cm_free()d by freearg on every path. */
%typemap(in, numinputs=0) (void **val, size_t *vlen) (void *buf = NULL, size_t len = 0),
                          (char **out, size_t *len) (char *buf = NULL, size_t len = 0) %{
  $1 = &buf;
  $2 = &len;
%}
%typemap(argout) (void **val, size_t *vlen), (char **out, size_t *len) {
  if (result == CM_OK && buf$argnum != NULL) {
    $result = (*jenv)->NewByteArray(jenv, (jsize)len$argnum);
    if ($result != NULL)
      (*jenv)->SetByteArrayRegion(jenv, $result, 0, (jsize)len$argnum, (const jbyte *)buf$argnum);
  }
}
%typemap(freearg) (void **val, size_t *vlen), (char **out, size_t *len) %{ cm_free(buf$argnum); %}
%typemap(in, numinputs=0) char **json (char *buf = NULL) %{ $1 = &buf; %}
%typemap(argout) char **json {
  if (result == CM_OK && buf$argnum != NULL) {
    jsize n = (jsize)strlen(buf$argnum);
    $result = (*jenv)->NewByteArray(jenv, n);
    if ($result != NULL) (*jenv)->SetByteArrayRegion(jenv, $result, 0, n, (const jbyte *)buf$argnum);
  }
}
%typemap(freearg) char **json %{ cm_free(buf$argnum); %}
CMJ_RETURNS(cm_cache_get, jbyteArray, byte[])
CMJ_RETURNS(cm_cache_get_hit, jbyteArray, byte[])
CMJ_RETURNS(cm_registry_render, jbyteArray, byte[])
CMJ_RETURNS(cm_cache_stats_json, jbyteArray, byte[])

/* ---- 5. strings in: UTF-8 --------------------------------------------------
 * JNI's own string functions speak modified UTF-8 (U+0000 and characters
 * beyond the BMP differ), so the Java side encodes: String -> NUL-terminated
 * UTF-8 byte[] (Utf8.z; null stays NULL), read here in place. */
%typemap(jni) const char *CMJ_UTF8 "jbyteArray"
%typemap(jtype) const char *CMJ_UTF8 "byte[]"
%typemap(jstype) const char *CMJ_UTF8 "String"
%typemap(javain) const char *CMJ_UTF8 "Utf8.z($javainput)"
%typemap(in) const char *CMJ_UTF8 (jbyte *bytes = NULL) {
  if ($input != NULL) {
    bytes = (*jenv)->GetByteArrayElements(jenv, $input, NULL);
    if (bytes == NULL) return $null;
  }
  $1 = ($1_ltype)bytes;
}
%typemap(freearg) const char *CMJ_UTF8 {
  if (bytes$argnum != NULL) (*jenv)->ReleaseByteArrayElements(jenv, $input, bytes$argnum, JNI_ABORT);
}
%apply const char *CMJ_UTF8 {
  const char *options, const char *name, const char *help, const char *uri, const char *l1_uri,
  const char *l2_uri, const char *listen, const char *path
};

/* ---- 6. label names and values in: String[] (or null) ----------------------
 * Encoded by Utf8.zs into byte[][]; each element's copy is taken by
 * cmj_strv_get and given back by freearg. */
%define CMJ_STRV(PTR, LEN)
%typemap(jni) (const char *const *PTR, size_t LEN) "jobjectArray"
%typemap(jtype) (const char *const *PTR, size_t LEN) "byte[][]"
%typemap(jstype) (const char *const *PTR, size_t LEN) "String[]"
%typemap(javain) (const char *const *PTR, size_t LEN) "Utf8.zs($javainput)"
%typemap(in) (const char *const *PTR, size_t LEN) (cmj_strv sv = CMJ_STRV_INIT) {
  if (cmj_strv_get(jenv, $input, &sv) < 0) {
    cmj_strv_release(jenv, &sv);
    return $null;
  }
  $1 = ($1_ltype)sv.v;
  $2 = (size_t)sv.n;
}
%typemap(freearg) (const char *const *PTR, size_t LEN) { cmj_strv_release(jenv, &sv$argnum); }
%enddef
CMJ_STRV(label_names, nlabels)
CMJ_STRV(values, nvalues)

/* ---- 7. histogram bounds in: double[] (or null: the default buckets) ------- */
%typemap(jni) (const double *bounds, size_t nbounds) "jdoubleArray"
%typemap(jtype) (const double *bounds, size_t nbounds) "double[]"
%typemap(jstype) (const double *bounds, size_t nbounds) "double[]"
%typemap(javain) (const double *bounds, size_t nbounds) "$javainput"
%typemap(in) (const double *bounds, size_t nbounds) (jdouble *d = NULL) {
  if ($input != NULL) {
    d = (*jenv)->GetDoubleArrayElements(jenv, $input, NULL);
    if (d == NULL) return $null;
    $2 = (size_t)(*jenv)->GetArrayLength(jenv, $input);
  } else {
    $2 = 0;
  }
  $1 = ($1_ltype)d;
}
%typemap(freearg) (const double *bounds, size_t nbounds) {
  if (d$argnum != NULL) (*jenv)->ReleaseDoubleArrayElements(jenv, $input, d$argnum, JNI_ABORT);
}
