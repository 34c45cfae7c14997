/* SPDX-License-Identifier: Apache-2.0 */
/* tests/c/test_render.c: cm_registry_render in the three formats, compared
 * with expected texts written by hand from the Prometheus 0.0.4, OpenMetrics
 * 1.0 and docs/exposition.md rules. Two things vary between runs and are
 * normalised before comparing: _created timestamps (checked to lie between
 * the test's start and the rendering, then replaced by "T") and the two
 * self-metric families every registry carries (checked on their own). */
#include "cmtest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- normalisation --------------------------------------------------------- */

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/* Test start; _created values must lie in [t_start, now]. time() truncates,
 * so the bounds are widened by one second each way. */
static double t_start;

static void check_created(const char *num, const char **end) {
  char *e = NULL;
  double t = strtod(num, &e);
  assert_ptr_not_equal(e, num);
  if (!(t >= t_start - 1 && t <= (double)time(NULL) + 1))
    print_error("_created %.17g is outside [%.0f, now]\n", t, t_start);
  assert_true(t >= t_start - 1 && t <= (double)time(NULL) + 1);
  *end = e;
}

static const char self_prefix[] = "cachemeter_";

/* The metric name a text-format line is about ("# HELP x ..", "x{..} 1"). */
static const char *line_metric(const char *line) {
  if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) return line + 7;
  return line;
}

/* Prometheus/OpenMetrics text without the self-metric families, with every
 * _created value replaced by T. Caller frees. */
static char *normalize_text(const char *text) {
  struct buf b = {0};
  put(&b, "", 0);
  for (const char *line = text; *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
    const char *metric = line_metric(line);
    if (strncmp(metric, self_prefix, strlen(self_prefix)) != 0) {
      size_t name_len = strcspn(line, "{ \n");
      int created = line[0] != '#' && name_len >= 8 &&
                    strncmp(line + name_len - 8, "_created", 8) == 0;
      if (created) {
        const char *value = strchr(line + name_len, ' ');
        /* a label value may hold a space: the value is after the last '}' */
        const char *close = memchr(line, '}', n);
        if (close) value = strchr(close, ' ');
        assert_non_null(value);
        const char *end;
        check_created(value + 1, &end);
        put(&b, line, (size_t)(value + 1 - line));
        put(&b, "T", 1);
        put(&b, end, (size_t)(line + n - end));
      } else {
        put(&b, line, n);
      }
    }
    line += n;
  }
  return b.p;
}

/* Skips one JSON object or array starting at p; returns the char after it. */
static const char *skip_json(const char *p) {
  int depth = 0, in_string = 0;
  for (; *p; p++) {
    if (in_string) {
      if (*p == '\\') p++;
      else if (*p == '"') in_string = 0;
    } else if (*p == '"') {
      in_string = 1;
    } else if (*p == '{' || *p == '[') {
      depth++;
    } else if ((*p == '}' || *p == ']') && --depth == 0) {
      return p + 1;
    }
  }
  fail_msg("unbalanced JSON");
  return p;
}

/* JSON without the self-metric families, with "created" values as T. */
static char *normalize_json(const char *text) {
  char self_family[64];
  strcpy(self_family, "{\"name\":\"");
  strcat(self_family, self_prefix);
  struct buf b = {0};
  put(&b, "", 0);
  for (const char *p = text; *p;) {
    if (strncmp(p, self_family, strlen(self_family)) == 0) {
      p = skip_json(p);
      if (*p == ',') p++;
      else if (b.len > 0 && b.p[b.len - 1] == ',') b.p[--b.len] = '\0';
    } else if (strncmp(p, "\"created\":", 10) == 0) {
      put(&b, "\"created\":T", 11);
      check_created(p + 10, &p);
    } else {
      put(&b, p++, 1);
    }
  }
  return b.p;
}

/* Renders reg in format and compares the normalised text with want. */
static void expect_render(cm_registry *reg, int format, const char *want) {
  char *text = cmt_render(reg, format);
  char *got = format == CM_FORMAT_JSON ? normalize_json(text) : normalize_text(text);
  assert_text(got, want);
  free(got);
  cm_free(text);
}

/* ---- registries ------------------------------------------------------------ */

static int setup(void **state) {
  t_start = (double)time(NULL);
  return cmt_registry_setup(state);
}

static cm_series *series1(cm_family *f, const char *value) {
  cm_series *s = NULL;
  assert_status(cm_family_series(f, value ? &value : NULL, value ? 1 : 0, &s), CM_OK);
  return s;
}

/* A counter with a label, a gauge and a histogram without. */
static void populate_basic(cm_registry *reg) {
  static const char *const method[] = {"method"};
  static const double bounds[] = {0.5, 1};
  cm_family *c = NULL, *g = NULL, *h = NULL;
  assert_status(cm_counter_new(reg, "requests", "Requests served.", method, 1, &c), CM_OK);
  assert_status(cm_gauge_new(reg, "temperature", "Celsius.", NULL, 0, &g), CM_OK);
  assert_status(cm_histogram_new(reg, "latency", "Latency.", NULL, 0, bounds, 2, &h), CM_OK);
  cm_counter_add(series1(c, "POST"), 1); /* created first, rendered second */
  cm_counter_add(series1(c, "GET"), 3);
  cm_gauge_set(series1(g, NULL), -2.5);
  cm_series *hs = series1(h, NULL);
  cm_histogram_observe(hs, 0.25);
  cm_histogram_observe(hs, 0.75);
  cm_histogram_observe(hs, 3);
}

static void prometheus_basic(void **state) {
  populate_basic(*state);
  expect_render(*state, CM_FORMAT_PROMETHEUS,
                "# HELP latency Latency.\n"
                "# TYPE latency histogram\n"
                "latency_bucket{le=\"0.5\"} 1\n"
                "latency_bucket{le=\"1.0\"} 2\n"
                "latency_bucket{le=\"+Inf\"} 3\n"
                "latency_sum 4\n"
                "latency_count 3\n"
                "# HELP requests_total Requests served.\n"
                "# TYPE requests_total counter\n"
                "requests_total{method=\"GET\"} 3\n"
                "requests_total{method=\"POST\"} 1\n"
                "# HELP temperature Celsius.\n"
                "# TYPE temperature gauge\n"
                "temperature -2.5\n");
}

static void openmetrics_basic(void **state) {
  populate_basic(*state);
  expect_render(*state, CM_FORMAT_OPENMETRICS,
                "# HELP latency Latency.\n"
                "# TYPE latency histogram\n"
                "latency_bucket{le=\"0.5\"} 1\n"
                "latency_bucket{le=\"1.0\"} 2\n"
                "latency_bucket{le=\"+Inf\"} 3\n"
                "latency_count 3\n"
                "latency_sum 4\n"
                "latency_created T\n"
                "# HELP requests Requests served.\n"
                "# TYPE requests counter\n"
                "requests_total{method=\"GET\"} 3\n"
                "requests_created{method=\"GET\"} T\n"
                "requests_total{method=\"POST\"} 1\n"
                "requests_created{method=\"POST\"} T\n"
                "# HELP temperature Celsius.\n"
                "# TYPE temperature gauge\n"
                "temperature -2.5\n"
                "# EOF\n");
}

static void json_basic(void **state) {
  populate_basic(*state);
  /* p50: rank 1.5 lies in (0.5, 1] holding 1 of 3: 0.5 + 0.5 * 0.5 = 0.75;
   * p90, p99: ranks in the +Inf bucket give the largest finite bound. */
  expect_render(*state, CM_FORMAT_JSON,
                "{\"families\":["
                "{\"name\":\"latency\",\"type\":\"histogram\",\"help\":\"Latency.\",\"labels\":[],"
                "\"bounds\":[0.5,1],\"series\":[{\"labels\":{},\"created\":T,\"count\":3,\"sum\":4,"
                "\"buckets\":[{\"le\":0.5,\"count\":1},{\"le\":1,\"count\":2},"
                "{\"le\":\"+Inf\",\"count\":3}],\"p50\":0.75,\"p90\":1,\"p99\":1}]},"
                "{\"name\":\"requests_total\",\"type\":\"counter\",\"help\":\"Requests served.\","
                "\"labels\":[\"method\"],\"series\":["
                "{\"labels\":{\"method\":\"GET\"},\"created\":T,\"value\":3},"
                "{\"labels\":{\"method\":\"POST\"},\"created\":T,\"value\":1}]},"
                "{\"name\":\"temperature\",\"type\":\"gauge\",\"help\":\"Celsius.\",\"labels\":[],"
                "\"series\":[{\"labels\":{},\"created\":T,\"value\":-2.5}]}"
                "]}\n");
}

/* The self-metric families are exposed by every registry, with their prefix. */
static void self_metrics_present(void **state) {
  char *text = cmt_render(*state, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "# TYPE cachemeter_invalid_observations_total counter\n"
                        "cachemeter_invalid_observations_total 0\n");
  assert_contains(text, "# TYPE cachemeter_series_rejected_total counter\n"
                        "cachemeter_series_rejected_total 0\n");
  cm_free(text);
  text = cmt_render(*state, CM_FORMAT_OPENMETRICS);
  assert_contains(text, "# TYPE cachemeter_invalid_observations counter\n");
  assert_contains(text, "\ncachemeter_series_rejected_total 0\ncachemeter_series_rejected_created ");
  cm_free(text);
  text = cmt_render(*state, CM_FORMAT_JSON);
  assert_contains(text, "{\"name\":\"cachemeter_series_rejected_total\",\"type\":\"counter\"");
  cm_free(text);
  /* An empty registry (but for those) is exactly empty after normalising. */
  expect_render(*state, CM_FORMAT_PROMETHEUS, "");
  expect_render(*state, CM_FORMAT_OPENMETRICS, "# EOF\n");
  expect_render(*state, CM_FORMAT_JSON, "{\"families\":[]}\n");
}

/* Label values escape \ " and newline; HELP escapes \ and newline (and " in
 * OpenMetrics); UTF-8 passes through. JSON escapes per RFC 8259. */
static void populate_escapes(cm_registry *reg) {
  static const char *const path[] = {"path"};
  cm_family *g = NULL;
  assert_status(cm_gauge_new(reg, "g", "A \"quoted\" \\ back\nslash", path, 1, &g), CM_OK);
  cm_gauge_set(series1(g, "a\\b\"c\nd"), 1);
  cm_gauge_set(series1(g, "caf\xc3\xa9\t{x=\"y\"} 2"), 2);
  cm_gauge_set(series1(g, "\x01"), 3);
}

static void prometheus_escapes(void **state) {
  populate_escapes(*state);
  expect_render(*state, CM_FORMAT_PROMETHEUS,
                "# HELP g A \"quoted\" \\\\ back\\nslash\n"
                "# TYPE g gauge\n"
                "g{path=\"\x01\"} 3\n"
                "g{path=\"a\\\\b\\\"c\\nd\"} 1\n"
                "g{path=\"caf\xc3\xa9\t{x=\\\"y\\\"} 2\"} 2\n");
}

static void openmetrics_escapes(void **state) {
  populate_escapes(*state);
  expect_render(*state, CM_FORMAT_OPENMETRICS,
                "# HELP g A \\\"quoted\\\" \\\\ back\\nslash\n"
                "# TYPE g gauge\n"
                "g{path=\"\x01\"} 3\n"
                "g{path=\"a\\\\b\\\"c\\nd\"} 1\n"
                "g{path=\"caf\xc3\xa9\t{x=\\\"y\\\"} 2\"} 2\n"
                "# EOF\n");
}

static void json_escapes(void **state) {
  populate_escapes(*state);
  expect_render(*state, CM_FORMAT_JSON,
                "{\"families\":[{\"name\":\"g\",\"type\":\"gauge\","
                "\"help\":\"A \\\"quoted\\\" \\\\ back\\nslash\",\"labels\":[\"path\"],\"series\":["
                "{\"labels\":{\"path\":\"\\u0001\"},\"created\":T,\"value\":3},"
                "{\"labels\":{\"path\":\"a\\\\b\\\"c\\nd\"},\"created\":T,\"value\":1},"
                "{\"labels\":{\"path\":\"caf\xc3\xa9\\t{x=\\\"y\\\"} 2\"},\"created\":T,\"value\":2}"
                "]}]}\n");
}

/* Families by name and series by label values, byte order, whatever the
 * order of creation. */
static void stable_order(void **state) {
  cm_registry *reg = *state;
  static const char *const names[] = {"zeta", "alpha", "Beta", "_x", "alpha2"};
  static const char *const ab[] = {"a", "b"};
  for (size_t i = 0; i < CMT_COUNT(names); i++) {
    cm_family *f = NULL;
    assert_status(cm_gauge_new(reg, names[i], NULL, NULL, 0, &f), CM_OK);
    cm_gauge_set(series1(f, NULL), (double)i);
  }
  cm_family *m = NULL;
  assert_status(cm_gauge_new(reg, "multi", NULL, ab, 2, &m), CM_OK);
  static const char *const values[][2] = {{"b", "1"}, {"a", "2"}, {"a", "10"}, {"", "z"},
                                          {"B", ""},  {"a", ""}};
  for (size_t i = 0; i < CMT_COUNT(values); i++) {
    cm_series *s = NULL;
    assert_status(cm_family_series(m, values[i], 2, &s), CM_OK);
    cm_gauge_set(s, (double)i);
  }
  const char *want = "# TYPE Beta gauge\nBeta 2\n"
                     "# TYPE _x gauge\n_x 3\n"
                     "# TYPE alpha gauge\nalpha 1\n"
                     "# TYPE alpha2 gauge\nalpha2 4\n"
                     "# TYPE multi gauge\n"
                     "multi{a=\"\",b=\"z\"} 3\n"
                     "multi{a=\"B\",b=\"\"} 4\n"
                     "multi{a=\"a\",b=\"\"} 5\n"
                     "multi{a=\"a\",b=\"10\"} 2\n"
                     "multi{a=\"a\",b=\"2\"} 1\n"
                     "multi{a=\"b\",b=\"1\"} 0\n"
                     "# TYPE zeta gauge\nzeta 0\n";
  expect_render(reg, CM_FORMAT_PROMETHEUS, want);
  /* Rendering changes nothing: the same text again. */
  expect_render(reg, CM_FORMAT_PROMETHEUS, want);
}

/* Gauges spell the non-finite values as the formats say; numbers are the
 * shortest round-trip text. */
static void special_values(void **state) {
  static const char *const k[] = {"k"};
  static const struct {
    const char *label;
    double v;
  } cases[] = {{"a", NAN},  {"b", INFINITY}, {"c", -INFINITY}, {"d", 0.1},
               {"e", 1e21}, {"f", -0.0},     {"g", 1e-7},      {"h", 123456789}};
  cm_family *f = NULL;
  assert_status(cm_gauge_new(*state, "v", NULL, k, 1, &f), CM_OK);
  for (size_t i = 0; i < CMT_COUNT(cases); i++) cm_gauge_set(series1(f, cases[i].label), cases[i].v);
  const char *samples = "v{k=\"a\"} NaN\n"
                        "v{k=\"b\"} +Inf\n"
                        "v{k=\"c\"} -Inf\n"
                        "v{k=\"d\"} 0.1\n"
                        "v{k=\"e\"} 1e+21\n"
                        "v{k=\"f\"} -0\n"
                        "v{k=\"g\"} 1e-07\n"
                        "v{k=\"h\"} 123456789\n";
  char want[512];
  strcpy(want, "# TYPE v gauge\n");
  strcat(want, samples);
  expect_render(*state, CM_FORMAT_PROMETHEUS, want);
  strcat(want, "# EOF\n");
  expect_render(*state, CM_FORMAT_OPENMETRICS, want);
  expect_render(*state, CM_FORMAT_JSON,
                "{\"families\":[{\"name\":\"v\",\"type\":\"gauge\",\"help\":\"\",\"labels\":[\"k\"],"
                "\"series\":["
                "{\"labels\":{\"k\":\"a\"},\"created\":T,\"value\":\"NaN\"},"
                "{\"labels\":{\"k\":\"b\"},\"created\":T,\"value\":\"+Inf\"},"
                "{\"labels\":{\"k\":\"c\"},\"created\":T,\"value\":\"-Inf\"},"
                "{\"labels\":{\"k\":\"d\"},\"created\":T,\"value\":0.1},"
                "{\"labels\":{\"k\":\"e\"},\"created\":T,\"value\":1e+21},"
                "{\"labels\":{\"k\":\"f\"},\"created\":T,\"value\":-0},"
                "{\"labels\":{\"k\":\"g\"},\"created\":T,\"value\":1e-07},"
                "{\"labels\":{\"k\":\"h\"},\"created\":T,\"value\":123456789}]}]}\n");
}

/* Const labels come first; histogram buckets put le last; an empty
 * histogram has all-zero buckets and null percentiles; families without
 * series show only their metadata. */
static void const_labels_and_empty(void **state) {
  (void)state;
  cm_registry *reg = cmt_registry("const_labels=env:prod,dc:x");
  static const char *const k[] = {"k"};
  static const double bounds[] = {0.25, 2.5};
  cm_family *h = NULL, *c = NULL;
  assert_status(cm_histogram_new(reg, "h", NULL, k, 1, bounds, 2, &h), CM_OK);
  assert_status(cm_counter_new(reg, "c", "No series yet.", k, 1, &c), CM_OK);
  series1(h, "v");
  expect_render(reg, CM_FORMAT_PROMETHEUS,
                "# HELP c_total No series yet.\n"
                "# TYPE c_total counter\n"
                "# TYPE h histogram\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"0.25\"} 0\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"2.5\"} 0\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"+Inf\"} 0\n"
                "h_sum{env=\"prod\",dc=\"x\",k=\"v\"} 0\n"
                "h_count{env=\"prod\",dc=\"x\",k=\"v\"} 0\n");
  expect_render(reg, CM_FORMAT_OPENMETRICS,
                "# HELP c No series yet.\n"
                "# TYPE c counter\n"
                "# TYPE h histogram\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"0.25\"} 0\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"2.5\"} 0\n"
                "h_bucket{env=\"prod\",dc=\"x\",k=\"v\",le=\"+Inf\"} 0\n"
                "h_count{env=\"prod\",dc=\"x\",k=\"v\"} 0\n"
                "h_sum{env=\"prod\",dc=\"x\",k=\"v\"} 0\n"
                "h_created{env=\"prod\",dc=\"x\",k=\"v\"} T\n"
                "# EOF\n");
  expect_render(reg, CM_FORMAT_JSON,
                "{\"families\":["
                "{\"name\":\"c_total\",\"type\":\"counter\",\"help\":\"No series yet.\","
                "\"labels\":[\"k\"],\"series\":[]},"
                "{\"name\":\"h\",\"type\":\"histogram\",\"help\":\"\",\"labels\":[\"k\"],"
                "\"bounds\":[0.25,2.5],\"series\":[{\"labels\":{\"env\":\"prod\",\"dc\":\"x\",\"k\":\"v\"},"
                "\"created\":T,\"count\":0,\"sum\":0,\"buckets\":[{\"le\":0.25,\"count\":0},"
                "{\"le\":2.5,\"count\":0},{\"le\":\"+Inf\",\"count\":0}],"
                "\"p50\":null,\"p90\":null,\"p99\":null}]}"
                "]}\n");
  /* Const labels reach the self-metrics too. */
  assert_double_exact(
      cmt_render_sample(reg, "cachemeter_series_rejected_total{env=\"prod\",dc=\"x\"}"), 0);
  cm_registry_free(reg);
}

/* Buckets are cumulative and include their bound; +Inf equals _count. */
static void cumulative_buckets(void **state) {
  static const double bounds[] = {1, 2, 4};
  static const double obs[] = {1, 1, 1.5, 2, 3, 4, 4.0000001, 100, -5};
  cm_family *h = NULL;
  assert_status(cm_histogram_new(*state, "h", NULL, NULL, 0, bounds, 3, &h), CM_OK);
  cm_series *s = series1(h, NULL);
  for (size_t i = 0; i < CMT_COUNT(obs); i++) cm_histogram_observe(s, obs[i]);
  char *text = cmt_render(*state, CM_FORMAT_PROMETHEUS);
  assert_double_exact(cmt_sample(text, "h_bucket{le=\"1.0\"}"), 3);
  assert_double_exact(cmt_sample(text, "h_bucket{le=\"2.0\"}"), 5);
  assert_double_exact(cmt_sample(text, "h_bucket{le=\"4.0\"}"), 7);
  assert_double_exact(cmt_sample(text, "h_bucket{le=\"+Inf\"}"), 9);
  assert_double_exact(cmt_sample(text, "h_count"), 9);
  assert_double_exact(cmt_sample(text, "h_sum"), cm_histogram_sum(s));
  cm_free(text);
  /* The JSON percentiles follow histogram_quantile(): p50 has rank 4.5,
   * inside (1, 2] holding 2 from cumulative 3: 1 + 1 * 1.5 / 2 = 1.75. */
  text = cmt_render(*state, CM_FORMAT_JSON);
  assert_contains(text, "\"p50\":1.75,\"p90\":4,\"p99\":4}");
  cm_free(text);
}

/* "le" values in the canonical form of OpenMetrics 1.0 ("Considerations:
 * Canonical Numbers": Go's %g with ".0" added when there is neither a point
 * nor an exponent), which docs/exposition.md promises for both text formats.
 * The bounds and their spellings are the examples of the specification. */
static void canonical_le_values(void **state) {
  static const double bounds[] = {0,    1e-10, 1e-05, 0.0001, 0.001, 0.002, 0.01, 0.1, 0.9,
                                  0.95, 0.99,  0.999, 1,      1.7,   10,    1e5,  1e6, 1e10};
  static const char *const want[] = {"0.0",  "1e-10", "1e-05", "0.0001",   "0.001", "0.002",
                                     "0.01", "0.1",   "0.9",   "0.95",     "0.99",  "0.999",
                                     "1.0",  "1.7",   "10.0",  "100000.0", "1e+06", "1e+10"};
  cm_family *h = NULL;
  assert_status(cm_histogram_new(*state, "h", NULL, NULL, 0, bounds, CMT_COUNT(bounds), &h),
                CM_OK);
  cm_histogram_observe(series1(h, NULL), 0.5);
  /* All bounds are checked (and the text freed) before failing, so that a
   * failure lists every wrong spelling at once. */
  size_t wrong = 0;
  for (int format = CM_FORMAT_PROMETHEUS; format <= CM_FORMAT_OPENMETRICS; format++) {
    char *text = cmt_render(*state, format);
    for (size_t i = 0; i < CMT_COUNT(want); i++) {
      char key[64];
      snprintf(key, sizeof key, "h_bucket{le=\"%s\"}", want[i]);
      if (isnan(cmt_sample(text, key))) {
        print_error("format %d: bound %.17g is not rendered as le=\"%s\"\n", format, bounds[i],
                    want[i]);
        wrong++;
      }
    }
    cm_free(text);
  }
  assert_int_equal(wrong, 0);
}

/* OpenMetrics: histogram _sum is a counter-like value, so it is never
 * negative, and it is absent when a bucket bound is negative ("Histogram"
 * in the specification; prometheus_client's OpenMetrics parser rejects
 * both). The Prometheus format has no such rule. */
static void openmetrics_histogram_sum_rules(void **state) {
  static const double negative_bound[] = {-1, 1}, positive_bound[] = {1};
  cm_family *hn = NULL, *hp = NULL;
  assert_status(cm_histogram_new(*state, "hn", NULL, NULL, 0, negative_bound, 2, &hn), CM_OK);
  assert_status(cm_histogram_new(*state, "hp", NULL, NULL, 0, positive_bound, 1, &hp), CM_OK);
  cm_histogram_observe(series1(hn, NULL), 0.5);
  cm_histogram_observe(series1(hp, NULL), -3);
  char *text = cmt_render(*state, CM_FORMAT_OPENMETRICS);
  assert_not_contains(text, "\nhn_sum ");
  assert_not_contains(text, "\nhp_sum -");
  assert_contains(text, "\nhn_bucket{le=\"+Inf\"} 1\n");
  assert_contains(text, "\nhp_bucket{le=\"+Inf\"} 1\n");
  cm_free(text);
}

static void len_is_optional(void **state) {
  char *out = NULL;
  assert_status(cm_registry_render(*state, CM_FORMAT_OPENMETRICS, &out, NULL), CM_OK);
  assert_non_null(out);
  assert_contains(out, "# EOF\n");
  cm_free(out);
}

static void default_registry(void **state) {
  (void)state;
  char *text = cmt_render(NULL, CM_FORMAT_PROMETHEUS);
  assert_contains(text, "cachemeter_series_rejected_total 0\n");
  cm_free(text);
}

static void bad_arguments(void **state) {
  static const int formats[] = {-1, 3, 100, INT32_MIN};
  for (size_t i = 0; i < CMT_COUNT(formats); i++) {
    char *out = (char *)"sentinel";
    size_t len = 42;
    cm_errclear();
    assert_status(cm_registry_render(*state, formats[i], &out, &len), CM_EINVAL);
    assert_null(out);
    assert_contains(cm_errmsg(), "format");
  }
  size_t len = 0;
  for (int f = CM_FORMAT_PROMETHEUS; f <= CM_FORMAT_JSON; f++) {
    cm_errclear();
    assert_status(cm_registry_render(*state, f, NULL, &len), CM_EINVAL);
    assert_contains(cm_errmsg(), "out");
  }
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, cmt_registry_teardown)
  const struct CMUnitTest tests[] = {
      T(prometheus_basic),   T(openmetrics_basic),      T(json_basic),
      T(self_metrics_present), T(prometheus_escapes),   T(openmetrics_escapes),
      T(json_escapes),       T(stable_order),           T(special_values),
      T(const_labels_and_empty), T(cumulative_buckets), T(canonical_le_values),
      T(openmetrics_histogram_sum_rules), T(len_is_optional),
      T(default_registry),   T(bad_arguments),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
