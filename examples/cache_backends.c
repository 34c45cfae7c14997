/* SPDX-License-Identifier: Apache-2.0 */
/* examples/cache_backends.c: the same cache code over each backend, with a
 * loader and every error handled.
 *
 *   cache_backends [REDIS_URI]
 *
 * memory:// and sqlite:// (a file in the current directory) always run;
 * with a Redis URI ("redis://127.0.0.1:6379/0", "redis+unix:///run/redis.sock")
 * a redis:// cache and a tiered cache (memory in front of Redis) run too.
 * Prints one line per cache and the hit ratio its metrics recorded; exits 1
 * on any failure, saying what failed (cm_errmsg()). */
#include <cachemeter/cachemeter.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source of truth behind the caches: here, a table of users. */
static const char *const kUsers[][2] = {{"alice", "admin"}, {"bob", "reader"}, {"carol", "editor"}};

/* cm_loader_fn: called on a miss by one caller per key (the others wait for
 * its value). The value goes in a buffer from cm_alloc, which the cache takes. */
static int load_user(void *ctx, const void *key, size_t klen, void **val, size_t *vlen) {
    int *loads = ctx;
    ++*loads;
    for (size_t i = 0; i < sizeof kUsers / sizeof kUsers[0]; i++) {
        if (strlen(kUsers[i][0]) == klen && memcmp(kUsers[i][0], key, klen) == 0) {
            size_t n = strlen(kUsers[i][1]);
            if ((*val = cm_alloc(n)) == NULL) return CM_ENOMEM;
            memcpy(*val, kUsers[i][1], n);
            *vlen = n;
            return CM_OK;
        }
    }
    return CM_MISS; /* no such user: nothing cached, the caller gets CM_MISS */
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "cache_backends: %s: %s: %s\n", what, cm_status_name(rc), cm_errmsg());
    return 1;
}

/* Looks each user up twice (a miss that loads, then a hit) plus one unknown
 * user, on the cache opened over uri; 0 on success. */
static int run(cm_registry *reg, const char *name, const char *uri, const char *l2) {
    cm_cache *c = NULL;
    int rc = l2 ? cm_cache_open_tiered(&c, reg, name, uri, l2) : cm_cache_open(&c, reg, name, uri);
    if (rc != CM_OK) return fail(name, rc);
    rc = cm_cache_clear(c); /* a shared store may hold an earlier run's entries */
    if (rc != CM_OK) {
        cm_cache_close(c);
        return fail("clear", rc);
    }
    int loads = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof kUsers / sizeof kUsers[0]; i++) {
            void *val = NULL;
            size_t n = 0;
            rc = cm_cache_get_or_load(c, kUsers[i][0], strlen(kUsers[i][0]), load_user, &loads, 0, &val, &n);
            if (rc != CM_OK) {
                cm_cache_close(c);
                return fail("get_or_load", rc);
            }
            if (n != strlen(kUsers[i][1]) || memcmp(val, kUsers[i][1], n) != 0) {
                fprintf(stderr, "cache_backends: %s: wrong value for %s\n", name, kUsers[i][0]);
                cm_free(val);
                cm_cache_close(c);
                return 1;
            }
            cm_free(val);
        }
    }
    void *val = NULL;
    size_t n = 0;
    rc = cm_cache_get_or_load(c, "mallory", 7, load_user, &loads, 0, &val, &n);
    if (rc != CM_MISS) {
        cm_free(val);
        cm_cache_close(c);
        return fail("an unknown user should be a miss", rc);
    }
    char *json = NULL;
    rc = cm_cache_stats_json(c, &json);
    if (rc != CM_OK) {
        cm_cache_close(c);
        return fail("stats", rc);
    }
    const char *ratio = strstr(json, "\"hit_ratio\":");
    printf("%-8s %-44s loads=%d %.*s\n", name, l2 ? "tiered: memory + redis" : uri, loads,
           ratio ? (int)strcspn(ratio, ",}") : 0, ratio ? ratio : "");
    cm_free(json);
    cm_cache_close(c);
    return loads == 4 ? 0 : (fprintf(stderr, "cache_backends: %s: %d loads, expected 4\n", name, loads), 1);
}

int main(int argc, char **argv) {
    cm_registry *reg = NULL;
    int rc = cm_registry_new(&reg, NULL);
    if (rc != CM_OK) return fail("cm_registry_new", rc);
    int failed = run(reg, "memory", "memory://?max_entries=1000&ttl_ms=60000", NULL);
    failed |= run(reg, "sqlite", "sqlite://example-cache.db?ttl_ms=60000", NULL);
    if (argc > 1) {
        failed |= run(reg, "redis", argv[1], NULL);
        failed |= run(reg, "tiered", "memory://?max_entries=1000", argv[1]);
    }
    cm_registry_free(reg);
    return failed;
}
