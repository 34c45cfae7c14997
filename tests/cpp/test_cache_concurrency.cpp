// SPDX-License-Identifier: Apache-2.0
// The cache front under concurrency (TSan runs these): single flight, load
// timeouts, loader errors reaching waiters, stale-while-revalidate.
#include "cache_test_util.h"

using namespace cmtest;

TEST(CacheFront, StaleWhileRevalidate) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?stale_ms=500", &clock);
  Loader l;
  std::string v;
  ASSERT_EQ(load(*c.c, "k", l, &v, 1000), CM_OK);
  EXPECT_EQ(v, "v:k:1");
  clock.advance_ms(1200);  // expired 200 ms ago: inside the stale window

  // A refresher is running (blocked in the loader): others get the stale value at once.
  l.block = true;
  l.entered = false;
  std::string refreshed;
  int refresher_rc = -100;
  std::thread refresher([&] { refresher_rc = load(*c.c, "k", l, &refreshed, 1000); });
  l.wait_entered();
  ASSERT_EQ(load(*c.c, "k", l, &v), CM_OK);
  EXPECT_EQ(v, "v:k:1");
  EXPECT_EQ(c.get("k"), CM_MISS);  // a plain get never returns stale values
  l.release();
  refresher.join();
  EXPECT_EQ(refresher_rc, CM_OK);
  EXPECT_EQ(refreshed, "v:k:2");
  EXPECT_EQ(c.get("k", &v), CM_OK);
  EXPECT_EQ(v, "v:k:2");
  cm::CacheGroup* g = c.c->metrics.group();
  EXPECT_EQ(cm_series_value(g->stale_hits), 1);
  EXPECT_EQ(cm_series_value(g->loads_ok), 2);

  // A failed refresh keeps serving the stale value.
  clock.advance_ms(1100);
  l.status = CM_EUNAVAILABLE;
  ASSERT_EQ(load(*c.c, "k", l, &v, 1000), CM_OK);
  EXPECT_EQ(v, "v:k:2");
  EXPECT_EQ(cm_series_value(g->loads_error), 1);
  // Past the stale window: a miss, and the loader's error comes back.
  clock.advance_ms(500);
  EXPECT_EQ(load(*c.c, "k", l, &v, 1000), CM_EUNAVAILABLE);
}

// cm_cache_get_hit (count_miss false) inside the stale window: CM_MISS,
// nothing counted or timed; the get_or_load that follows (the refresher,
// since nobody else is loading) counts the one miss and loads.
TEST(CacheFront, GetHitLeavesStaleAndMissesToGetOrLoad) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?stale_ms=500&sample=1", &clock);
  Loader l;
  std::string v;
  ASSERT_EQ(load(*c.c, "k", l, &v, 1000), CM_OK);
  cm::CacheGroup* g = c.c->metrics.group();
  auto probe = [&](std::string* out) {
    void* p = nullptr;
    size_t n = 0;
    int rc = cm::cache_get(*c.c, "k", &p, &n, false);
    if (rc == CM_OK) out->assign(static_cast<char*>(p), n);
    std::free(p);
    return rc;
  };
  const double gets = cm_series_value(g->duration[static_cast<int>(cm::Op::Get)]);
  ASSERT_EQ(probe(&v), CM_OK);  // fresh: a counted, timed hit
  EXPECT_EQ(v, "v:k:1");
  EXPECT_EQ(cm_series_value(g->hits), 1);
  EXPECT_EQ(cm_series_value(g->duration[static_cast<int>(cm::Op::Get)]), gets + 1);
  const double misses = cm_series_value(g->misses);

  clock.advance_ms(1200);  // expired 200 ms ago: inside the stale window
  EXPECT_EQ(probe(&v), CM_MISS);
  EXPECT_EQ(cm_series_value(g->misses), misses);
  EXPECT_EQ(cm_series_value(g->stale_hits), 0);
  EXPECT_EQ(cm_series_value(g->duration[static_cast<int>(cm::Op::Get)]), gets + 1);
  ASSERT_EQ(load(*c.c, "k", l, &v, 1000), CM_OK);  // the leader refreshes it
  EXPECT_EQ(v, "v:k:2");
  EXPECT_EQ(cm_series_value(g->misses), misses + 1);
  clock.advance_ms(2000);  // past the stale window too
  EXPECT_EQ(probe(&v), CM_MISS);
  EXPECT_EQ(cm_series_value(g->misses), misses + 1);
}

TEST(CacheFront, SingleFlightHundredThreadsOneLoad) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://", &clock);
  Loader l;
  constexpr int kThreads = 100;
  std::atomic<int> arrived{0};
  // The loader holds until every thread has at least reached its call.
  l.block = true;
  std::vector<std::thread> ts;
  std::vector<std::string> got(kThreads);
  std::vector<int> rc(kThreads, -100);
  for (int i = 0; i < kThreads; ++i)
    ts.emplace_back([&, i] {
      arrived.fetch_add(1);
      rc[i] = load(*c.c, "hot", l, &got[i]);
    });
  l.wait_entered();
  for (int spins = 0; arrived.load() < kThreads && spins < 1000000; ++spins) std::this_thread::yield();
  l.release();
  for (auto& t : ts) t.join();
  EXPECT_EQ(l.calls, 1);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(rc[i], CM_OK) << i;
    EXPECT_EQ(got[i], "v:hot:1") << i;
  }
  cm::CacheGroup* g = c.c->metrics.group();
  EXPECT_EQ(cm_series_value(g->loads_ok), 1);
  EXPECT_EQ(cm_series_value(g->hits) + cm_series_value(g->misses), kThreads);
  EXPECT_EQ(cm_series_value(g->sets), 1);
}

TEST(CacheFront, WaitersTimeOutAndAreCounted) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?load_timeout_ms=20", &clock);
  Loader l;
  l.block = true;
  std::string v;
  int leader_rc = -100;
  std::thread leader([&] { leader_rc = load(*c.c, "slow", l, &v); });
  l.wait_entered();
  // The loader is blocked until released: this caller must give up.
  std::string mine, err;
  EXPECT_EQ(load(*c.c, "slow", l, &mine, 0, &err), CM_ETIMEOUT);
  EXPECT_NE(err.find("load_timeout_ms=20"), std::string::npos) << err;
  l.release();
  leader.join();
  EXPECT_EQ(leader_rc, CM_OK);
  EXPECT_EQ(cm_series_value(c.c->metrics.group()->load_wait_timeouts), 1);
  EXPECT_EQ(l.calls, 1);
}

TEST(CacheFront, LoaderErrorsReachEveryWaiterAndAreNotCached) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://", &clock);
  Loader l;
  l.block = true;
  l.status = CM_EBACKEND;
  std::string v;
  int leader_rc = 0;
  std::thread leader([&] { leader_rc = load(*c.c, "k", l, &v); });
  l.wait_entered();
  int waiter_rc = 0;
  std::string w;
  std::thread waiter([&] { waiter_rc = load(*c.c, "k", l, &w); });
  // Give the waiter no timing guarantee: whether it waited or loaded again,
  // it must see an error and nothing may be cached.
  l.release();
  leader.join();
  waiter.join();
  EXPECT_EQ(leader_rc, CM_EBACKEND);
  EXPECT_EQ(waiter_rc, CM_EBACKEND);
  EXPECT_EQ(c.get("k"), CM_MISS);
}
