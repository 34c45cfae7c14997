// SPDX-License-Identifier: Apache-2.0
// Hit ratios of the memory backend's S3-FIFO against a plain LRU (std::list +
// unordered_map) on skewed and scan-polluted traces, printed as a markdown
// table (the figures quoted in src/backends/memory.cpp); then Google
// Benchmark timings of the backend's get-hit and set paths.
//   bench_hit_ratio                          table, then the benchmarks
//   bench_hit_ratio --benchmark_filter=none  the table only
#include <benchmark/benchmark.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/memory.h"
#include "traces.h"

namespace {

using cmsim::Lru;
using cmsim::Zipf;

constexpr uint64_t kKeySpace = 100000;
constexpr size_t kRequests = 1000000;
constexpr int64_t kNow = 1000000;

// Zipf(alpha) over ranks [0, n) by inverse CDF, fixed seed.

std::vector<uint64_t> zipf_trace(double alpha, uint64_t seed) {
  Zipf z(kKeySpace, alpha, seed);
  std::vector<uint64_t> t(kRequests);
  for (uint64_t& k : t) k = z.next();
  return t;
}

// Zipf(0.9) in blocks of 60000 requests, each followed by a sequential scan
// of 20000 keys never requested before or after (twice the largest cache):
// 750k Zipf requests and 250k scan requests.
std::vector<uint64_t> scan_trace() {
  Zipf z(kKeySpace, 0.9, 3);
  std::vector<uint64_t> t;
  t.reserve(kRequests);
  uint64_t scan_key = kKeySpace;
  while (t.size() < kRequests) {
    for (int i = 0; i < 60000 && t.size() < kRequests; ++i) t.push_back(z.next());
    for (int i = 0; i < 20000 && t.size() < kRequests; ++i) t.push_back(scan_key++);
  }
  return t;
}


// "key:<n>" in a caller's buffer.
std::string_view key_text(char (&buf)[32], uint64_t k) {
  std::memcpy(buf, "key:", 4);
  auto r = std::to_chars(buf + 4, buf + sizeof buf, k);
  return {buf, static_cast<size_t>(r.ptr - buf)};
}

double lru_ratio(const std::vector<uint64_t>& trace, size_t cap) {
  Lru lru(cap);
  uint64_t hits = 0;
  for (uint64_t k : trace) hits += lru.access(k);
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

// Cache-aside replay: a miss is followed by a set.
double ours_ratio(const std::vector<uint64_t>& trace, size_t cap, unsigned shards) {
  cm::MemoryBackend b(cap, 0, nullptr, shards);
  uint64_t hits = 0;
  char buf[32];
  for (uint64_t k : trace) {
    std::string_view key = key_text(buf, k);
    cm::Fetched f;
    if (b.get(key, kNow, &f)) {
      ++hits;
      std::free(f.data);
    } else {
      b.set(key, "value-0123456789", cm::Expiry{}, kNow);
    }
  }
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

void print_table() {
  struct Trace {
    const char* name;
    std::vector<uint64_t> keys;
  };
  std::vector<Trace> traces;
  traces.push_back({"Zipf 0.8", zipf_trace(0.8, 1)});
  traces.push_back({"Zipf 1.0", zipf_trace(1.0, 2)});
  traces.push_back({"Zipf 0.9 + scans", scan_trace()});
  unsigned dflt = 0;
  std::printf("Hit ratio, %llu keys, %zu requests, cache-aside (miss -> set)\n\n",
              static_cast<unsigned long long>(kKeySpace), kRequests);
  std::printf("| trace | cache | LRU | S3-FIFO (default shards) | S3-FIFO (1 shard) | gain vs LRU |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const Trace& t : traces) {
    for (double frac : {0.01, 0.05, 0.10}) {
      size_t cap = static_cast<size_t>(static_cast<double>(kKeySpace) * frac);
      double lru = lru_ratio(t.keys, cap);
      double ours = ours_ratio(t.keys, cap, 0);
      double one = ours_ratio(t.keys, cap, 1);
      dflt = cm::MemoryBackend::default_shards(cap, 0);
      std::printf("| %s | %zu (%.0f%%) | %.4f | %.4f (%u) | %.4f | %+.4f |\n", t.name, cap, frac * 100, lru, ours,
                  dflt, one, ours - lru);
    }
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- timings

constexpr int kHot = 10000;

std::vector<std::string> hot_keys() {
  std::vector<std::string> keys;
  for (int i = 0; i < kHot; ++i) keys.push_back("user:session:" + std::to_string(i * 7919));
  return keys;
}

cm::MemoryBackend& shared_backend() {
  static cm::MemoryBackend b(100000, 0);
  static bool filled = [] {
    for (const std::string& k : hot_keys()) b.set(k, std::string(64, 'v'), cm::Expiry{}, kNow);
    return true;
  }();
  (void)filled;
  return b;
}

// A get that hits: hash, shard lock, probe, frequency bump, malloc'd copy,
// free by the caller (as cm_cache_get's caller does with cm_free).
void BM_get_hit(benchmark::State& state) {
  cm::MemoryBackend& b = shared_backend();
  std::vector<std::string> keys = hot_keys();
  size_t i = static_cast<size_t>(state.thread_index()) * 997;
  for (auto _ : state) {
    cm::Fetched f;
    bool hit = b.get(keys[i], kNow, &f);
    benchmark::DoNotOptimize(hit);
    std::free(f.data);
    if (++i == keys.size()) i = 0;
  }
}

void BM_get_miss(benchmark::State& state) {
  cm::MemoryBackend& b = shared_backend();
  std::vector<std::string> keys = hot_keys();
  for (std::string& k : keys) k += ":absent";
  size_t i = 0;
  for (auto _ : state) {
    cm::Fetched f;
    benchmark::DoNotOptimize(b.get(keys[i], kNow, &f));
    if (++i == keys.size()) i = 0;
  }
}

// Replacing existing keys: allocation, unlink of the old entry, link.
void BM_set_replace(benchmark::State& state) {
  cm::MemoryBackend b(100000, 0);
  std::vector<std::string> keys = hot_keys();
  std::string v(64, 'v');
  size_t i = 0;
  for (auto _ : state) {
    b.set(keys[i], v, cm::Expiry{}, kNow);
    if (++i == keys.size()) i = 0;
  }
}

// Inserting new keys into a full cache: every set evicts.
void BM_set_evict(benchmark::State& state) {
  cm::MemoryBackend b(kHot / 2, 0);
  std::vector<std::string> keys = hot_keys();
  std::string v(64, 'v');
  size_t i = 0;
  for (auto _ : state) {
    b.set(keys[i], v, cm::Expiry{}, kNow);
    if (++i == keys.size()) i = 0;
  }
}

}  // namespace

BENCHMARK(BM_get_hit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_get_miss);
BENCHMARK(BM_set_replace);
BENCHMARK(BM_set_evict);

int main(int argc, char** argv) {
  auto t0 = std::chrono::steady_clock::now();
  print_table();
  std::fprintf(stderr, "table computed in %.1f s\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
