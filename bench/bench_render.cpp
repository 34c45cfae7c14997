// SPDX-License-Identifier: Apache-2.0
// Rendering 10k labelled series (counters, gauges, histograms) to Prometheus
// text: cm_registry_render next to prometheus-cpp's Registry::Collect +
// TextSerializer::Serialize on the same series and values. Besides time it
// reports, from one extra untimed render each, the bytes and calls the render
// asked of the heap (alloc_counter.c) and what it produced.
#include "alloc_counter.h"
#include "bench_util.h"

#include <string>
#include <string_view>

#ifdef CM_BENCH_HAVE_PROMETHEUS
#include <prometheus/text_serializer.h>
#endif

namespace {

constexpr int kCounterFamilies = 4;
constexpr int kGaugeFamilies = 4;
constexpr int kHistogramFamilies = 2;
constexpr int kSeriesPerFamily = 1000; // 10 families x 1000 = 10k series
constexpr int kObservationsPerSeries = 3;
const char *const kMethods[] = {"GET", "POST", "PUT", "DELETE"};

std::string item_path(int i) { return "/api/v1/item/" + std::to_string(i); }
std::string numbered(const char *stem, int f, const char *suffix) {
  return stem + std::to_string(f) + suffix;
}

// The value series i of family f holds; both libraries get the same ones.
double counter_value(int f, int i) { return i * 3.0 + f; }
double gauge_value(int f, int i) { return i * 0.001 - f; }
double observation(int i, int k) {
  return cmbench::kObservations[(i + k) & cmbench::kObservationMask];
}

struct CmRegistry {
  cm_registry *reg = nullptr;
  CmRegistry() {
    using cmbench::check;
    // The default cap (10000) would leave no room for growth; the benchmark
    // is about rendering, not the cap.
    check(cm_registry_new(&reg, "max_series=20000"), "cm_registry_new");
    const char *labels[] = {"method", "path"};
    const auto &bounds = cmbench::histogram_bounds();
    cm_family *counters[kCounterFamilies], *gauges[kGaugeFamilies],
        *histograms[kHistogramFamilies];
    for (int f = 0; f < kCounterFamilies; ++f)
      check(cm_counter_new(reg, numbered("render_counter_", f, "_total").c_str(),
                           "Render benchmark counter.", labels, 2, &counters[f]),
            "cm_counter_new");
    for (int f = 0; f < kGaugeFamilies; ++f)
      check(cm_gauge_new(reg, numbered("render_gauge_", f, "").c_str(),
                         "Render benchmark gauge.", labels, 2, &gauges[f]),
            "cm_gauge_new");
    for (int f = 0; f < kHistogramFamilies; ++f)
      check(cm_histogram_new(reg, numbered("render_histogram_", f, "_seconds").c_str(),
                             "Render benchmark histogram.", labels, 2, bounds.data(),
                             bounds.size(), &histograms[f]),
            "cm_histogram_new");
    for (int i = 0; i < kSeriesPerFamily; ++i) {
      const std::string path = item_path(i);
      const char *values[] = {kMethods[i % 4], path.c_str()};
      cm_series *s;
      for (int f = 0; f < kCounterFamilies; ++f) {
        check(cm_family_series(counters[f], values, 2, &s), "cm_family_series");
        cm_counter_add(s, counter_value(f, i));
      }
      for (int f = 0; f < kGaugeFamilies; ++f) {
        check(cm_family_series(gauges[f], values, 2, &s), "cm_family_series");
        cm_gauge_set(s, gauge_value(f, i));
      }
      for (int f = 0; f < kHistogramFamilies; ++f) {
        check(cm_family_series(histograms[f], values, 2, &s), "cm_family_series");
        for (int k = 0; k < kObservationsPerSeries; ++k) cm_histogram_observe(s, observation(i, k));
      }
    }
  }
};

#ifdef CM_BENCH_HAVE_PROMETHEUS
struct PromRegistry {
  prometheus::Registry reg;
  PromRegistry() {
    using namespace prometheus;
    std::vector<Family<Counter> *> counters;
    std::vector<Family<Gauge> *> gauges;
    std::vector<Family<Histogram> *> histograms;
    for (int f = 0; f < kCounterFamilies; ++f)
      counters.push_back(&BuildCounter()
                              .Name(numbered("render_counter_", f, "_total"))
                              .Help("Render benchmark counter.")
                              .Register(reg));
    for (int f = 0; f < kGaugeFamilies; ++f)
      gauges.push_back(&BuildGauge()
                            .Name(numbered("render_gauge_", f, ""))
                            .Help("Render benchmark gauge.")
                            .Register(reg));
    for (int f = 0; f < kHistogramFamilies; ++f)
      histograms.push_back(&BuildHistogram()
                                .Name(numbered("render_histogram_", f, "_seconds"))
                                .Help("Render benchmark histogram.")
                                .Register(reg));
    for (int i = 0; i < kSeriesPerFamily; ++i) {
      const Labels labels{{"method", kMethods[i % 4]}, {"path", item_path(i)}};
      for (int f = 0; f < kCounterFamilies; ++f)
        counters[f]->Add(labels).Increment(counter_value(f, i));
      for (int f = 0; f < kGaugeFamilies; ++f) gauges[f]->Add(labels).Set(gauge_value(f, i));
      for (int f = 0; f < kHistogramFamilies; ++f) {
        Histogram &h = histograms[f]->Add(labels, cmbench::histogram_bounds());
        for (int k = 0; k < kObservationsPerSeries; ++k) h.Observe(observation(i, k));
      }
    }
  }
};
#endif

// Lines that are samples rather than # HELP / # TYPE comments.
size_t sample_lines(std::string_view text) {
  size_t n = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (text[pos] != '#') ++n;
    pos = end + 1;
  }
  return n;
}

// Renders once more, untimed, with the allocation hook on, and reports the
// heap traffic and the output as counters. render(consume) must call
// consume(text) on its output before releasing it.
template <class Render>
void report_one_render(benchmark::State &st, Render render) {
  size_t bytes = 0, samples = 0;
  cmb_alloc_count_start();
  render([&](std::string_view text) {
    bytes = text.size();
    samples = sample_lines(text);
  });
  const cmb_alloc_stats a = cmb_alloc_count_stop();
  // The output alone is at least one allocation of its size: if the hook saw
  // less, it is not interposed and the figures would be lies.
  if (a.calls == 0 || a.bytes < bytes) {
    st.SkipWithError("allocation hook not active: malloc is not interposed");
    return;
  }
  st.counters["out_bytes"] = static_cast<double>(bytes);
  st.counters["out_samples"] = static_cast<double>(samples);
  st.counters["alloc_bytes"] = static_cast<double>(a.bytes);
  st.counters["alloc_calls"] = static_cast<double>(a.calls);
}

void render_cm(benchmark::State &st) {
  static CmRegistry fixture;
  auto render = [&](auto consume) {
    char *out = nullptr;
    size_t len = 0;
    cmbench::check(cm_registry_render(fixture.reg, CM_FORMAT_PROMETHEUS, &out, &len),
                   "cm_registry_render");
    consume(std::string_view(out, len));
    cm_free(out);
  };
  for (auto _ : st) render([](std::string_view text) { benchmark::DoNotOptimize(text.data()); });
  report_one_render(st, render);
}

#ifdef CM_BENCH_HAVE_PROMETHEUS
void render_prom(benchmark::State &st) {
  static PromRegistry fixture;
  const prometheus::TextSerializer serializer;
  auto render = [&](auto consume) {
    const std::string text = serializer.Serialize(fixture.reg.Collect());
    consume(text);
  };
  for (auto _ : st) render([](std::string_view text) { benchmark::DoNotOptimize(text.data()); });
  report_one_render(st, render);
}
#else
constexpr cmbench::BenchFn render_prom = nullptr;
#endif

void register_all() {
  cmbench::register_pair("render_prometheus_text/10k_series", render_cm, render_prom, {1});
}

}  // namespace

int main(int argc, char **argv) { return cmbench::run_main(argc, argv, register_all); }
