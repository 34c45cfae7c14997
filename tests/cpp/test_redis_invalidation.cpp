// SPDX-License-Identifier: Apache-2.0
// The Redis invalidation listener (coherent L1) against a real redis-server:
// what invalidates and what does not, the latency from a write's reply to the
// callback, loss and reconnect (SIGKILL, SIGSTOP), prompt destruction in
// every state, AUTH, unix sockets, and a simulated L1 filled by concurrent
// readers through the epoch protocol that must end coherent (TSan).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/redis_invalidation.h"
#include "redis_server.h"

namespace {

using cm::RedisInvalidation;
using cmrs::ms_since;
using cmrs::RawConn;
using cmrs::wait_until;
using Clock = std::chrono::steady_clock;

cm::RedisOptions options(int port) {
  cm::RedisOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  return o;
}

// Records the callbacks: invalidations per key (and when the last one came),
// flushes, and flushes seen while connected() was still true (must be none).
struct Recorder {
  std::mutex mu;
  std::map<std::string, int> counts;
  std::map<std::string, Clock::time_point> last_at;
  std::atomic<int> flushes{0};
  std::atomic<int> flushes_while_connected{0};
  std::atomic<RedisInvalidation*> inv{nullptr};

  RedisInvalidation::Callbacks callbacks() {
    return {[this](std::string_view key) {
              auto now = Clock::now();
              std::lock_guard lock(mu);
              ++counts[std::string(key)];
              last_at[std::string(key)] = now;
            },
            [this] {
              if (RedisInvalidation* i = inv.load(); i && i->connected()) ++flushes_while_connected;
              ++flushes;
            }};
  }
  int count(const std::string& key) {
    std::lock_guard lock(mu);
    auto it = counts.find(key);
    return it == counts.end() ? 0 : it->second;
  }
  std::map<std::string, int> all() {
    std::lock_guard lock(mu);
    return counts;
  }
  // Waits until key has been invalidated at least n times.
  bool wait_count(const std::string& key, int n) {
    return wait_until([&] { return count(key) >= n; });
  }
};

class RedisInvalidationTest : public cmrs::RedisFixture {
 protected:
  std::unique_ptr<RedisInvalidation> listen(cm::RedisOptions o, Recorder& rec, std::string prefix = "p:") {
    auto inv = std::make_unique<RedisInvalidation>(std::move(o), std::move(prefix), rec.callbacks());
    rec.inv = inv.get();
    return inv;
  }
  // Destroys inv and returns how long it took (ms).
  static int64_t destroy(std::unique_ptr<RedisInvalidation>& inv, Recorder* rec = nullptr) {
    if (rec) rec->inv = nullptr;
    auto t0 = Clock::now();
    inv.reset();
    return ms_since(t0);
  }
};

TEST_F(RedisInvalidationTest, WritesUnderThePrefixInvalidateOthersDoNot) {
  auto& s = server();
  Recorder rec;
  auto inv = listen(options(s.port()), rec);
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  EXPECT_EQ(rec.flushes.load(), 1);  // once, before connected() turned true
  EXPECT_EQ(inv->last_error(), "");
  uint64_t e0 = inv->epoch();
  EXPECT_GE(e0, 1u);

  RawConn w(s.port());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.run({"SET", "p:a", "1"}), "+OK");
  ASSERT_TRUE(rec.wait_count("a", 1));
  EXPECT_GT(inv->epoch(), e0);
  EXPECT_EQ(w.run({"MSET", "p:b", "1", "p:c", "2"}), "+OK");
  ASSERT_TRUE(rec.wait_count("b", 1));
  ASSERT_TRUE(rec.wait_count("c", 1));
  EXPECT_EQ(w.run({"DEL", "p:a"}), ":1");
  ASSERT_TRUE(rec.wait_count("a", 2));
  EXPECT_EQ(w.run({"UNLINK", "p:b"}), ":1");
  ASSERT_TRUE(rec.wait_count("b", 2));
  std::string bin("k\0y", 3);  // keys are binary-safe
  EXPECT_EQ(w.run({"SET", "p:" + bin, "v"}), "+OK");
  ASSERT_TRUE(rec.wait_count(bin, 1));

  // Expiry: PEXPIRE itself invalidates, then Redis expiring the key does
  // (nobody touches the key meanwhile).
  EXPECT_EQ(w.run({"SET", "p:e", "v"}), "+OK");
  ASSERT_TRUE(rec.wait_count("e", 1));
  EXPECT_EQ(w.run({"PEXPIRE", "p:e", "50"}), ":1");
  ASSERT_TRUE(rec.wait_count("e", 2));
  ASSERT_TRUE(rec.wait_count("e", 3)) << "the expiry itself was not reported";

  // Outside the prefix, or a no-op: nothing. Messages arrive in the order
  // Redis executed the writes, so once the marker is in, they would be too.
  EXPECT_EQ(w.run({"SET", "q:a", "1"}), "+OK");
  EXPECT_EQ(w.run({"SET", "p", "1"}), "+OK");
  EXPECT_EQ(w.run({"SET", "P:a", "1"}), "+OK");
  EXPECT_EQ(w.run({"DEL", "p:never-existed"}), ":0");
  EXPECT_EQ(w.run({"GET", "p:c"}), "$2");  // reads do not invalidate
  EXPECT_EQ(w.run({"SET", "p:marker", "1"}), "+OK");
  ASSERT_TRUE(rec.wait_count("marker", 1));
  std::map<std::string, int> want{{"a", 2}, {"b", 2}, {"c", 1}, {bin, 1}, {"e", 3}, {"marker", 1}};
  EXPECT_EQ(rec.all(), want);

  // Redis tracks key names, not databases: a write in db 5 invalidates too.
  EXPECT_EQ(w.run({"SELECT", "5"}), "+OK");
  EXPECT_EQ(w.run({"SET", "p:a", "in db 5"}), "+OK");
  ASSERT_TRUE(rec.wait_count("a", 3));

  // FLUSHDB (of any database) and FLUSHALL: a nil payload, a flush.
  uint64_t e1 = inv->epoch();
  EXPECT_EQ(w.run({"FLUSHDB"}), "+OK");
  ASSERT_TRUE(wait_until([&] { return rec.flushes == 2; }));
  EXPECT_EQ(w.run({"FLUSHALL"}), "+OK");
  ASSERT_TRUE(wait_until([&] { return rec.flushes == 3; }));
  EXPECT_GE(inv->epoch(), e1 + 2);
  EXPECT_TRUE(inv->connected());
  EXPECT_EQ(inv->losses(), 0u);
  EXPECT_EQ(rec.flushes_while_connected.load(), 2);  // those two were served connected: no loss
  destroy(inv, &rec);
}

TEST_F(RedisInvalidationTest, LatencyFromWriteReplyToCallback) {
  auto& s = server();
  Recorder rec;
  auto inv = listen(options(s.port()), rec);
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  RawConn w(s.port());
  ASSERT_TRUE(w.ok());
  constexpr int kWrites = 200;
  std::vector<double> after_reply_us, after_send_us;
  for (int i = 0; i < kWrites; ++i) {
    std::string key = "lat:" + std::to_string(i);
    auto sent = Clock::now();
    ASSERT_EQ(w.run({"SET", "p:" + key, "v"}), "+OK");
    auto replied = Clock::now();
    ASSERT_TRUE(rec.wait_count(key, 1)) << "write " << i << " never invalidated";
    Clock::time_point at;
    {
      std::lock_guard lock(rec.mu);
      at = rec.last_at[key];
    }
    // Negative when the callback ran before the writer saw its reply.
    double us = std::chrono::duration<double, std::micro>(at - replied).count();
    after_reply_us.push_back(us);
    after_send_us.push_back(std::chrono::duration<double, std::micro>(at - sent).count());
    EXPECT_LT(us, 500000.0) << "write " << i;
  }
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  std::cout << "invalidation latency over " << kWrites << " SETs (us): after the writer's reply: median "
            << pct(after_reply_us, 0.5) << ", p99 " << pct(after_reply_us, 0.99) << ", max "
            << pct(after_reply_us, 1.0) << "; after sending the SET: median " << pct(after_send_us, 0.5) << ", p99 "
            << pct(after_send_us, 0.99) << ", max " << pct(after_send_us, 1.0) << "\n";
  RecordProperty("latency_after_reply_median_us", std::to_string(pct(after_reply_us, 0.5)));
  RecordProperty("latency_after_reply_p99_us", std::to_string(pct(after_reply_us, 0.99)));
  destroy(inv, &rec);
}

TEST_F(RedisInvalidationTest, ServerKilledFlushesThenRestartedReconnects) {
  auto& s = server();
  const int port = s.port();
  Recorder rec;
  auto inv = listen(options(port), rec);
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  EXPECT_EQ(rec.flushes.load(), 1);
  EXPECT_EQ(inv->losses(), 0u);
  uint64_t e0 = inv->epoch();

  s.stop(SIGKILL);
  ASSERT_TRUE(wait_until([&] { return rec.flushes == 2; })) << "no flush after the server died";
  EXPECT_FALSE(inv->connected());
  EXPECT_EQ(inv->losses(), 1u);
  EXPECT_GT(inv->epoch(), e0);
  EXPECT_EQ(rec.flushes_while_connected.load(), 0);  // connected() turned false first
  ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
  EXPECT_NE(inv->last_error().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << inv->last_error();
  EXPECT_FALSE(inv->wait_connected(1)) << "cannot be connected to a dead server";

  server({}, port);  // the same port, empty
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  EXPECT_EQ(rec.flushes.load(), 3);  // again before serving: messages were missed while down
  EXPECT_EQ(rec.flushes_while_connected.load(), 0);
  EXPECT_EQ(inv->losses(), 1u);
  EXPECT_EQ(inv->last_error(), "");
  RawConn w(port);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.run({"SET", "p:k", "v"}), "+OK");
  ASSERT_TRUE(rec.wait_count("k", 1));
  destroy(inv, &rec);
}

TEST_F(RedisInvalidationTest, HungServerIsNoticedByPing) {
  auto& s = server();
  Recorder rec;
  auto o = options(s.port());
  o.timeout_ms = 300;
  auto inv = listen(o, rec);
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  s.signal(SIGSTOP);  // the kernel keeps the connection up; nobody answers
  auto t0 = Clock::now();
  bool noticed = wait_until([&] { return !inv->connected(); });
  int64_t took = ms_since(t0);
  s.signal(SIGCONT);  // before any assertion can end the test with it stopped
  ASSERT_TRUE(noticed);
  EXPECT_LT(took, RedisInvalidation::kIdlePingMs + o.timeout_ms + 1000);
  ASSERT_TRUE(wait_until([&] { return rec.flushes == 2; }));
  EXPECT_EQ(inv->losses(), 1u);
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  EXPECT_EQ(rec.flushes.load(), 3);
  RawConn w(s.port());
  EXPECT_EQ(w.run({"SET", "p:k", "v"}), "+OK");
  ASSERT_TRUE(rec.wait_count("k", 1));
  destroy(inv, &rec);
}

TEST_F(RedisInvalidationTest, DestructorIsPromptInEveryState) {
  {  // connected and idle
    auto& s = server();
    Recorder rec;
    auto inv = listen(options(s.port()), rec);
    ASSERT_TRUE(inv->wait_connected(10000));
    EXPECT_LT(destroy(inv, &rec), 3000);
  }
  {  // nothing listens: failing, backing off, retrying
    Recorder rec;
    auto inv = listen(options(cmrs::free_port()), rec);
    ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
    EXPECT_NE(inv->last_error().find("refused"), std::string::npos) << inv->last_error();
    EXPECT_FALSE(inv->connected());
    EXPECT_LT(destroy(inv, &rec), 3000);
    EXPECT_EQ(rec.flushes.load(), 0);  // never connected, nothing to flush
  }
  {  // accepted, never answered, with timeouts far longer than the bound
    cmrs::SilentServer silent;
    Recorder rec;
    auto o = options(silent.port());
    o.timeout_ms = o.connect_timeout_ms = 60000;
    auto inv = listen(o, rec);
    ASSERT_TRUE(silent.accept_one());  // it connected and now waits for a reply
    EXPECT_LT(destroy(inv, &rec), 3000);
    EXPECT_EQ(rec.flushes.load(), 0);
  }
  {  // the TCP handshake itself never completes
    cmrs::SilentServer full(0);
    ASSERT_TRUE(full.fill_backlog());
    Recorder rec;
    auto o = options(full.port());
    o.timeout_ms = o.connect_timeout_ms = 60000;
    auto inv = listen(o, rec);
    EXPECT_FALSE(inv->wait_connected(200));
    EXPECT_LT(destroy(inv, &rec), 3000);
  }
}

TEST_F(RedisInvalidationTest, ConnectTimeoutAndReplyTimeoutAreReported) {
  cmrs::SilentServer silent;
  Recorder rec;
  auto o = options(silent.port());
  o.timeout_ms = 100;
  auto inv = listen(o, rec);
  ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
  EXPECT_NE(inv->last_error().find("timeout_ms=100"), std::string::npos) << inv->last_error();
  EXPECT_FALSE(inv->connected());
  destroy(inv, &rec);

  cmrs::SilentServer full(0);
  ASSERT_TRUE(full.fill_backlog());
  o = options(full.port());
  o.connect_timeout_ms = 100;
  inv = listen(o, rec);
  ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
  EXPECT_NE(inv->last_error().find("connect_timeout_ms=100"), std::string::npos) << inv->last_error();
  destroy(inv, &rec);
}

TEST_F(RedisInvalidationTest, PasswordAuth) {
  auto& s = server({"--requirepass", "s3cret"});
  RawConn w(s.port());
  ASSERT_EQ(w.run({"AUTH", "s3cret"}), "+OK");
  {
    Recorder rec;
    auto o = options(s.port());
    o.password = "s3cret";
    auto inv = listen(o, rec);
    ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
    EXPECT_EQ(w.run({"SET", "p:k", "v"}), "+OK");
    ASSERT_TRUE(rec.wait_count("k", 1));
    destroy(inv, &rec);
  }
  {  // AUTH user password
    Recorder rec;
    auto o = options(s.port());
    o.user = "default";
    o.password = "s3cret";
    auto inv = listen(o, rec);
    ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
    destroy(inv, &rec);
  }
  {  // wrong: never connected, the reason without the password
    Recorder rec;
    auto o = options(s.port());
    o.password = "nope-nope";
    auto inv = listen(o, rec);
    ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
    std::string why = inv->last_error();
    EXPECT_NE(why.find("authentication failed"), std::string::npos) << why;
    EXPECT_NE(why.find("WRONGPASS"), std::string::npos) << why;
    EXPECT_EQ(why.find("nope-nope"), std::string::npos) << why;
    EXPECT_FALSE(inv->connected());
    EXPECT_LT(destroy(inv, &rec), 3000);
    EXPECT_EQ(rec.flushes.load(), 0);
  }
  {  // none: NOAUTH
    Recorder rec;
    auto inv = listen(options(s.port()), rec);
    ASSERT_TRUE(wait_until([&] { return !inv->last_error().empty(); }));
    EXPECT_NE(inv->last_error().find("NOAUTH"), std::string::npos) << inv->last_error();
    EXPECT_FALSE(inv->connected());
    EXPECT_LT(destroy(inv, &rec), 3000);
  }
}

TEST_F(RedisInvalidationTest, UnixSocketSelectAndEmptyPrefix) {
  std::string sock = dir_ + "/redis.sock";
  auto& s = server({"--unixsocket", sock, "--unixsocketperm", "700"});
  Recorder rec, all;
  cm::RedisOptions o;
  o.socket = sock;
  o.db = 3;
  auto inv = listen(o, rec);
  auto every = listen(o, all, "");  // an empty prefix watches every key
  ASSERT_TRUE(inv->wait_connected(10000)) << inv->last_error();
  ASSERT_TRUE(every->wait_connected(10000)) << every->last_error();
  RawConn w(s.port());
  EXPECT_EQ(w.run({"SELECT", "3"}), "+OK");
  EXPECT_EQ(w.run({"SET", "p:k", "v"}), "+OK");
  ASSERT_TRUE(rec.wait_count("k", 1));
  ASSERT_TRUE(all.wait_count("p:k", 1));
  EXPECT_EQ(w.run({"SET", "other", "v"}), "+OK");
  ASSERT_TRUE(all.wait_count("other", 1));
  destroy(every, &all);
  destroy(inv, &rec);
}

// A memory L1 kept coherent by the listener: readers fill it with the epoch
// protocol of the header while writers overwrite the same keys in Redis (and
// flush everything once); observers read connected()/epoch()/losses(). Once
// the writers stop and their last invalidation is in, every L1 entry must
// equal Redis's value.
TEST_F(RedisInvalidationTest, ConcurrentReadersKeepASimulatedL1Coherent) {
  auto& s = server();
  std::mutex l1_mu;
  std::unordered_map<std::string, std::string> l1;
  std::atomic<bool> marker_seen{false};
  RedisInvalidation::Callbacks cb{[&](std::string_view key) {
                                    if (key == "marker") marker_seen = true;
                                    std::lock_guard lock(l1_mu);
                                    l1.erase(std::string(key));
                                  },
                                  [&] {
                                    std::lock_guard lock(l1_mu);
                                    l1.clear();
                                  }};
  RedisInvalidation inv(options(s.port()), "p:", cb);
  ASSERT_TRUE(inv.wait_connected(10000)) << inv.last_error();

  constexpr int kKeys = 16, kWriters = 2, kReaders = 3, kWrites = 1500;
  std::atomic<bool> reading{true};
  std::atomic<uint64_t> hits{0}, fills{0}, refused{0};
  std::vector<std::thread> ts;
  struct Join {  // also when an assertion returns early
    std::atomic<bool>& reading;
    std::vector<std::thread>& ts;
    ~Join() {
      reading = false;
      for (auto& t : ts)
        if (t.joinable()) t.join();
    }
  } join{reading, ts};
  for (int t = 0; t < kWriters; ++t)
    ts.emplace_back([&, t] {
      RawConn w(s.port());
      ASSERT_TRUE(w.ok());
      std::mt19937 rng(t);
      for (int i = 0; i < kWrites; ++i) {
        std::string k = "p:k" + std::to_string(rng() % kKeys);
        ASSERT_EQ(w.run({"SET", k, "w" + std::to_string(t) + ":" + std::to_string(i)}), "+OK");
        if (t == 0 && i == kWrites / 2) {
          ASSERT_EQ(w.run({"FLUSHALL"}), "+OK");
        }
      }
    });
  for (int t = 0; t < kReaders; ++t)
    ts.emplace_back([&, t] {
      RawConn r(s.port());
      ASSERT_TRUE(r.ok());
      std::mt19937 rng(100 + t);
      while (reading) {
        std::string k = "k" + std::to_string(rng() % kKeys);
        {
          std::lock_guard lock(l1_mu);
          if (inv.connected() && l1.count(k)) {
            ++hits;
            continue;
          }
        }
        uint64_t e = inv.epoch();
        std::string v = r.run({"GET", "p:" + k});
        std::lock_guard lock(l1_mu);
        if (inv.connected() && inv.epoch() == e) {
          l1[k] = v;
          ++fills;
        } else {
          ++refused;
        }
      }
    });
  ts.emplace_back([&] {
    uint64_t last = 0;
    while (reading) {
      uint64_t e = inv.epoch();
      ASSERT_GE(e, last);
      last = e;
      EXPECT_TRUE(inv.connected());
      EXPECT_EQ(inv.losses(), 0u);
      std::this_thread::yield();
    }
  });
  for (int t = 0; t < kWriters; ++t) ts[t].join();
  {
    RawConn w(s.port());
    ASSERT_EQ(w.run({"SET", "p:marker", "1"}), "+OK");  // after every write: its message comes last
  }
  ASSERT_TRUE(wait_until([&] { return marker_seen.load(); }));
  uint64_t n0 = hits + fills;
  ASSERT_TRUE(wait_until([&] { return hits + fills > n0 + 1000; }));  // readers go on after the last write
  reading = false;
  for (size_t t = kWriters; t < ts.size(); ++t) ts[t].join();

  RawConn check(s.port());
  std::lock_guard lock(l1_mu);
  for (auto& [k, v] : l1) {
    EXPECT_EQ(check.run({"GET", "p:" + k}), v) << "stale L1 entry " << k;
  }
  std::cout << "simulated L1: " << hits << " hits, " << fills << " fills, " << refused
            << " fills refused by the epoch, " << l1.size() << " entries at the end\n";
}

}  // namespace
