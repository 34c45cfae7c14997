// SPDX-License-Identifier: Apache-2.0
// Tiered caches over a sqlite L2 on a manual clock: read-through and
// write-through, exact per-tier counts, and the L1 lifetime cap that bounds
// staleness when L2 has no change feed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cache_test_util.h"

namespace {

using cmtest::Reg;

struct Tiered : cmtest::Cache {
  Tiered(cm_registry* reg, const std::string& l1, const std::string& l2, const cm::Clock* clock,
         const char* name = "t")
      : Cache(cm::open_cache_tiered(reg, name, l1.c_str(), l2.c_str(), clock)) {}
  double l1_hits() { return cm_series_value(c->metrics.extra().tier_hits[0]); }
  double l2_hits() { return cm_series_value(c->metrics.extra().tier_hits[1]); }
  double l1_misses() { return cm_series_value(c->metrics.extra().tier_misses[0]); }
  double l2_misses() { return cm_series_value(c->metrics.extra().tier_misses[1]); }
};

class TieredSqlite : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cm-tiered-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    l2_ = "sqlite://" + dir_ + "/l2.db";
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string dir_, l2_;
};

TEST_F(TieredSqlite, ReadThroughWriteThroughAndTierCounts) {
  Reg r;
  cm::ManualClock clock;
  Tiered t(r.reg, "memory://?max_entries=10", l2_, &clock);
  ASSERT_EQ(std::string(t.c->backend->kind()), "tiered");
  EXPECT_EQ(t.get("k"), CM_MISS);
  EXPECT_EQ(t.l1_misses(), 1);
  EXPECT_EQ(t.l2_misses(), 1);
  ASSERT_EQ(cm::cache_set(*t.c, "k", "v", 0), CM_OK);
  std::string v;
  EXPECT_EQ(t.get("k", &v), CM_OK);  // written through to L1
  EXPECT_EQ(v, "v");
  EXPECT_EQ(t.l1_hits(), 1);
  EXPECT_EQ(t.l2_hits(), 0);

  // A second handle (its own L1) reads it from L2, then from its L1.
  Tiered w(r.reg, "memory://", l2_ + "?namespace=t", &clock, "w");
  EXPECT_EQ(w.get("k", &v), CM_OK);
  EXPECT_EQ(w.l2_hits(), 1);
  EXPECT_EQ(w.get("k", &v), CM_OK);
  EXPECT_EQ(w.l1_hits(), 1);
  EXPECT_EQ(v, "v");
  // The whole cache's counts: a hit in either tier is a hit.
  EXPECT_EQ(cm_series_value(w.c->metrics.group()->hits), 2);

  ASSERT_EQ(cm::cache_delete(*t.c, "k"), CM_OK);
  EXPECT_EQ(t.get("k"), CM_MISS);
}

// Without a change feed, another writer's value shows through once the L1
// copy reaches the L1's ttl_ms (default 1000 ms for a sqlite L2).
TEST_F(TieredSqlite, L1CopiesLiveAtMostTheL1Ttl) {
  Reg r;
  cm::ManualClock clock;
  Tiered a(r.reg, "memory://?ttl_ms=100", l2_, &clock, "a");
  Tiered b(r.reg, "memory://", l2_ + "?namespace=a", &clock, "b");
  ASSERT_EQ(cm::cache_set(*a.c, "k", "old", 0), CM_OK);
  std::string v;
  ASSERT_EQ(a.get("k", &v), CM_OK);
  ASSERT_EQ(cm::cache_set(*b.c, "k", "new", 0), CM_OK);
  clock.advance_ms(99);
  EXPECT_EQ(a.get("k", &v), CM_OK);
  EXPECT_EQ(v, "old");  // a's L1 copy, within its 100 ms
  clock.advance_ms(1);
  EXPECT_EQ(a.get("k", &v), CM_OK);
  EXPECT_EQ(v, "new");
  EXPECT_EQ(a.l2_hits(), 1);

  // b's L1 has the default cap of 1000 ms.
  ASSERT_EQ(cm::cache_set(*a.c, "k", "newer", 0), CM_OK);
  EXPECT_EQ(b.get("k", &v), CM_OK);
  EXPECT_EQ(v, "new");
  clock.advance_ms(1000);
  EXPECT_EQ(b.get("k", &v), CM_OK);
  EXPECT_EQ(v, "newer");
}

// The entry's own TTL bounds its L1 copy too, and L2 keeps the stale window.
TEST_F(TieredSqlite, EntryTtlAppliesInBothTiers) {
  Reg r;
  cm::ManualClock clock;
  Tiered t(r.reg, "memory://?ttl_ms=0", l2_ + "?ttl_ms=50", &clock);
  ASSERT_EQ(cm::cache_set(*t.c, "k", "v", 0), CM_OK);
  EXPECT_EQ(t.get("k"), CM_OK);
  EXPECT_EQ(t.l1_hits(), 1);
  clock.advance_ms(50);
  EXPECT_EQ(t.get("k"), CM_MISS);
}

}  // namespace
