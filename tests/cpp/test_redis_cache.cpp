// SPDX-License-Identifier: Apache-2.0
// Redis caches through the cache front against real redis-server processes:
// errors counted by kind, the circuit breaker around a server that is killed
// and restarted mid-workload, tiered caches (L1 hits, coherence between
// handles and between processes), and the cross-process load lock.
//
// The two-process tests start this binary again (posix_spawn of
// /proc/self/exe) with CM_REDIS_CHILD set, running one of the Child* tests,
// which skip themselves otherwise.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "wrappers/tiered.h"
#include "cache/cache.h"
#include "redis_server.h"
#include "redis_cache_util.h"

namespace {

using cmrs::RawConn;
using cmrs::RedisFixture;
using cmrs::wait_until;
using cmrc::Handle;
using cmrc::mono_ns;
using cmrc::Reg;
using cmrc::url;

class RedisCache : public RedisFixture {};

TEST_F(RedisCache, ErrorsAreCountedByKind) {
  Reg r;
  // connection: nothing listens on the port.
  Handle refused;
  ASSERT_EQ(cm_cache_open(&refused.c, r.reg, "refused", url(cmrs::free_port(), "breaker_failures=0").c_str()), CM_OK);
  EXPECT_EQ(refused.get("k"), CM_EUNAVAILABLE);
  EXPECT_EQ(refused.set("k", "v"), CM_EUNAVAILABLE);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"refused\",backend=\"redis\",op=\"get\",kind=\"connection\"}"), 1);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"refused\",backend=\"redis\",op=\"set\",kind=\"connection\"}"), 1);

  // timeout: a server that accepts and never answers.
  cmrs::SilentServer silent;
  Handle slow;
  ASSERT_EQ(cm_cache_open(&slow.c, r.reg, "slow", url(silent.port(), "timeout_ms=100&breaker_failures=0").c_str()), CM_OK);
  EXPECT_EQ(slow.get("k"), CM_ETIMEOUT);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"slow\",backend=\"redis\",op=\"get\",kind=\"timeout\"}"), 1);

  // server: an error reply (wrong password).
  auto& s = server({"--requirepass", "right"});
  Handle wrong;
  ASSERT_EQ(cm_cache_open(&wrong.c, r.reg, "wrong", url(s.port(), "password=wrong&breaker_failures=0").c_str()), CM_OK);
  EXPECT_EQ(wrong.get("k"), CM_EBACKEND);
  EXPECT_NE(std::string(cm_errmsg()).find("authentication failed"), std::string::npos) << cm_errmsg();
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"wrong\",backend=\"redis\",op=\"get\",kind=\"server\"}"), 1);

  // corrupt: another program's value under the prefix.
  RawConn raw(s.port());
  ASSERT_EQ(raw.run({"AUTH", "right"}), "+OK");
  ASSERT_EQ(raw.run({"SET", "cachemeter:ok:k", "not ours"}), "+OK");
  Handle ok;
  ASSERT_EQ(cm_cache_open(&ok.c, r.reg, "ok", url(s.port(), "password=right").c_str()), CM_OK);
  EXPECT_EQ(ok.get("k"), CM_ECORRUPT);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"ok\",backend=\"redis\",op=\"get\",kind=\"corrupt\"}"), 1);
  // No error series for what never failed.
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"ok\",backend=\"redis\",op=\"set\",kind=\"connection\"}"), -1);
}

TEST_F(RedisCache, BreakerOpensOnAKilledServerAndClosesAfterItsRestart) {
  auto& s = server();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "b",
                          url(s.port(), "breaker_failures=3&breaker_cooldown_ms=100&timeout_ms=500").c_str()),
            CM_OK);
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  EXPECT_EQ(r.metric("cachemeter_circuit_breaker_state{cache=\"b\",backend=\"redis\"}"), 0);
  const int port = s.port();
  s.stop(SIGKILL);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.get("k"), CM_EUNAVAILABLE) << i;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.get("k"), CM_EUNAVAILABLE);
  EXPECT_NE(std::string(cm_errmsg()).find("circuit open"), std::string::npos) << cm_errmsg();
  EXPECT_LT(cmrs::ms_since(t0), 50) << "an open circuit fails fast";
  EXPECT_EQ(r.metric("cachemeter_circuit_breaker_state{cache=\"b\",backend=\"redis\"}"), 1);
  EXPECT_EQ(r.metric("cachemeter_circuit_breaker_opens_total{cache=\"b\",backend=\"redis\"}"), 1);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"b\",backend=\"redis\",op=\"get\",kind=\"connection\"}"), 3);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"b\",backend=\"redis\",op=\"get\",kind=\"circuit_open\"}"), 1);

  server({}, port);
  // Service resumes once a probe (after the cooldown) gets through.
  EXPECT_TRUE(wait_until([&] { return h.get("k") == CM_MISS; })) << cm_errmsg();  // a fresh server: no "k"
  EXPECT_EQ(h.set("k", "v2"), CM_OK);
  std::string v;
  EXPECT_EQ(h.get("k", &v), CM_OK);
  EXPECT_EQ(v, "v2");
  EXPECT_EQ(r.metric("cachemeter_circuit_breaker_state{cache=\"b\",backend=\"redis\"}"), 0);
  EXPECT_EQ(r.metric("cachemeter_circuit_breaker_closes_total{cache=\"b\",backend=\"redis\"}"), 1);
}

// hiredis writes with write(): a pooled connection to a server that died
// must give an error, not a SIGPIPE that kills the program (whose default
// action is to terminate; this test leaves it at the default).
TEST_F(RedisCache, AWriteToADeadServerIsAnErrorNotASigpipe) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGPIPE, &dfl, &old), 0);
  auto& s = server();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "p", url(s.port(), "pool=1&max_entry_bytes=64MiB").c_str()), CM_OK);
  ASSERT_EQ(h.set("k", "v"), CM_OK);  // the pooled connection
  s.stop(SIGKILL);
  const std::string big(16 << 20, 'x');  // many write() calls: the later ones meet the reset
  int rc = h.set("big", big);
  EXPECT_TRUE(rc == CM_EUNAVAILABLE || rc == CM_ETIMEOUT) << cm_status_name(rc) << ": " << cm_errmsg();
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  EXPECT_NE(sigismember(&pending, SIGPIPE), 1) << "a SIGPIPE was left pending";
  ::sigaction(SIGPIPE, &old, nullptr);
}

// Names are escaped inside the default prefix: "a" with key "b:k" and "a:b"
// with key "k" are different Redis keys.
TEST_F(RedisCache, NamesWithColonsDoNotCollide) {
  auto& s = server();
  Reg r;
  Handle a, ab;
  ASSERT_EQ(cm_cache_open(&a.c, r.reg, "a", url(s.port(), "count_interval_ms=0").c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open(&ab.c, r.reg, "a:b", url(s.port(), "count_interval_ms=0").c_str()), CM_OK);
  ASSERT_EQ(a.set("b:k", "of a"), CM_OK);
  EXPECT_EQ(ab.get("k"), CM_MISS);
  ASSERT_EQ(ab.set("k", "of a:b"), CM_OK);
  ASSERT_EQ(cm_cache_clear(a.c), CM_OK);
  std::string v;
  EXPECT_EQ(ab.get("k", &v), CM_OK);
  EXPECT_EQ(v, "of a:b");
  RawConn raw(s.port());
  EXPECT_EQ(raw.run({"EXISTS", "cachemeter:a%3Ab:k"}), ":1");
  // An empty prefix would make clear() a FLUSHDB.
  cm_cache* c = nullptr;
  EXPECT_EQ(cm_cache_open(&c, r.reg, "e", url(s.port(), "prefix=").c_str()), CM_EINVAL);
  EXPECT_NE(std::string(cm_errmsg()).find("prefix= must not be empty"), std::string::npos) << cm_errmsg();
}

// Two handles of one name share one Redis prefix: the entries gauge counts
// its keys once, not once per handle.
TEST_F(RedisCache, SharedStoreIsCountedOnceInTheEntriesGauge) {
  auto& s = server();
  Reg r;
  Handle h1, h2, t;
  ASSERT_EQ(cm_cache_open(&h1.c, r.reg, "dup", url(s.port(), "count_interval_ms=0").c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open(&h2.c, r.reg, "dup", url(s.port(), "count_interval_ms=0").c_str()), CM_OK);
  ASSERT_EQ(h1.set("k1", "v"), CM_OK);
  ASSERT_EQ(h2.set("k2", "v"), CM_OK);
  EXPECT_EQ(r.metric("cachemeter_cache_entries{cache=\"dup\",backend=\"redis\"}"), 2);
  // Memory handles of one name hold their own entries: those add up.
  Handle m1, m2;
  ASSERT_EQ(cm_cache_open(&m1.c, r.reg, "mem", "memory://"), CM_OK);
  ASSERT_EQ(cm_cache_open(&m2.c, r.reg, "mem", "memory://"), CM_OK);
  ASSERT_EQ(m1.set("k", "v"), CM_OK);
  ASSERT_EQ(m2.set("k", "v"), CM_OK);
  EXPECT_EQ(r.metric("cachemeter_cache_entries{cache=\"mem\",backend=\"memory\"}"), 2);
}

TEST_F(RedisCache, TieredServesL1HitsAndLabelsTiers) {
  auto& s = server();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "t", "memory://?max_entries=100", url(s.port()).c_str()), CM_OK);
  ASSERT_TRUE(h.tiered()->wait_coherent(10000));
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  // The invalidation of our own write may still be on its way: wait until
  // a get fills L1 and a second get is an L1 hit.
  std::string v;
  ASSERT_TRUE(wait_until([&] {
    double before = r.metric("cachemeter_cache_tier_hits_total{cache=\"t\",backend=\"memory\",tier=\"l1\"}");
    h.get("k", &v);
    h.get("k", &v);
    return r.metric("cachemeter_cache_tier_hits_total{cache=\"t\",backend=\"memory\",tier=\"l1\"}") > before;
  }));
  EXPECT_EQ(v, "v");
  EXPECT_GE(r.metric("cachemeter_cache_tier_hits_total{cache=\"t\",backend=\"redis\",tier=\"l2\"}"), 1);
  EXPECT_EQ(h.get("absent"), CM_MISS);
  EXPECT_GE(r.metric("cachemeter_cache_tier_misses_total{cache=\"t\",backend=\"redis\",tier=\"l2\"}"), 1);
  EXPECT_GE(r.metric("cachemeter_cache_tier_get_duration_seconds_count{cache=\"t\",backend=\"redis\",tier=\"l2\"}"), 1);
  EXPECT_GE(r.metric("cachemeter_cache_hits_total{cache=\"t\",backend=\"tiered\"}"), 2);

  // In Redis: the value behind the 20-byte header.
  RawConn raw(s.port());
  EXPECT_EQ(raw.run({"GET", "cachemeter:t:k"}).substr(21), "v");
}

TEST_F(RedisCache, TieredOpenErrors) {
  auto& s = server();
  Reg r;
  cm_cache* c = nullptr;
  EXPECT_EQ(cm_cache_open_tiered(&c, r.reg, "t", url(s.port()).c_str(), url(s.port()).c_str()), CM_EINVAL);
  EXPECT_NE(std::string(cm_errmsg()).find("L1 of a tiered cache is a memory://"), std::string::npos) << cm_errmsg();
  EXPECT_EQ(cm_cache_open_tiered(&c, r.reg, "t", "memory://", "memory://"), CM_EINVAL);
  EXPECT_EQ(cm_cache_open_tiered(&c, r.reg, "t", "memory://?sample=2", url(s.port()).c_str()), CM_EINVAL);
  EXPECT_NE(std::string(cm_errmsg()).find("sample belongs on the L2"), std::string::npos) << cm_errmsg();
  EXPECT_EQ(cm_cache_open_tiered(&c, r.reg, "t", nullptr, url(s.port()).c_str()), CM_EINVAL);
  EXPECT_EQ(cm_cache_open_tiered(nullptr, r.reg, "t", "memory://", url(s.port()).c_str()), CM_EINVAL);
  EXPECT_EQ(cm_cache_open(&c, r.reg, "m", "memory://?breaker_failures=3"), CM_EINVAL);
  EXPECT_EQ(c, nullptr);
}

// Two handles with their own L1 on one Redis: a write through one drops the
// other's L1 copy, within a bound.
TEST_F(RedisCache, TieredL1IsInvalidatedByAnotherHandlesWrite) {
  auto& s = server();
  Reg r1, r2;
  Handle a, b;
  ASSERT_EQ(cm_cache_open_tiered(&a.c, r1.reg, "shared", "memory://", url(s.port()).c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open_tiered(&b.c, r2.reg, "shared", "memory://", url(s.port()).c_str()), CM_OK);
  ASSERT_TRUE(a.tiered()->wait_coherent(10000));
  ASSERT_TRUE(b.tiered()->wait_coherent(10000));
  std::vector<int64_t> lat;
  for (int round = 0; round < 50; ++round) {
    const std::string v1 = "one-" + std::to_string(round), v2 = "two-" + std::to_string(round);
    ASSERT_EQ(a.set("k", v1), CM_OK);
    std::string got;
    // b's L1 holds v1 once a get has filled it and the next one hits L1.
    ASSERT_TRUE(wait_until([&] {
      double l1 = r2.metric("cachemeter_cache_tier_hits_total{cache=\"shared\",backend=\"memory\",tier=\"l1\"}");
      return b.get("k", &got) == CM_OK && got == v1 && b.get("k", &got) == CM_OK && got == v1 &&
             r2.metric("cachemeter_cache_tier_hits_total{cache=\"shared\",backend=\"memory\",tier=\"l1\"}") > l1;
    }));
    ASSERT_EQ(a.set("k", v2), CM_OK);
    int64_t t0 = mono_ns();
    ASSERT_TRUE(wait_until([&] { return b.get("k", &got) == CM_OK && got == v2; }, 2000)) << "still " << got;
    lat.push_back(mono_ns() - t0);
  }
  std::sort(lat.begin(), lat.end());
  std::printf("L1 invalidation latency: median %.3f ms, max %.3f ms over %zu writes\n", lat[lat.size() / 2] / 1e6,
              lat.back() / 1e6, lat.size());
  EXPECT_LT(lat.back(), 500'000'000) << "an invalidation took over 500 ms";
  EXPECT_GE(r2.metric("cachemeter_cache_invalidations_total{cache=\"shared\",backend=\"tiered\"}"), 50);
}

// SIGKILL the server under 8 threads of tiered traffic: calls end within
// the timeouts, errors are counted, the circuit opens, L1 keeps serving
// writes made meanwhile; after a restart the circuit closes.
TEST_F(RedisCache, KillMidWorkloadThenRestart) {
  auto& s = server();
  const int port = s.port();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "w", "memory://?max_entries=10000",
                                 url(port, "timeout_ms=200&connect_timeout_ms=200&breaker_failures=5&"
                                           "breaker_cooldown_ms=200")
                                     .c_str()),
            CM_OK);
  ASSERT_TRUE(h.tiered()->wait_coherent(10000));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> worst_ms{0};
  std::atomic<long> ok{0}, failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      long i = 0;
      while (!stop.load()) {
        std::string k = "k" + std::to_string((t * 7919 + i++) % 200);
        auto t0 = std::chrono::steady_clock::now();
        int rc = (i % 4 == 0) ? h.set(k, "v" + std::to_string(i)) : h.get(k);
        int64_t ms = cmrs::ms_since(t0);
        int64_t w = worst_ms.load();
        while (ms > w && !worst_ms.compare_exchange_weak(w, ms)) {
        }
        (rc == CM_OK || rc == CM_MISS ? ok : failed).fetch_add(1);
      }
    });
  ASSERT_TRUE(wait_until([&] { return ok.load() > 2000; }));
  s.stop(SIGKILL);
  ASSERT_TRUE(wait_until([&] {
    return r.metric("cachemeter_circuit_breaker_opens_total{cache=\"w\",backend=\"tiered\"}") >= 1;
  }));
  // While L2 is down, writes land in L1 and are served from there.
  ASSERT_TRUE(wait_until([&] {
    std::string v;
    return h.set("outage", "kept") == CM_OK && h.get("outage", &v) == CM_OK && v == "kept";
  }));
  EXPECT_GE(r.metric("cachemeter_cache_l1_flushes_total{cache=\"w\",backend=\"tiered\"}"), 1);
  EXPECT_GE(r.metric("cachemeter_cache_errors_total{cache=\"w\",backend=\"tiered\",op=\"set\",kind=\"circuit_open\"}"),
            1);

  server({}, port);
  ASSERT_TRUE(wait_until([&] {
    return r.metric("cachemeter_circuit_breaker_state{cache=\"w\",backend=\"tiered\"}") == 0 &&
           h.tiered()->coherent();
  }));
  long ok_before = ok.load();
  ASSERT_TRUE(wait_until([&] { return ok.load() > ok_before + 1000; }));
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_GE(r.metric("cachemeter_circuit_breaker_closes_total{cache=\"w\",backend=\"tiered\"}"), 1);
  EXPECT_GT(failed.load(), 0);
  // timeout_ms=200 per command; a call makes at most two round trips plus a
  // connect: far under 3 s even on a loaded machine.
  EXPECT_LT(worst_ms.load(), 3000);
  std::string v;
  ASSERT_EQ(h.set("after", "restart"), CM_OK);
  EXPECT_EQ(h.get("after", &v), CM_OK);
  EXPECT_EQ(v, "restart");
}

// ---- Across processes ----------------------------------------------------

pid_t spawn_child(const char* test, int port) {
  return cmrc::spawn_self(std::string("RedisCache.") + test, "CM_REDIS_CHILD", std::to_string(port));
}

int wait_child(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Kills and reaps a child the test did not wait for (it failed early).
struct ChildGuard {
  pid_t pid;
  ~ChildGuard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  int wait() {
    int rc = wait_child(pid);
    pid = -1;
    return rc;
  }
};

int child_port() {
  const char* p = std::getenv("CM_REDIS_CHILD");
  return p ? std::atoi(p) : 0;
}

// The loader of the cross-process test: counts its runs in Redis itself,
// then takes a while, so every other caller arrives during the load.
struct CountingLoader {
  int port;
  static int fn(void* ctx, const void*, size_t, void** val, size_t* vlen) {
    auto* l = static_cast<CountingLoader*>(ctx);
    RawConn raw(l->port);
    std::string n = raw.run({"INCR", "test:loads"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the load's own work
    std::string v = "loaded" + n;
    *val = cm_alloc(v.size());
    std::memcpy(*val, v.data(), v.size());
    *vlen = v.size();
    return CM_OK;
  }
};

// 8 threads of this process on one missing key, after the go signal.
std::set<std::string> load_from_8_threads(int port, const char* who) {
  Reg r;
  Handle h;
  EXPECT_EQ(cm_cache_open_tiered(&h.c, r.reg, "dist", "memory://",
                                 url(port, "load_timeout_ms=10000").c_str()),
            CM_OK);
  RawConn raw(port);
  raw.run({"INCR", "test:ready"});
  EXPECT_TRUE(wait_until([&] { return raw.run({"GET", "test:go"}) == "$1"; }));
  CountingLoader loader{port};
  std::mutex mu;
  std::set<std::string> values;
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      void* v = nullptr;
      size_t n = 0;
      int rc = cm_cache_get_or_load(h.c, "K", 1, CountingLoader::fn, &loader, 0, &v, &n);
      std::lock_guard lk(mu);
      values.insert(rc == CM_OK ? std::string(static_cast<char*>(v), n) : std::string("error: ") + cm_errmsg());
      cm_free(v);
    });
  for (auto& t : ts) t.join();
  std::printf("%s: lock acquisitions %g, lock waits %g\n", who,
              r.metric("cachemeter_lock_acquisitions_total{cache=\"dist\",backend=\"tiered\"}"),
              r.metric("cachemeter_lock_wait_duration_seconds_count{cache=\"dist\",backend=\"tiered\"}"));
  return values;
}

TEST_F(RedisCache, ChildLoads) {
  if (!child_port()) GTEST_SKIP() << "run by TwoProcessesLoadOnce";
  auto values = load_from_8_threads(child_port(), "child");
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(*values.begin(), "loaded:1");
}

TEST_F(RedisCache, TwoProcessesTimesEightThreadsLoadOnce) {
  if (child_port()) GTEST_SKIP();
  auto& s = server();
  RawConn raw(s.port());
  ChildGuard child{spawn_child("ChildLoads", s.port())};
  ASSERT_GT(child.pid, 0);
  std::thread go([&] {
    RawConn ctl(s.port());
    wait_until([&] { return ctl.run({"GET", "test:ready"}) == "$2"; }, 30000);
    ctl.run({"SET", "test:go", "1"});
  });
  auto values = load_from_8_threads(s.port(), "parent");
  go.join();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(raw.run({"GET", "test:loads"}), "$1") << "the loader ran more than once across the two processes";
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(*values.begin(), "loaded:1");
}

// The other process's write: sets "k" once told to, and records when.
TEST_F(RedisCache, ChildWrites) {
  if (!child_port()) GTEST_SKIP() << "run by TwoProcessesInvalidate";
  const int port = child_port();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "inv", "memory://", url(port).c_str()), CM_OK);
  RawConn raw(port);
  for (int round = 0; round < 20; ++round) {
    const std::string tag = std::to_string(round);
    ASSERT_TRUE(wait_until([&] { return raw.run({"GET", "test:write"}) == "$" + tag; }, 30000));
    ASSERT_EQ(h.set("k", "child-" + tag), CM_OK);
    raw.run({"SET", "test:written_at", std::to_string(mono_ns())});
    raw.run({"SET", "test:written", tag});
  }
}

TEST_F(RedisCache, TwoProcessesInvalidate) {
  if (child_port()) GTEST_SKIP();
  auto& s = server();
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "inv", "memory://", url(s.port()).c_str()), CM_OK);
  ASSERT_TRUE(h.tiered()->wait_coherent(10000));
  RawConn raw(s.port());
  ChildGuard child{spawn_child("ChildWrites", s.port())};
  ASSERT_GT(child.pid, 0);
  std::vector<int64_t> lat;
  for (int round = 0; round < 20; ++round) {
    const std::string tag = std::to_string(round);
    ASSERT_EQ(h.set("k", "parent-" + tag), CM_OK);
    std::string got;
    // Our L1 holds our value (an L1 hit), then the child overwrites it.
    ASSERT_TRUE(wait_until([&] {
      double l1 = r.metric("cachemeter_cache_tier_hits_total{cache=\"inv\",backend=\"memory\",tier=\"l1\"}");
      return h.get("k", &got) == CM_OK && h.get("k", &got) == CM_OK &&
             r.metric("cachemeter_cache_tier_hits_total{cache=\"inv\",backend=\"memory\",tier=\"l1\"}") > l1;
    }));
    ASSERT_EQ(got, "parent-" + tag);
    raw.run({"SET", "test:write", tag});
    ASSERT_TRUE(wait_until([&] { return h.get("k", &got) == CM_OK && got == "child-" + tag; }, 5000)) << got;
    int64_t seen = mono_ns();
    ASSERT_TRUE(wait_until([&] { return raw.run({"GET", "test:written"}) == "$" + tag; }));
    std::string at = raw.run({"GET", "test:written_at"}).substr(1);
    lat.push_back(seen - std::atoll(at.c_str()));
  }
  EXPECT_EQ(child.wait(), 0);
  std::sort(lat.begin(), lat.end());
  std::printf("cross-process L1 invalidation: median %.3f ms, max %.3f ms (%zu writes)\n",
              lat[lat.size() / 2] / 1e6, lat.back() / 1e6, lat.size());
  // The child records its write after the set returns, so a prompt
  // invalidation can even be seen "before" it (negative).
  EXPECT_LT(lat.back(), 500'000'000);
}

}  // namespace
