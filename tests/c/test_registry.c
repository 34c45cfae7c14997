/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_registry.c: cm_registry_new options, the default registry,
 * cm_registry_free and cm_registry_reset. */
#include "cmtest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A gauge "g" with one series set to 1 (labels as given) in reg. */
static cm_series *gauge_in(cm_registry *reg, const char *const *labels, size_t n,
                           const char *const *values) {
  cm_family *f = NULL;
  cm_series *s = NULL;
  assert_status(cm_gauge_new(reg, "g", "a gauge", labels, n, &f), CM_OK);
  assert_status(cm_family_series(f, values, n, &s), CM_OK);
  cm_gauge_set(s, 1);
  return s;
}

static void new_with_default_options(void **state) {
  (void)state;
  static const char *const defaults[] = {NULL, ""};
  for (size_t i = 0; i < CMT_COUNT(defaults); i++) {
    cm_registry *reg = cmt_registry(defaults[i]);
    /* An empty registry renders; a fresh one is not the default registry. */
    assert_ptr_not_equal(reg, cm_registry_default());
    char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
    cm_free(text);
    cm_registry_free(reg);
  }
}

static void new_null_out(void **state) {
  (void)state;
  cm_errclear();
  assert_status(cm_registry_new(NULL, "prefix=x_"), CM_EINVAL);
  assert_contains(cm_errmsg(), "out");
}

/* The prefix renames cachemeter's own metrics, never the application's. */
static void prefix_renames_self_metrics(void **state) {
  (void)state;
  static const char *const options[] = {"prefix=app_", "prefix=app%5F", "prefix=a:b_"};
  static const char *const self[] = {"app_invalid_observations_total 1",
                                     "app_invalid_observations_total 1",
                                     "a:b_invalid_observations_total 1"};
  for (size_t i = 0; i < CMT_COUNT(options); i++) {
    cm_registry *reg = cmt_registry(options[i]);
    cm_series *s = gauge_in(reg, NULL, 0, NULL);
    cm_counter_add(s, 1); /* wrong type: counted as an invalid observation */
    char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
    assert_contains(text, self[i]);
    assert_contains(text, "\ng 1\n");
    assert_not_contains(text, "cachemeter_");
    assert_not_contains(text, "app_g");
    cm_free(text);
    cm_registry_free(reg);
  }
}

static void default_prefix(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry(NULL);
  cm_series *s = gauge_in(reg, NULL, 0, NULL);
  cm_counter_add(s, 1);
  assert_double_exact(cmt_render_sample(reg, "cachemeter_invalid_observations_total"), 1);
  cm_registry_free(reg);
}

static void const_labels_on_every_series(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("const_labels=env:prod,svc:api");
  static const char *const names[] = {"k"};
  static const char *const values[] = {"v"};
  gauge_in(reg, names, 1, values);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "g{env=\"prod\",svc=\"api\",k=\"v\"} 1\n");
  cm_free(text);
  cm_registry_free(reg);
}

/* Option values are percent-decoded: '&', '=', ',' and ':' can be carried. */
static void percent_decoding(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("const_labels=url:a%2Cb%3Ac%26d%3De%25,e%6Ev:x%20y");
  gauge_in(reg, NULL, 0, NULL);
  assert_double_exact(cmt_render_sample(reg, "g{url=\"a,b:c&d=e%\",env=\"x y\"}"), 1);
  cm_registry_free(reg);
}

/* A const label value may be empty and UTF-8. */
static void const_label_values(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("const_labels=a:,b:%C3%A9");
  gauge_in(reg, NULL, 0, NULL);
  assert_double_exact(cmt_render_sample(reg, "g{a=\"\",b=\"\xc3\xa9\"}"), 1);
  cm_registry_free(reg);
}

static void max_series_bounds_accepted(void **state) {
  (void)state;
  static const char *const ok[] = {"max_series=1", "max_series=10000",
                                   "max_series=100000000"};
  for (size_t i = 0; i < CMT_COUNT(ok); i++) cm_registry_free(cmt_registry(ok[i]));
}

/* Each rejected option gives CM_EINVAL with a message naming the culprit. */
static void bad_options(void **state) {
  (void)state;
  static const struct {
    const char *options, *named;
  } bad[] = {
      {"bogus=1", "bogus"},
      {"prefix", "prefix"},           /* no '=' */
      {"=app_", "=app_"},             /* no key */
      {"prefix=a_&prefix=b_", "prefix"}, /* given twice */
      {"prefix=app_&colour=red", "colour"},
      {"Prefix=app_", "Prefix"}, /* keys are case-sensitive */
      {"prefix=1app_", "prefix"},
      {"prefix=app-", "prefix"},
      {"prefix=__app_", "prefix"},
      {"prefix=a%zz", "prefix"}, /* malformed percent escape */
      {"prefix=a%2", "prefix"},
      {"const_labels=env", "const_labels"},
      {"const_labels=1env:x", "const_labels"},
      {"const_labels=__env:x", "const_labels"},
      {"const_labels=a-b:x", "const_labels"},
      {"const_labels=le:x", "const_labels"},
      {"const_labels=env:x,env:y", "const_labels"},
      {"const_labels=env:%FF", "const_labels"}, /* value not UTF-8 */
      {"max_series=0", "max_series"},
      {"max_series=100000001", "max_series"},
      {"max_series=-1", "max_series"},
      {"max_series=", "max_series"},
      {"max_series=abc", "max_series"},
      {"max_series=10x", "max_series"},
      {"max_series= 10", "max_series"},
      {"max_series=99999999999999999999999", "max_series"},
  };
  for (size_t i = 0; i < CMT_COUNT(bad); i++) {
    cm_registry *reg = (cm_registry *)&reg; /* must be left alone or cleared */
    cm_errclear();
    int st = cm_registry_new(&reg, bad[i].options);
    if (st != CM_EINVAL) {
      print_error("options \"%s\"\n", bad[i].options);
      if (st == CM_OK) cm_registry_free(reg);
    }
    assert_status(st, CM_EINVAL);
    if (strstr(cm_errmsg(), bad[i].named) == NULL) print_error("options \"%s\"\n", bad[i].options);
    assert_contains(cm_errmsg(), bad[i].named);
  }
}

static void default_registry(void **state) {
  (void)state;
  cm_registry *def = cm_registry_default();
  assert_non_null(def);
  assert_ptr_equal(cm_registry_default(), def);

  /* NULL means the default registry, for registration and rendering alike. */
  cm_family *f = NULL, *again = NULL;
  assert_status(cm_gauge_new(NULL, "registry_test_default_gauge", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(def, "registry_test_default_gauge", NULL, NULL, 0, &again), CM_OK);
  assert_ptr_equal(f, again);
  cm_series *s = NULL;
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  cm_gauge_set(s, 42);
  assert_double_exact(cmt_render_sample(NULL, "registry_test_default_gauge"), 42);
  assert_double_exact(cmt_render_sample(def, "registry_test_default_gauge"), 42);

  /* Freeing the default registry (or NULL) does nothing: it stays usable. */
  cm_registry_free(def);
  cm_registry_free(NULL);
  assert_ptr_equal(cm_registry_default(), def);
  cm_gauge_add(s, 1);
  assert_double_exact(cmt_render_sample(NULL, "registry_test_default_gauge"), 43);

  /* Reset through NULL zeroes the default registry. */
  assert_status(cm_registry_reset(NULL), CM_OK);
  assert_double_exact(cm_series_value(s), 0);
}

/* Registries are independent: the same name lives in both with its own value. */
static void registries_are_independent(void **state) {
  (void)state;
  cm_registry *a = cmt_registry(NULL), *b = cmt_registry(NULL);
  cm_series *sa = gauge_in(a, NULL, 0, NULL), *sb = gauge_in(b, NULL, 0, NULL);
  assert_ptr_not_equal(sa, sb);
  cm_gauge_set(sb, 7);
  assert_double_exact(cmt_render_sample(a, "g"), 1);
  assert_double_exact(cmt_render_sample(b, "g"), 7);
  cm_registry_free(a);
  assert_double_exact(cmt_render_sample(b, "g"), 7);
  cm_registry_free(b);
}

/* The OpenMetrics _created sample of the only series called name in text. */
static double created_of(cm_registry *reg, const char *key) {
  char *text = cmt_render(reg, CM_FORMAT_OPENMETRICS);
  double t = cmt_sample(text, key);
  cm_free(text);
  assert_false(isnan(t));
  return t;
}

static void reset_zeroes_and_keeps_handles(void **state) {
  cm_registry *reg = *state;
  static const char *const names[] = {"k"};
  static const char *const values[] = {"v"};
  static const double bounds[] = {1, 2};
  cm_family *cf = NULL, *gf = NULL, *hf = NULL;
  cm_series *c = NULL, *g = NULL, *h = NULL;
  assert_status(cm_counter_new(reg, "c", NULL, names, 1, &cf), CM_OK);
  assert_status(cm_gauge_new(reg, "g", NULL, names, 1, &gf), CM_OK);
  assert_status(cm_histogram_new(reg, "h", NULL, names, 1, bounds, 2, &hf), CM_OK);
  assert_status(cm_family_series(cf, values, 1, &c), CM_OK);
  assert_status(cm_family_series(gf, values, 1, &g), CM_OK);
  assert_status(cm_family_series(hf, values, 1, &h), CM_OK);
  cm_counter_add(c, 5);
  cm_gauge_set(g, -3);
  cm_histogram_observe(h, 1.5);
  cm_histogram_observe(h, 7);
  double created = created_of(reg, "c_created{k=\"v\"}");
  assert_true(created > 1e9); /* seconds since the epoch */

  assert_status(cm_registry_reset(reg), CM_OK);
  assert_double_exact(cm_series_value(c), 0);
  assert_double_exact(cm_series_value(g), 0);
  assert_double_exact(cm_series_value(h), 0);
  assert_double_exact(cm_histogram_sum(h), 0);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_double_exact(cmt_sample(text, "h_bucket{k=\"v\",le=\"2.0\"}"), 0);
  assert_double_exact(cmt_sample(text, "h_bucket{k=\"v\",le=\"+Inf\"}"), 0);
  assert_double_exact(cmt_sample(text, "c_total{k=\"v\"}"), 0);
  cm_free(text);
  /* The counter restarted: its creation time moved (not backwards). */
  assert_true(created_of(reg, "c_created{k=\"v\"}") >= created);

  /* Same handles after the reset, and they still count. */
  cm_family *again = NULL;
  cm_series *s = NULL;
  assert_status(cm_counter_new(reg, "c", NULL, names, 1, &again), CM_OK);
  assert_ptr_equal(again, cf);
  assert_status(cm_family_series(cf, values, 1, &s), CM_OK);
  assert_ptr_equal(s, c);
  cm_counter_add(c, 2);
  cm_histogram_observe(h, 0.5);
  assert_double_exact(cm_series_value(c), 2);
  assert_double_exact(cm_series_value(h), 1);
  assert_double_exact(cm_histogram_sum(h), 0.5);
}

/* Self-metrics restart from zero too. */
static void reset_zeroes_self_metrics(void **state) {
  cm_registry *reg = *state;
  cm_series *s = gauge_in(reg, NULL, 0, NULL);
  cm_counter_add(s, 1);
  assert_double_exact(cmt_render_sample(reg, "cachemeter_invalid_observations_total"), 1);
  assert_status(cm_registry_reset(reg), CM_OK);
  assert_double_exact(cmt_render_sample(reg, "cachemeter_invalid_observations_total"), 0);
}

static void reset_empty_registry(void **state) {
  assert_status(cm_registry_reset(*state), CM_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(new_with_default_options),
      cmocka_unit_test(new_null_out),
      cmocka_unit_test(prefix_renames_self_metrics),
      cmocka_unit_test(default_prefix),
      cmocka_unit_test(const_labels_on_every_series),
      cmocka_unit_test(percent_decoding),
      cmocka_unit_test(const_label_values),
      cmocka_unit_test(max_series_bounds_accepted),
      cmocka_unit_test(bad_options),
      cmocka_unit_test(default_registry),
      cmocka_unit_test(registries_are_independent),
      cmocka_unit_test_setup_teardown(reset_zeroes_and_keeps_handles, cmt_registry_setup,
                                      cmt_registry_teardown),
      cmocka_unit_test_setup_teardown(reset_zeroes_self_metrics, cmt_registry_setup,
                                      cmt_registry_teardown),
      cmocka_unit_test_setup_teardown(reset_empty_registry, cmt_registry_setup,
                                      cmt_registry_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
