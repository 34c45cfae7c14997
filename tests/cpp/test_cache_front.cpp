// SPDX-License-Identifier: Apache-2.0
// The cache front with a manual clock: TTL, hit-ratio windows, sampling and
// exact metric values. Thread tests: test_cache_concurrency.cpp.
#include "cache_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

using namespace cmtest;

TEST(CacheFront, TtlExpiresExactlyOnTheManualClock) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?ttl_ms=1000", &clock);
  ASSERT_EQ(c.set("default", "1"), CM_OK);        // the cache's ttl_ms
  ASSERT_EQ(c.set("short", "1", 10), CM_OK);      // its own
  ASSERT_EQ(c.set("forever", "1", -1), CM_OK);    // never expires
  clock.advance_ms(9);
  EXPECT_EQ(c.get("short"), CM_OK);
  clock.advance_ms(1);
  EXPECT_EQ(c.get("short"), CM_MISS);
  clock.advance_ms(989);
  EXPECT_EQ(c.get("default"), CM_OK);
  clock.advance_ms(1);
  EXPECT_EQ(c.get("default"), CM_MISS);
  clock.advance_ms(int64_t{1} << 40);
  EXPECT_EQ(c.get("forever"), CM_OK);
  cm::CacheGroup* g = c.c->metrics.group();
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(cm_series_value(g->evict_expired), 2);  // both found expired on get
  EXPECT_EQ(cm_series_value(g->hits), 3);
  EXPECT_EQ(cm_series_value(g->misses), 2);
}

TEST(CacheFront, NoDefaultTtlMeansNoExpiry) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://", &clock);
  ASSERT_EQ(c.set("k", "v"), CM_OK);
  clock.advance_ms(int64_t{1} << 40);
  EXPECT_EQ(c.get("k"), CM_OK);
}

TEST(CacheFront, HitRatioWindows) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://", &clock);
  ASSERT_EQ(c.set("h", "1"), CM_OK);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.get("h"), CM_OK);  // t = 0 s: 10 hits
  clock.advance_ms(61000);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.get("m"), CM_MISS);  // t = 61 s: 10 misses
  clock.advance_ms(69000);                                       // t = 130 s
  std::string json = cm::cache_stats_json(*c.c);
  // 1m: since the snapshot at 61 s (taken before the misses): 0 hits, 10 misses.
  EXPECT_NE(json.find("\"1m\":0,"), std::string::npos) << json;
  // 5m and 1h: the cache is younger; since the snapshot at open: 10 / 20.
  EXPECT_NE(json.find("\"5m\":0.5,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"1h\":0.5}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"hit_ratio\":0.5,"), std::string::npos) << json;
}

TEST(CacheFront, MetricsMatchOperationsExactly) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?max_entries=1000&sample=1", &clock);
  int hits = 0, misses = 0;
  for (int i = 0; i < 500; ++i) {
    std::string k = "k" + std::to_string(i % 50);
    if (i % 3 == 0) {
      ASSERT_EQ(c.set(k, "v"), CM_OK);
    } else {
      int rc = c.get(k);
      (rc == CM_OK ? hits : misses)++;
    }
    clock.advance_ns(1500);  // every operation "takes" 0 ns on the manual clock
  }
  cm::CacheGroup* g = c.c->metrics.group();
  EXPECT_EQ(cm_series_value(g->hits), hits);
  EXPECT_EQ(cm_series_value(g->misses), misses);
  EXPECT_EQ(cm_series_value(g->sets), 167);
  EXPECT_EQ(cm_series_value(g->duration[static_cast<int>(cm::Op::Get)]), hits + misses);
  EXPECT_EQ(cm_histogram_sum(g->duration[static_cast<int>(cm::Op::Get)]), 0.0);
}

TEST(CacheFront, SamplingTimesOneInN) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://?sample=10", &clock);
  for (int i = 0; i < 1000; ++i) c.get("x");
  cm::CacheGroup* g = c.c->metrics.group();
  EXPECT_EQ(cm_series_value(g->misses), 1000);  // counts are never sampled
  EXPECT_EQ(cm_series_value(g->duration[static_cast<int>(cm::Op::Get)]), 100);
}

// A child of fork() must not draw the parent's next load-lock tokens: with
// the same token it could release a lock the parent holds.
TEST(CacheFront, LockTokensDifferAcrossFork) {
  (void)cm::lock_token();  // seeded before fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string t = cm::lock_token();
    ::_exit(::write(fds[1], t.data(), t.size()) == static_cast<ssize_t>(t.size()) ? 0 : 1);
  }
  std::string mine = cm::lock_token();
  char buf[64];
  ssize_t n = ::read(fds[0], buf, sizeof buf);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_EQ(n, 32);
  EXPECT_EQ(mine.size(), 32u);
  EXPECT_NE(std::string(buf, static_cast<size_t>(n)), mine);
}

// get_or_load's leader hands its caller the loader's own buffer (no copy)
// when the allocation has room for the NUL after the value; otherwise the
// buffer grows to hold it. Either way the value ends in a NUL and is cached.
TEST(CacheFront, GetOrLoadHandsTheLoadersBufferThrough) {
  Reg r;
  cm::ManualClock clock;
  Cache c(r.reg, "memory://", &clock);
  struct Ctx {
    size_t room;  // bytes allocated beyond the value
    void* given = nullptr;
  };
  auto loader = [](void* ctx, const void*, size_t, void** val, size_t* vlen) -> int {
    auto* x = static_cast<Ctx*>(ctx);
    const std::string v(100, 'x');
    x->given = cm_alloc(v.size() + x->room);
    std::memcpy(x->given, v.data(), v.size());
    *val = x->given;
    *vlen = v.size();
    return CM_OK;
  };
  for (size_t room : {size_t{1}, size_t{0}}) {
    Ctx ctx{room};
    const std::string key = "k" + std::to_string(room);
    void* v = nullptr;
    size_t n = 0;
    ASSERT_EQ(cm::cache_get_or_load(*c.c, key, loader, &ctx, 0, &v, &n), CM_OK);
    ASSERT_EQ(n, 100u);
    EXPECT_EQ(std::string(static_cast<char*>(v), n), std::string(100, 'x'));
    EXPECT_EQ(static_cast<char*>(v)[n], '\0');
#if defined(__GLIBC__)
    if (room) {
      EXPECT_EQ(v, ctx.given);  // malloc_usable_size says the NUL fits: no copy
    }
#endif
    cm_free(v);
    std::string cached;
    EXPECT_EQ(c.get(key, &cached), CM_OK);
    EXPECT_EQ(cached, std::string(100, 'x'));
  }
  // CM_OK with (NULL, 0): the empty value, still a buffer with its NUL.
  auto empty = [](void*, const void*, size_t, void** val, size_t* vlen) -> int {
    *val = nullptr;
    *vlen = 0;
    return CM_OK;
  };
  void* v = nullptr;
  size_t n = 1;
  ASSERT_EQ(cm::cache_get_or_load(*c.c, "e", empty, nullptr, 0, &v, &n), CM_OK);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(static_cast<char*>(v)[0], '\0');
  cm_free(v);
}
