/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_cache.c: the cache API (cache.h) through the shared library:
 * every function, every status it can return, bad inputs, and the metrics
 * each operation records. Time-dependent behaviour (TTL, stale windows, hit
 * ratio windows) is tested with a manual clock in tests/cpp. */
#include "cmtest.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define K(s) (s), (sizeof(s) - 1) /* key or value literal and its length */

/* The backend under test, from CM_TEST_BACKEND (ctest registers one variant
 * each): "memory" (default), "sqlite" (c.test_cache_sqlite) or "redis"
 * (c.test_cache_redis through with_redis.sh, which starts a redis-server and
 * exports its port as CM_TEST_REDIS_PORT). Every test is written against
 * memory:// URIs; U() rewrites them for the backend under test, and the few
 * memory-only assertions (byte caps, entry caps, evictions, the bytes gauge)
 * are branched on backend_is() / has_size_limits().
 *
 * "tiered" (c.test_cache_tiered, also through with_redis.sh) opens every
 * memory:// URI as cm_cache_open_tiered(memory://, the redis URI above): an
 * unbounded memory L1 in front of redis, which then behaves as redis does
 * (no size caps, bytes 0) under the backend label "tiered". */
static const char *g_backend = "memory";
static char g_dir[64];
static int g_files;
static const char *g_redis_port;
static int g_opens; /* unique redis namespace per open */

static int backend_is(const char *name) { return strcmp(g_backend, name) == 0; }
/* redis:// itself, or behind a memory L1. */
static int redis_like(void) { return backend_is("redis") || backend_is("tiered"); }

/* Backends that enforce max_entries/max_bytes and report evictions by size.
 * Redis has neither (its maxmemory policy is the server's business). */
static int has_size_limits(void) { return backend_is("memory") || backend_is("sqlite"); }

static void remove_files(void) {
  char p[128];
  for (int i = 0; i < g_files; ++i) {
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t k = 0; k < CMT_COUNT(suffix); ++k) {
      snprintf(p, sizeof p, "%s/cache-%d.db%s", g_dir, i, suffix[k]);
      remove(p);
    }
  }
  remove(g_dir);
}

/* Returns a slot of a small ring, so a test may hold a few rewritten URIs. */
static char *uri_slot(void) {
  static char ring[8][512];
  static int next;
  return ring[next++ % 8];
}

/* "memory://?X" -> "sqlite://<tmpdir>/cache-<n>.db?X": a fresh file per open. */
static const char *sqlite_uri(const char *query) {
  char *out = uri_slot();
  snprintf(out, 512, "sqlite://%s/cache-%d.db%s", g_dir, g_files++, query);
  return out;
}

/* "memory://?X" -> "redis://127.0.0.1:PORT?X'": X without the memory-only
 * options (max_entries, max_bytes), plus count_interval_ms=0 (the entries
 * gauge counts on every scrape: exact) and a namespace of its own per open
 * (handles opened under one name must not share keys, as in memory://; the
 * pid keeps runs apart should the server be reused). */
static const char *redis_uri(const char *query) {
  char *out = uri_slot();
  int n = snprintf(out, 512, "redis://127.0.0.1:%s?count_interval_ms=0&namespace=cmtest-%ld-%d", g_redis_port,
                   (long)getpid(), g_opens++);
  const char *p = query[0] == '?' ? query + 1 : query;
  while (*p) {
    const char *end = strchr(p, '&');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    int memory_only = (len >= 12 && strncmp(p, "max_entries=", 12) == 0) ||
                      (len >= 10 && strncmp(p, "max_bytes=", 10) == 0);
    if (len > 0 && !memory_only) n += snprintf(out + n, 512 - (size_t)n, "&%.*s", (int)len, p);
    p += len + (end ? 1 : 0);
  }
  assert_true(n < 512);
  return out;
}

/* The URI of the backend under test for a "memory://?X" URI; other URIs
 * (NULL, "", other schemes, bad ones) unchanged. */
static const char *U(const char *uri) {
  const char *pre = "memory://";
  if (!uri || strncmp(uri, pre, strlen(pre)) != 0) return uri;
  if (backend_is("sqlite")) return sqlite_uri(uri + strlen(pre));
  if (redis_like()) return redis_uri(uri + strlen(pre));
  return uri;
}

/* Every open of a test goes through here (a tiered mode would branch here). */
static int open_uri(cm_cache **out, cm_registry *reg, const char *name, const char *uri) {
  if (backend_is("tiered") && uri && strncmp(uri, "memory://", 9) == 0)
    return cm_cache_open_tiered(out, reg, name, "memory://", U(uri));
  return cm_cache_open(out, reg, name, U(uri));
}

static cm_cache *open_ok(cm_registry *reg, const char *name, const char *uri) {
  cm_cache *c = NULL;
  assert_status(open_uri(&c, reg, name, uri), CM_OK);
  assert_non_null(c);
  return c;
}

/* The bytes an entry counts for in the bytes gauge (DESIGN.md: key + value +
 * 144 in memory://, + 64 in sqlite://); redis:// reports 0 (unknown). */
static int entry_bytes(int klen, int vlen) {
  if (backend_is("memory")) return klen + vlen + 144;
  if (backend_is("sqlite")) return klen + vlen + 64;
  return 0;
}

/* The value of a cache metric sample of cache `name` on the tested backend. */
static double metric(cm_registry *reg, const char *family, const char *name, const char *extra) {
  char key[512];
  snprintf(key, sizeof key, "%s{cache=\"%s\",backend=\"%s\"%s%s}", family, name, g_backend, extra ? "," : "",
           extra ? extra : "");
  return cmt_render_sample(reg, key);
}

static void get_set_delete_clear(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "users", "memory://?max_entries=100&sample=1");
  void *v = (void *)1;
  size_t n = 99;
  assert_status(cm_cache_get(c, K("alice"), &v, &n), CM_MISS);
  assert_null(v);
  assert_int_equal(n, 0);

  assert_status(cm_cache_set(c, K("alice"), K("admin"), 0), CM_OK);
  assert_status(cm_cache_get(c, K("alice"), &v, &n), CM_OK);
  assert_int_equal(n, 5);
  assert_memory_equal(v, "admin", 5);
  assert_int_equal(((char *)v)[5], '\0'); /* NUL after the bytes */
  cm_free(v);

  /* Replace, then embedded NULs in key and value, then an empty value. */
  assert_status(cm_cache_set(c, K("alice"), K("owner"), -1), CM_OK);
  assert_status(cm_cache_get(c, K("alice"), &v, &n), CM_OK);
  assert_memory_equal(v, "owner", 5);
  cm_free(v);
  assert_status(cm_cache_set(c, K("a\0b"), K("x\0y\0"), 0), CM_OK);
  assert_status(cm_cache_get(c, K("a\0c"), &v, &n), CM_MISS);
  assert_status(cm_cache_get(c, K("a\0b"), &v, &n), CM_OK);
  assert_int_equal(n, 4);
  assert_memory_equal(v, "x\0y\0", 4);
  cm_free(v);
  assert_status(cm_cache_set(c, K("empty"), NULL, 0, 0), CM_OK);
  assert_status(cm_cache_get(c, K("empty"), &v, &n), CM_OK);
  assert_non_null(v);
  assert_int_equal(n, 0);
  cm_free(v);

  assert_status(cm_cache_delete(c, K("alice")), CM_OK);
  assert_status(cm_cache_delete(c, K("alice")), CM_MISS);
  assert_status(cm_cache_get(c, K("alice"), &v, &n), CM_MISS);

  assert_status(cm_cache_clear(c), CM_OK);
  assert_status(cm_cache_get(c, K("empty"), &v, &n), CM_MISS);

  /* What was recorded: 5 hits, 4 misses (alice, a\0c, alice, empty), 4 sets, 2 deletes. */
  assert_double_exact(metric(reg, "cachemeter_cache_hits_total", "users", NULL), 4);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "users", NULL), 4);
  assert_double_exact(metric(reg, "cachemeter_cache_sets_total", "users", NULL), 4);
  assert_double_exact(metric(reg, "cachemeter_cache_deletes_total", "users", NULL), 2);
  assert_double_exact(metric(reg, "cachemeter_cache_entries", "users", NULL), 0);
  assert_double_exact(
      metric(reg, "cachemeter_cache_operation_duration_seconds_count", "users", "op=\"get\""), 8);
  cm_cache_close(c);
}

/* cm_cache_get_into: the value into the caller's buffer, CM_ELIMIT with the
 * needed size when it does not fit, every bad argument, and the same counts
 * as cm_cache_get. */
static void get_into(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "into", "memory://?sample=1");
  char buf[16];
  size_t n = 99;
  assert_status(cm_cache_get_into(c, K("alice"), buf, sizeof buf, &n), CM_MISS);
  assert_int_equal(n, 0);

  assert_status(cm_cache_set(c, K("alice"), K("admin"), 0), CM_OK);
  memset(buf, 'Z', sizeof buf);
  assert_status(cm_cache_get_into(c, K("alice"), buf, sizeof buf, &n), CM_OK);
  assert_int_equal(n, 5);
  assert_memory_equal(buf, "admin", 5);
  assert_int_equal(buf[5], 'Z'); /* no NUL added */
  /* Too small: the needed size, nothing to free; a probe with no buffer. */
  n = 0;
  assert_status(cm_cache_get_into(c, K("alice"), NULL, 0, &n), CM_ELIMIT);
  assert_int_equal(n, 5);
  assert_contains(cm_errmsg(), "cap=0");
  n = 0;
  assert_status(cm_cache_get_into(c, K("alice"), buf, 4, &n), CM_ELIMIT);
  assert_int_equal(n, 5);
  assert_status(cm_cache_get_into(c, K("alice"), buf, 5, &n), CM_OK); /* exactly */
  assert_memory_equal(buf, "admin", 5);
  /* Embedded NULs, then an empty value (NULL buffer, cap 0: CM_OK). */
  assert_status(cm_cache_set(c, K("a\0b"), K("x\0y\0"), 0), CM_OK);
  assert_status(cm_cache_get_into(c, K("a\0c"), buf, sizeof buf, &n), CM_MISS);
  assert_status(cm_cache_get_into(c, K("a\0b"), buf, sizeof buf, &n), CM_OK);
  assert_int_equal(n, 4);
  assert_memory_equal(buf, "x\0y\0", 4);
  assert_status(cm_cache_set(c, K("empty"), NULL, 0, 0), CM_OK);
  n = 99;
  assert_status(cm_cache_get_into(c, K("empty"), NULL, 0, &n), CM_OK);
  assert_int_equal(n, 0);

  /* Bad arguments: nothing counted. */
  assert_status(cm_cache_get_into(NULL, K("alice"), buf, sizeof buf, &n), CM_EINVAL);
  assert_int_equal(n, 0);
  assert_status(cm_cache_get_into(c, NULL, 5, buf, sizeof buf, &n), CM_EINVAL);
  assert_status(cm_cache_get_into(c, "alice", 0, buf, sizeof buf, &n), CM_EINVAL);
  assert_status(cm_cache_get_into(c, K("alice"), buf, sizeof buf, NULL), CM_EINVAL);
  assert_contains(cm_errmsg(), "vlen");
  assert_status(cm_cache_get_into(c, K("alice"), NULL, 1, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "buf");

  /* Counted as cm_cache_get counts: CM_OK and CM_ELIMIT are hits. */
  assert_double_exact(metric(reg, "cachemeter_cache_hits_total", "into", NULL), 6);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "into", NULL), 2);
  assert_double_exact(metric(reg, "cachemeter_cache_operation_duration_seconds_count", "into", "op=\"get\""), 8);
  cm_cache_close(c);
}

static void bad_arguments(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = NULL;
  void *v = NULL;
  size_t n = 0;
  /* open */
  assert_status(open_uri(NULL, reg, "x", "memory://"), CM_EINVAL);
  assert_contains(cm_errmsg(), "out");
  assert_status(open_uri(&c, reg, NULL, "memory://"), CM_EINVAL);
  assert_contains(cm_errmsg(), "name");
  assert_null(c);
  assert_status(open_uri(&c, reg, "", "memory://"), CM_EINVAL);
  assert_status(open_uri(&c, reg, "\xff", "memory://"), CM_EINVAL);
  assert_contains(cm_errmsg(), "UTF-8");
  assert_status(open_uri(&c, reg, "x", NULL), CM_EINVAL);
  assert_contains(cm_errmsg(), "uri");
  assert_status(open_uri(&c, reg, "x", ""), CM_EINVAL);
  assert_status(open_uri(&c, reg, "x", "memory"), CM_EINVAL);
  assert_contains(cm_errmsg(), "scheme");
  assert_status(open_uri(&c, reg, "x", "nosuch://"), CM_EINVAL);
  assert_contains(cm_errmsg(), "nosuch");
  assert_status(open_uri(&c, reg, "x", "memory://?max_entries=10&colour=blue"), CM_EINVAL);
  assert_contains(cm_errmsg(), "colour");
  if (has_size_limits()) {
    assert_status(open_uri(&c, reg, "x", "memory://?max_entries=-1"), CM_EINVAL);
    assert_contains(cm_errmsg(), "max_entries");
    assert_status(open_uri(&c, reg, "x", "memory://?max_bytes=12parsecs"), CM_EINVAL);
    assert_contains(cm_errmsg(), "max_bytes");
  } else {
    /* redis:// has no size caps (U() strips them): it refuses them by name,
     * and checks its own options like the others. */
    char raw[128];
    snprintf(raw, sizeof raw, "redis://127.0.0.1:%s?max_entries=10", g_redis_port);
    assert_status(cm_cache_open(&c, reg, "x", raw), CM_EINVAL);
    assert_contains(cm_errmsg(), "max_entries");
    assert_status(open_uri(&c, reg, "x", "memory://?pool=0"), CM_EINVAL);
    assert_contains(cm_errmsg(), "pool");
  }
  assert_status(open_uri(&c, reg, "x", "memory://?ttl_ms=soon"), CM_EINVAL);
  assert_contains(cm_errmsg(), "ttl_ms");
  assert_status(open_uri(&c, reg, "x", "memory://?sample=0"), CM_EINVAL);
  assert_status(open_uri(&c, reg, "x", "memory://?metrics=maybe"), CM_EINVAL);
  assert_contains(cm_errmsg(), "metrics");
  assert_null(c);

  c = open_ok(reg, "x", "memory://?max_entry_bytes=16");
  /* get */
  assert_status(cm_cache_get(NULL, K("k"), &v, &n), CM_EINVAL);
  assert_status(cm_cache_get(c, NULL, 1, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "key");
  assert_status(cm_cache_get(c, "k", 0, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "empty");
  assert_status(cm_cache_get(c, K("k"), NULL, &n), CM_EINVAL);
  assert_status(cm_cache_get(c, K("k"), &v, NULL), CM_EINVAL);
  /* set */
  assert_status(cm_cache_set(NULL, K("k"), K("v"), 0), CM_EINVAL);
  assert_status(cm_cache_set(c, NULL, 1, K("v"), 0), CM_EINVAL);
  assert_status(cm_cache_set(c, "k", 0, K("v"), 0), CM_EINVAL);
  assert_status(cm_cache_set(c, K("k"), NULL, 3, 0), CM_EINVAL);
  assert_contains(cm_errmsg(), "val");
  /* too large: key + value over max_entry_bytes, counted */
  assert_status(cm_cache_set(c, K("0123456789"), K("0123456"), 0), CM_ELIMIT);
  assert_contains(cm_errmsg(), "max_entry_bytes");
  assert_status(cm_cache_set(c, K("0123456789"), K("012345"), 0), CM_OK);
  assert_double_exact(
      metric(reg, "cachemeter_cache_rejections_total", "x", "reason=\"too_large\""), 1);
  /* A size whose sum with the key's overflows: reported as given, never as
   * the wrapped sum ("entry of 0 bytes"). The value is never read. */
  assert_status(cm_cache_set(c, K("k"), "v", SIZE_MAX, 0), CM_ELIMIT);
  assert_contains(cm_errmsg(), "value 18446744073709551615");
  assert_contains(cm_errmsg(), "entry of more than 18446744073709551615 bytes");
  assert_status(cm_cache_set(c, K("k"), "v", SIZE_MAX - 1, 0), CM_ELIMIT);
  assert_contains(cm_errmsg(), "entry of 18446744073709551615 bytes (key 1 + value 18446744073709551614)");
  assert_double_exact(
      metric(reg, "cachemeter_cache_rejections_total", "x", "reason=\"too_large\""), 3);
  /* delete, clear, stats, reset */
  assert_status(cm_cache_delete(NULL, K("k")), CM_EINVAL);
  assert_status(cm_cache_delete(c, NULL, 1), CM_EINVAL);
  assert_status(cm_cache_delete(c, "k", 0), CM_EINVAL);
  assert_status(cm_cache_clear(NULL), CM_EINVAL);
  char *json = (char *)1;
  assert_status(cm_cache_stats_json(NULL, &json), CM_EINVAL);
  assert_null(json);
  assert_status(cm_cache_stats_json(c, NULL), CM_EINVAL);
  assert_status(cm_cache_reset_stats(NULL), CM_EINVAL);
  cm_cache_close(NULL); /* no-op */
  cm_cache_close(c);
}

/* A huge value against the default max_entry_bytes (1 MiB), and a value that
 * fits max_entry_bytes but not the backend's byte cap (where it has one). */
static void huge_values(void **state) {
  cm_cache *c = open_ok(*state, "big", "memory://?max_bytes=64KiB");
  size_t big = (size_t)2 << 20;
  char *buf = calloc(1, big);
  assert_non_null(buf);
  assert_status(cm_cache_set(c, K("k"), buf, big, 0), CM_ELIMIT);
  assert_contains(cm_errmsg(), "max_entry_bytes");
  assert_status(cm_cache_set(c, K("k"), buf, 100 << 10, 0), has_size_limits() ? CM_ELIMIT : CM_OK);
  assert_status(cm_cache_set(c, K("k"), buf, 1 << 10, 0), CM_OK);
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get(c, K("k"), &v, &n), CM_OK);
  assert_int_equal(n, 1 << 10);
  assert_memory_equal(v, buf, n);
  cm_free(v);
  free(buf);
  assert_double_exact(
      metric(*state, "cachemeter_cache_rejections_total", "big", "reason=\"too_large\""), has_size_limits() ? 2 : 1);
  cm_cache_close(c);
}

static void eviction_by_entries(void **state) {
  cm_cache *c = open_ok(*state, "small", "memory://?max_entries=8");
  char key[16];
  for (int i = 0; i < 100; ++i) {
    int len = snprintf(key, sizeof key, "k%d", i);
    assert_status(cm_cache_set(c, key, (size_t)len, K("v"), 0), CM_OK);
  }
  double entries = metric(*state, "cachemeter_cache_entries", "small", NULL);
  if (has_size_limits()) {
    assert_true(entries >= 1 && entries <= 8);
    assert_double_exact(metric(*state, "cachemeter_cache_evictions_total", "small", "reason=\"size\""),
                        100 - entries);
  } else {
    /* No cap (U() dropped max_entries): every entry stays, none evicted. */
    assert_double_exact(entries, 100);
    assert_double_exact(metric(*state, "cachemeter_cache_evictions_total", "small", "reason=\"size\""), 0);
  }
  /* The newest entry is always there. */
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get(c, K("k99"), &v, &n), CM_OK);
  assert_memory_equal(v, "v", 1);
  cm_free(v);
  cm_cache_close(c);
}

/* ---- get_or_load */
struct loader_ctx {
  int calls;
  int status;
  const char *value;
};

static int loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  struct loader_ctx *l = ctx;
  l->calls++;
  if (l->status != CM_OK) return l->status;
  size_t n = strlen(l->value);
  char *p = cm_alloc(n + klen);
  memcpy(p, l->value, n);
  memcpy(p + n, key, klen);
  *val = p;
  *vlen = n + klen;
  return CM_OK;
}

static int bad_loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  (void)ctx, (void)key, (void)klen;
  *val = NULL;
  *vlen = 5;
  return CM_OK;
}

static int weird_loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  (void)ctx, (void)key, (void)klen, (void)val, (void)vlen;
  return 42;
}

static void get_or_load(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "loaded", "memory://");
  struct loader_ctx l = {0, CM_OK, "value-of-"};
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get_or_load(c, K("k1"), loader, &l, 0, &v, &n), CM_OK);
  assert_int_equal(n, 11);
  assert_memory_equal(v, "value-of-k1", 11);
  cm_free(v);
  assert_int_equal(l.calls, 1);
  /* Cached now: no second load. */
  assert_status(cm_cache_get_or_load(c, K("k1"), loader, &l, 0, &v, &n), CM_OK);
  assert_memory_equal(v, "value-of-k1", 11);
  cm_free(v);
  assert_int_equal(l.calls, 1);
  assert_status(cm_cache_get(c, K("k1"), &v, &n), CM_OK);
  cm_free(v);

  /* Loader failures propagate and are not cached. */
  l.status = CM_EUNAVAILABLE;
  assert_status(cm_cache_get_or_load(c, K("k2"), loader, &l, 0, &v, &n), CM_EUNAVAILABLE);
  assert_null(v);
  assert_contains(cm_errmsg(), "CM_EUNAVAILABLE");
  assert_status(cm_cache_get(c, K("k2"), &v, &n), CM_MISS);
  l.status = CM_MISS;
  assert_status(cm_cache_get_or_load(c, K("k2"), loader, &l, 0, &v, &n), CM_MISS);
  assert_int_equal(l.calls, 3);
  assert_status(cm_cache_get_or_load(c, K("k3"), bad_loader, NULL, 0, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "NULL value");
  assert_status(cm_cache_get_or_load(c, K("k3"), weird_loader, NULL, 0, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "42");

  /* Bad arguments. */
  assert_status(cm_cache_get_or_load(NULL, K("k"), loader, &l, 0, &v, &n), CM_EINVAL);
  assert_status(cm_cache_get_or_load(c, NULL, 1, loader, &l, 0, &v, &n), CM_EINVAL);
  assert_status(cm_cache_get_or_load(c, "k", 0, loader, &l, 0, &v, &n), CM_EINVAL);
  assert_status(cm_cache_get_or_load(c, K("k"), NULL, &l, 0, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "load");
  assert_status(cm_cache_get_or_load(c, K("k"), loader, &l, 0, NULL, &n), CM_EINVAL);
  assert_status(cm_cache_get_or_load(c, K("k"), loader, &l, 0, &v, NULL), CM_EINVAL);

  assert_double_exact(metric(reg, "cachemeter_cache_loads_total", "loaded", "result=\"ok\""), 1);
  assert_double_exact(metric(reg, "cachemeter_cache_loads_total", "loaded", "result=\"error\""), 4);
  cm_cache_close(c);
}

/* A loaded value over max_entry_bytes goes back to the caller but is not
 * stored: counted as a rejection, not as a set. */
static void get_or_load_too_large(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "big_load", "memory://?max_entry_bytes=16");
  struct loader_ctx l = {0, CM_OK, "value-of-"};
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get_or_load(c, K("0123456"), loader, &l, 0, &v, &n), CM_OK);
  assert_int_equal(n, 16); /* "value-of-0123456": with its 7-byte key, 23 > 16 */
  assert_memory_equal(v, "value-of-0123456", 16);
  cm_free(v);
  assert_status(cm_cache_get(c, K("0123456"), &v, &n), CM_MISS);
  assert_double_exact(
      metric(reg, "cachemeter_cache_rejections_total", "big_load", "reason=\"too_large\""), 1);
  assert_double_exact(metric(reg, "cachemeter_cache_sets_total", "big_load", NULL), 0);
  /* One that fits is stored. */
  assert_status(cm_cache_get_or_load(c, K("k"), loader, &l, 0, &v, &n), CM_OK);
  cm_free(v);
  assert_status(cm_cache_get(c, K("k"), &v, &n), CM_OK);
  cm_free(v);
  assert_double_exact(metric(reg, "cachemeter_cache_sets_total", "big_load", NULL), 1);
  assert_int_equal(l.calls, 2);
  cm_cache_close(c);
}

/* cm_cache_get_hit: a hit counted and timed as a get's; a miss neither,
 * left to the cm_cache_get_or_load that follows, which counts it once. */
static void get_hit_then_load(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "probe", "memory://?sample=1");
  struct loader_ctx l = {0, CM_OK, "v-"};
  void *v = (void *)1;
  size_t n = 99;
  assert_status(cm_cache_get_hit(c, K("k"), &v, &n), CM_MISS);
  assert_null(v);
  assert_int_equal(n, 0);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "probe", NULL), 0);
  assert_double_exact(
      metric(reg, "cachemeter_cache_operation_duration_seconds_count", "probe", "op=\"get\""), 0);
  assert_status(cm_cache_get_or_load(c, K("k"), loader, &l, 0, &v, &n), CM_OK);
  cm_free(v);
  assert_int_equal(l.calls, 1);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "probe", NULL), 1);

  assert_status(cm_cache_get_hit(c, K("k"), &v, &n), CM_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(v, "v-k", 3);
  assert_int_equal(((char *)v)[3], '\0');
  cm_free(v);
  assert_double_exact(metric(reg, "cachemeter_cache_hits_total", "probe", NULL), 1);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "probe", NULL), 1);
  assert_double_exact(
      metric(reg, "cachemeter_cache_operation_duration_seconds_count", "probe", "op=\"get\""), 2);

  /* Bad arguments, as cm_cache_get's. */
  assert_status(cm_cache_get_hit(NULL, K("k"), &v, &n), CM_EINVAL);
  assert_status(cm_cache_get_hit(c, NULL, 1, &v, &n), CM_EINVAL);
  assert_status(cm_cache_get_hit(c, "k", 0, &v, &n), CM_EINVAL);
  assert_contains(cm_errmsg(), "empty");
  assert_status(cm_cache_get_hit(c, K("k"), NULL, &n), CM_EINVAL);
  assert_status(cm_cache_get_hit(c, K("k"), &v, NULL), CM_EINVAL);
  cm_cache_close(c);
}

/* CM_ETIMEOUT: a second caller gives up on a load that another thread holds. */
struct held_loader {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int entered, released;
  int leader_done; /* the leader returned (without loading, if the backend failed) */
};

static int holding_loader(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
  struct held_loader *h = ctx;
  (void)key, (void)klen;
  pthread_mutex_lock(&h->mu);
  h->entered = 1;
  pthread_cond_broadcast(&h->cv);
  while (!h->released) pthread_cond_wait(&h->cv, &h->mu);
  pthread_mutex_unlock(&h->mu);
  *val = cm_alloc(2);
  memcpy(*val, "ok", 2);
  *vlen = 2;
  return CM_OK;
}

struct leader_args {
  cm_cache *c;
  struct held_loader *h;
  int rc;
};

static void *leader_thread(void *p) {
  struct leader_args *a = p;
  void *v = NULL;
  size_t n = 0;
  a->rc = cm_cache_get_or_load(a->c, K("slow"), holding_loader, a->h, 0, &v, &n);
  cm_free(v);
  pthread_mutex_lock(&a->h->mu);
  a->h->leader_done = 1;
  pthread_cond_broadcast(&a->h->cv);
  pthread_mutex_unlock(&a->h->mu);
  return NULL;
}

static void get_or_load_timeout(void **state) {
  cm_cache *c = open_ok(*state, "timeouts", "memory://?load_timeout_ms=20");
  struct held_loader h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
  struct leader_args a = {c, &h, -100};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, leader_thread, &a), 0);
  pthread_mutex_lock(&h.mu);
  while (!h.entered && !h.leader_done) pthread_cond_wait(&h.cv, &h.mu);
  int entered = h.entered;
  pthread_mutex_unlock(&h.mu);
  if (!entered) { /* the leader failed before loading: report why, do not hang */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_status(a.rc, CM_OK);
    fail_msg("the leader returned CM_OK without running the loader");
  }
  /* The loader is held until released below: this caller must time out. */
  void *v = (void *)1;
  size_t n = 7;
  assert_status(cm_cache_get_or_load(c, K("slow"), holding_loader, &h, 0, &v, &n), CM_ETIMEOUT);
  assert_null(v);
  assert_int_equal(n, 0);
  assert_contains(cm_errmsg(), "load_timeout_ms=20");
  pthread_mutex_lock(&h.mu);
  h.released = 1;
  pthread_cond_broadcast(&h.cv);
  pthread_mutex_unlock(&h.mu);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_status(a.rc, CM_OK);
  assert_double_exact(metric(*state, "cachemeter_cache_load_wait_timeouts_total", "timeouts", NULL), 1);
  cm_cache_close(c);
}

static void stats_json_and_reset(void **state) {
  cm_registry *reg = *state;
  cm_cache *c = open_ok(reg, "stats", "memory://?sample=1");
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_set(c, K("a"), K("1"), 0), CM_OK);
  for (int i = 0; i < 3; ++i) {
    assert_status(cm_cache_get(c, K("a"), &v, &n), CM_OK);
    cm_free(v);
  }
  assert_status(cm_cache_get(c, K("b"), &v, &n), CM_MISS);
  char *json = NULL;
  assert_status(cm_cache_stats_json(c, &json), CM_OK);
  assert_contains(json, "\"cache\":\"stats\"");
  assert_contains(json, "\"hits\":3,");
  assert_contains(json, "\"misses\":1,");
  assert_contains(json, "\"hit_ratio\":0.75");
  assert_contains(json, "\"entries\":1,");
  char want[64];
  snprintf(want, sizeof want, "\"bytes\":%d,", entry_bytes(1, 1));
  assert_contains(json, want);
  assert_contains(json, "\"get\":{\"count\":4,");
  assert_contains(json, "\"1m\":0.75");
  cm_free(json);
  assert_double_exact(metric(reg, "cachemeter_cache_entries", "stats", NULL), 1);
  assert_double_exact(metric(reg, "cachemeter_cache_bytes", "stats", NULL), entry_bytes(1, 1));

  assert_status(cm_cache_reset_stats(c), CM_OK);
  assert_double_exact(metric(reg, "cachemeter_cache_hits_total", "stats", NULL), 0);
  assert_status(cm_cache_stats_json(c, &json), CM_OK);
  assert_contains(json, "\"hits\":0,");
  assert_contains(json, "\"hit_ratio\":null");
  assert_contains(json, "\"entries\":1,"); /* entries stay */
  cm_free(json);
  cm_cache_close(c);
}

/* By default 1 in 64 operations of a memory cache is timed, 1 in 16 of the
 * others (sqlite, redis, tiered); sample=N overrides. Counts are exact. */
static void default_sampling(void **state) {
  cm_cache *c = open_ok(*state, "sampled", "memory://");
  cm_cache *d = open_ok(*state, "sampled16", "memory://?sample=16");
  void *v = NULL;
  size_t n = 0;
  for (int i = 0; i < 1600; ++i) assert_status(cm_cache_get(c, K("x"), &v, &n), CM_MISS);
  assert_double_exact(metric(*state, "cachemeter_cache_misses_total", "sampled", NULL), 1600);
  assert_double_exact(
      metric(*state, "cachemeter_cache_operation_duration_seconds_count", "sampled", "op=\"get\""),
      backend_is("memory") ? 25 : 100);
  for (int i = 0; i < 1600; ++i) assert_status(cm_cache_get(d, K("x"), &v, &n), CM_MISS);
  assert_double_exact(
      metric(*state, "cachemeter_cache_operation_duration_seconds_count", "sampled16", "op=\"get\""), 100);
  cm_cache_close(d);
  cm_cache_close(c);
}

/* Two handles with one name share series; metrics=off records nothing. */
static void shared_names_and_metrics_off(void **state) {
  cm_registry *reg = *state;
  cm_cache *a = open_ok(reg, "shared", "memory://");
  cm_cache *b = open_ok(reg, "shared", "memory://");
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get(a, K("x"), &v, &n), CM_MISS);
  assert_status(cm_cache_get(b, K("x"), &v, &n), CM_MISS);
  assert_status(cm_cache_set(a, K("x"), K("1"), 0), CM_OK);
  assert_status(cm_cache_set(b, K("y"), K("1"), 0), CM_OK);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "shared", NULL), 2);
  assert_double_exact(metric(reg, "cachemeter_cache_entries", "shared", NULL), 2);
  cm_cache_close(a);
  assert_double_exact(metric(reg, "cachemeter_cache_entries", "shared", NULL), 1);
  cm_cache_close(b);

  cm_cache *off = open_ok(reg, "quiet", "memory://?metrics=off");
  assert_status(cm_cache_set(off, K("x"), K("1"), 0), CM_OK);
  assert_status(cm_cache_get(off, K("x"), &v, &n), CM_OK);
  cm_free(v);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_not_contains(text, "quiet");
  cm_free(text);
  char *json = NULL;
  assert_status(cm_cache_stats_json(off, &json), CM_OK);
  assert_contains(json, "\"metrics\":false");
  assert_contains(json, "\"entries\":1,");
  cm_free(json);
  cm_cache_close(off);

  /* The environment switch, read at open. */
  setenv("CACHEMETER_METRICS_ENABLED", "false", 1);
  cm_cache *env_off = open_ok(reg, "env_quiet", "memory://");
  unsetenv("CACHEMETER_METRICS_ENABLED");
  assert_status(cm_cache_set(env_off, K("x"), K("1"), 0), CM_OK);
  text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_not_contains(text, "env_quiet");
  cm_free(text);
  cm_cache_close(env_off);
}

/* The registry's prefix renames the cache metrics; NULL registry = default. */
static void prefix_and_default_registry(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("prefix=myapp_cache_");
  cm_cache *c = open_ok(reg, "p", "memory://");
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_get(c, K("x"), &v, &n), CM_MISS);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  char want[128];
  snprintf(want, sizeof want, "myapp_cache_cache_misses_total{cache=\"p\",backend=\"%s\"} 1", g_backend);
  assert_contains(text, want);
  cm_free(text);
  cm_cache_close(c);
  cm_registry_free(reg);

  cm_cache *d = open_ok(NULL, "default_reg", "memory://");
  assert_status(cm_cache_get(d, K("x"), &v, &n), CM_MISS);
  assert_double_exact(metric(cm_registry_default(), "cachemeter_cache_misses_total", "default_reg", NULL), 1);
  cm_cache_close(d);
}

/* Opening caches past the registry's max_series is refused with CM_ELIMIT;
 * closing a cache gives its series back (every one of them: per-tier,
 * breaker and lock series too, and error series made on first use). */
static void series_cap(void **state) {
  (void)state;
  /* Room for one cache's series but not two's (a tiered cache has more:
   * per-tier, breaker and lock series). */
  cm_registry *reg = cmt_registry(backend_is("tiered") ? "max_series=45" : "max_series=30");
  cm_cache *c = NULL, *d = NULL;
  assert_status(open_uri(&c, reg, "one", "memory://"), CM_OK);
  assert_status(open_uri(&d, reg, "two", "memory://"), CM_ELIMIT);
  assert_null(d);
  cm_cache_close(c);
  for (int i = 0; i < 20; i++) {
    char name[16];
    snprintf(name, sizeof name, "next-%d", i);
    c = NULL;
    assert_status(open_uri(&c, reg, name, "memory://"), CM_OK);
    assert_status(cm_cache_set(c, K("k"), K("v"), 0), CM_OK);
    cm_cache_close(c);
  }
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_not_contains(text, "cache=\"one\"");
  assert_not_contains(text, "cache=\"next-");
  cm_free(text);
  cm_registry_free(reg);
}

static long resident_kib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* 10k caches of distinct names opened, used and closed: the series they made
 * leave the registry with them, so the registry's series (its render) and
 * the process's memory stay flat, and the application still gets series
 * under a max_series that a leak would have exhausted after a few caches. */
static void closed_caches_free_their_series(void **state) {
  (void)state;
  if (!backend_is("memory")) skip(); /* a file or a namespace per open elsewhere */
  cm_registry *reg = cmt_registry("max_series=100");
  cm_family *app = NULL;
  assert_status(cm_counter_new(reg, "app_requests", NULL, (const char *const[]){"n"}, 1, &app), CM_OK);
  size_t first_len = 0;
  long rss_warm = 0;
  for (int i = 0; i < 10000; i++) {
    char name[32];
    snprintf(name, sizeof name, "cycle-%05d", i);
    cm_cache *c = NULL;
    assert_status(cm_cache_open(&c, reg, name, "memory://"), CM_OK);
    assert_status(cm_cache_set(c, K("k"), K("v"), 0), CM_OK);
    void *v = NULL;
    size_t n = 0;
    assert_status(cm_cache_get(c, K("k"), &v, &n), CM_OK);
    cm_free(v);
    assert_status(cm_cache_get(c, K("nope"), &v, &n), CM_MISS);
    cm_cache_close(c);
    if (i == 0 || i == 9999) {
      size_t len = 0;
      char *text = NULL;
      assert_status(cm_registry_render(reg, CM_FORMAT_PROMETHEUS, &text, &len), CM_OK);
      assert_not_contains(text, "cache=\"cycle-");
      if (i == 0) first_len = len;
      else assert_int_equal(len, first_len); /* the same series, no more */
      cm_free(text);
    }
    if (i == 999) rss_warm = resident_kib();
  }
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) /* their allocators keep freed memory */
  long rss_end = resident_kib();
  if (rss_warm > 0 && rss_end > 0) assert_true(rss_end - rss_warm < 4096);
#else
  (void)rss_warm;
#endif
  /* The application's own series are still created. */
  cm_series *s = NULL;
  for (int i = 0; i < 50; i++) {
    char value[16];
    snprintf(value, sizeof value, "%d", i);
    const char *values[] = {value};
    assert_status(cm_family_series(app, values, 1, &s), CM_OK);
  }
  assert_double_exact(cmt_render_sample(reg, "cachemeter_series_rejected_total"), 0);
  cm_registry_free(reg);
}

/* A series the application looked up through cm_family_series is its for
 * good: closing the cache does not remove it (the handle stays valid). */
static void looked_up_cache_series_stays(void **state) {
  (void)state;
  if (!backend_is("memory")) skip();
  cm_registry *reg = cmt_registry(NULL);
  cm_cache *c = open_ok(reg, "kept", "memory://");
  assert_status(cm_cache_get(c, K("k"), &(void *){NULL}, &(size_t){0}), CM_MISS);
  cm_family *misses = NULL;
  assert_status(cm_counter_new(reg, "cachemeter_cache_misses_total", "Cache lookups that found no fresh entry.",
                               (const char *const[]){"cache", "backend"}, 2, &misses),
                CM_OK);
  cm_series *s = NULL;
  assert_status(cm_family_series(misses, (const char *const[]){"kept", "memory"}, 2, &s), CM_OK);
  assert_double_exact(cm_series_value(s), 1);
  cm_cache_close(c);
  cm_counter_add(s, 1); /* still valid */
  assert_double_exact(cm_series_value(s), 2);
  assert_double_exact(metric(reg, "cachemeter_cache_misses_total", "kept", NULL), 2);
  /* Reopened, the cache counts into the same series. */
  c = open_ok(reg, "kept", "memory://");
  assert_status(cm_cache_get(c, K("k"), &(void *){NULL}, &(size_t){0}), CM_MISS);
  cm_cache_close(c);
  assert_double_exact(cm_series_value(s), 3);
  cm_registry_free(reg);
}

/* redis:// only: the cache's name is its default namespace, so handles (of
 * this or any process) opened under one name share entries, and another name
 * sees none of them; clear() empties only its own. */
static void redis_name_is_the_namespace(void **state) {
  if (!backend_is("redis")) skip();
  cm_registry *reg = *state;
  char name_a[64], name_b[64], uri[128];
  snprintf(name_a, sizeof name_a, "fleet-%ld", (long)getpid());
  snprintf(name_b, sizeof name_b, "other-%ld", (long)getpid());
  snprintf(uri, sizeof uri, "redis://127.0.0.1:%s?count_interval_ms=0", g_redis_port);
  cm_cache *a1 = NULL, *a2 = NULL, *b = NULL;
  assert_status(cm_cache_open(&a1, reg, name_a, uri), CM_OK);
  assert_status(cm_cache_open(&a2, reg, name_a, uri), CM_OK);
  assert_status(cm_cache_open(&b, reg, name_b, uri), CM_OK);
  void *v = NULL;
  size_t n = 0;
  assert_status(cm_cache_set(a1, K("k"), K("from-a1"), 0), CM_OK);
  assert_status(cm_cache_get(a2, K("k"), &v, &n), CM_OK);
  assert_int_equal(n, 7);
  assert_memory_equal(v, "from-a1", 7);
  cm_free(v);
  assert_status(cm_cache_get(b, K("k"), &v, &n), CM_MISS);
  assert_status(cm_cache_set(b, K("k"), K("from-b"), 0), CM_OK);
  assert_status(cm_cache_delete(a2, K("k")), CM_OK);
  assert_status(cm_cache_get(a1, K("k"), &v, &n), CM_MISS);
  assert_status(cm_cache_get(b, K("k"), &v, &n), CM_OK);
  assert_memory_equal(v, "from-b", 6);
  cm_free(v);
  assert_status(cm_cache_set(a1, K("k2"), K("x"), 0), CM_OK);
  assert_status(cm_cache_clear(a2), CM_OK);
  assert_status(cm_cache_get(a1, K("k2"), &v, &n), CM_MISS);
  assert_status(cm_cache_get(b, K("k"), &v, &n), CM_OK); /* other names untouched */
  cm_free(v);
  assert_status(cm_cache_clear(b), CM_OK);
  cm_cache_close(a1);
  cm_cache_close(a2);
  cm_cache_close(b);
}

int main(void) {
  const char *backend = getenv("CM_TEST_BACKEND");
  if (backend && strcmp(backend, "sqlite") == 0) {
    g_backend = "sqlite";
    strcpy(g_dir, "/tmp/cm-test-cache-XXXXXX");
    if (!mkdtemp(g_dir)) {
      perror("mkdtemp");
      return 1;
    }
    atexit(remove_files);
  } else if (backend && (strcmp(backend, "redis") == 0 || strcmp(backend, "tiered") == 0)) {
    g_backend = strcmp(backend, "redis") == 0 ? "redis" : "tiered";
    g_redis_port = getenv("CM_TEST_REDIS_PORT");
    if (!g_redis_port || strspn(g_redis_port, "0123456789") != strlen(g_redis_port) || !*g_redis_port) {
      fprintf(stderr, "CM_TEST_BACKEND=redis needs CM_TEST_REDIS_PORT=<port of a running redis-server> "
                      "(tests/c/with_redis.sh starts one)\n");
      return 1;
    }
  } else if (backend && *backend && strcmp(backend, "memory") != 0) {
    fprintf(stderr, "CM_TEST_BACKEND=%s: expected memory, sqlite, redis or tiered\n", backend);
    return 1;
  }
#define T(fn) cmocka_unit_test_setup_teardown(fn, cmt_registry_setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      T(get_set_delete_clear),
      T(get_into),
      T(bad_arguments),
      T(huge_values),
      T(eviction_by_entries),
      T(get_or_load),
      T(get_hit_then_load),
      T(get_or_load_too_large),
      T(get_or_load_timeout),
      T(stats_json_and_reset),
      T(default_sampling),
      T(shared_names_and_metrics_off),
      T(prefix_and_default_registry),
      T(series_cap),
      T(closed_caches_free_their_series),
      T(looked_up_cache_series_stays),
      T(redis_name_is_the_namespace),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
