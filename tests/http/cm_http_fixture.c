/* SPDX-License-Identifier: Apache-2.0 */
/* tests/http/cm_http_fixture.c: a process that serves a known registry over
 * the embedded HTTP endpoint, driven from its standard input, for the HTTP
 * tests (pytest), the Prometheus test and the HTTP benchmark.
 *
 * usage: cm_http_fixture [--listen ADDR] [--options OPTS] [--series N] [--writers N]
 *   --listen ADDR   where to serve (default 127.0.0.1:0: a free port)
 *   --options OPTS  cm_server_start options ("token=s3cret", TLS files, ...)
 *   --series N      N extra counter series fixture_bulk_total{i="0".."N-1"}
 *   --writers N     N threads adding 1 to the bulk series in a loop until quit
 * It prints "PORT <port>" once serving, then reads commands, one per line,
 * and answers each with "OK" (or "ERR <message>"):
 *   add <method> <v>     fixture_requests_total{method} += v
 *   set <v>              fixture_temperature_celsius = v
 *   observe <v>          fixture_latency_seconds observes v
 *   cache_get <key>      a get on the memory cache "fixture" (a hit or a miss)
 *   cache_set <key> <v>  a set on that cache
 *   open <name> <uri>    cm_cache_open another cache (at most 16 at once)
 *   close <name>         cm_cache_close it
 *   quit                 stop the server and exit 0 (so does end of input)
 * Values are parsed with strtod. Exit 2 on bad arguments, 1 if serving fails. */
#define _POSIX_C_SOURCE 200809L
#include <cachemeter/cachemeter.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cm_series **bulk;
static struct {
  char name[64];
  cm_cache *cache;
} opened[16];
static long nbulk;
static volatile int stopping;

static void *writer(void *arg) {
  long i = (long)(size_t)arg;
  while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED)) {
    cm_counter_add(bulk[i % nbulk], 1);
    i += 7;
  }
  return NULL;
}

static _Noreturn void fail(const char *what, int rc) {
  fprintf(stderr, "cm_http_fixture: %s: %s: %s\n", what, cm_status_name(rc), cm_errmsg());
  exit(1);
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:0", *options = NULL;
  long writers = 0;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && strcmp(argv[i], "--listen") == 0) {
      listen = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--options") == 0) {
      options = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--series") == 0) {
      nbulk = strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && strcmp(argv[i], "--writers") == 0) {
      writers = strtol(argv[++i], NULL, 10);
    } else {
      fprintf(stderr, "usage: cm_http_fixture [--listen ADDR] [--options OPTS] [--series N] [--writers N]\n");
      return 2;
    }
  }
  if (nbulk < 0 || writers < 0 || (writers > 0 && nbulk == 0)) {
    fprintf(stderr, "cm_http_fixture: --writers needs --series\n");
    return 2;
  }

  cm_registry *reg;
  int rc = cm_registry_new(&reg, "max_series=1000000");
  if (rc != CM_OK) fail("cm_registry_new", rc);
  const char *method[] = {"method"};
  cm_family *requests, *temperature, *latency, *bulk_family;
  if ((rc = cm_counter_new(reg, "fixture_requests_total", "Requests, by method.", method, 1, &requests)) ||
      (rc = cm_gauge_new(reg, "fixture_temperature_celsius", "A gauge.", NULL, 0, &temperature)) ||
      (rc = cm_histogram_new(reg, "fixture_latency_seconds", "A histogram.", NULL, 0, NULL, 0, &latency)))
    fail("registering the fixture metrics", rc);
  cm_series *temp_s, *lat_s;
  if ((rc = cm_family_series(temperature, NULL, 0, &temp_s)) || (rc = cm_family_series(latency, NULL, 0, &lat_s)))
    fail("cm_family_series", rc);
  if (nbulk > 0) {
    const char *i_label[] = {"i"};
    if ((rc = cm_counter_new(reg, "fixture_bulk_total", "Bulk series.", i_label, 1, &bulk_family)))
      fail("cm_counter_new bulk", rc);
    bulk = calloc((size_t)nbulk, sizeof *bulk);
    for (long i = 0; i < nbulk; ++i) {
      char v[24];
      snprintf(v, sizeof v, "%ld", i);
      const char *vals[] = {v};
      if ((rc = cm_family_series(bulk_family, vals, 1, &bulk[i]))) fail("bulk series", rc);
    }
  }
  cm_cache *cache;
  if ((rc = cm_cache_open(&cache, reg, "fixture", "memory://?max_entries=1000&sample=1"))) fail("cm_cache_open", rc);

  cm_server *srv;
  if ((rc = cm_server_start(&srv, reg, listen, options))) fail("cm_server_start", rc);
  pthread_t *threads = calloc((size_t)(writers ? writers : 1), sizeof *threads);
  for (long t = 0; t < writers; ++t) pthread_create(&threads[t], NULL, writer, (void *)(size_t)t);
  printf("PORT %d\n", cm_server_port(srv));
  fflush(stdout);

  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32] = "", a[1024] = "", b[1024] = "";
    int n = sscanf(line, "%31s %1023s %1023s", cmd, a, b);
    if (n < 1) continue;
    if (strcmp(cmd, "quit") == 0) break;
    rc = CM_OK;
    if (strcmp(cmd, "add") == 0 && n == 3) {
      const char *vals[] = {a};
      cm_series *s;
      rc = cm_family_series(requests, vals, 1, &s);
      if (rc == CM_OK) cm_counter_add(s, strtod(b, NULL));
    } else if (strcmp(cmd, "set") == 0 && n == 2) {
      cm_gauge_set(temp_s, strtod(a, NULL));
    } else if (strcmp(cmd, "observe") == 0 && n == 2) {
      cm_histogram_observe(lat_s, strtod(a, NULL));
    } else if (strcmp(cmd, "cache_get") == 0 && n == 2) {
      void *v = NULL;
      size_t len = 0;
      rc = cm_cache_get(cache, a, strlen(a), &v, &len);
      cm_free(v);
      if (rc == CM_MISS) rc = CM_OK;
    } else if (strcmp(cmd, "cache_set") == 0 && n == 3) {
      rc = cm_cache_set(cache, a, strlen(a), b, strlen(b), 0);
    } else if (strcmp(cmd, "open") == 0 && n == 3 && strlen(a) < sizeof opened[0].name) {
      size_t i = 0;
      while (i < sizeof opened / sizeof opened[0] && opened[i].cache) ++i;
      if (i == sizeof opened / sizeof opened[0]) {
        printf("ERR too many caches\n");
        fflush(stdout);
        continue;
      }
      rc = cm_cache_open(&opened[i].cache, reg, a, b);
      if (rc == CM_OK) strcpy(opened[i].name, a);
    } else if (strcmp(cmd, "close") == 0 && n == 2) {
      size_t i = 0;
      while (i < sizeof opened / sizeof opened[0] && !(opened[i].cache && strcmp(opened[i].name, a) == 0)) ++i;
      if (i == sizeof opened / sizeof opened[0]) {
        printf("ERR no such cache: %s\n", a);
        fflush(stdout);
        continue;
      }
      cm_cache_close(opened[i].cache);
      opened[i].cache = NULL;
    } else {
      printf("ERR unknown command: %s", line);
      fflush(stdout);
      continue;
    }
    if (rc == CM_OK)
      printf("OK\n");
    else
      printf("ERR %s %s\n", cm_status_name(rc), cm_errmsg());
    fflush(stdout);
  }
  __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
  for (long t = 0; t < writers; ++t) pthread_join(threads[t], NULL);
  cm_server_stop(srv);
  cm_cache_close(cache);
  for (size_t i = 0; i < sizeof opened / sizeof opened[0]; ++i) cm_cache_close(opened[i].cache);
  cm_registry_free(reg);
  free(threads);
  free(bulk);
  return 0;
}
