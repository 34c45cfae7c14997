// SPDX-License-Identifier: Apache-2.0
// The circuit breaker (wrappers/breaker.h) on a manual clock, over a store that
// fails when told to: the state machine, fast failure without touching the
// store, the single half-open probe, and the transitions it reports.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "wrappers/breaker.h"
#include "util/clock.h"

namespace {

using cm::BreakerState;

// A map that throws the configured status while `failing`, and counts the
// calls that reached it.
class FlakyStore final : public cm::Backend {
 public:
  std::atomic<int> status{CM_OK};  // CM_OK: works
  std::atomic<int> calls{0};

  std::string_view kind() const override { return "flaky"; }
  bool get(std::string_view key, int64_t, cm::Fetched* out) override {
    touch();
    std::lock_guard lk(mu_);
    auto it = m_.find(std::string(key));
    if (it == m_.end()) return false;
    out->data = ::strdup(it->second.c_str());
    out->len = it->second.size();
    return true;
  }
  void set(std::string_view key, std::string_view value, cm::Expiry, int64_t) override {
    touch();
    std::lock_guard lk(mu_);
    m_[std::string(key)] = std::string(value);
  }
  bool del(std::string_view key, int64_t) override {
    touch();
    std::lock_guard lk(mu_);
    return m_.erase(std::string(key)) > 0;
  }
  void clear() override {
    touch();
    std::lock_guard lk(mu_);
    m_.clear();
  }
  uint64_t entries() const override { return 7; }
  uint64_t bytes() const override { return 70; }
  int health() override {
    ++calls;
    int s = status.load();
    return s == CM_OK ? CM_OK : cm::set_error(s, "flaky store is failing");
  }

 private:
  void touch() {
    ++calls;
    int s = status.load();
    if (s != CM_OK) throw cm::Error(s, "flaky store is failing");
  }
  std::mutex mu_;
  std::map<std::string, std::string> m_;
};

struct Transitions final : cm::BackendEvents {
  std::mutex mu;
  std::vector<std::pair<BreakerState, BreakerState>> seen;
  void on_evict(cm::EvictReason, uint64_t, uint64_t) override {}
  void on_breaker(BreakerState from, BreakerState to) override {
    std::lock_guard lk(mu);
    seen.emplace_back(from, to);
  }
};

struct Fixture {
  cm::ManualClock clock;
  Transitions events;
  FlakyStore* store = nullptr;
  std::unique_ptr<cm::BreakerBackend> b;
  explicit Fixture(int failures = 3, int64_t cooldown = 1000) {
    auto s = std::make_unique<FlakyStore>();
    store = s.get();
    b = std::make_unique<cm::BreakerBackend>(std::move(s), cm::BreakerOptions{failures, cooldown}, &clock, &events);
  }
  // The status a get ends with (and its message).
  int get_status(std::string* msg = nullptr, cm::ErrorKind* kind = nullptr) {
    cm::Fetched f;
    try {
      bool found = b->get("k", clock.now_ms(), &f);
      std::free(f.data);
      return found ? CM_OK : CM_MISS;
    } catch (const cm::Error& e) {
      if (msg) *msg = e.what();
      if (kind) *kind = e.kind();
      return e.status();
    }
  }
};

TEST(Breaker, OpensAfterConsecutiveFailuresAndFailsFastWithoutTouchingTheStore) {
  Fixture f(3);
  f.store->status = CM_EUNAVAILABLE;
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);  // the third: opens
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Open);
  EXPECT_EQ(f.store->calls.load(), 3);

  std::string msg;
  cm::ErrorKind kind = cm::ErrorKind::None;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(f.get_status(&msg, &kind), CM_EUNAVAILABLE);
  EXPECT_EQ(f.store->calls.load(), 3) << "an open circuit must not reach the store";
  EXPECT_EQ(kind, cm::ErrorKind::CircuitOpen);
  EXPECT_NE(msg.find("circuit open after 3 consecutive failures"), std::string::npos) << msg;
  EXPECT_NE(msg.find("flaky store is failing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("next probe in 1000 ms"), std::string::npos) << msg;
  // Writes, deletes, clears and health checks fail fast too.
  EXPECT_THROW(f.b->set("k", "v", {}, f.clock.now_ms()), cm::Error);
  EXPECT_THROW(f.b->del("k", f.clock.now_ms()), cm::Error);
  EXPECT_THROW(f.b->clear(), cm::Error);
  EXPECT_EQ(f.b->health(), CM_EUNAVAILABLE);
  EXPECT_EQ(f.store->calls.load(), 3);
  ASSERT_EQ(f.events.seen.size(), 1u);
  EXPECT_EQ(f.events.seen[0], std::make_pair(BreakerState::Closed, BreakerState::Open));
}

TEST(Breaker, ASuccessResetsTheStreak) {
  Fixture f(3);
  for (int round = 0; round < 5; ++round) {
    f.store->status = CM_ETIMEOUT;
    EXPECT_EQ(f.get_status(), CM_ETIMEOUT);
    EXPECT_EQ(f.get_status(), CM_ETIMEOUT);
    f.store->status = CM_OK;
    EXPECT_EQ(f.get_status(), CM_MISS);
  }
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
  EXPECT_TRUE(f.events.seen.empty());
}

TEST(Breaker, AnswersThatAreNotOutagesDoNotCount) {
  Fixture f(2);
  for (int s : {CM_ELIMIT, CM_ECORRUPT, CM_EINVAL}) {
    f.store->status = s;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(f.get_status(), s);
  }
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
  f.store->status = CM_EBACKEND;  // an error reply is a failure
  EXPECT_EQ(f.get_status(), CM_EBACKEND);
  EXPECT_EQ(f.get_status(), CM_EBACKEND);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Open);
}

TEST(Breaker, HalfOpenLetsOneProbeThroughAndItsSuccessCloses) {
  Fixture f(2, 500);
  f.store->status = CM_EUNAVAILABLE;
  f.get_status();
  f.get_status();
  ASSERT_EQ(f.b->breaker_state(), BreakerState::Open);
  f.clock.advance_ms(499);
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);
  EXPECT_EQ(f.store->calls.load(), 2);
  f.clock.advance_ms(1);
  f.store->status = CM_OK;
  EXPECT_EQ(f.get_status(), CM_MISS);  // the probe reaches the store
  EXPECT_EQ(f.store->calls.load(), 3);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
  std::vector<std::pair<BreakerState, BreakerState>> want{{BreakerState::Closed, BreakerState::Open},
                                                         {BreakerState::Open, BreakerState::HalfOpen},
                                                         {BreakerState::HalfOpen, BreakerState::Closed}};
  EXPECT_EQ(f.events.seen, want);
}

TEST(Breaker, AFailedProbeOpensForAnotherCooldown) {
  Fixture f(1, 100);
  f.store->status = CM_EUNAVAILABLE;
  f.get_status();
  ASSERT_EQ(f.b->breaker_state(), BreakerState::Open);
  f.clock.advance_ms(100);
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);  // the probe fails
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Open);
  EXPECT_EQ(f.store->calls.load(), 2);
  f.clock.advance_ms(99);
  EXPECT_EQ(f.get_status(), CM_EUNAVAILABLE);
  EXPECT_EQ(f.store->calls.load(), 2) << "the cooldown restarts at the failed probe";
  f.clock.advance_ms(1);
  f.store->status = CM_OK;
  EXPECT_EQ(f.get_status(), CM_MISS);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
}

TEST(Breaker, AHealthCheckCanBeTheProbe) {
  Fixture f(1, 100);
  f.store->status = CM_EUNAVAILABLE;
  EXPECT_EQ(f.b->health(), CM_EUNAVAILABLE);
  ASSERT_EQ(f.b->breaker_state(), BreakerState::Open);
  f.clock.advance_ms(100);
  f.store->status = CM_OK;
  EXPECT_EQ(f.b->health(), CM_OK);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Closed);
}

TEST(Breaker, EntriesAndBytesAreTheLastReadWhileOpen) {
  Fixture f(1);
  EXPECT_EQ(f.b->entries(), 7u);
  EXPECT_EQ(f.b->bytes(), 70u);
  f.store->status = CM_EUNAVAILABLE;
  f.get_status();
  int before = f.store->calls.load();
  EXPECT_EQ(f.b->entries(), 7u);
  EXPECT_EQ(f.b->bytes(), 70u);
  EXPECT_EQ(f.store->calls.load(), before);
}

// Many threads at the end of a cooldown: exactly one probe reaches the
// store; the others fail fast while it is in flight.
TEST(Breaker, ConcurrentCallersGetOneProbe) {
  Fixture f(1, 100);
  f.store->status = CM_EUNAVAILABLE;
  f.get_status();
  f.clock.advance_ms(100);
  f.store->status = CM_ETIMEOUT;  // the probe fails: the circuit stays open
  std::atomic<int> fast{0}, reached{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        std::string msg;
        int s = f.get_status(&msg);
        if (s == CM_ETIMEOUT) ++reached;
        if (s == CM_EUNAVAILABLE) ++fast;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(reached.load(), 1);
  EXPECT_EQ(fast.load(), 8 * 200 - 1);
  EXPECT_EQ(f.store->calls.load(), 2);
  EXPECT_EQ(f.b->breaker_state(), BreakerState::Open);
}

}  // namespace
