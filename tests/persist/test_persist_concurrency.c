/* SPDX-License-Identifier: Apache-2.0 */
/* tests/persist/test_persist_concurrency.c: writers update counters and
 * histograms and create series while the background flusher runs every
 * millisecond and another thread flushes explicitly; then a second registry
 * restores the file and must hold exactly what was recorded. Run under TSan
 * (label concurrency). usage: cm_persist_concurrency <path of a fresh file> */
#include <cachemeter/cachemeter.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kWriters = 4, kIterations = 20000, kLabels = 8 };

static cm_family *counters, *histograms;
static volatile int done_writers;

#define CHECK(expr)                                                                              \
  do {                                                                                           \
    int rc_ = (expr);                                                                            \
    if (rc_ != CM_OK) {                                                                          \
      fprintf(stderr, "%s:%d: %s: %s: %s\n", __FILE__, __LINE__, #expr, cm_status_name(rc_),     \
              cm_errmsg());                                                                      \
      exit(1);                                                                                   \
    }                                                                                            \
  } while (0)

static void *writer(void *arg) {
  long t = (long)(size_t)arg;
  for (long i = 0; i < kIterations; ++i) {
    char lv[16];
    snprintf(lv, sizeof lv, "v%ld", (i + t) % kLabels); /* series created while flushing */
    const char *values[] = {lv};
    cm_series *c, *h;
    CHECK(cm_family_series(counters, values, 1, &c));
    CHECK(cm_family_series(histograms, values, 1, &h));
    cm_counter_add(c, 1);
    cm_histogram_observe(h, (double)(i % 3));
  }
  __atomic_add_fetch(&done_writers, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *flusher(void *arg) {
  cm_registry *reg = arg;
  while (__atomic_load_n(&done_writers, __ATOMIC_ACQUIRE) < kWriters) CHECK(cm_registry_flush(reg));
  return NULL;
}

static void families(cm_registry *reg) {
  const char *labels[] = {"l"};
  const double bounds[] = {0.5, 1.5};
  CHECK(cm_counter_new(reg, "conc_total", "Concurrent adds.", labels, 1, &counters));
  CHECK(cm_histogram_new(reg, "conc_seconds", "Concurrent observations.", labels, 1, bounds, 2, &histograms));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: cm_persist_concurrency <path>\n");
    return 2;
  }
  const char *path = argv[1];
  static const char *const suffixes[] = {"", "-lock", "-wal", "-shm"};
  for (size_t i = 0; i < 4; ++i) {
    char p[4096];
    snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
    unlink(p);
  }
  cm_registry *reg;
  CHECK(cm_registry_new(&reg, NULL));
  CHECK(cm_registry_persist(reg, path, 1));
  families(reg); /* registered after persist */
  pthread_t w[kWriters], f;
  pthread_create(&f, NULL, flusher, reg);
  for (long t = 0; t < kWriters; ++t) pthread_create(&w[t], NULL, writer, (void *)(size_t)t);
  for (long t = 0; t < kWriters; ++t) pthread_join(w[t], NULL);
  pthread_join(f, NULL);
  cm_registry_free(reg);

  CHECK(cm_registry_new(&reg, NULL));
  families(reg);
  CHECK(cm_registry_persist(reg, path, 0));
  double total = 0, count = 0, sum = 0;
  for (int l = 0; l < kLabels; ++l) {
    char lv[16];
    snprintf(lv, sizeof lv, "v%d", l);
    const char *values[] = {lv};
    cm_series *c, *h;
    CHECK(cm_family_series(counters, values, 1, &c));
    CHECK(cm_family_series(histograms, values, 1, &h));
    total += cm_series_value(c);
    count += cm_series_value(h);
    sum += cm_histogram_sum(h);
  }
  cm_registry_free(reg);
  double want_sum = 0;
  for (long i = 0; i < kIterations; ++i) want_sum += (double)(i % 3);
  want_sum *= kWriters;
  if (total != kWriters * kIterations || count != kWriters * kIterations || sum != want_sum) {
    fprintf(stderr, "restored total %.17g count %.17g sum %.17g, want %d %d %.17g\n", total, count, sum,
            kWriters * kIterations, kWriters * kIterations, want_sum);
    return 1;
  }
  printf("ok: %d adds and observations survived a restart under concurrent flushes\n", kWriters * kIterations);
  return 0;
}
