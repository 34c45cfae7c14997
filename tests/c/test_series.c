/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_series.c: cm_family_series and the update and read functions
 * of series, including the inputs they ignore and count. */
#include "cmtest.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const two_labels[] = {"method", "code"};

/* A family with the two labels above, and its series for (m, c). */
static cm_family *family(cm_registry *reg, const char *type, const char *name) {
  static const double bounds[] = {1, 2, 5};
  cm_family *f = NULL;
  if (strcmp(type, "counter") == 0)
    assert_status(cm_counter_new(reg, name, NULL, two_labels, 2, &f), CM_OK);
  else if (strcmp(type, "gauge") == 0)
    assert_status(cm_gauge_new(reg, name, NULL, two_labels, 2, &f), CM_OK);
  else
    assert_status(cm_histogram_new(reg, name, NULL, two_labels, 2, bounds, 3, &f), CM_OK);
  return f;
}

static cm_series *series(cm_family *f, const char *m, const char *c) {
  const char *values[] = {m, c};
  cm_series *s = NULL;
  assert_status(cm_family_series(f, values, 2, &s), CM_OK);
  assert_non_null(s);
  return s;
}

static double invalid_observations(cm_registry *reg) {
  return cmt_render_sample(reg, "cachemeter_invalid_observations_total");
}

static void same_values_same_handle(void **state) {
  cm_family *f = family(*state, "counter", "req");
  cm_series *a = series(f, "GET", "200");
  assert_ptr_equal(series(f, "GET", "200"), a);
  /* The values are copied: a different buffer with the same text matches. */
  char m[] = "GET", c[] = "200";
  assert_ptr_equal(series(f, m, c), a);
  m[0] = 'X';
  assert_ptr_equal(series(f, "GET", "200"), a);

  assert_ptr_not_equal(series(f, "GET", "500"), a);
  assert_ptr_not_equal(series(f, "200", "GET"), a);
  /* No confusion from concatenation: ("GE", "T200") is not ("GET", "200"). */
  assert_ptr_not_equal(series(f, "GE", "T200"), a);
  /* Empty strings and UTF-8 are values like any other. */
  cm_series *empty = series(f, "", "");
  assert_ptr_not_equal(empty, a);
  assert_ptr_equal(series(f, "", ""), empty);
  cm_series *utf8 = series(f, "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80");
  assert_ptr_equal(series(f, "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80"), utf8);

  /* Another family never hands out the same series. */
  cm_family *g = family(*state, "gauge", "temp");
  assert_ptr_not_equal(series(g, "GET", "200"), a);
}

static void unlabelled_family(void **state) {
  cm_family *f = NULL;
  cm_series *a = NULL, *b = NULL;
  assert_status(cm_gauge_new(*state, "up", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_family_series(f, NULL, 0, &a), CM_OK);
  static const char *const none[] = {"ignored"};
  assert_status(cm_family_series(f, none, 0, &b), CM_OK);
  assert_ptr_equal(a, b);
  assert_status(cm_family_series(f, none, 1, &b), CM_EINVAL);
}

static void bad_arguments(void **state) {
  cm_family *f = family(*state, "gauge", "g");
  cm_series *s = NULL;
  static const char *const one[] = {"a"};
  static const char *const three[] = {"a", "b", "c"};
  static const char *const with_null[] = {"a", NULL};
  static const char *const not_utf8[][2] = {
      {"\xff", "ok"}, {"ok", "a\xc3"}, {"\xc3\x28", "ok"}, {"ok", "\xed\xa0\x80"},
      {"\xc0\xaf", "ok"}, {"\xf4\x90\x80\x80", "ok"}};

  static const char *const two[] = {"a", "b"};
  cm_errclear();
  assert_status(cm_family_series(NULL, two, 2, &s), CM_EINVAL);
  assert_true(strlen(cm_errmsg()) > 0);
  assert_status(cm_family_series(f, two, 2, NULL), CM_EINVAL);
  assert_contains(cm_errmsg(), "out");
  assert_status(cm_family_series(f, one, 1, &s), CM_EINVAL);
  assert_status(cm_family_series(f, three, 3, &s), CM_EINVAL);
  assert_status(cm_family_series(f, NULL, 0, &s), CM_EINVAL);
  assert_status(cm_family_series(f, NULL, 2, &s), CM_EINVAL);
  assert_status(cm_family_series(f, with_null, 2, &s), CM_EINVAL);
  for (size_t i = 0; i < CMT_COUNT(not_utf8); i++) {
    cm_errclear();
    int st = cm_family_series(f, not_utf8[i], 2, &s);
    if (st != CM_EINVAL) print_error("value pair #%zu\n", i);
    assert_status(st, CM_EINVAL);
    assert_true(strlen(cm_errmsg()) > 0);
  }
  /* None of the refusals created a series. */
  char *text = cmt_render(*state, CM_FORMAT_PROMETHEUS);
  assert_not_contains(text, "\ng{");
  cm_free(text);
}

/* Past max_series, creation is refused and counted; lookups still work. */
static void series_limit(void **state) {
  (void)state;
  static const char *const prefixes[] = {"cachemeter_", "app_"};
  for (size_t p = 0; p < CMT_COUNT(prefixes); p++) {
    cm_registry *reg = cmt_registry(p == 0 ? "max_series=3" : "max_series=3&prefix=app_");
    char key[64];
    strcpy(key, prefixes[p]);
    strcat(key, "series_rejected_total");

    cm_family *c = family(reg, "counter", "c"), *h = family(reg, "histogram", "h");
    cm_series *first = series(c, "a", "1");
    series(c, "a", "2");
    series(h, "a", "1"); /* the cap is registry-wide, across families */
    assert_double_exact(cmt_render_sample(reg, key), 0);

    static const char *const more[] = {"a", "3"};
    cm_series *s = NULL;
    cm_errclear();
    assert_status(cm_family_series(c, more, 2, &s), CM_ELIMIT);
    assert_contains(cm_errmsg(), "max_series");
    assert_status(cm_family_series(h, more, 2, &s), CM_ELIMIT);
    assert_double_exact(cmt_render_sample(reg, key), 2);

    /* Existing series are still found and updated. */
    assert_ptr_equal(series(c, "a", "1"), first);
    cm_counter_add(first, 1);
    assert_double_exact(cm_series_value(first), 1);

    char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
    assert_not_contains(text, "code=\"3\"");
    cm_free(text);
    cm_registry_free(reg);
  }
}

static void counter_updates(void **state) {
  cm_series *s = series(family(*state, "counter", "c"), "GET", "200");
  assert_double_exact(cm_series_value(s), 0);
  cm_counter_add(s, 1);
  cm_counter_add(s, 2.5);
  cm_counter_add(s, 0);
  assert_double_exact(cm_series_value(s), 3.5);
  assert_double_exact(cm_histogram_sum(s), NAN);
  assert_double_exact(cmt_render_sample(*state, "c_total{method=\"GET\",code=\"200\"}"), 3.5);
  assert_double_exact(invalid_observations(*state), 0);
}

/* Negative, NaN and infinite increments are ignored, counted and reported. */
static void counter_rejects_decrease_and_nan(void **state) {
  cm_series *s = series(family(*state, "counter", "c"), "GET", "200");
  cm_counter_add(s, 10);
  assert_reports(cm_counter_add(s, -1), "cm_counter_add");
  assert_reports(cm_counter_add(s, -0.001), "cm_counter_add");
  assert_reports(cm_counter_add(s, NAN), "cm_counter_add");
  assert_reports(cm_counter_add(s, -INFINITY), "cm_counter_add");
  assert_double_exact(cm_series_value(s), 10);
  assert_double_exact(invalid_observations(*state), 4);
  /* +Inf would leave the counter at +Inf for good: refused like the others. */
  assert_reports(cm_counter_add(s, INFINITY), "cm_counter_add");
  assert_non_null(strstr(cm_errmsg(), "infinite"));
  assert_double_exact(cm_series_value(s), 10);
  assert_double_exact(invalid_observations(*state), 5);
  cm_counter_add(s, DBL_MAX); /* finite increments still count */
  cm_counter_add(s, -0.0);
  assert_double_exact(cm_series_value(s), 10 + DBL_MAX);
  assert_double_exact(invalid_observations(*state), 5);
}

/* A gauge is set to any double, but a NaN or infinite delta is refused (it
 * would stick until the next set); so is a NaN or infinite observation. */
static void non_finite_deltas_and_observations_refused(void **state) {
  cm_series *g = series(family(*state, "gauge", "g"), "GET", "200");
  cm_series *h = series(family(*state, "histogram", "h"), "GET", "200");
  cm_gauge_set(g, 2);
  assert_reports(cm_gauge_add(g, INFINITY), "cm_gauge_add");
  assert_reports(cm_gauge_add(g, -INFINITY), "cm_gauge_add");
  assert_reports(cm_gauge_add(g, NAN), "cm_gauge_add");
  cm_gauge_add(g, -DBL_MAX);
  cm_gauge_add(g, DBL_MAX);
  assert_double_exact(cm_series_value(g), 2);
  cm_histogram_observe(h, 1);
  assert_reports(cm_histogram_observe(h, INFINITY), "cm_histogram_observe");
  assert_reports(cm_histogram_observe(h, -INFINITY), "cm_histogram_observe");
  assert_double_exact(cm_series_value(h), 1);
  assert_double_exact(cm_histogram_sum(h), 1);
  assert_double_exact(invalid_observations(*state), 5);
}

static void gauge_updates(void **state) {
  cm_series *s = series(family(*state, "gauge", "g"), "GET", "200");
  assert_double_exact(cm_series_value(s), 0);
  cm_gauge_set(s, 5);
  cm_gauge_add(s, -7);
  cm_gauge_add(s, 0.5);
  assert_double_exact(cm_series_value(s), -1.5);
  cm_gauge_set(s, 3); /* set replaces what add accumulated */
  assert_double_exact(cm_series_value(s), 3);
  cm_gauge_add(s, 1);
  assert_double_exact(cm_series_value(s), 4);
  assert_double_exact(cm_histogram_sum(s), NAN);
  /* Any double, NaN and infinities included, is a valid gauge value. */
  cm_gauge_set(s, INFINITY);
  assert_double_exact(cm_series_value(s), INFINITY);
  cm_gauge_set(s, -INFINITY);
  assert_double_exact(cm_series_value(s), -INFINITY);
  cm_gauge_set(s, NAN);
  assert_double_exact(cm_series_value(s), NAN);
  assert_double_exact(invalid_observations(*state), 0);
}

static void histogram_updates(void **state) {
  cm_series *s = series(family(*state, "histogram", "h"), "GET", "200");
  assert_double_exact(cm_series_value(s), 0);
  assert_double_exact(cm_histogram_sum(s), 0);
  static const double obs[] = {0.5, 1, 1.5, 2, 4, 5, 100, -3};
  for (size_t i = 0; i < CMT_COUNT(obs); i++) cm_histogram_observe(s, obs[i]);
  assert_double_exact(cm_series_value(s), CMT_COUNT(obs));
  assert_double_exact(cm_histogram_sum(s), 111);
  /* Buckets are cumulative and include their upper bound. */
  char *text = cmt_render(*state, CM_FORMAT_PROMETHEUS);
  assert_double_exact(cmt_sample(text, "h_bucket{method=\"GET\",code=\"200\",le=\"1.0\"}"), 3);
  assert_double_exact(cmt_sample(text, "h_bucket{method=\"GET\",code=\"200\",le=\"2.0\"}"), 5);
  assert_double_exact(cmt_sample(text, "h_bucket{method=\"GET\",code=\"200\",le=\"5.0\"}"), 7);
  assert_double_exact(cmt_sample(text, "h_bucket{method=\"GET\",code=\"200\",le=\"+Inf\"}"), 8);
  assert_double_exact(cmt_sample(text, "h_count{method=\"GET\",code=\"200\"}"), 8);
  assert_double_exact(cmt_sample(text, "h_sum{method=\"GET\",code=\"200\"}"), 111);
  cm_free(text);

  assert_reports(cm_histogram_observe(s, NAN), "cm_histogram_observe");
  assert_double_exact(cm_series_value(s), CMT_COUNT(obs));
  assert_double_exact(cm_histogram_sum(s), 111);
  assert_double_exact(invalid_observations(*state), 1);
}

/* An update of the wrong type changes nothing and is counted and reported. */
static void wrong_type_updates(void **state) {
  cm_registry *reg = *state;
  cm_series *c = series(family(reg, "counter", "c"), "a", "b");
  cm_series *g = series(family(reg, "gauge", "g"), "a", "b");
  cm_series *h = series(family(reg, "histogram", "h"), "a", "b");
  cm_counter_add(c, 1);
  cm_gauge_set(g, 2);
  cm_histogram_observe(h, 3);

  assert_reports(cm_counter_add(g, 1), "cm_counter_add");
  assert_reports(cm_counter_add(h, 1), "cm_counter_add");
  assert_reports(cm_gauge_set(c, 9), "cm_gauge_set");
  assert_reports(cm_gauge_set(h, 9), "cm_gauge_set");
  assert_reports(cm_gauge_add(c, 9), "cm_gauge_add");
  assert_reports(cm_gauge_add(h, 9), "cm_gauge_add");
  assert_reports(cm_histogram_observe(c, 9), "cm_histogram_observe");
  assert_reports(cm_histogram_observe(g, 9), "cm_histogram_observe");

  assert_double_exact(cm_series_value(c), 1);
  assert_double_exact(cm_series_value(g), 2);
  assert_double_exact(cm_series_value(h), 1);
  assert_double_exact(cm_histogram_sum(h), 3);
  assert_double_exact(invalid_observations(reg), 8);
}

/* NULL series: updates do nothing (not even count), reads give NaN. */
static void null_series(void **state) {
  cm_counter_add(NULL, 1);
  cm_gauge_set(NULL, 1);
  cm_gauge_add(NULL, 1);
  cm_histogram_observe(NULL, 1);
  assert_double_exact(cm_series_value(NULL), NAN);
  assert_double_exact(cm_histogram_sum(NULL), NAN);
  assert_double_exact(invalid_observations(*state), 0);
  assert_double_exact(cmt_render_sample(NULL, "cachemeter_invalid_observations_total"), 0);
}

/* A label value longer than max_label_value_bytes (default 2048) creates no
 * series: CM_ELIMIT, counted in series_rejected_total, the reason in
 * cm_errmsg(). 100 values of 1 MB used to cost 190 MB and a 100 MB render. */
static void label_value_size_limit(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  cm_family *c = family(reg, "counter", "c");
  size_t big = (size_t)1 << 20;
  char *huge = malloc(big + 1);
  assert_non_null(huge);
  memset(huge, 'x', big);
  huge[big] = '\0';
  cm_series *s = NULL;
  for (int i = 0; i < 100; i++) {
    huge[0] = (char)('A' + i % 26);
    huge[1] = (char)('A' + i / 26);
    const char *values[] = {huge, "200"};
    cm_errclear();
    assert_status(cm_family_series(c, values, 2, &s), CM_ELIMIT);
    assert_null(s);
    assert_contains(cm_errmsg(), "max_label_value_bytes=2048");
    assert_contains(cm_errmsg(), "\"method\"");
  }
  assert_double_exact(cmt_render_sample(reg, "cachemeter_series_rejected_total"), 100);
  /* Exactly at the limit: created. */
  huge[2048] = '\0';
  const char *at_limit[] = {"GET", huge};
  assert_status(cm_family_series(c, at_limit, 2, &s), CM_OK);
  assert_non_null(s);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_true(strlen(text) < 16384); /* none of the refused values is rendered */
  cm_free(text);
  cm_registry_free(reg);

  /* The option: a byte size, 1 B .. 1 MiB. */
  reg = cmt_registry("max_label_value_bytes=4");
  c = family(reg, "counter", "c");
  const char *four[] = {"abcd", ""}, *five[] = {"abcde", ""};
  assert_status(cm_family_series(c, four, 2, &s), CM_OK);
  assert_status(cm_family_series(c, five, 2, &s), CM_ELIMIT);
  cm_registry_free(reg);
  reg = cmt_registry("max_label_value_bytes=1KiB");
  cm_registry_free(reg);
  reg = NULL;
  assert_status(cm_registry_new(&reg, "max_label_value_bytes=0"), CM_EINVAL);
  assert_status(cm_registry_new(&reg, "max_label_value_bytes=2MiB"), CM_EINVAL);
  assert_contains(cm_errmsg(), "max_label_value_bytes");
  free(huge);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, cmt_registry_setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      T(same_values_same_handle),
      T(unlabelled_family),
      T(bad_arguments),
      cmocka_unit_test(series_limit),
      cmocka_unit_test(label_value_size_limit),
      T(counter_updates),
      T(counter_rejects_decrease_and_nan),
      T(non_finite_deltas_and_observations_refused),
      T(gauge_updates),
      T(histogram_updates),
      T(wrong_type_updates),
      T(null_series),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
