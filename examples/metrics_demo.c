/* SPDX-License-Identifier: Apache-2.0 */
/* metrics_demo: the registry in one page. Registers a labelled counter, a gauge
 * and a histogram, updates them from four threads, then prints the registry in
 * the three exposition formats. Public API only; every status is checked.
 *
 * Build against an installed cachemeter:
 *   cc -std=c11 metrics_demo.c $(pkg-config --cflags --libs cachemeter) -pthread */
#include <cachemeter/cachemeter.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NTHREADS = 4, ITERATIONS = 10000 };

/* The hot-path handles, resolved once in main and shared by the workers:
 * looking a series up by label values costs a hash lookup, updating one
 * through its handle costs a few nanoseconds and takes no lock. */
struct handles {
  cm_series *get_ok;   /* demo_requests_total{method="get",status="200"} */
  cm_series *put_ok;   /* demo_requests_total{method="put",status="200"} */
  cm_series *finished; /* demo_workers_finished */
  cm_series *latency;  /* demo_request_duration_seconds{op="read"} */
};

/* Prints what failed with the library's detail and exits: a demo has no
 * better recovery, a real program would return the status upward. */
static void check(int status, const char *what) {
  if (status < 0) {
    fprintf(stderr, "metrics_demo: %s failed: %s (%s): %s\n", what,
            cm_status_name(status), cm_strerror(status), cm_errmsg());
    exit(EXIT_FAILURE);
  }
}

/* pthread functions return an error number instead of setting errno. */
static void check_pthread(int err, const char *what) {
  if (err != 0) {
    fprintf(stderr, "metrics_demo: %s failed: %s\n", what, strerror(err));
    exit(EXIT_FAILURE);
  }
}

static void *worker(void *arg) {
  const struct handles *h = arg;
  /* Powers of two, so the histogram sum is exact whatever order the four
   * threads' additions are folded in. */
  static const double latencies[4] = {1.0 / 1024, 1.0 / 128, 1.0 / 16, 1.0 / 2};
  for (int i = 0; i < ITERATIONS; i++) {
    cm_counter_add(i % 2 ? h->put_ok : h->get_ok, 1);
    cm_histogram_observe(h->latency, latencies[i % 4]);
  }
  cm_gauge_add(h->finished, 1);
  return NULL;
}

static void print_format(cm_registry *reg, int format, const char *title) {
  char *text = NULL;
  size_t len = 0;
  check(cm_registry_render(reg, format, &text, &len), title);
  printf("==== %s (%zu bytes) ====\n%s", title, len, text);
  if (len == 0 || text[len - 1] != '\n') putchar('\n');
  cm_free(text); /* rendered text is the caller's, released with cm_free */
}

int main(void) {
  printf("cachemeter %s (headers %s)\n", cm_version(), CM_VERSION_STRING);

  /* Every series of this registry carries app="demo". */
  cm_registry *reg = NULL;
  check(cm_registry_new(&reg, "const_labels=app:demo"), "cm_registry_new");

  /* Families: a counter (exposed as demo_requests_total), a gauge and a
   * histogram with explicit bucket bounds in seconds. */
  const char *request_labels[] = {"method", "status"};
  cm_family *requests = NULL;
  check(cm_counter_new(reg, "demo_requests", "Requests handled, by method and status.",
                       request_labels, 2, &requests),
        "cm_counter_new");

  cm_family *finished = NULL;
  check(cm_gauge_new(reg, "demo_workers_finished", "Worker threads that are done.", NULL, 0,
                     &finished),
        "cm_gauge_new");

  const char *latency_labels[] = {"op"};
  const double bounds[] = {0.001, 0.01, 0.1, 1};
  cm_family *latency = NULL;
  check(cm_histogram_new(reg, "demo_request_duration_seconds", "Request latency.",
                         latency_labels, 1, bounds, sizeof bounds / sizeof bounds[0], &latency),
        "cm_histogram_new");

  struct handles h;
  check(cm_family_series(requests, (const char *[]){"get", "200"}, 2, &h.get_ok),
        "cm_family_series(get)");
  check(cm_family_series(requests, (const char *[]){"put", "200"}, 2, &h.put_ok),
        "cm_family_series(put)");
  check(cm_family_series(finished, NULL, 0, &h.finished), "cm_family_series(finished)");
  check(cm_family_series(latency, (const char *[]){"read"}, 1, &h.latency),
        "cm_family_series(latency)");

  pthread_t threads[NTHREADS];
  for (int t = 0; t < NTHREADS; t++)
    check_pthread(pthread_create(&threads[t], NULL, worker, &h), "pthread_create");
  for (int t = 0; t < NTHREADS; t++) check_pthread(pthread_join(threads[t], NULL), "pthread_join");

  /* Reads see every update made before them, on any thread. */
  printf("requests: get=%.0f put=%.0f; latency observations: %.0f, sum %g s\n",
         cm_series_value(h.get_ok), cm_series_value(h.put_ok), cm_series_value(h.latency),
         cm_histogram_sum(h.latency));

  print_format(reg, CM_FORMAT_PROMETHEUS, "Prometheus text 0.0.4");
  print_format(reg, CM_FORMAT_OPENMETRICS, "OpenMetrics 1.0");
  print_format(reg, CM_FORMAT_JSON, "JSON");

  cm_registry_free(reg);
  return EXIT_SUCCESS;
}
