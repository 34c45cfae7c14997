// SPDX-License-Identifier: Apache-2.0
// The sink host's bookkeeping (src/metrics/sink.h): what a sink is given at
// each flush, the deltas, the final values of removed series, the retry after
// a failed flush, seeding, and the last flush when the registry goes away.
// Flushes are explicit (interval 0): no thread, no clock, no sleep.
#include <gtest/gtest.h>

#include <cachemeter/metrics.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/registry.h"
#include "metrics/sink.h"

namespace {

// One series as a flush gave it.
struct Got {
  std::string family;
  std::vector<std::string> values;
  cm::SeriesValue value, delta;
  bool had_last = false, removed = false;
};

struct Recorder final : cm::Sink {
  Want want_ = Want::Changed;
  bool fail_next = false;
  size_t deliver_before_failing = 0;  // with fail_next: marks that many series delivered first
  int failures = 0;
  std::string only;  // a family name: wants() no other
  bool seed = false;
  std::vector<std::vector<Got>>* flushes;  // outlives the sink (the registry frees it)

  explicit Recorder(std::vector<std::vector<Got>>* out) : flushes(out) {}
  Want want() const noexcept override { return want_; }
  bool wants(const cm_family& f) noexcept override { return only.empty() || f.name == only; }
  void series_created(cm_series& s, cm::SinkSeed& sd) noexcept override {
    if (!seed) return;
    sd.set = true;
    sd.value = cm::read_series(s);
    sd.created = s.created;
  }
  void flush(std::vector<cm::SinkSeries>& batch) override {
    if (fail_next) {
      fail_next = false;
      for (size_t i = 0; i < batch.size() && i < deliver_before_failing; ++i) batch[i].delivered = true;
      throw std::runtime_error("outlet down");
    }
    std::vector<Got> one;
    for (const auto& s : batch)
      one.push_back({s.family->name, s.values(), s.value, s.delta(), s.last() != nullptr, s.removed});
    flushes->push_back(std::move(one));
  }
};

struct RegistryFree {
  void operator()(cm_registry* r) const { cm_registry_free(r); }
};

class SinkHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cm_registry* r = nullptr;
    ASSERT_EQ(cm_registry_new(&r, ""), CM_OK);
    reg.reset(r);
    const char* labels[] = {"k"};
    ASSERT_EQ(cm_counter_new(reg.get(), "hits", "Hits.", labels, 1, &counter), CM_OK);
    const double bounds[] = {1, 2};
    ASSERT_EQ(cm_histogram_new(reg.get(), "lat", "Latency.", labels, 1, bounds, 2, &hist), CM_OK);
  }
  Recorder& add(unsigned interval_ms = 0) {
    auto s = std::make_unique<Recorder>(&flushes);
    s->only = "hits_total";
    std::lock_guard<std::mutex> g(reg->mu);
    return static_cast<Recorder&>(*cm::add_sink_locked(*reg, std::move(s), interval_ms));
  }
  cm_series* series(cm_family* f, const char* v) {
    cm_series* s = nullptr;
    EXPECT_EQ(cm_family_series(f, &v, 1, &s), CM_OK);
    return s;
  }
  std::vector<std::vector<Got>> flushes;  // declared first: outlives reg's last flush
  std::unique_ptr<cm_registry, RegistryFree> reg;
  cm_family* counter = nullptr;
  cm_family* hist = nullptr;
};

TEST_F(SinkHostTest, GivesChangesAndDeltasSinceTheLastFlush) {
  cm_series* a = series(counter, "a");
  cm_counter_add(a, 5);
  Recorder& sink = add();
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 1u);
  ASSERT_EQ(flushes[0].size(), 1u);
  EXPECT_EQ(flushes[0][0].family, "hits_total");
  EXPECT_EQ(flushes[0][0].values, std::vector<std::string>{"a"});
  EXPECT_FALSE(flushes[0][0].had_last);
  EXPECT_EQ(flushes[0][0].value.value(), 5);
  EXPECT_EQ(flushes[0][0].delta.value(), 5);

  cm_counter_add(a, 3);
  cm_counter_add(a, 0.5);
  cm_series* b = series(counter, "b");  // new: given with its whole value
  cm_counter_add(b, 2);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 2u);
  ASSERT_EQ(flushes[1].size(), 2u);
  EXPECT_EQ(flushes[1][0].values, std::vector<std::string>{"a"});
  EXPECT_TRUE(flushes[1][0].had_last);
  EXPECT_EQ(flushes[1][0].value.value(), 8.5);
  EXPECT_EQ(flushes[1][0].delta.value(), 3.5);
  EXPECT_EQ(flushes[1][1].values, std::vector<std::string>{"b"});
  EXPECT_EQ(flushes[1][1].delta.value(), 2);

  cm::flush_sink(*reg, sink);  // nothing changed: the sink is not called
  EXPECT_EQ(flushes.size(), 2u);

  // A reset (created changes): the delta is the whole new value.
  cm::reset_series(*reg, &a, 1);
  cm_counter_add(a, 1);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 3u);
  ASSERT_EQ(flushes[2].size(), 1u);
  EXPECT_EQ(flushes[2][0].value.value(), 1);
  EXPECT_EQ(flushes[2][0].delta.value(), 1);
}

TEST_F(SinkHostTest, HistogramDeltasPerBucket) {
  cm_series* h = series(hist, "x");
  cm_histogram_observe(h, 0.5);
  cm_histogram_observe(h, 5);
  auto s = std::make_unique<Recorder>(&flushes);
  s->only = "lat";
  Recorder* sink;
  {
    std::lock_guard<std::mutex> g(reg->mu);
    sink = static_cast<Recorder*>(cm::add_sink_locked(*reg, std::move(s), 0));
  }
  cm::flush_sink(*reg, *sink);
  cm_histogram_observe(h, 1.5);
  cm_histogram_observe(h, 1.5);
  cm::flush_sink(*reg, *sink);
  ASSERT_EQ(flushes.size(), 2u);
  const cm::SeriesValue& d = flushes[1][0].delta;
  EXPECT_EQ(d.buckets, (std::vector<uint64_t>{0, 2, 0}));
  EXPECT_EQ(d.count, 2u);
  EXPECT_DOUBLE_EQ(d.sum, 3.0);
  EXPECT_EQ(flushes[1][0].value.buckets, (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(flushes[1][0].value.cumulative(), (std::vector<uint64_t>{1, 3, 4}));
}

TEST_F(SinkHostTest, AFailedFlushIsGivenAgain) {
  cm_series* a = series(counter, "a");
  Recorder& sink = add();
  cm_counter_add(a, 1);
  cm::flush_sink(*reg, sink);
  cm_counter_add(a, 2);
  sink.fail_next = true;
  EXPECT_THROW(cm::flush_sink(*reg, sink), std::runtime_error);
  cm_counter_add(a, 4);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 2u);
  EXPECT_EQ(flushes[1][0].value.value(), 7);
  EXPECT_EQ(flushes[1][0].delta.value(), 6);  // since the last flush that succeeded
}

// A push that fails halfway (the third of five datagrams): the series the
// sink marked delivered are remembered as given, the others stay pending,
// so the next flush neither repeats nor loses a delta.
TEST_F(SinkHostTest, APartlyDeliveredFlushKeepsOnlyTheRestPending) {
  cm_series* a = series(counter, "a");
  cm_series* b = series(counter, "b");
  Recorder& sink = add();
  cm_counter_add(a, 1);
  cm_counter_add(b, 10);
  sink.fail_next = true;
  sink.deliver_before_failing = 1;  // "a" went out, "b" did not
  EXPECT_THROW(cm::flush_sink(*reg, sink), std::runtime_error);
  cm_counter_add(a, 2);
  cm_counter_add(b, 20);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 1u);
  ASSERT_EQ(flushes[0].size(), 2u);
  EXPECT_EQ(flushes[0][0].values, std::vector<std::string>{"a"});
  EXPECT_EQ(flushes[0][0].delta.value(), 2);  // the 1 was delivered already
  EXPECT_EQ(flushes[0][1].values, std::vector<std::string>{"b"});
  EXPECT_EQ(flushes[0][1].delta.value(), 30);  // the 10 stayed pending
}

TEST_F(SinkHostTest, RemovedSeriesGiveTheirFinalValueOnce) {
  Recorder& sink = add();
  const char* v[] = {"held"};
  cm_series* s = cm::hold_series(*counter, v, 1);
  cm_counter_add(s, 2);
  cm::flush_sink(*reg, sink);
  cm_counter_add(s, 3);
  cm::release_series(*reg, &s, 1);  // removed: s dangles from here
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 2u);
  ASSERT_EQ(flushes[1].size(), 1u);
  EXPECT_TRUE(flushes[1][0].removed);
  EXPECT_EQ(flushes[1][0].values, std::vector<std::string>{"held"});
  EXPECT_EQ(flushes[1][0].value.value(), 5);
  EXPECT_EQ(flushes[1][0].delta.value(), 3);
  cm::flush_sink(*reg, sink);
  EXPECT_EQ(flushes.size(), 2u);  // once
}

TEST_F(SinkHostTest, RemovedSeriesOfAFailedFlushStayPending) {
  Recorder& sink = add();
  const char* v[] = {"held"};
  cm_series* s = cm::hold_series(*counter, v, 1);
  cm_counter_add(s, 2);
  cm::release_series(*reg, &s, 1);
  sink.fail_next = true;
  EXPECT_THROW(cm::flush_sink(*reg, sink), std::runtime_error);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 1u);
  ASSERT_EQ(flushes[0].size(), 1u);
  EXPECT_TRUE(flushes[0][0].removed);
  EXPECT_EQ(flushes[0][0].value.value(), 2);
}

TEST_F(SinkHostTest, SeededSeriesAreGivenOnlyWhenTheyChange) {
  cm_series* a = series(counter, "a");
  cm_counter_add(a, 4);
  auto s = std::make_unique<Recorder>(&flushes);
  s->only = "hits_total";
  s->seed = true;  // "the outlet holds the value already"
  Recorder* sink;
  {
    std::lock_guard<std::mutex> g(reg->mu);
    sink = static_cast<Recorder*>(cm::add_sink_locked(*reg, std::move(s), 0));
  }
  cm::flush_sink(*reg, *sink);
  EXPECT_TRUE(flushes.empty());
  cm_counter_add(a, 1);
  cm::flush_sink(*reg, *sink);
  ASSERT_EQ(flushes.size(), 1u);
  EXPECT_TRUE(flushes[0][0].had_last);
  EXPECT_EQ(flushes[0][0].delta.value(), 1);
}

TEST_F(SinkHostTest, WantAllGivesEverySeriesEveryFlush) {
  cm_series* a = series(counter, "a");
  cm_counter_add(a, 1);
  Recorder& sink = add();
  sink.want_ = cm::Sink::Want::All;
  cm::flush_sink(*reg, sink);
  cm::flush_sink(*reg, sink);
  ASSERT_EQ(flushes.size(), 2u);
  ASSERT_EQ(flushes[1].size(), 1u);
  EXPECT_EQ(flushes[1][0].delta.value(), 0);
}

TEST_F(SinkHostTest, FreeingTheRegistryFlushesAndRemoveSinkFlushesOnce) {
  cm_series* a = series(counter, "a");
  Recorder& first = add();
  Recorder& second = add();
  cm_counter_add(a, 1);
  EXPECT_TRUE(cm::remove_sink(*reg, &first));  // its last flush
  ASSERT_EQ(flushes.size(), 1u);
  EXPECT_FALSE(cm::remove_sink(*reg, &first));
  cm_counter_add(a, 1);
  (void)second;
  reg.reset();  // second's last flush
  ASSERT_EQ(flushes.size(), 2u);
  EXPECT_EQ(flushes[1][0].value.value(), 2);
}

}  // namespace
