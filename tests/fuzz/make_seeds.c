/* SPDX-License-Identifier: Apache-2.0 */
/* tests/fuzz/make_seeds.c: writes real metrics files through
 * cm_registry_persist into DIR, the seeds of fuzz_persist_file
 * (make_seeds.sh runs it and shrinks the files). Usage: make_seeds DIR */
#include <cachemeter/cachemeter.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int rc, const char *what) {
  if (rc != CM_OK) {
    fprintf(stderr, "make_seeds: %s: %s\n", what, cm_errmsg());
    exit(1);
  }
}

static cm_registry *persisted(const char *dir, const char *name, const char *options) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  remove(path);
  cm_registry *reg = NULL;
  check(cm_registry_new(&reg, options), "cm_registry_new");
  check(cm_registry_persist(reg, path, 0), path);
  return reg;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  cm_family *f = NULL;
  cm_series *s = NULL;

  cm_registry_free(persisted(dir, "empty.db", NULL));

  cm_registry *reg = persisted(dir, "counter.db", NULL);
  const char *labels[] = {"path", "code"};
  const char *v1[] = {"/a\"b\\c\nd", "200"}, *v2[] = {"\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9", ""};
  check(cm_counter_new(reg, "requests_total", "Requests served.", labels, 2, &f), "counter");
  check(cm_family_series(f, v1, 2, &s), "series");
  cm_counter_add(s, 42.5);
  check(cm_family_series(f, v2, 2, &s), "series");
  cm_counter_add(s, 7);
  check(cm_registry_flush(reg), "flush");
  cm_registry_free(reg);

  reg = persisted(dir, "all_kinds.db", "persist_gauges=true&prefix=app_");
  check(cm_counter_new(reg, "jobs", "Jobs.\\ with a backslash", NULL, 0, &f), "counter");
  check(cm_family_series(f, NULL, 0, &s), "series");
  cm_counter_add(s, 1e15);
  check(cm_gauge_new(reg, "temperature", "", labels, 1, &f), "gauge");
  check(cm_family_series(f, v1, 1, &s), "series");
  cm_gauge_set(s, -273.15);
  const double bounds[] = {-1, 0, 0.5, 1e9};
  check(cm_histogram_new(reg, "sizes", "Sizes.", labels, 2, bounds, 4, &f), "histogram");
  check(cm_family_series(f, v2, 2, &s), "series");
  cm_histogram_observe(s, 0.25);
  cm_histogram_observe(s, 2e9);
  check(cm_histogram_new(reg, "latency_seconds", "Latency.", NULL, 0, NULL, 0, &f), "histogram");
  check(cm_family_series(f, NULL, 0, &s), "series");
  cm_histogram_observe(s, 0.003);
  check(cm_registry_flush(reg), "flush");
  cm_registry_free(reg);
  return 0;
}
