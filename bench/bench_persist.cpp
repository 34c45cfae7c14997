// SPDX-License-Identifier: Apache-2.0
// Registry persistence (cm_registry_persist): one flush of 10k changed series
// (target <= 30 ms), the restore of a file holding 100k series (target
// <= 300 ms), and counter add with persistence on and off (the hot path must
// not notice the flusher). Public API only.
#include <benchmark/benchmark.h>
#include <cachemeter/metrics.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

void check(int status, const char* what) {
  if (status != CM_OK) {
    std::fprintf(stderr, "bench_persist: %s: %s: %s\n", what, cm_status_name(status), cm_errmsg());
    std::abort();
  }
}

std::string fresh_path(const char* name) {
  std::string p = std::string("/tmp/bench_persist_") + std::to_string(getpid()) + "_" + name + ".db";
  for (const char* suffix : {"", "-lock", "-wal", "-shm"}) unlink((p + suffix).c_str());
  return p;
}

void remove_file(const std::string& p) {
  for (const char* suffix : {"", "-lock", "-wal", "-shm"}) unlink((p + suffix).c_str());
}

// n counter series bench_requests_total{path="/item/<i>"} in reg.
std::vector<cm_series*> make_series(cm_registry* reg, int n) {
  const char* labels[] = {"path"};
  cm_family* f = nullptr;
  check(cm_counter_new(reg, "bench_requests_total", "Requests.", labels, 1, &f), "cm_counter_new");
  std::vector<cm_series*> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::string v = "/item/" + std::to_string(i);
    const char* values[] = {v.c_str()};
    cm_series* s = nullptr;
    check(cm_family_series(f, values, 1, &s), "cm_family_series");
    out.push_back(s);
  }
  return out;
}

void BM_FlushChangedSeries(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::string path = fresh_path("flush");
  cm_registry* reg = nullptr;
  check(cm_registry_new(&reg, "max_series=1000000"), "cm_registry_new");
  std::vector<cm_series*> series = make_series(reg, n);
  check(cm_registry_persist(reg, path.c_str(), 0), "cm_registry_persist");
  check(cm_registry_flush(reg), "first flush");  // rows exist: later flushes update them
  for (auto _ : state) {
    state.PauseTiming();
    for (cm_series* s : series) cm_counter_add(s, 1);  // every series changed
    state.ResumeTiming();
    check(cm_registry_flush(reg), "cm_registry_flush");
  }
  state.SetItemsProcessed(state.iterations() * n);
  cm_registry_free(reg);
  remove_file(path);
}
BENCHMARK(BM_FlushChangedSeries)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

// A file with n series, then: a new registry registers the family and its
// series and calls cm_registry_persist (restore into existing series), or
// persists first and creates the series after (restore on creation).
void BM_Restore(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool series_first = state.range(1) != 0;
  std::string path = fresh_path("restore");
  {
    cm_registry* reg = nullptr;
    check(cm_registry_new(&reg, "max_series=1000000"), "cm_registry_new");
    for (cm_series* s : make_series(reg, n)) cm_counter_add(s, 3);
    check(cm_registry_persist(reg, path.c_str(), 0), "cm_registry_persist");
    cm_registry_free(reg);
  }
  for (auto _ : state) {
    state.PauseTiming();
    cm_registry* reg = nullptr;
    check(cm_registry_new(&reg, "max_series=1000000"), "cm_registry_new");
    std::vector<cm_series*> series;
    if (series_first) series = make_series(reg, n);
    state.ResumeTiming();
    check(cm_registry_persist(reg, path.c_str(), 0), "cm_registry_persist");
    if (!series_first) series = make_series(reg, n);
    state.PauseTiming();
    if (cm_series_value(series[static_cast<size_t>(n) - 1]) != 3) std::abort();
    cm_registry_free(reg);  // nothing changed: the last flush writes nothing
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * n);
  remove_file(path);
}
BENCHMARK(BM_Restore)
    ->ArgsProduct({{100000}, {1, 0}})
    ->ArgNames({"series", "series_first"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(5);

// Counter add on a registry that persists with a 1 ms background flusher vs
// one that does not.
void BM_CounterAdd(benchmark::State& state) {
  const bool persisted = state.range(0) != 0;
  static cm_registry* reg[2] = {nullptr, nullptr};
  static cm_series* s[2] = {nullptr, nullptr};
  static std::string path;
  int k = persisted ? 1 : 0;
  if (state.thread_index() == 0) {
    check(cm_registry_new(&reg[k], nullptr), "cm_registry_new");
    s[k] = make_series(reg[k], 1)[0];
    if (persisted) {
      path = fresh_path("add");
      check(cm_registry_persist(reg[k], path.c_str(), 1), "cm_registry_persist");
    }
  }
  for (auto _ : state) cm_counter_add(s[k], 1);
  if (state.thread_index() == 0) {
    cm_registry_free(reg[k]);
    if (persisted) remove_file(path);
  }
}
BENCHMARK(BM_CounterAdd)->Arg(0)->Arg(1)->ArgName("persisted");

}  // namespace

BENCHMARK_MAIN();
