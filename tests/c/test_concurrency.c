/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_concurrency.c: worker threads hammer shared and per-thread
 * series (counter add, gauge add, histogram observe, series lookup) while a
 * render thread renders in every format, creates new series and sets a
 * gauge. Every update adds an integer, so the final values are exact.
 * Overlap is guaranteed without timing: a worker does at least ITERS
 * iterations and goes on until the renderer has finished MIN_RENDERS
 * renderings, counting what it did.
 * Built for TSan too (scripts run the "concurrency" label under it): sizes
 * keep it well under a second natively.
 * cmocka assertions longjmp to the test's own thread, so the other threads
 * only record what they saw; the main thread asserts after joining. */
#include "cmtest.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum { WORKERS = 4, ITERS = 20000, MIN_RENDERS = 60, LOOKUP_EVERY = 500, MAX_NEW_SERIES = 500 };

struct shared {
  cm_registry *reg;
  cm_family *hits, *level, *lat;
  cm_series *hits_shared, *level_shared, *lat_shared;
  pthread_barrier_t start;
  atomic_int workers_done;
  atomic_int renders; /* finished renderings */
};

struct worker {
  struct shared *sh;
  cm_series *hits, *level, *lat;
  long iters; /* iterations done */
  int lookup_mismatches;
};

struct renderer {
  struct shared *sh;
  int renders, new_series, last_set;
  int errors;          /* failed calls */
  int non_monotonic;   /* the shared counter went backwards between renders */
  int inf_ne_count;    /* a histogram's le="+Inf" differed from its _count */
  int missing;         /* the shared counter absent from a rendering */
  char first_error[256];
};

static cm_series *get(cm_family *f, const char *value) {
  cm_series *s = NULL;
  if (cm_family_series(f, &value, 1, &s) != CM_OK) return NULL;
  return s;
}

static void *work(void *arg) {
  struct worker *w = arg;
  struct shared *sh = w->sh;
  pthread_barrier_wait(&sh->start);
  long j = 0;
  for (; j < ITERS || atomic_load(&sh->renders) < MIN_RENDERS; j++) {
    cm_counter_add(sh->hits_shared, 1);
    cm_counter_add(w->hits, 2);
    cm_gauge_add(sh->level_shared, 1);
    cm_gauge_add(w->level, -1);
    cm_histogram_observe(sh->lat_shared, (double)(j % 4)); /* 0, 1, 2, 3 */
    cm_histogram_observe(w->lat, (double)(j % 4));
    /* Lock-free lookups racing with the renderer's insertions. */
    if (j % LOOKUP_EVERY == 0 && get(sh->hits, "shared") != sh->hits_shared)
      w->lookup_mismatches++;
  }
  w->iters = j;
  atomic_fetch_add(&sh->workers_done, 1);
  return NULL;
}

static void record(struct renderer *r, int *counter, const char *what) {
  if (r->errors + r->non_monotonic + r->inf_ne_count + r->missing == 0)
    snprintf(r->first_error, sizeof r->first_error, "%s (%s)", what, cm_errmsg());
  (*counter)++;
}

/* Checks one Prometheus rendering against the previous one. */
static void check_text(struct renderer *r, const char *text, double *last_hits) {
  double hits = cmt_sample(text, "hits_total{t=\"shared\"}");
  if (isnan(hits)) record(r, &r->missing, "hits value");
  if (hits < *last_hits) record(r, &r->non_monotonic, "hits went backwards");
  *last_hits = hits;
  for (int i = -1; i < WORKERS; i++) {
    char inf[64], count[64], t[16];
    if (i < 0) strcpy(t, "shared");
    else snprintf(t, sizeof t, "w%d", i);
    snprintf(inf, sizeof inf, "lat_bucket{t=\"%s\",le=\"+Inf\"}", t);
    snprintf(count, sizeof count, "lat_count{t=\"%s\"}", t);
    if (cmt_sample(text, inf) != cmt_sample(text, count)) record(r, &r->inf_ne_count, inf);
  }
}

static void *render(void *arg) {
  struct renderer *r = arg;
  struct shared *sh = r->sh;
  cm_series *set_me = get(sh->level, "render");
  double last_hits = 0;
  pthread_barrier_wait(&sh->start);
  while (atomic_load(&sh->workers_done) < WORKERS) {
    int format = r->renders % 3;
    char *out = NULL;
    size_t len = 0;
    if (cm_registry_render(sh->reg, format, &out, &len) != CM_OK || out == NULL ||
        strlen(out) != len) {
      record(r, &r->errors, "render");
    } else if (format == CM_FORMAT_PROMETHEUS) {
      check_text(r, out, &last_hits);
    }
    cm_free(out);
    r->renders++;
    atomic_store(&sh->renders, r->renders);

    if (r->new_series < MAX_NEW_SERIES) {
      char value[16];
      snprintf(value, sizeof value, "r%d", r->new_series);
      cm_series *s = get(sh->hits, value);
      if (s == NULL) record(r, &r->errors, "new series");
      cm_counter_add(s, 1);
      r->new_series++;
    }
    cm_gauge_set(set_me, r->renders);
    r->last_set = r->renders;
    double v = cm_series_value(sh->hits_shared);
    if (!(v >= last_hits)) record(r, &r->non_monotonic, "cm_series_value went backwards");
  }
  return NULL;
}

/* What n iterations observed in one histogram: value j % 4 for j < n. */
struct observed {
  double count, sum, value_count[4];
};

static struct observed observations(long n) {
  struct observed o = {.count = (double)n};
  for (int k = 0; k < 4; k++) {
    o.value_count[k] = (double)(n / 4 + (k < n % 4));
    o.sum += k * o.value_count[k];
  }
  return o;
}

static void hammer(void **state) {
  (void)state;
  static const char *const t[] = {"t"};
  static const double bounds[] = {1, 2, 3};
  struct shared sh;
  memset(&sh, 0, sizeof sh);
  sh.reg = cmt_registry(NULL);
  assert_status(cm_counter_new(sh.reg, "hits", NULL, t, 1, &sh.hits), CM_OK);
  assert_status(cm_gauge_new(sh.reg, "level", NULL, t, 1, &sh.level), CM_OK);
  assert_status(cm_histogram_new(sh.reg, "lat", NULL, t, 1, bounds, 3, &sh.lat), CM_OK);
  assert_non_null(sh.hits_shared = get(sh.hits, "shared"));
  assert_non_null(sh.level_shared = get(sh.level, "shared"));
  assert_non_null(sh.lat_shared = get(sh.lat, "shared"));
  atomic_init(&sh.workers_done, 0);
  atomic_init(&sh.renders, 0);
  assert_int_equal(pthread_barrier_init(&sh.start, NULL, WORKERS + 1), 0);

  struct worker w[WORKERS];
  pthread_t threads[WORKERS], rt;
  for (int i = 0; i < WORKERS; i++) {
    char value[16];
    snprintf(value, sizeof value, "w%d", i);
    w[i] = (struct worker){.sh = &sh};
    assert_non_null(w[i].hits = get(sh.hits, value));
    assert_non_null(w[i].level = get(sh.level, value));
    assert_non_null(w[i].lat = get(sh.lat, value));
  }
  struct renderer r;
  memset(&r, 0, sizeof r);
  r.sh = &sh;
  for (int i = 0; i < WORKERS; i++) assert_int_equal(pthread_create(&threads[i], NULL, work, &w[i]), 0);
  assert_int_equal(pthread_create(&rt, NULL, render, &r), 0);
  for (int i = 0; i < WORKERS; i++) assert_int_equal(pthread_join(threads[i], NULL), 0);
  assert_int_equal(pthread_join(rt, NULL), 0);
  pthread_barrier_destroy(&sh.start);

  print_message("%d renderings, %d new series; worker iterations: %ld %ld %ld %ld\n", r.renders,
                r.new_series, w[0].iters, w[1].iters, w[2].iters, w[3].iters);
  /* What the threads saw. */
  if (r.first_error[0]) print_error("render thread: first problem: %s\n", r.first_error);
  assert_int_equal(r.errors, 0);
  assert_int_equal(r.non_monotonic, 0);
  assert_int_equal(r.inf_ne_count, 0);
  assert_int_equal(r.missing, 0);
  assert_true(r.renders >= MIN_RENDERS);
  for (int i = 0; i < WORKERS; i++) assert_int_equal(w[i].lookup_mismatches, 0);

  /* Exact totals, through the handles (every worker has exited, so its
   * cells were folded back) and through a rendering. */
  struct observed total = {0};
  for (int i = 0; i < WORKERS; i++) {
    struct observed own = observations(w[i].iters);
    assert_true(w[i].iters >= ITERS);
    assert_double_exact(cm_series_value(w[i].hits), 2.0 * (double)w[i].iters);
    assert_double_exact(cm_series_value(w[i].level), -(double)w[i].iters);
    assert_double_exact(cm_series_value(w[i].lat), own.count);
    assert_double_exact(cm_histogram_sum(w[i].lat), own.sum);
    total.count += own.count;
    total.sum += own.sum;
    for (int k = 0; k < 4; k++) total.value_count[k] += own.value_count[k];
  }
  const double n = total.count;
  assert_double_exact(cm_series_value(sh.hits_shared), n);
  assert_double_exact(cm_series_value(sh.level_shared), n);
  assert_double_exact(cm_series_value(sh.lat_shared), n);
  assert_double_exact(cm_histogram_sum(sh.lat_shared), total.sum);
  assert_double_exact(cm_series_value(get(sh.level, "render")), r.last_set);

  char *text = cmt_render(sh.reg, CM_FORMAT_PROMETHEUS);
  assert_double_exact(cmt_sample(text, "hits_total{t=\"shared\"}"), n);
  /* Observed values 0..3: buckets le=1 hold 0 and 1, le=2 adds 2, le=3 adds 3. */
  const double *vc = total.value_count;
  assert_double_exact(cmt_sample(text, "lat_bucket{t=\"shared\",le=\"1.0\"}"), vc[0] + vc[1]);
  assert_double_exact(cmt_sample(text, "lat_bucket{t=\"shared\",le=\"2.0\"}"), vc[0] + vc[1] + vc[2]);
  assert_double_exact(cmt_sample(text, "lat_bucket{t=\"shared\",le=\"3.0\"}"), n);
  assert_double_exact(cmt_sample(text, "lat_bucket{t=\"shared\",le=\"+Inf\"}"), n);
  assert_double_exact(cmt_sample(text, "lat_count{t=\"w0\"}"), (double)w[0].iters);
  for (int k = 0; k < r.new_series; k++) {
    char key[64];
    snprintf(key, sizeof key, "hits_total{t=\"r%d\"}", k);
    assert_double_exact(cmt_sample(text, key), 1);
  }
  assert_double_exact(cmt_sample(text, "cachemeter_invalid_observations_total"), 0);
  assert_double_exact(cmt_sample(text, "cachemeter_series_rejected_total"), 0);
  cm_free(text);
  cm_registry_free(sh.reg);
}

/* Caches of distinct names opened, used and closed by several threads (their
 * series created and removed, their cell slots reused) while another thread
 * renders in every format and looks up series of the same families. Each
 * cycler also counts its cycles in an application counter from its own
 * thread (its cells folded at exit): the total is exact, and no series of a
 * closed cache is left. */
enum { CYCLERS = 3, CYCLES = 300 };

struct cycler {
  cm_registry *reg;
  cm_series *cycles;
  int id, failures;
  atomic_int *done;
};

static void *cycle(void *arg) {
  struct cycler *c = arg;
  for (int i = 0; i < CYCLES; i++) {
    char name[32];
    snprintf(name, sizeof name, "c%d-%d", c->id, i);
    cm_cache *cache = NULL;
    if (cm_cache_open(&cache, c->reg, name, "memory://?sample=1") != CM_OK) {
      c->failures++;
      continue;
    }
    void *v = NULL;
    size_t n = 0;
    if (cm_cache_set(cache, "k", 1, "v", 1, 0) != CM_OK) c->failures++;
    if (cm_cache_get(cache, "k", 1, &v, &n) != CM_OK) c->failures++;
    cm_free(v);
    if (cm_cache_get(cache, "x", 1, &v, &n) != CM_MISS) c->failures++;
    cm_cache_close(cache);
    cm_counter_add(c->cycles, 1);
  }
  atomic_fetch_add(c->done, 1);
  return NULL;
}

struct watcher {
  cm_registry *reg;
  atomic_int *done;
  int renders, failures;
};

static void *watch(void *arg) {
  struct watcher *w = arg;
  cm_family *hits = NULL;
  if (cm_counter_new(w->reg, "cachemeter_cache_hits_total", NULL, (const char *const[]){"cache", "backend"}, 2,
                     &hits) != CM_OK)
    w->failures++;
  while (atomic_load(w->done) < CYCLERS || w->renders < 3) {
    for (int f = CM_FORMAT_PROMETHEUS; f <= CM_FORMAT_JSON; f++) {
      char *text = NULL;
      if (cm_registry_render(w->reg, f, &text, NULL) != CM_OK) w->failures++;
      cm_free(text);
    }
    cm_series *s = NULL; /* a lookup in a family whose other series come and go */
    if (hits && cm_family_series(hits, (const char *const[]){"steady", "memory"}, 2, &s) != CM_OK) w->failures++;
    w->renders++;
  }
  return NULL;
}

static void caches_closing_while_rendering(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("max_series=200"); /* a leak would run out after a few caches */
  cm_family *cycles = NULL;
  assert_status(cm_counter_new(reg, "cycles", NULL, NULL, 0, &cycles), CM_OK);
  cm_series *cycles_s = NULL;
  assert_status(cm_family_series(cycles, NULL, 0, &cycles_s), CM_OK);
  cm_cache *steady = NULL;
  assert_status(cm_cache_open(&steady, reg, "steady", "memory://"), CM_OK);
  atomic_int done;
  atomic_init(&done, 0);
  struct cycler c[CYCLERS];
  pthread_t threads[CYCLERS], wt;
  struct watcher w = {.reg = reg, .done = &done};
  for (int i = 0; i < CYCLERS; i++) {
    c[i] = (struct cycler){.reg = reg, .cycles = cycles_s, .id = i, .done = &done};
    assert_int_equal(pthread_create(&threads[i], NULL, cycle, &c[i]), 0);
  }
  assert_int_equal(pthread_create(&wt, NULL, watch, &w), 0);
  for (int i = 0; i < CYCLERS; i++) assert_int_equal(pthread_join(threads[i], NULL), 0);
  assert_int_equal(pthread_join(wt, NULL), 0);
  for (int i = 0; i < CYCLERS; i++) assert_int_equal(c[i].failures, 0);
  assert_int_equal(w.failures, 0);
  assert_double_exact(cm_series_value(cycles_s), CYCLERS * CYCLES);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_null(strstr(text, "cache=\"c"));
  assert_non_null(strstr(text, "cache=\"steady\""));
  assert_double_exact(cmt_sample(text, "cachemeter_series_rejected_total"), 0);
  cm_free(text);
  cm_cache_close(steady);
  cm_registry_free(reg);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(hammer), cmocka_unit_test(caches_closing_while_rendering)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
