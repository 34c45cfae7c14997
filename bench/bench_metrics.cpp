// SPDX-License-Identifier: Apache-2.0
// Hot paths of the metrics registry next to prometheus-cpp's equivalents:
// counter add, gauge add, histogram observe, value read and the lookup of an
// existing labelled child. Both libraries get the same families, label values
// and observations (see bench_util.h); each pair differs only by library.
#include "bench_util.h"

#include <cstdlib>
#include <string>

#include <stdlib.h>

namespace {

constexpr int kWorkers = 2;           // one series per benchmark thread
constexpr int kLookupChildren = 1000; // children already in the lookup family
constexpr int kLookupTarget = 500;    // the existing child every lookup finds

const char *const kWorkerNames[kWorkers] = {"0", "1"};

std::string lookup_path(int i) { return "/api/v1/item/" + std::to_string(i); }

// Every family both libraries are benchmarked on, created once on first use
// (a function-local static, so also safe from benchmark threads).
struct Fixture {
  cm_registry *reg = nullptr;
  cm_series *counter[kWorkers]{};
  cm_series *gauge[kWorkers]{};
  cm_series *histogram[kWorkers]{};
  cm_family *lookup = nullptr;
  cm_series *lookup_expected = nullptr;

#ifdef CM_BENCH_HAVE_PROMETHEUS
  prometheus::Registry preg;
  prometheus::Counter *pcounter[kWorkers]{};
  prometheus::Gauge *pgauge[kWorkers]{};
  prometheus::Histogram *phistogram[kWorkers]{};
  prometheus::Family<prometheus::Counter> *plookup = nullptr;
  prometheus::Labels plookup_labels;
#endif

  Fixture() {
    using cmbench::check;
    check(cm_registry_new(&reg, nullptr), "cm_registry_new");
    const char *worker[] = {"worker"};
    cm_family *fc, *fg, *fh;
    check(cm_counter_new(reg, "bench_counter_total", "c", worker, 1, &fc), "cm_counter_new");
    check(cm_gauge_new(reg, "bench_gauge", "g", worker, 1, &fg), "cm_gauge_new");
    const auto &bounds = cmbench::histogram_bounds();
    check(cm_histogram_new(reg, "bench_histogram_seconds", "h", worker, 1, bounds.data(),
                           bounds.size(), &fh),
          "cm_histogram_new");
    for (int w = 0; w < kWorkers; ++w) {
      check(cm_family_series(fc, &kWorkerNames[w], 1, &counter[w]), "cm_family_series");
      check(cm_family_series(fg, &kWorkerNames[w], 1, &gauge[w]), "cm_family_series");
      check(cm_family_series(fh, &kWorkerNames[w], 1, &histogram[w]), "cm_family_series");
    }
    const char *lookup_labels[] = {"method", "path"};
    check(cm_counter_new(reg, "bench_lookup_total", "l", lookup_labels, 2, &lookup),
          "cm_counter_new");
    for (int i = 0; i < kLookupChildren; ++i) {
      const std::string path = lookup_path(i);
      const char *values[] = {"GET", path.c_str()};
      cm_series *s;
      check(cm_family_series(lookup, values, 2, &s), "cm_family_series");
      if (i == kLookupTarget) lookup_expected = s;
    }

#ifdef CM_BENCH_HAVE_PROMETHEUS
    auto &pfc = prometheus::BuildCounter().Name("bench_counter_total").Help("c").Register(preg);
    auto &pfg = prometheus::BuildGauge().Name("bench_gauge").Help("g").Register(preg);
    auto &pfh = prometheus::BuildHistogram().Name("bench_histogram_seconds").Help("h").Register(preg);
    for (int w = 0; w < kWorkers; ++w) {
      const prometheus::Labels labels{{"worker", kWorkerNames[w]}};
      pcounter[w] = &pfc.Add(labels);
      pgauge[w] = &pfg.Add(labels);
      phistogram[w] = &pfh.Add(labels, bounds);
    }
    plookup = &prometheus::BuildCounter().Name("bench_lookup_total").Help("l").Register(preg);
    for (int i = 0; i < kLookupChildren; ++i)
      plookup->Add({{"method", "GET"}, {"path", lookup_path(i)}});
    plookup_labels = {{"method", "GET"}, {"path", lookup_path(kLookupTarget)}};
#endif
  }
};

Fixture &fx() {
  static Fixture f;
  return f;
}

// The same counter and histogram in a shared registry (docs/multiprocess.md):
// cells in this worker's slot file, in a fresh directory removed at exit.
struct SharedFixture {
  std::string dir;
  cm_registry *reg = nullptr;
  cm_series *counter = nullptr;
  cm_series *histogram = nullptr;
  SharedFixture() {
    using cmbench::check;
    char tmpl[] = "/tmp/cm-bench-shared-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    check(cm_registry_new(&reg, ("shared=" + dir + "/metrics").c_str()), "cm_registry_new(shared)");
    const char *worker[] = {"worker"};
    cm_family *fc, *fh;
    check(cm_counter_new(reg, "bench_counter_total", "c", worker, 1, &fc), "cm_counter_new");
    const auto &bounds = cmbench::histogram_bounds();
    check(cm_histogram_new(reg, "bench_histogram_seconds", "h", worker, 1, bounds.data(), bounds.size(), &fh),
          "cm_histogram_new");
    check(cm_family_series(fc, &kWorkerNames[0], 1, &counter), "cm_family_series");
    check(cm_family_series(fh, &kWorkerNames[0], 1, &histogram), "cm_family_series");
  }
  ~SharedFixture() {
    cm_registry_free(reg);
    std::system(("rm -rf '" + dir + "'").c_str());
  }
};

SharedFixture &shared_fx() {
  static SharedFixture f;
  return f;
}

// ---- counter add: every thread on series 0 (shared), or on its own series
void counter_add_one_series_cm(benchmark::State &st) {
  cm_series *s = fx().counter[0];
  for (auto _ : st) cm_counter_add(s, 1.0);
}
void counter_add_own_series_cm(benchmark::State &st) {
  cm_series *s = fx().counter[st.thread_index() % kWorkers];
  for (auto _ : st) cm_counter_add(s, 1.0);
}

void counter_add_one_series_shared(benchmark::State &st) {
  cm_series *s = shared_fx().counter;
  for (auto _ : st) cm_counter_add(s, 1.0);
}
void histogram_observe_shared(benchmark::State &st) {
  cm_series *s = shared_fx().histogram;
  unsigned i = 0;
  for (auto _ : st) cm_histogram_observe(s, cmbench::kObservations[i++ & cmbench::kObservationMask]);
}

// ---- gauge add and histogram observe, all threads on one series
void gauge_add_cm(benchmark::State &st) {
  cm_series *s = fx().gauge[0];
  for (auto _ : st) cm_gauge_add(s, 1.0);
}
void histogram_observe_cm(benchmark::State &st) {
  cm_series *s = fx().histogram[0];
  unsigned i = 0;
  for (auto _ : st) cm_histogram_observe(s, cmbench::kObservations[i++ & cmbench::kObservationMask]);
}

// ---- reading one value (a counter) while nobody writes
void series_value_cm(benchmark::State &st) {
  const cm_series *s = fx().counter[0];
  for (auto _ : st) benchmark::DoNotOptimize(cm_series_value(s));
}

// ---- lookup of an existing 2-label child. Label values are prepared once,
// as a caller holding them would; prometheus-cpp gets its Labels map prepared
// too (its best case), and a second variant builds the map per call.
void series_lookup_cm(benchmark::State &st) {
  cm_family *f = fx().lookup;
  const std::string path = lookup_path(kLookupTarget);
  const char *values[] = {"GET", path.c_str()};
  cm_series *s = nullptr;
  cmbench::check(cm_family_series(f, values, 2, &s), "cm_family_series");
  if (s != fx().lookup_expected) st.SkipWithError("lookup returned another series");
  for (auto _ : st) {
    cm_family_series(f, values, 2, &s);
    benchmark::DoNotOptimize(s);
  }
}

#ifdef CM_BENCH_HAVE_PROMETHEUS
void counter_add_one_series_prom(benchmark::State &st) {
  prometheus::Counter &c = *fx().pcounter[0];
  for (auto _ : st) c.Increment(1.0);
}
void counter_add_own_series_prom(benchmark::State &st) {
  prometheus::Counter &c = *fx().pcounter[st.thread_index() % kWorkers];
  for (auto _ : st) c.Increment(1.0);
}
void gauge_add_prom(benchmark::State &st) {
  prometheus::Gauge &g = *fx().pgauge[0];
  for (auto _ : st) g.Increment(1.0);
}
void histogram_observe_prom(benchmark::State &st) {
  prometheus::Histogram &h = *fx().phistogram[0];
  unsigned i = 0;
  for (auto _ : st) h.Observe(cmbench::kObservations[i++ & cmbench::kObservationMask]);
}
void series_value_prom(benchmark::State &st) {
  const prometheus::Counter &c = *fx().pcounter[0];
  for (auto _ : st) benchmark::DoNotOptimize(c.Value());
}
void series_lookup_prom(benchmark::State &st) {
  auto &f = *fx().plookup;
  const prometheus::Labels &labels = fx().plookup_labels;
  for (auto _ : st) benchmark::DoNotOptimize(&f.Add(labels));
}
void series_lookup_prom_labels_per_call(benchmark::State &st) {
  auto &f = *fx().plookup;
  const std::string path = lookup_path(kLookupTarget);
  for (auto _ : st) benchmark::DoNotOptimize(&f.Add({{"method", "GET"}, {"path", path}}));
}
#else
constexpr cmbench::BenchFn counter_add_one_series_prom = nullptr;
constexpr cmbench::BenchFn counter_add_own_series_prom = nullptr;
constexpr cmbench::BenchFn gauge_add_prom = nullptr;
constexpr cmbench::BenchFn histogram_observe_prom = nullptr;
constexpr cmbench::BenchFn series_value_prom = nullptr;
constexpr cmbench::BenchFn series_lookup_prom = nullptr;
#endif

void register_all() {
  using cmbench::register_pair;
  register_pair("counter_add/one_series", counter_add_one_series_cm, counter_add_one_series_prom, {1, 2});
  register_pair("counter_add/own_series", counter_add_own_series_cm, counter_add_own_series_prom, {2});
  register_pair("gauge_add/one_series", gauge_add_cm, gauge_add_prom, {1, 2});
  register_pair("histogram_observe/11_buckets", histogram_observe_cm, histogram_observe_prom, {1, 2});
  register_pair("series_value/counter", series_value_cm, series_value_prom, {1});
  register_pair("series_lookup/2_labels", series_lookup_cm, series_lookup_prom, {1, 2});
  // Issue 15: the same updates on a shared registry (target: <= 1.5x in-process).
  cmbench::register_side("counter_add/one_series", "cachemeter_shared", counter_add_one_series_shared, {1, 2});
  cmbench::register_side("histogram_observe/11_buckets", "cachemeter_shared", histogram_observe_shared, {1, 2});
#ifdef CM_BENCH_HAVE_PROMETHEUS
  cmbench::register_side("series_lookup/2_labels", "prometheus_cpp_labels_per_call",
                         series_lookup_prom_labels_per_call, {1});
#endif
}

}  // namespace

int main(int argc, char **argv) { return cmbench::run_main(argc, argv, register_all); }
