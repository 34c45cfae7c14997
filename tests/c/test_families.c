/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_families.c: cm_counter_new, cm_gauge_new, cm_histogram_new —
 * name, label and bucket rules, idempotency and conflicts. */
#include "cmtest.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum kind { COUNTER, GAUGE, HISTOGRAM };
static const enum kind kinds[] = {COUNTER, GAUGE, HISTOGRAM};
static const char *const kind_names[] = {"counter", "gauge", "histogram"};

/* Registers a family of the given kind; histograms get default buckets. */
static int new_family(cm_registry *reg, enum kind k, const char *name, const char *help,
                      const char *const *labels, size_t n, cm_family **out) {
  switch (k) {
    case COUNTER: return cm_counter_new(reg, name, help, labels, n, out);
    case GAUGE: return cm_gauge_new(reg, name, help, labels, n, out);
    default: return cm_histogram_new(reg, name, help, labels, n, NULL, 0, out);
  }
}

/* Like assert_status, naming the kind and name on failure. */
static void expect_new(cm_registry *reg, enum kind k, const char *name,
                       const char *const *labels, size_t n, int want) {
  cm_family *f = NULL;
  cm_errclear();
  int st = new_family(reg, k, name, NULL, labels, n, &f);
  if (st != want) print_error("%s \"%s\"\n", kind_names[k], name ? name : "(null)");
  assert_status(st, want);
  if (want == CM_OK) assert_non_null(f);
  if (want < 0) assert_true(strlen(cm_errmsg()) > 0);
}

static void valid_metric_names(void **state) {
  static const char *const names[] = {
      "a", "Z", "_a", ":a", "a:b", "a_b:c9", ":", "a__b", "_a_",
      "abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"};
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    cm_registry *reg = cmt_registry(NULL);
    for (size_t i = 0; i < CMT_COUNT(names); i++) expect_new(reg, kinds[k], names[i], NULL, 0, CM_OK);
    cm_registry_free(reg);
  }
  (void)state;
}

static void invalid_metric_names(void **state) {
  cm_registry *reg = *state;
  static const char *const names[] = {"", "1a", "9", "a-b", "a b", "a.b", "a{b}", "\xc3\xa9",
                                      "a\n", "__a", "__", "__total"};
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    for (size_t i = 0; i < CMT_COUNT(names); i++) {
      expect_new(reg, kinds[k], names[i], NULL, 0, CM_EINVAL);
      assert_contains(cm_errmsg(), "name");
    }
  }
  /* Nothing was registered by the refused calls. */
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_not_contains(text, "# TYPE a");
  assert_not_contains(text, "# TYPE 1a");
  cm_free(text);
}

/* A counter's exposed name gets "_total"; the result obeys the name rules
 * too: "_" would be exposed as the reserved-looking "__total". */
static void counter_suffix_keeps_name_rules(void **state) {
  expect_new(*state, COUNTER, "_", NULL, 0, CM_EINVAL);
  expect_new(*state, COUNTER, "_total", NULL, 0, CM_EINVAL);
  expect_new(*state, COUNTER, "_x", NULL, 0, CM_OK);
}

/* The message names the offending value. */
static void invalid_name_is_named(void **state) {
  cm_family *f = NULL;
  assert_status(cm_gauge_new(*state, "1abc", NULL, NULL, 0, &f), CM_EINVAL);
  assert_contains(cm_errmsg(), "\"1abc\"");
  assert_status(cm_gauge_new(*state, "ok", NULL, (const char *const[]){"bad-label"}, 1, &f),
                CM_EINVAL);
  assert_contains(cm_errmsg(), "bad-label");
}

static void null_arguments(void **state) {
  cm_registry *reg = *state;
  cm_family *f = NULL;
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    expect_new(reg, kinds[k], NULL, NULL, 0, CM_EINVAL);
    cm_errclear();
    assert_status(new_family(reg, kinds[k], "ok", NULL, NULL, 0, NULL), CM_EINVAL);
    assert_contains(cm_errmsg(), "out");
    /* label_names NULL is only allowed with nlabels 0. */
    assert_status(new_family(reg, kinds[k], "ok", NULL, NULL, 2, &f), CM_EINVAL);
    assert_status(new_family(reg, kinds[k], "ok", NULL,
                             (const char *const[]){"a", NULL}, 2, &f), CM_EINVAL);
    /* NULL help is fine. */
    expect_new(reg, kinds[k], kinds[k] == COUNTER ? "c_ok" : kinds[k] == GAUGE ? "g_ok" : "h_ok",
               NULL, 0, CM_OK);
  }
  double b[] = {1};
  assert_status(cm_histogram_new(reg, "hb", NULL, NULL, 0, NULL, 3, &f), CM_EINVAL);
  assert_status(cm_histogram_new(reg, "hb", NULL, NULL, 0, b, 1, NULL), CM_EINVAL);
}

static void label_name_rules(void **state) {
  cm_registry *reg = *state;
  static const char *const good[] = {"a", "_a", "A_9", "_", "a__b"};
  static const char *const bad[] = {"", "1a", "a:b", ":a", "a-b", "a b", "\xc3\xa9",
                                    "__a", "__", "le"};
  char name[32];
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    for (size_t i = 0; i < CMT_COUNT(good); i++) {
      snprintf(name, sizeof name, "good_%zu_%zu", k, i);
      expect_new(reg, kinds[k], name, &good[i], 1, CM_OK);
    }
    for (size_t i = 0; i < CMT_COUNT(bad); i++) {
      snprintf(name, sizeof name, "bad_%zu_%zu", k, i);
      expect_new(reg, kinds[k], name, &bad[i], 1, CM_EINVAL);
      assert_contains(cm_errmsg(), "label");
    }
    /* Duplicates, adjacent or not. */
    static const char *const dup[] = {"a", "b", "a"};
    snprintf(name, sizeof name, "dup_%zu", k);
    expect_new(reg, kinds[k], name, dup, 3, CM_EINVAL);
    expect_new(reg, kinds[k], name, dup, 2, CM_OK);
  }
}

/* Label names may not repeat the registry's const labels. */
static void const_label_collision(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("const_labels=env:prod");
  static const char *const labels[] = {"svc", "env"};
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    expect_new(reg, kinds[k], "x", labels, 2, CM_EINVAL);
    assert_contains(cm_errmsg(), "env");
    expect_new(reg, kinds[k], kinds[k] == COUNTER ? "c" : kinds[k] == GAUGE ? "g" : "h",
               labels, 1, CM_OK);
  }
  cm_registry_free(reg);
}

static void help_must_be_utf8(void **state) {
  cm_registry *reg = *state;
  static const char *const bad[] = {"\xff", "a\xc3", "\xc3\x28", "\xe2\x82", "\xed\xa0\x80",
                                    "\xc0\xaf", "\xf4\x90\x80\x80"};
  cm_family *f = NULL;
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    for (size_t i = 0; i < CMT_COUNT(bad); i++) {
      cm_errclear();
      int st = new_family(reg, kinds[k], "x", bad[i], NULL, 0, &f);
      if (st != CM_EINVAL) print_error("%s help #%zu\n", kind_names[k], i);
      assert_status(st, CM_EINVAL);
      assert_contains(cm_errmsg(), "help");
    }
  }
  assert_status(cm_gauge_new(reg, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", NULL, 0, &f),
                CM_OK);
  assert_status(cm_gauge_new(reg, "empty_help", "", NULL, 0, &f), CM_OK);
}

static void counter_total_suffix(void **state) {
  cm_registry *reg = *state;
  cm_family *plain = NULL, *explicit_ = NULL, *again = NULL;
  assert_status(cm_counter_new(reg, "requests", "help", NULL, 0, &plain), CM_OK);
  assert_status(cm_counter_new(reg, "requests_total", NULL, NULL, 0, &explicit_), CM_OK);
  assert_ptr_equal(plain, explicit_);
  assert_status(cm_counter_new(reg, "requests", NULL, NULL, 0, &again), CM_OK);
  assert_ptr_equal(plain, again);
  /* Registered first with the explicit form, too. */
  assert_status(cm_counter_new(reg, "jobs_total", NULL, NULL, 0, &explicit_), CM_OK);
  assert_status(cm_counter_new(reg, "jobs", NULL, NULL, 0, &plain), CM_OK);
  assert_ptr_equal(plain, explicit_);

  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "# TYPE requests_total counter\n");
  assert_contains(text, "# TYPE jobs_total counter\n");
  assert_not_contains(text, "requests_total_total");
  cm_free(text);

  /* A gauge's name is used as given. */
  cm_family *g = NULL;
  assert_status(cm_gauge_new(reg, "temperature", NULL, NULL, 0, &g), CM_OK);
  text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "# TYPE temperature gauge\n");
  assert_not_contains(text, "temperature_total");
  cm_free(text);
}

static void idempotent_registration(void **state) {
  cm_registry *reg = *state;
  static const char *const labels[] = {"a", "b"};
  static const double bounds[] = {0.5, 1, 2};
  cm_family *f1 = NULL, *f2 = NULL;
  for (size_t k = 0; k < CMT_COUNT(kinds); k++) {
    char name[16];
    snprintf(name, sizeof name, "idem_%zu", k);
    assert_status(new_family(reg, kinds[k], name, "first help", labels, 2, &f1), CM_OK);
    assert_status(new_family(reg, kinds[k], name, "second help", labels, 2, &f2), CM_OK);
    assert_ptr_equal(f1, f2);
  }
  assert_status(cm_histogram_new(reg, "idem_h", NULL, labels, 2, bounds, 3, &f1), CM_OK);
  assert_status(cm_histogram_new(reg, "idem_h", NULL, labels, 2, bounds, 3, &f2), CM_OK);
  assert_ptr_equal(f1, f2);

  /* Later help text is ignored. */
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "# HELP idem_1 first help\n");
  assert_not_contains(text, "second help");
  cm_free(text);
}

/* The same name with another type, label list or bucket list is a conflict. */
static void conflicting_definitions(void **state) {
  cm_registry *reg = *state;
  static const char *const ab[] = {"a", "b"}, *const ba[] = {"b", "a"};
  static const double b12[] = {1, 2}, b13[] = {1, 3}, b123[] = {1, 2, 3};
  cm_family *f = NULL;

  /* type */
  assert_status(cm_gauge_new(reg, "x", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_histogram_new(reg, "x", NULL, NULL, 0, NULL, 0, &f), CM_EEXIST);
  assert_contains(cm_errmsg(), "x");
  assert_status(cm_counter_new(reg, "y_total", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "y_total", NULL, NULL, 0, &f), CM_EEXIST);
  assert_status(cm_histogram_new(reg, "y_total", NULL, NULL, 0, NULL, 0, &f), CM_EEXIST);

  /* label names: different set, order or count */
  assert_status(cm_gauge_new(reg, "l", NULL, ab, 2, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "l", NULL, ba, 2, &f), CM_EEXIST);
  assert_status(cm_gauge_new(reg, "l", NULL, ab, 1, &f), CM_EEXIST);
  assert_status(cm_gauge_new(reg, "l", NULL, NULL, 0, &f), CM_EEXIST);
  assert_status(cm_counter_new(reg, "lc", NULL, ab, 2, &f), CM_OK);
  assert_status(cm_counter_new(reg, "lc_total", NULL, ab, 1, &f), CM_EEXIST);

  /* buckets */
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, b12, 2, &f), CM_OK);
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, b13, 2, &f), CM_EEXIST);
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, b123, 3, &f), CM_EEXIST);
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, b12, 1, &f), CM_EEXIST);
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, NULL, 0, &f), CM_EEXIST);
  assert_contains(cm_errmsg(), "h");

  /* A refused registration left the first definition in place. */
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "# TYPE x gauge\n");
  assert_contains(text, "# TYPE y_total counter\n");
  assert_contains(text, "# TYPE h histogram\n");
  assert_not_contains(text, "le=\"3\"");
  cm_free(text);
}

/* Two families may not expose the same sample name, whichever comes first:
 * that would make the exposition ambiguous. Pairs (first, second) refused. */
static void sample_name_collisions(void **state) {
  (void)state;
  static const struct {
    enum kind k1;
    const char *n1;
    enum kind k2;
    const char *n2;
  } pairs[] = {
      {COUNTER, "x", GAUGE, "x_total"},         {GAUGE, "x_total", COUNTER, "x"},
      {COUNTER, "x", GAUGE, "x_created"},       {GAUGE, "x_created", COUNTER, "x"},
      {COUNTER, "x", GAUGE, "x"},               {GAUGE, "x", COUNTER, "x"},
      {HISTOGRAM, "h", GAUGE, "h_count"},       {GAUGE, "h_count", HISTOGRAM, "h"},
      {HISTOGRAM, "h", GAUGE, "h_sum"},         {GAUGE, "h_sum", HISTOGRAM, "h"},
      {HISTOGRAM, "h", GAUGE, "h_bucket"},      {GAUGE, "h_bucket", HISTOGRAM, "h"},
      {HISTOGRAM, "h", GAUGE, "h_created"},     {GAUGE, "h_created", HISTOGRAM, "h"},
      {HISTOGRAM, "h", COUNTER, "h_count"},     {COUNTER, "h_count", HISTOGRAM, "h"},
      {COUNTER, "h", HISTOGRAM, "h"},           {HISTOGRAM, "h", COUNTER, "h"},
      {COUNTER, "h_bucket", HISTOGRAM, "h"},
  };
  for (size_t i = 0; i < CMT_COUNT(pairs); i++) {
    cm_registry *reg = cmt_registry(NULL);
    cm_family *f = NULL;
    assert_status(new_family(reg, pairs[i].k1, pairs[i].n1, NULL, NULL, 0, &f), CM_OK);
    cm_errclear();
    int st = new_family(reg, pairs[i].k2, pairs[i].n2, NULL, NULL, 0, &f);
    if (st != CM_EEXIST)
      print_error("%s \"%s\" then %s \"%s\"\n", kind_names[pairs[i].k1], pairs[i].n1,
                  kind_names[pairs[i].k2], pairs[i].n2);
    assert_status(st, CM_EEXIST);
    cm_registry_free(reg);
  }
}

/* Names that only look alike do not collide. */
static void near_names_coexist(void **state) {
  cm_registry *reg = *state;
  cm_family *f = NULL;
  assert_status(cm_histogram_new(reg, "h", NULL, NULL, 0, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "h_counts", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "h_total", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "hh", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_counter_new(reg, "c", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "c_totals", NULL, NULL, 0, &f), CM_OK);
  assert_status(cm_gauge_new(reg, "c_count", NULL, NULL, 0, &f), CM_OK);
}

static void bucket_rules(void **state) {
  cm_registry *reg = *state;
  cm_family *f = NULL;
  static const struct {
    double b[3];
    size_t n;
  } bad[] = {
      {{NAN}, 1},          {{1, NAN}, 2},   {{INFINITY}, 1}, {{-INFINITY}, 1},
      {{1, INFINITY}, 2},  {{1, 1}, 2},     {{2, 1}, 2},     {{0, 1, 1}, 3},
      {{1, 2, 1.5}, 3},    {{-0.0, 0.0}, 2},
  };
  for (size_t i = 0; i < CMT_COUNT(bad); i++) {
    cm_errclear();
    int st = cm_histogram_new(reg, "h", NULL, NULL, 0, bad[i].b, bad[i].n, &f);
    if (st != CM_EINVAL) print_error("bad bounds #%zu\n", i);
    assert_status(st, CM_EINVAL);
    assert_true(strlen(cm_errmsg()) > 0);
  }

  static const double neg[] = {-10, -1, 0, 1e-9, 1e300};
  assert_status(cm_histogram_new(reg, "neg", NULL, NULL, 0, neg, CMT_COUNT(neg), &f), CM_OK);

  /* Up to CM_HISTOGRAM_MAX_BOUNDS bounds, not one more. */
  static double many[CM_HISTOGRAM_MAX_BOUNDS + 1];
  for (size_t i = 0; i < CMT_COUNT(many); i++) many[i] = (double)i;
  assert_status(cm_histogram_new(reg, "max", NULL, NULL, 0, many, CM_HISTOGRAM_MAX_BOUNDS, &f),
                CM_OK);
  assert_status(
      cm_histogram_new(reg, "over", NULL, NULL, 0, many, CM_HISTOGRAM_MAX_BOUNDS + 1, &f),
      CM_EINVAL);
}

/* NULL/0 bounds select the documented default latency buckets, rendered in
 * the OpenMetrics canonical form (Go's %g, ".0" added to integers) that
 * docs/exposition.md promises. */
static void default_buckets(void **state) {
  cm_registry *reg = *state;
  cm_family *f = NULL;
  cm_series *s = NULL;
  assert_status(cm_histogram_new(reg, "lat", NULL, NULL, 0, NULL, 0, &f), CM_OK);
  assert_status(cm_family_series(f, NULL, 0, &s), CM_OK);
  char *text = cmt_render(reg, CM_FORMAT_PROMETHEUS);
  static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                    "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                    "1.0",    "2.5",   "5.0",    "10.0",  "+Inf"};
  const char *p = text;
  for (size_t i = 0; i < CMT_COUNT(les); i++) {
    char line[64];
    snprintf(line, sizeof line, "lat_bucket{le=\"%s\"} 0\n", les[i]);
    const char *at = strstr(p, line);
    if (at == NULL) print_error("missing or out of order: %s", line);
    assert_non_null(at);
    p = at;
  }
  /* Exactly those: one bucket line per bound plus +Inf. */
  size_t nbuckets = 0;
  for (const char *q = strstr(text, "lat_bucket{"); q; q = strstr(q + 1, "lat_bucket{")) nbuckets++;
  assert_int_equal(nbuckets, CMT_COUNT(les));
  cm_free(text);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, cmt_registry_setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_metric_names),
      T(invalid_metric_names),
      T(counter_suffix_keeps_name_rules),
      T(invalid_name_is_named),
      T(null_arguments),
      T(label_name_rules),
      cmocka_unit_test(const_label_collision),
      T(help_must_be_utf8),
      T(counter_total_suffix),
      T(idempotent_registration),
      T(conflicting_definitions),
      cmocka_unit_test(sample_name_collisions),
      T(near_names_coexist),
      T(bucket_rules),
      T(default_buckets),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
