// SPDX-License-Identifier: Apache-2.0
// Concurrency: writers on shared and private series, thread churn, series
// creation races, readers and resets running alongside. Run under TSan by
// scripts/test.sh. Final values are exact (integer-valued updates).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <cachemeter/cachemeter.h>

namespace {

struct Reg {
  Reg() { EXPECT_EQ(cm_registry_new(&r, "max_series=100000"), CM_OK); }
  ~Reg() { cm_registry_free(r); }
  cm_registry* r = nullptr;
};

cm_series* series(cm_family* f, std::initializer_list<const char*> values) {
  std::vector<const char*> v(values);
  cm_series* s = nullptr;
  EXPECT_EQ(cm_family_series(f, v.data(), v.size(), &s), CM_OK) << cm_errmsg();
  return s;
}

constexpr int kThreads = 4;
constexpr int kIters = 20000;

}  // namespace

TEST(Concurrency, WritersAndRenderersAgreeOnExactTotals) {
  Reg reg;
  const char* ln[] = {"t"};
  cm_family *cf, *gf, *hf;
  ASSERT_EQ(cm_counter_new(reg.r, "ops", "", ln, 1, &cf), CM_OK);
  ASSERT_EQ(cm_gauge_new(reg.r, "level", "", ln, 1, &gf), CM_OK);
  double bounds[] = {1, 10, 100};
  ASSERT_EQ(cm_histogram_new(reg.r, "size", "", ln, 1, bounds, 3, &hf), CM_OK);
  cm_series* shared_c = series(cf, {"shared"});
  cm_series* shared_g = series(gf, {"shared"});
  cm_series* shared_h = series(hf, {"shared"});

  std::atomic<bool> done{false};
  std::thread renderer([&] {
    double last = 0;
    while (!done.load()) {
      for (int fmt : {CM_FORMAT_PROMETHEUS, CM_FORMAT_OPENMETRICS, CM_FORMAT_JSON}) {
        char* out = nullptr;
        ASSERT_EQ(cm_registry_render(reg.r, fmt, &out, nullptr), CM_OK);
        cm_free(out);
      }
      double now = cm_series_value(shared_c);
      ASSERT_GE(now, last);  // a counter never goes backwards
      last = now;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      std::string name = "w" + std::to_string(t);
      cm_series* own = series(cf, {name.c_str()});
      for (int i = 0; i < kIters; ++i) {
        cm_counter_add(shared_c, 1);
        cm_counter_add(own, 2);
        cm_gauge_add(shared_g, (i % 2) ? 1 : -1);
        cm_histogram_observe(shared_h, i % 200);
      }
    });
  for (auto& w : writers) w.join();
  done = true;
  renderer.join();

  EXPECT_EQ(cm_series_value(shared_c), double(kThreads) * kIters);
  for (int t = 0; t < kThreads; ++t) {
    std::string name = "w" + std::to_string(t);
    EXPECT_EQ(cm_series_value(series(cf, {name.c_str()})), 2.0 * kIters);
  }
  EXPECT_EQ(cm_series_value(shared_g), 0.0);
  EXPECT_EQ(cm_series_value(shared_h), double(kThreads) * kIters);
  double per_thread_sum = 0;
  for (int i = 0; i < kIters; ++i) per_thread_sum += i % 200;
  EXPECT_EQ(cm_histogram_sum(shared_h), kThreads * per_thread_sum);
}

TEST(Concurrency, ThreadChurnLosesNothing) {
  Reg reg;
  cm_family* f;
  ASSERT_EQ(cm_counter_new(reg.r, "churn", "", nullptr, 0, &f), CM_OK);
  cm_series* s = series(f, {});
  std::atomic<bool> done{false};
  std::thread reader([&] {
    double last = 0;
    while (!done.load()) {
      double v = cm_series_value(s);
      ASSERT_GE(v, last);
      last = v;
    }
  });
  for (int round = 0; round < 25; ++round) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&] {
        for (int i = 0; i < 500; ++i) cm_counter_add(s, 1);
      });
    for (auto& t : ts) t.join();
  }
  done = true;
  reader.join();
  EXPECT_EQ(cm_series_value(s), 25.0 * 4 * 500);
}

TEST(Concurrency, RacingSeriesCreationYieldsOneHandlePerTuple) {
  Reg reg;
  const char* ln[] = {"k", "shard"};
  cm_family* f;
  ASSERT_EQ(cm_counter_new(reg.r, "created", "", ln, 2, &f), CM_OK);
  constexpr int kKeys = 300;
  std::vector<std::vector<cm_series*>> seen(kThreads, std::vector<cm_series*>(kKeys));
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        std::string key = "key" + std::to_string(k);
        seen[t][k] = series(f, {key.c_str(), "x"});
        cm_counter_add(seen[t][k], 1);
      }
    });
  for (auto& t : ts) t.join();
  for (int k = 0; k < kKeys; ++k) {
    for (int t = 1; t < kThreads; ++t) EXPECT_EQ(seen[t][k], seen[0][k]) << "key " << k;
    EXPECT_EQ(cm_series_value(seen[0][k]), double(kThreads));
  }
}

TEST(Concurrency, ResetsAndGaugeSetsRaceWithWriters) {
  Reg reg;
  cm_family *cf, *gf;
  ASSERT_EQ(cm_counter_new(reg.r, "r", "", nullptr, 0, &cf), CM_OK);
  ASSERT_EQ(cm_gauge_new(reg.r, "g", "", nullptr, 0, &gf), CM_OK);
  cm_series* c = series(cf, {});
  cm_series* g = series(gf, {});
  std::atomic<bool> done{false};
  std::thread resetter([&] {
    while (!done.load()) {
      ASSERT_EQ(cm_registry_reset(reg.r), CM_OK);
      cm_gauge_set(g, 1000);
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        cm_counter_add(c, 1);
        cm_gauge_add(g, 1);
      }
    });
  for (auto& t : ts) t.join();
  done = true;
  resetter.join();
  // After the races, the cells are coherent again: a reset zeroes, a set sets.
  ASSERT_EQ(cm_registry_reset(reg.r), CM_OK);
  EXPECT_EQ(cm_series_value(c), 0.0);
  cm_counter_add(c, 3);
  EXPECT_EQ(cm_series_value(c), 3.0);
  cm_gauge_set(g, 5);
  cm_gauge_add(g, 2);
  EXPECT_EQ(cm_series_value(g), 7.0);
}
