// SPDX-License-Identifier: Apache-2.0
// Registry internals: the lock-free series index and quantile estimation.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "metrics/registry.h"

TEST(SeriesIndex, FindsEveryInsertedTupleAcrossGrowth) {
  cm::SeriesIndex idx;
  std::vector<std::unique_ptr<cm_series>> owned;
  for (int i = 0; i < 5000; ++i) {
    auto s = std::make_unique<cm_series>();
    s->values = {"a" + std::to_string(i), std::to_string(i % 7)};
    const char* v[] = {s->values[0].c_str(), s->values[1].c_str()};
    s->hash = cm::hash_values(v, 2);
    EXPECT_EQ(idx.find(s->hash, v, 2), nullptr);
    idx.insert(s.get());
    owned.push_back(std::move(s));
  }
  for (auto& s : owned) {
    const char* v[] = {s->values[0].c_str(), s->values[1].c_str()};
    EXPECT_EQ(idx.find(cm::hash_values(v, 2), v, 2), s.get());
  }
  const char* missing[] = {"a1", "2"};
  EXPECT_EQ(idx.find(cm::hash_values(missing, 2), missing, 2), nullptr);
}

TEST(SeriesIndex, HashSeparatesValues) {
  const char* ab[] = {"ab", ""};
  const char* a_b[] = {"a", "b"};
  EXPECT_NE(cm::hash_values(ab, 2), cm::hash_values(a_b, 2));
}

TEST(Quantile, InterpolatesLikePrometheus) {
  std::vector<double> bounds = {1, 2, 4};
  uint64_t cum[] = {10, 20, 20, 20};  // 10 in (0,1], 10 in (1,2]
  EXPECT_DOUBLE_EQ(cm::histogram_quantile(0.5, bounds, cum), 1.0);
  EXPECT_DOUBLE_EQ(cm::histogram_quantile(0.25, bounds, cum), 0.5);
  EXPECT_DOUBLE_EQ(cm::histogram_quantile(0.75, bounds, cum), 1.5);
  uint64_t inf[] = {0, 0, 0, 5};
  EXPECT_EQ(cm::histogram_quantile(0.5, bounds, inf), 4.0);  // +Inf bucket: largest bound
  uint64_t none[] = {0, 0, 0, 0};
  EXPECT_TRUE(std::isnan(cm::histogram_quantile(0.5, bounds, none)));
  std::vector<double> neg = {-1, 1};
  uint64_t first[] = {4, 4, 4};
  EXPECT_EQ(cm::histogram_quantile(0.5, neg, first), -1.0);  // non-positive first bound
}

// A creation time read from a metrics file may be non-finite (a REAL 1e400 is
// +Inf to SQLite): JSON has no spelling for it, so it is a string, as the
// values are (found by tests/fuzz persist_rows).
TEST(RenderJson, NonFiniteCreatedStaysJson) {
  std::unique_ptr<cm_registry> r = cm::make_registry(nullptr);
  cm_family* f = cm::register_family(*r, cm::Kind::Counter, "x_total", "", nullptr, 0, nullptr, 0, false);
  cm_series* s = cm::family_series(*f, nullptr, 0);
  s->created = INFINITY;
  cm::OutBuf out;
  cm::render_json(*r, out);
  std::string json(out.view());
  EXPECT_NE(json.find("\"created\":\"+Inf\""), std::string::npos) << json;
  EXPECT_EQ(json.find(":+Inf"), std::string::npos) << json;
}
