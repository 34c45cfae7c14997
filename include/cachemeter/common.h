/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/common.h: version, status codes, per-thread error detail and the
 * allocator shared by every cachemeter subsystem.
 *
 * Conventions that hold for the whole public API (see docs/threading.md):
 *  - functions return an int status: CM_OK (0), CM_MISS (1) or a negative CM_E*
 *    error; on an error, cm_errmsg() tells the calling thread what went wrong;
 *  - out-parameters: the handle a constructor makes (cm_registry_new,
 *    cm_cache_open, cm_server_start, ...) comes out through the FIRST
 *    parameter; children of an object (cm_counter_new's family,
 *    cm_family_series's series) and data (cm_cache_get's value,
 *    cm_registry_render's text) come out through the LAST ones;
 *  - memory the library hands out is released with cm_free(), never free();
 *  - every free/close function accepts NULL and then does nothing. */
#ifndef CACHEMETER_COMMON_H
#define CACHEMETER_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The version has one source: these three lines. CMake reads them. */
#define CM_VERSION_MAJOR 0
#define CM_VERSION_MINOR 1
#define CM_VERSION_PATCH 0

#define CM_VERSION_NUMBER \
  (CM_VERSION_MAJOR * 10000 + CM_VERSION_MINOR * 100 + CM_VERSION_PATCH)
#define CM__STR2(x) #x
#define CM__STR(x) CM__STR2(x)
#define CM_VERSION_STRING \
  CM__STR(CM_VERSION_MAJOR) "." CM__STR(CM_VERSION_MINOR) "." CM__STR(CM_VERSION_PATCH)

/* CM_EXTERN marks the exported API. The library is built with hidden
 * visibility; only what carries this macro is visible in libcachemeter.so. */
#if defined(_WIN32)
#  if defined(CM_BUILDING_LIBRARY)
#    define CM_EXTERN __declspec(dllexport)
#  else
#    define CM_EXTERN __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define CM_EXTERN __attribute__((visibility("default")))
#else
#  define CM_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every status, once: XX(NAME, value, "message"). The enum, cm_strerror() and
 * cm_status_name() are generated from this list so they never drift apart. */
#define CM_STATUS_MAP(XX)                                                     \
  XX(CM_OK, 0, "success")                                                     \
  XX(CM_MISS, 1, "not found")                                                 \
  XX(CM_EINVAL, -1, "invalid argument")                                       \
  XX(CM_ENOMEM, -2, "out of memory")                                          \
  XX(CM_EEXIST, -3, "already exists with a different definition")             \
  XX(CM_ELIMIT, -4, "limit exceeded")                                         \
  XX(CM_EBACKEND, -5, "backend error")                                        \
  XX(CM_ETIMEOUT, -6, "timed out")                                            \
  XX(CM_EUNAVAILABLE, -7, "unavailable")                                      \
  XX(CM_ECORRUPT, -8, "corrupt or foreign data")                              \
  XX(CM_ESTATE, -9, "invalid state")

#define CM__STATUS_ENUM(name, value, msg) name = value,
enum cm_status { CM_STATUS_MAP(CM__STATUS_ENUM) CM__STATUS_END = 2 };
#undef CM__STATUS_ENUM

/* Runtime version, "MAJOR.MINOR.PATCH" of the library actually loaded. Compare
 * with CM_VERSION_STRING to detect a header/library mismatch. Static string. */
CM_EXTERN const char *cm_version(void);

/* Runtime version as CM_VERSION_NUMBER computes it (MAJOR*10000+MINOR*100+PATCH). */
CM_EXTERN int cm_version_number(void);

/* A static, human-readable message for a status ("invalid argument").
 * Unknown values give "unknown status". Never NULL; never free it. */
CM_EXTERN const char *cm_strerror(int status);

/* The symbolic name of a status ("CM_EINVAL"); "CM_UNKNOWN" for unknown values.
 * Static string; never NULL. */
CM_EXTERN const char *cm_status_name(int status);

/* The detail of the calling thread's most recent failure, e.g.
 * "cm_counter_new: name \"1abc\" is not a valid metric name".
 * Set by every call that returns a negative status (and by void calls that
 * reject their input, which say so in their documentation); successful calls
 * leave it alone, like errno. "" when the thread has seen no failure.
 * Thread-local: the pointer stays valid until the next failing call on the
 * same thread or the thread's exit. Never NULL; never free it. */
CM_EXTERN const char *cm_errmsg(void);

/* Clears the calling thread's cm_errmsg() to "". */
CM_EXTERN void cm_errclear(void);

/* Allocates n bytes from the allocator cm_free() releases (malloc). Use it for
 * buffers a callback hands back to the library. n == 0 returns a unique
 * non-NULL pointer. Returns NULL when out of memory. Thread-safe. */
CM_EXTERN void *cm_alloc(size_t n);

/* Releases memory the library handed out (rendered text, cache values, ...)
 * or that cm_alloc() returned. NULL is a no-op. Thread-safe. */
CM_EXTERN void cm_free(void *p);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_COMMON_H */
