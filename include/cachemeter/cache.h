/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/cache.h: cache handles over interchangeable backends, with every
 * operation counted and timed in a metrics registry.
 *
 * A cm_cache is a named handle over a backend chosen by a URI:
 *   memory://?max_entries=100000&max_bytes=64MiB&ttl_ms=30000
 * Keys and values are arbitrary bytes (embedded NULs allowed); keys must not be
 * empty. The metrics each cache records are listed in docs/metrics.md.
 *
 * URIs: memory://?..., sqlite:///path.db?..., redis://host:port/db?...,
 * redis+unix:///path.sock?..., redis+sentinel://s1:26379,s2/master-name?...
 * (the master the sentinels name, followed across failovers) and
 * redis+cluster://node1:port,node2:port?... (a Redis Cluster, routed by
 * slot; docs/redis-scale-out.md); every option of each (and the options every
 * cache takes: ttl_ms, max_entry_bytes, sample, metrics, load_timeout_ms,
 * stale_ms, breaker_failures, breaker_cooldown_ms), its default, range and
 * the statuses each backend's failures map to are in docs/uri.md, the one
 * reference. Unknown options are CM_EINVAL with the option's name in
 * cm_errmsg().
 *
 * Thread-safety: every function may be called concurrently on one handle,
 * except cm_cache_close(), which must not race any other call on that handle. */
#ifndef CACHEMETER_CACHE_H
#define CACHEMETER_CACHE_H

#include "common.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cm_cache cm_cache;

/* Opens a cache named `name` over the backend `uri`, recording its metrics in
 * reg (NULL: the process-wide default registry). The name becomes the `cache`
 * label: 1..200 bytes of UTF-8. Two handles with the same name on one registry
 * share their metric series (but not their entries, unless the backend is
 * shared, as redis is). The registry must outlive the cache.
 * On success *out is a handle the caller closes with cm_cache_close().
 * Returns CM_OK; CM_EINVAL (out/name/uri NULL or invalid, unknown scheme or
 * option, bad value); CM_ELIMIT (the registry's max_series is reached);
 * CM_ENOMEM; and, from backends that touch their store on open (sqlite://
 * opens the file and creates its schema; redis:// connects only on the first
 * call; redis+sentinel:// asks the sentinels and PINGs the master, and
 * redis+cluster:// reads the slot map): CM_ECORRUPT (not a SQLite file, or
 * SQLite with another layout; left untouched), CM_EUNAVAILABLE (the file
 * cannot be opened, created or written; no sentinel or cluster node answers,
 * or the server a sentinel names is not a master), CM_ETIMEOUT (another
 * connection held the write lock past busy_timeout_ms while the schema was
 * created), CM_EBACKEND (any other failure of the store, a full disk); and
 * CM_EINVAL also for a master name no sentinel knows or a node not in
 * cluster mode behind redis+cluster://. */
CM_EXTERN int cm_cache_open(cm_cache **out, cm_registry *reg, const char *name, const char *uri);

/* Opens a two-tier cache: a memory L1 in this process (l1_uri: memory://
 * with max_entries, max_bytes, and ttl_ms = the longest an entry stays in
 * L1) in front of a shared L2 (l2_uri: redis://, redis+unix://,
 * redis+sentinel://, redis+cluster:// or sqlite://, which also carries the
 * front's options: ttl_ms, stale_ms, sample, ...).
 * Reads try L1, then L2 (an L2 hit is copied into L1); writes go to L2, then
 * L1. Hits are also counted per tier in cache_tier_hits_total{tier="l1|l2"}
 * with cache_tier_get_duration_seconds per tier (docs/metrics.md).
 * Coherence: with a redis L2, a listener connection receives Redis's
 * invalidation messages for the prefix (CLIENT TRACKING BCAST), so a key
 * another process sets or deletes leaves this L1 promptly; while that
 * connection is down, L1 is emptied (counted in cache_l1_flushes_total) and
 * not used, except while L2 itself is unreachable (a cluster L2: one such
 * connection per primary). A sqlite L2, and a redis L2 with
 * read_from=replica, have no change feed: an L1 copy may be stale for up to
 * the L1's ttl_ms (default 1000; plus the replica's lag).
 * While L2 fails (CM_EUNAVAILABLE, CM_ETIMEOUT, CM_EBACKEND, or its circuit
 * is open), sets and deletes reach L1 and return CM_OK; the failures are
 * counted in cache_errors_total. Such writes never reach L2.
 * Close with cm_cache_close(). Returns as cm_cache_open(); CM_EINVAL also
 * when l1_uri is not memory://, l2_uri is not redis or sqlite, or l1_uri
 * carries a front option other than ttl_ms. Does not connect to L2. */
CM_EXTERN int cm_cache_open_tiered(cm_cache **out, cm_registry *reg, const char *name, const char *l1_uri,
                                   const char *l2_uri);

/* Closes the handle and frees its memory-backend entries. NULL: no-op.
 * When it is the last open handle of its name (and backend) on its registry,
 * the cache's series (docs/metrics.md) leave the registry: they no longer
 * render nor count against max_series, so opening and closing caches of ever
 * new names never exhausts it. A persisted registry writes their last values
 * at its next flush and keeps them in the file. A cache reopened later under
 * the name starts its series at zero (a counter reset to Prometheus). A
 * series the application looked up itself with cm_family_series() stays
 * (its handle remains valid). */
CM_EXTERN void cm_cache_close(cm_cache *c);

/* Looks key up. On CM_OK *val is a new buffer of *vlen bytes (plus a NUL
 * after them, not counted, for convenience) that the caller frees with
 * cm_free(); on any other status *val is NULL and *vlen 0.
 * Returns CM_OK (hit); CM_MISS (absent or expired); CM_EINVAL (c, key, val or
 * vlen NULL, klen 0); CM_ENOMEM; backend errors. */
CM_EXTERN int cm_cache_get(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);

/* Looks key up and copies its value into the caller's buffer buf of cap
 * bytes: nothing to free, and no allocation when the backend copies
 * straight from its entry (a backend that cannot goes through an internal
 * copy). No NUL is added after the value. buf may be NULL when cap is 0 (a
 * probe for the size).
 * Returns:
 *   CM_OK      a hit: the value's *vlen bytes are in buf[0 .. *vlen).
 *   CM_ELIMIT  a hit whose value does not fit: *vlen is its length, the
 *              cap it needs; cm_errmsg() says so. Call again with a buffer
 *              of at least *vlen bytes (the entry may have changed by then:
 *              the call can return CM_ELIMIT again, or CM_MISS).
 *   CM_MISS    absent or expired; *vlen is 0.
 *   CM_EINVAL  c, key or vlen NULL, klen 0, buf NULL with cap > 0.
 *   CM_ENOMEM, and backend errors (as cm_cache_get: CM_EUNAVAILABLE,
 *              CM_ETIMEOUT, CM_EBACKEND, CM_ECORRUPT); *vlen is 0.
 * On any status but CM_OK the contents of buf are unspecified.
 * Counted and timed exactly as cm_cache_get: a hit (CM_OK or CM_ELIMIT)
 * counts in cache_hits_total, a miss in cache_misses_total, a backend
 * failure in cache_errors_total{op="get"}; CM_ELIMIT is not a cache error.
 * A retry after CM_ELIMIT is a second lookup and counts again. */
CM_EXTERN int cm_cache_get_into(cm_cache *c, const void *key, size_t klen, void *buf, size_t cap,
                                size_t *vlen);

/* The lookup cm_cache_get_or_load starts with, on its own: for a caller that
 * must not wait for a load. A fresh value is returned and counted exactly as
 * cm_cache_get (or cm_cache_get_or_load) counts a hit. Anything else --
 * absent, expired, or expired inside the stale window -- returns CM_MISS and
 * is neither counted nor timed: the caller is expected to follow with
 * cm_cache_get_or_load of the same key, which counts that miss once (and
 * loads, waits for another caller's load, or serves the stale value). It
 * never calls a loader and never waits for one, so a binding may call it
 * while holding its interpreter's lock and release that lock only for the
 * cm_cache_get_or_load of a miss (the Python binding's @cached does, on
 * memory:// caches). It does the backend's lookup: on a redis or sqlite cache
 * a miss then costs that lookup twice, and a tiered cache counts both in its
 * per-tier series (cache_tier_*). Errors are counted as cm_cache_get's.
 * On CM_OK *val is a buffer of *vlen bytes (NUL after them) the caller frees
 * with cm_free(); otherwise *val is NULL and *vlen 0.
 * Returns CM_OK (hit); CM_MISS (not a fresh hit, uncounted); CM_EINVAL (c,
 * key, val or vlen NULL, klen 0); CM_ENOMEM; backend errors. */
CM_EXTERN int cm_cache_get_hit(cm_cache *c, const void *key, size_t klen, void **val, size_t *vlen);

/* Stores a copy of value under key. ttl_ms: 0 = the cache's default ttl_ms,
 * < 0 = never expires, > 0 = expires after that many ms. val may be NULL
 * when vlen is 0. Returns CM_OK; CM_EINVAL (c or key NULL, klen 0, val NULL
 * with vlen > 0); CM_ELIMIT (klen + vlen > max_entry_bytes, or more than the
 * backend can ever hold; cm_errmsg() gives the key and value sizes as passed,
 * even when their sum overflows a size_t: the value is not read then);
 * CM_ENOMEM; backend errors.
 * CM_ETIMEOUT from a remote backend (redis) means the outcome is unknown:
 * the command was sent and its reply did not come within timeout_ms, so the
 * server may have stored the value all the same. It is counted as what it
 * is, cache_errors_total{op="set",kind="timeout"}, not in cache_sets_total;
 * a caller that must know reads the key back. Every other failure means
 * nothing was stored. */
CM_EXTERN int cm_cache_set(cm_cache *c, const void *key, size_t klen, const void *val, size_t vlen,
                           int64_t ttl_ms);

/* Removes key. Returns CM_OK (it was there), CM_MISS (it was not);
 * CM_EINVAL (c or key NULL, klen 0); backend errors. */
CM_EXTERN int cm_cache_delete(cm_cache *c, const void *key, size_t klen);

/* Removes every entry (not counted as evictions). Returns CM_OK; CM_EINVAL
 * (c NULL); backend errors. */
CM_EXTERN int cm_cache_clear(cm_cache *c);

/* A loader for cm_cache_get_or_load: produces the value of key into *val, a
 * buffer allocated with cm_alloc() (ownership passes to the cache, also when
 * the loader fails), and its length into *vlen; returns CM_OK, CM_MISS (no
 * such value: nothing is cached), or a negative status that is handed back
 * to every caller waiting for this load (nothing is cached). The cache hands
 * that very buffer to the caller that ran the load (it is not copied; a NUL
 * is written after the value, growing the buffer only when it has no room:
 * allocate *vlen + 1 bytes to spare that); waiting callers get copies.
 * Thread and locks: the loader runs on the thread of the cm_cache_get_or_load
 * caller that leads the load (one per key and process at a time), with no
 * lock of the library held: it may block, and it may call any cm_* function,
 * including operations on this cache for other keys. key points to klen bytes
 * valid only during the call. Callers of the same key on other threads wait
 * for it (at most load_timeout_ms); on a redis cache, other processes' callers
 * too. So a loader must not call cm_cache_get_or_load for the same key on the
 * same cache (it would wait for itself until load_timeout_ms, then fail with
 * CM_ETIMEOUT), and must not wait for a thread that does. */
typedef int (*cm_loader_fn)(void *ctx, const void *key, size_t klen, void **val, size_t *vlen);

/* Like cm_cache_get, but on a miss runs load(ctx, key, klen, ...) and caches
 * its value with ttl_ms (as for cm_cache_set). Single flight: concurrent
 * callers missing the same key wait for the one load in progress rather than
 * loading again, for at most load_timeout_ms (then CM_ETIMEOUT, counted).
 * With stale_ms > 0 an entry expired less than stale_ms ago is returned at
 * once (a stale hit) while this caller refreshes it (unless a refresh is in
 * progress); a failed refresh keeps the stale value.
 * Across processes (a redis or tiered-over-redis cache): the caller that
 * would load first takes a lock on the key in Redis (SET NX PX with a random
 * token, for load_timeout_ms; released by compare-and-delete once the value
 * is stored), so one process loads; the others poll Redis for its value for
 * at most load_timeout_ms (then CM_ETIMEOUT, counted in lock_timeouts_total).
 * If the lock cannot be taken because Redis fails, the load runs unlocked.
 * Returns CM_OK with *val and *vlen as for cm_cache_get (also when the loaded
 * value is larger than max_entry_bytes: it is returned but not cached, and
 * counted as a rejection); CM_MISS when the loader returned CM_MISS; the loader's negative
 * status (cm_errmsg() says so); CM_ETIMEOUT; CM_EINVAL (c, key, load, val or
 * vlen NULL, klen 0; a loader that returned CM_OK with a NULL value and
 * vlen > 0, or a positive status other than CM_MISS); CM_ENOMEM; backend
 * errors of the lookup. A failure to store the loaded value is counted in
 * cache_errors_total{op="set"} but the value is still returned. */
CM_EXTERN int cm_cache_get_or_load(cm_cache *c, const void *key, size_t klen, cm_loader_fn load,
                                   void *ctx, int64_t ttl_ms, void **val, size_t *vlen);

/* This cache's statistics as a JSON object (schema in docs/metrics.md): hits,
 * misses, hit_ratio, entries, bytes, evictions, per-operation p50/p99 latency
 * in seconds, and the hit ratio over the last 1 minute, 5 minutes and 1 hour.
 * In a registry shared by worker processes (docs/multiprocess.md) the counts,
 * hit_ratio, evictions and latencies are the pool's (every worker's cache of
 * this name), read from the shared directory; entries and bytes are this
 * handle's backend's, the windows this process's.
 * *json is a NUL-terminated buffer the caller frees with cm_free().
 * Returns CM_OK; CM_EINVAL (c or json NULL); CM_ENOMEM; CM_EUNAVAILABLE (the
 * shared directory cannot be read). */
CM_EXTERN int cm_cache_stats_json(cm_cache *c, char **json);

/* Zeroes this cache's metric series (every handle sharing its name sees it;
 * Prometheus reads it as a counter reset) and its time windows. Entries stay.
 * Returns CM_OK; CM_EINVAL (c NULL). */
CM_EXTERN int cm_cache_reset_stats(cm_cache *c);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_CACHE_H */
