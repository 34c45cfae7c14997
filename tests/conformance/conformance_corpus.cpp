// SPDX-License-Identifier: Apache-2.0
// conformance_corpus OUTDIR: builds registries full of exposition edge cases
// through the public C API and writes, per registry, OUTDIR/<name>/ with
// metrics.prom, metrics.om, metrics.json and expected.json (see recorder.h).
// check_exposition.py then holds the renders against the real parsers.
//
// Values that are accumulated (several adds or observations) are dyadic
// fractions (k/2^n), whose sums are exact in any order: the library folds
// per-thread cells, so the order of its additions is not the caller's, and
// the comparison must not depend on rounding. Non-dyadic values (0.1, 1e-300,
// ...) are each written by a single operation.
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "recorder.h"

using conformance::Family;
using conformance::Recorder;

namespace {

// Label values the text formats must escape or carry untouched.
const std::vector<std::pair<std::string, std::string>> kNastyValues = {
    {"plain", "plain"},
    {"empty", ""},
    {"double_quote", "say \"hi\""},
    {"only_quote", "\""},
    {"backslash", "C:\\dir\\file"},
    {"trailing_backslash", "ends with \\"},
    {"only_backslash", "\\"},
    {"backslash_n_literal", "\\n is not a newline"},
    {"backslash_quote_literal", "\\\""},
    {"newline", "line1\nline2"},
    {"only_newline", "\n"},
    {"trailing_newline", "abc\n"},
    {"utf8", "Grüße ✓ 日本"},
    {"utf8_4byte", "\xF0\x9F\x99\x82 emoji"},
    {"tab", "a\tb"},
    {"carriage_return", "a\rb"},
    {"braces_commas", "a},b{c=d,e=\"f\""},
    {"hash", "# not a comment"},
    {"spaces", "  leading and trailing  "},
    {"nan_word", "NaN"},
    {"mixed", "\\\"\n\\\\\"\"\n"},
};

std::string escaping(const std::string& out) {
  Recorder r("escaping", "", {});
  Family& g = r.gauge("escaping_label_values", "Label values that need escaping.", {"case", "value"});
  double v = 1;
  for (const auto& [name, value] : kNastyValues) r.set(r.series(g, {name, value}), v++);

  // Five labels, all nasty at once; the values rotate so each series differs.
  Family& many = r.gauge("escaping_many_labels", "Several labels per series.", {"a", "b", "c", "d", "e"});
  for (size_t i = 0; i < kNastyValues.size(); ++i) {
    std::vector<std::string> vals;
    for (size_t k = 0; k < 5; ++k) vals.push_back(kNastyValues[(i + k) % kNastyValues.size()].second);
    r.set(r.series(many, vals), static_cast<double>(i) + 0.5);
  }

  r.add(r.series(r.counter("escaping_help_total",
                           "Help with \"quotes\", a back\\slash, a newline\nsecond line, "
                           "UTF-8 Grüße ✓ 日本, a literal \\n and a trailing backslash \\")),
        1);
  r.add(r.series(r.counter("escaping_help_newlines_total", "\n\nstarts with newlines\n\\\n")), 2);
  r.set(r.series(r.gauge("escaping_no_help", nullptr)), 3);
  r.set(r.series(r.gauge("escaping_empty_help", "")), 4);
  return r.write(out);
}

std::string values(const std::string& out) {
  Recorder r("values", "", {});
  Family& g = r.gauge("values_level", "Gauges set to every kind of double.", {"case"});
  const std::vector<std::pair<std::string, double>> gauges = {
      {"nan", NAN},
      {"pos_inf", INFINITY},
      {"neg_inf", -INFINITY},
      {"neg_zero", -0.0},
      {"pos_zero", 0.0},
      {"tiny", 1e-300},
      {"huge", 1e300},
      {"one_tenth", 0.1},
      {"point_three", 0.1 + 0.2},
      {"third", 1.0 / 3},
      {"denorm_min", 5e-324},
      {"dbl_min", DBL_MIN},
      {"dbl_max", DBL_MAX},
      {"neg_dbl_max", -DBL_MAX},
      {"two_pow_53", 9007199254740992.0},
      {"two_pow_53_plus_2", 9007199254740994.0},
      {"ten_pow_21", 1e21},
      {"ten_pow_22", 1e22},
      {"ten_pow_minus_7", 1e-7},
      {"negative", -2.5},
      {"integer", 100},
  };
  for (const auto& [name, v] : gauges) r.set(r.series(g, {name}), v);

  auto& added = r.series(g, {"set_then_added"});
  r.set(added, 10);
  for (double d : {-0.25, -0.25, -0.25, 1.5}) r.gauge_add(added, d);
  auto& add_only = r.series(g, {"add_only"});
  for (int i = 0; i < 4; ++i) r.gauge_add(add_only, 0.5);
  auto& add_then_set = r.series(g, {"added_then_set"});
  r.gauge_add(add_then_set, 3);
  r.set(add_then_set, 7.75);  // a set discards the pending deltas
  auto& never = r.series(g, {"never_set"});
  (void)never;

  Family& c = r.counter("values_accumulated_total", "Counters with fractional and huge values.", {"case"});
  r.series(c, {"zero"});
  r.add(r.series(c, {"one_tenth"}), 0.1);
  auto& frac = r.series(c, {"fraction"});
  for (double d : {0.5, 0.25, 0.125}) r.add(frac, d);
  auto& many = r.series(c, {"thousand_ones"});
  for (int i = 0; i < 1000; ++i) r.add(many, 1);
  r.add(r.series(c, {"huge"}), 1e300);
  r.add(r.series(c, {"dbl_max"}), DBL_MAX);
  auto& overflow = r.series(c, {"overflow"});
  r.add(overflow, DBL_MAX);
  r.add(overflow, DBL_MAX);  // +Inf, as double arithmetic says
  r.add(r.series(c, {"two_pow_53"}), 9007199254740992.0);
  r.add(r.series(c, {"pos_inf"}), INFINITY);
  r.add(r.series(c, {"neg_zero_increment"}), -0.0);
  r.add(r.series(c, {"denorm_min"}), 5e-324);

  // Rejected updates: ignored, counted in cachemeter_invalid_observations_total.
  r.add(frac, -1);
  r.add(frac, NAN);
  r.add(frac, -INFINITY);
  r.set(frac, 5);            // a gauge update on a counter
  r.observe(add_only, 1);    // a histogram update on a gauge
  r.add(add_only, 1);        // a counter update on a gauge

  // Registered without "_total": exposed with it appended (metrics.h).
  r.add(r.series(r.counter("values_jobs", "A counter named without _total.")), 3);
  return r.write(out);
}

std::string histograms(const std::string& out) {
  Recorder r("histograms", "", {});
  r.series(r.histogram("hist_empty_default_seconds", "Default buckets, no observation.", {}, {}));
  Family& labelled = r.histogram("hist_empty_labelled_seconds", "Labelled, no observation.", {"op"}, {});
  r.series(labelled, {"get"});
  r.series(labelled, {"set"});

  // 100 dyadic bounds k/8: observations on bounds land in that bucket (le).
  std::vector<double> eighths;
  for (int k = 1; k <= 100; ++k) eighths.push_back(k / 8.0);
  auto& h100 = r.series(r.histogram("hist_hundred_buckets", "One hundred buckets.", {}, eighths));
  for (int k = 0; k <= 110; ++k) r.observe(h100, k / 16.0);

  // 100 decimal bounds k/100 (le formatting: "0.07", not 0.07000000000000001).
  std::vector<double> hundredths;
  for (int k = 1; k <= 100; ++k) hundredths.push_back(k / 100.0);
  auto& hdec = r.series(r.histogram("hist_decimal_buckets", "Decimal bounds.", {}, hundredths));
  for (double v : {0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 0.015625}) r.observe(hdec, v);

  Family& neg = r.histogram("hist_negative_observations", "Negative observations, positive sum.", {},
                            {0.5, 1, 2});
  auto& hneg = r.series(neg);
  for (double v : {-3.0, -0.5, 0.0, 0.5, 1.25, 5.0}) r.observe(hneg, v);

  auto& hinf = r.series(r.histogram("hist_infinite_observation", "An observation of +Inf.", {}, {1}));
  r.observe(hinf, 0.5);
  r.observe(hinf, INFINITY);

  auto& hext = r.series(r.histogram("hist_extreme_bounds", "Bounds far apart.", {}, {1e-300, 1e-5, 1, 1e300}));
  for (double v : {1e-300, 0.0, 1e300}) r.observe(hext, v);

  auto& hone = r.series(r.histogram("hist_single_bound", "One bound, 0.1.", {}, {0.1}));
  r.observe(hone, 0.1);
  r.observe(hone, 0.0625);
  r.observe(hone, NAN);  // ignored, counted as invalid

  Family& busy = r.histogram("hist_many_observations_seconds", "Many observations.", {"op"}, {});
  for (const char* op : {"delete", "get", "set"}) {
    auto& s = r.series(busy, {op});
    for (int j = 0; j < 1000; ++j) r.observe(s, (j % 64) / 256.0);
  }

  // A labelled family that never got a series: HELP/TYPE at most, no sample.
  r.histogram("hist_no_series_seconds", "No series at all.", {"op"}, {});
  return r.write(out);
}

// OpenMetrics forbids _sum (and with it _count) in the two cases below (see
// openmetrics_count_sum_rule in recorder.cpp). Each has a registry of its
// own, so that a parser refusing one does not hide the rest of the corpus.
std::string negative_sum(const std::string& out) {
  Recorder r("negative_sum", "", {});
  Family& f = r.histogram("hist_negative_sum", "Observations summing below zero.", {"case"}, {1, 2});
  auto& s = r.series(f, {"finite"});
  r.observe(s, -10);
  r.observe(s, 1);
  r.observe(r.series(f, {"minus_inf"}), -INFINITY);
  return r.write(out);
}

std::string negative_bounds(const std::string& out) {
  Recorder r("negative_bounds", "", {});
  auto& s = r.series(r.histogram("hist_negative_bounds", "Negative bucket bounds.", {}, {-1, 0, 1}));
  for (double v : {-2.0, -1.0, -0.5, 0.0, 0.5, 3.0}) r.observe(s, v);
  return r.write(out);
}

std::string const_labels_and_prefix(const std::string& out) {
  // Values percent-encoded as metrics.h says: ',' ':' '&' '=' and the rest.
  Recorder r("const_labels",
             "prefix=myapp_cache_&max_series=6&const_labels="
             "env:prod,region:eu%2Cwest%3A1,note:%22q%22%20back%5Cslash%0Anewline,"
             "city:M%C3%BCnchen,amp:a%26b%3Dc,empty:",
             {{"env", "prod"},
              {"region", "eu,west:1"},
              {"note", "\"q\" back\\slash\nnewline"},
              {"city", "München"},
              {"amp", "a&b=c"},
              {"empty", ""}},
             "myapp_cache_");
  Family& req = r.counter("app_requests_total", "Requests.", {"method", "code"});
  r.add(r.series(req, {"GET", "200"}), 5);
  r.add(r.series(req, {"POST", "500"}), 1);
  Family& lat = r.histogram("app_latency_seconds", "Latency.", {"route"}, {});
  r.observe(r.series(lat, {"/"}), 0.125);
  Family& depth = r.gauge("app_queue_depth", "Queue depth.", {"k"});
  for (int k = 0; k < 3; ++k) r.set(r.series(depth, {std::to_string(k)}), k);
  // max_series=6 is now reached: two refusals, counted under the prefix.
  for (const char* k : {"3", "4"}) {
    int st = r.try_series(depth, {k});
    if (st != CM_ELIMIT) conformance::check(st == CM_OK ? CM_ESTATE : st, "series past max_series");
  }
  r.series(depth, {"0"});  // an existing series is still found
  r.add(r.series(req, {"GET", "200"}), NAN);  // invalid, counted under the prefix
  return r.write(out);
}

std::string many_series(const std::string& out) {
  Recorder r("many_series", "", {});
  Family& c = r.counter("many_requests_total", "Many counters.", {"shard", "method", "status"});
  const char* methods[] = {"GET", "PUT", "POST", "DELETE"};
  const char* statuses[] = {"200", "301", "404", "500", "503"};
  int i = 0;
  for (int shard = 0; shard < 10; ++shard)
    for (const char* m : methods)
      for (const char* st : statuses) r.add(r.series(c, {std::to_string(shard), m, st}), 0.25 * ++i);
  Family& g = r.gauge("many_temperature_celsius", "Many gauges.", {"sensor"});
  for (int s = 0; s < 1000; ++s) r.set(r.series(g, {"sensor-" + std::to_string(s)}), s - 500.5);
  Family& h = r.histogram("many_duration_seconds", "Many histograms.", {"endpoint", "method"}, {});
  for (int e = 0; e < 50; ++e)
    for (const char* m : {"GET", "POST"}) {
      auto& s = r.series(h, {"/api/v1/item/" + std::to_string(e), m});
      for (int k = 0; k <= e % 7; ++k) r.observe(s, k / 64.0 + e / 8.0);
    }
  return r.write(out);
}

std::string empty(const std::string& out) {
  Recorder r("empty", "", {});
  return r.write(out);
}

std::string after_reset(const std::string& out) {
  Recorder r("after_reset", "prefix=reset_", {}, "reset_");
  auto& c = r.series(r.counter("reset_events_total", "Counted, reset, counted again.", {"kind"}), {"a"});
  auto& g = r.series(r.gauge("reset_level", "Set, reset."));
  auto& h = r.series(r.histogram("reset_latency_seconds", "Observed, reset, observed.", {}, {}));
  r.add(c, 7);
  r.set(g, -3.5);
  r.observe(h, 0.25);
  r.add(c, -1);  // invalid: wiped by the reset along with everything else
  r.reset();
  r.add(c, 0.5);
  r.observe(h, 2);
  return r.write(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  std::string out = argv[1];
  std::vector<std::string> written;
  for (auto build : {escaping, values, histograms, negative_sum, negative_bounds, const_labels_and_prefix,
                     many_series, empty, after_reset})
    written.push_back(build(out));
  // The manifest says which registries this run wrote, so that a stale
  // directory from an older corpus is never checked (or mistaken for one).
  conformance::write_manifest(out, written);
  return 0;
}
