/* SPDX-License-Identifier: Apache-2.0 */
// Shared pieces of the cachemeter-vs-prometheus-cpp benchmarks: the pair
// registration that gives both libraries identical benchmark settings, the
// workload constants both are fed, and a loud setup-failure check.
#pragma once

#include <benchmark/benchmark.h>
#include <cachemeter/metrics.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

// prometheus-cpp is optional (CM_BENCH_HAVE_PROMETHEUS is set by CMake when
// find_package found it). Its headers live in /usr/include, so the compiler
// already treats them as system headers and they need no warning suppression.
#ifdef CM_BENCH_HAVE_PROMETHEUS
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#endif

namespace cmbench {

// A benchmark setup that fails would otherwise measure a NULL handle (a no-op
// in cachemeter): abort with the library's own message instead.
inline void check(int status, const char *what) {
  if (status != CM_OK) {
    std::fprintf(stderr, "bench setup: %s failed: %s: %s\n", what,
                 cm_status_name(status), cm_errmsg());
    std::abort();
  }
}

// 10 finite bounds + the implicit +Inf bucket = the 11 buckets of issue 2.
inline const std::vector<double> &histogram_bounds() {
  static const std::vector<double> b{0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,  0.1,    0.25,  0.5,  1.0};
  return b;
}

// Observations cycled through by the histogram benchmarks: they land in every
// bucket (+Inf included), so neither library gets a perfectly predicted
// first-bucket branch. A power-of-two count keeps the index a mask.
inline constexpr double kObservations[16] = {
    0.0005, 0.002, 0.004, 0.008, 0.02, 0.04, 0.08, 0.2,
    0.4,    0.8,   2.0,   0.003, 0.03, 0.3,  0.0007, 7.0};
inline constexpr unsigned kObservationMask = 15;

using BenchFn = void (*)(benchmark::State &);

// Registers NAME/SIDE with the settings every benchmark here shares. Wall
// time (UseRealTime) is used everywhere: with N threads Google Benchmark then
// reports wall time / total operations, i.e. the inverse of the aggregate
// throughput, which is what the targets compare (CPU time would sum
// over threads and hide a second thread that adds no throughput). Keeping
// single-thread runs on wall time too makes 1- and 2-thread rows comparable.
inline void register_side(const std::string &name, const char *side, BenchFn fn,
                          const std::vector<int> &threads) {
  auto *b = benchmark::RegisterBenchmark((name + "/" + side).c_str(), fn);
  for (int t : threads) b->Threads(t);
  b->UseRealTime();
}

// Registers NAME/cachemeter and, when prometheus-cpp was found,
// NAME/prometheus_cpp, with the same thread counts and timing so a pair can
// only differ by the library.
inline void register_pair(const std::string &name, BenchFn ours,
                          [[maybe_unused]] BenchFn theirs,
                          const std::vector<int> &threads) {
  register_side(name, "cachemeter", ours, threads);
#ifdef CM_BENCH_HAVE_PROMETHEUS
  register_side(name, "prometheus_cpp", theirs, threads);
#endif
}

// Every bench_* program has the same main: register, then run.
inline int run_main(int argc, char **argv, void (*register_all)()) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#ifndef CM_BENCH_HAVE_PROMETHEUS
  std::fprintf(stderr, "note: built without prometheus-cpp: only the cachemeter half runs\n");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace cmbench
