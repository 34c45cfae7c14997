// SPDX-License-Identifier: Apache-2.0
// redis+cluster:// caches against a real Redis Cluster the test creates on
// free 127.0.0.1 ports with `redis-cli --cluster create` (3 primaries, and a
// replica each where a test needs failover): keys spread over every slot,
// clear and entries over every primary, a live reshard under load, a
// primary killed with SIGKILL, a tiered cache's L1 kept coherent by every
// primary (between handles, and between two processes, before and after a
// failover), replica reads, and bad seeds failing at open.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis.h"
#include "backends/redis_cluster.h"
#include "wrappers/forwarding.h"
#include "redis_cache_util.h"
#include "redis_server.h"

namespace {

using cmrc::Handle;
using cmrc::Reg;
using cmrs::RawConn;
using cmrs::RedisServer;
using cmrs::gets_served;
using cmrs::has_unread_request;
using cmrs::wait_until;

constexpr const char* kRedisCli = "/usr/bin/redis-cli";

// A free port whose cluster bus port (port + 10000) is free too.
int cluster_port() {
  for (;;) {
    int p = cmrs::free_port();
    if (p <= 0 || p > 55535) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(p + 10000));
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (ok) return p;
  }
}

// Runs a shell command; its exit status.
int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

class RedisCluster : public cmrs::RedisFixture {
 protected:
  void SetUp() override {
    RedisFixture::SetUp();
    if (IsSkipped()) return;
    if (::access(kRedisCli, X_OK) != 0) GTEST_SKIP() << kRedisCli << " is not installed (apt-get install redis-tools)";
  }
  void TearDown() override {
    resume_all();
    RedisFixture::TearDown();
  }
  // primaries (and as many replicas when `replicas`), created as a cluster
  // and waited for until every node says cluster_state:ok.
  void start_cluster(bool replicas) {
    int n = replicas ? 6 : 3;
    std::string nodes;
    for (int i = 0; i < n; ++i) {
      int port = cluster_port();
      std::string conf = dir_ + "/nodes-" + std::to_string(port) + ".conf";
      // Replication writes an RDB file into --dir: one directory per node.
      std::string dir = dir_ + "/n" + std::to_string(port);
      ASSERT_EQ(sh("mkdir -p '" + dir + "'"), 0);
      nodes_.push_back(&server({"--cluster-enabled", "yes", "--cluster-config-file", conf, "--cluster-node-timeout",
                                "1000", "--dir", dir},
                               port));
      nodes += " 127.0.0.1:" + std::to_string(port);
    }
    std::string cmd = std::string(kRedisCli) + " --cluster create" + nodes + " --cluster-replicas " +
                      (replicas ? "1" : "0") + " --cluster-yes > '" + dir_ + "/create.log' 2>&1";
    ASSERT_EQ(sh(cmd), 0) << "see " << dir_ << "/create.log";
    for (RedisServer* s : nodes_)
      ASSERT_TRUE(wait_until([&] {
        RawConn c(s->port());
        return c.ok() && c.run({"CLUSTER", "INFO"}).find("cluster_state:ok") != std::string::npos;
      }, 30000)) << "node " << s->port() << " never reached cluster_state:ok";
    // The replicas show in CLUSTER SLOTS once gossip has spread their
    // attachment: wait for it, so a cache opened next learns them.
    if (replicas) {
      for (RedisServer* s : nodes_)
        ASSERT_TRUE(wait_until([&] {
          RawConn c(s->port());
          auto* r = static_cast<redisReply*>(redisCommand(c.c, "CLUSTER SLOTS"));
          bool all = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
          for (size_t i = 0; all && i < r->elements; ++i) all = r->element[i]->elements >= 4;
          if (r) freeReplyObject(r);
          return all;
        }, 30000)) << "node " << s->port() << " never listed a replica for every slot range";
    }
  }
  std::string uri(const std::string& query = "") const {
    std::string u = "redis+cluster://";
    for (size_t i = 0; i < 3 && i < nodes_.size(); ++i)
      u += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(nodes_[i]->port());
    return u + (query.empty() ? "" : "/?" + query);
  }
  cm::RedisBackend* redis(Handle& h) {
    cm::Backend* b = h.c->backend.get();
    while (auto* w = dynamic_cast<cm::ForwardingBackend*>(b)) b = &w->inner();
    return dynamic_cast<cm::RedisBackend*>(b);
  }
  // The node id and port of the primary that serves slot.
  std::pair<std::string, int> owner_of(int slot) {
    RawConn c(nodes_[0]->port());
    auto* r = static_cast<redisReply*>(redisCommand(c.c, "CLUSTER SLOTS"));
    std::pair<std::string, int> out{"", 0};
    for (size_t i = 0; r && i < r->elements; ++i) {
      redisReply* e = r->element[i];
      if (e->element[0]->integer <= slot && slot <= e->element[1]->integer)
        out = {std::string(e->element[2]->element[2]->str), static_cast<int>(e->element[2]->element[1]->integer)};
    }
    if (r) freeReplyObject(r);
    return out;
  }
  RedisServer* node_on(int port) {
    for (RedisServer* s : nodes_)
      if (s->port() == port) return s;
    return nullptr;
  }

  // SIGSTOP on every node: the kernel still accepts connections and takes
  // requests, nothing answers. resume_all(), or the test's end, continues them.
  void pause_all() { paused_.stop(nodes_); }
  void resume_all() { paused_.resume(); }

  std::vector<RedisServer*> nodes_;
  cmrs::Paused paused_;
};

TEST(RedisClusterSlots, KeySlotsMatchRedisAndHashTags) {
  // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
  EXPECT_EQ(cm::cluster_slot("123456789"), 0x31C3 % 16384);
  EXPECT_EQ(cm::cluster_slot("foo"), 12182);
  EXPECT_EQ(cm::cluster_slot("{user1000}.following"), cm::cluster_slot("user1000"));
  EXPECT_EQ(cm::cluster_slot("foo{}{bar}"), cm::cluster_slot("foo{}{bar}"));
  EXPECT_NE(cm::cluster_slot("foo{}{bar}"), cm::cluster_slot("bar"));  // empty tag: the whole key
  EXPECT_EQ(cm::cluster_slot("foo{{bar}}zap"), cm::cluster_slot("{bar"));
  cm::Redirect r;
  ASSERT_TRUE(cm::parse_redirect("MOVED 3999 127.0.0.1:6381", &r));
  EXPECT_FALSE(r.ask);
  EXPECT_EQ(r.slot, 3999);
  EXPECT_EQ(r.to.text(), "127.0.0.1:6381");
  ASSERT_TRUE(cm::parse_redirect("ASK 1 [::1]:7000", &r));
  EXPECT_TRUE(r.ask);
  EXPECT_EQ(r.to.host, "::1");
  ASSERT_TRUE(cm::parse_redirect("MOVED 5 :7000", &r));
  EXPECT_EQ(r.to.host, "");
  EXPECT_FALSE(cm::parse_redirect("MOVED 16384 a:1", &r));
  EXPECT_FALSE(cm::parse_redirect("MOVED 1 a:0", &r));
  EXPECT_FALSE(cm::parse_redirect("MOVED 1 a", &r));
  EXPECT_FALSE(cm::parse_redirect("ERR MOVED 1 a:1", &r));
}

TEST_F(RedisCluster, KeysOverEverySlotAreExactAndClearWalksEveryPrimary) {
  start_cluster(false);
  // Agree with the server's own CLUSTER KEYSLOT.
  RawConn c0(nodes_[0]->port());
  for (std::string k : {"a", "cachemeter:t:k1", "{tag}x", "x{tag}", "{}y"})
    EXPECT_EQ(c0.run({"CLUSTER", "KEYSLOT", k}), ":" + std::to_string(cm::cluster_slot(k))) << k;

  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("count_interval_ms=0").c_str()), CM_OK) << cm_errmsg();
  const int n = 10000;
  std::vector<bool> slots(16384);
  for (int i = 0; i < n; ++i) {
    std::string k = "k" + std::to_string(i);
    ASSERT_EQ(h.set(k, "v" + std::to_string(i)), CM_OK) << cm_errmsg();
    slots[cm::cluster_slot("cachemeter:t:" + k)] = true;
  }
  int covered = 0;
  for (bool b : slots) covered += b;
  EXPECT_GT(covered, 7000);  // spread over the slots of every primary
  std::string v;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK) << i;
    ASSERT_EQ(v, "v" + std::to_string(i));
  }
  // Each primary holds a share (DBSIZE on each node).
  long total = 0;
  for (RedisServer* s : nodes_) {
    RawConn c(s->port());
    long keys = std::atol(c.run({"DBSIZE"}).c_str() + 1);
    EXPECT_GT(keys, n / 5) << s->port();
    total += keys;
  }
  EXPECT_EQ(total, n);
  EXPECT_EQ(r.metric("cachemeter_cache_entries{cache=\"t\",backend=\"redis\"}"), n);
  for (int i = 0; i < n; i += 2) ASSERT_EQ(cm_cache_delete(h.c, ("k" + std::to_string(i)).data(), ("k" + std::to_string(i)).size()), CM_OK);
  EXPECT_EQ(h.get("k0"), CM_MISS);
  EXPECT_EQ(h.get("k1", &v), CM_OK);
  EXPECT_EQ(r.metric("cachemeter_cache_entries{cache=\"t\",backend=\"redis\"}"), n / 2);
  ASSERT_EQ(cm_cache_clear(h.c), CM_OK) << cm_errmsg();
  for (RedisServer* s : nodes_) EXPECT_EQ(RawConn(s->port()).run({"DBSIZE"}), ":0");
  EXPECT_EQ(h.get("k1"), CM_MISS);

  // Hash tags pin a cache to one slot: every key on one node.
  Handle pinned;
  ASSERT_EQ(cm_cache_open(&pinned.c, r.reg, "p", uri("prefix={p}:").c_str()), CM_OK) << cm_errmsg();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pinned.set("k" + std::to_string(i), "v"), CM_OK);
  int holding = 0;
  for (RedisServer* s : nodes_) holding += RawConn(s->port()).run({"DBSIZE"}) != ":0";
  EXPECT_EQ(holding, 1);
  EXPECT_GE(redis(h)->topology_refreshes(), 1u);
}

TEST_F(RedisCluster, BadSeedsFailAtOpenWithAClearMessage) {
  Reg r;
  auto open = [&](const std::string& u) { return cmrc::open_status(r.reg, u); };
  auto says = [](const std::string& what) { return cmrc::errmsg_has(what); };
  EXPECT_EQ(open("redis+cluster://"), CM_EINVAL);
  EXPECT_TRUE(says("at least one seed node")) << cm_errmsg();
  EXPECT_EQ(open("redis+cluster://127.0.0.1:1,/"), CM_EINVAL);
  EXPECT_TRUE(says("empty entry")) << cm_errmsg();
  EXPECT_EQ(open("redis+cluster://127.0.0.1:7000/3"), CM_EINVAL);
  EXPECT_TRUE(says("only db 0")) << cm_errmsg();
  EXPECT_EQ(open("redis+cluster://127.0.0.1:7000/?db=1"), CM_EINVAL);
  EXPECT_EQ(open("redis+cluster://127.0.0.1:7000/?read_from=nearest"), CM_EINVAL);
  EXPECT_TRUE(says("read_from= is primary or replica")) << cm_errmsg();
  EXPECT_EQ(open("redis://127.0.0.1:7000/?read_from=replica"), CM_EINVAL);  // cluster and sentinel only
  EXPECT_TRUE(says("read_from")) << cm_errmsg();

  int p1 = cmrs::free_port(), p2 = cmrs::free_port();
  EXPECT_EQ(open("redis+cluster://127.0.0.1:" + std::to_string(p1) + ",127.0.0.1:" + std::to_string(p2)),
            CM_EUNAVAILABLE);
  EXPECT_TRUE(says("127.0.0.1:" + std::to_string(p1))) << cm_errmsg();
  EXPECT_TRUE(says("127.0.0.1:" + std::to_string(p2))) << cm_errmsg();

  RedisServer& plain = server();
  EXPECT_EQ(open("redis+cluster://127.0.0.1:" + std::to_string(plain.port())), CM_EINVAL);
  EXPECT_TRUE(says("not in cluster mode")) << cm_errmsg();
}

TEST_F(RedisCluster, ALiveReshardUnderLoadGivesNoWrongValueAndNoError) {
  start_cluster(false);
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri().c_str()), CM_OK) << cm_errmsg();
  // Move 1000 slots from the owner of slot 0 to another primary while 4
  // threads write and read back their own keys.
  auto from = owner_of(0);
  std::pair<std::string, int> to = from;
  for (int s = 0; s < 16384 && to.first == from.first; s += 1000) to = owner_of(s);
  ASSERT_NE(to.first, from.first);

  std::atomic<bool> stop{false};
  std::atomic<long> ops{0}, wrong{0}, errors{0};
  std::string first_error;
  std::mutex err_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::map<int, int> last;  // key -> the value this thread wrote last
      for (int i = 0; !stop.load(); ++i) {
        int key = (i * 7919 + t) % 2000;
        std::string k = "t" + std::to_string(t) + ":" + std::to_string(key);
        int rc;
        if (i % 3 == 0) {
          rc = h.set(k, std::to_string(i));
          if (rc == CM_OK) last[key] = i;
        } else {
          std::string v;
          rc = h.get(k, &v);
          if (rc == CM_OK && (last.count(key) == 0 || v != std::to_string(last[key]))) ++wrong;
          if (rc == CM_MISS && last.count(key)) ++wrong;
          if (rc == CM_MISS) rc = CM_OK;
        }
        ++ops;
        if (rc != CM_OK) {
          ++errors;
          std::lock_guard lock(err_mu);
          if (first_error.empty()) first_error = cm_errmsg();
        }
      }
    });
  ASSERT_TRUE(wait_until([&] { return ops.load() > 2000; }, 30000));
  std::string cmd = std::string(kRedisCli) + " --cluster reshard 127.0.0.1:" + std::to_string(from.second) +
                    " --cluster-from " + from.first + " --cluster-to " + to.first +
                    " --cluster-slots 1000 --cluster-yes > '" + dir_ + "/reshard.log' 2>&1";
  long before = ops.load();
  int rc = sh(cmd);
  long during = ops.load() - before;
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_EQ(rc, 0) << "see " << dir_ << "/reshard.log";
  EXPECT_EQ(owner_of(0).first, to.first);
  EXPECT_GT(during, 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0) << first_error;
  auto* b = redis(h);
  std::printf("reshard of 1000 slots: %ld ops during it, %llu MOVED, %llu ASK, %llu map refreshes\n", during,
              static_cast<unsigned long long>(b->redirects(false)), static_cast<unsigned long long>(b->redirects(true)),
              static_cast<unsigned long long>(b->topology_refreshes()));
  EXPECT_GT(b->redirects(false) + b->redirects(true), 0u);
  EXPECT_EQ(r.metric("cachemeter_redis_redirects_total{cache=\"t\",kind=\"moved\"}"),
            static_cast<double>(b->redirects(false)));
  EXPECT_EQ(r.metric("cachemeter_redis_redirects_total{cache=\"t\",kind=\"ask\"}"),
            static_cast<double>(b->redirects(true)));
  EXPECT_GE(r.metric("cachemeter_redis_topology_refreshes_total{cache=\"t\"}"), 1);
}

TEST_F(RedisCluster, APrimaryKilledRecoversOnItsPromotedReplica) {
  start_cluster(true);
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("timeout_ms=500&connect_timeout_ms=500").c_str()), CM_OK)
      << cm_errmsg();
  // Two tiered handles whose L1s must follow the failover.
  Reg r2;
  Handle a, b;
  ASSERT_EQ(cm_cache_open_tiered(&a.c, r.reg, "l", "memory://", uri("timeout_ms=500").c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open_tiered(&b.c, r2.reg, "l", "memory://", uri("timeout_ms=500").c_str()), CM_OK);
  ASSERT_TRUE(a.tiered()->wait_coherent(10000));
  ASSERT_TRUE(b.tiered()->wait_coherent(10000));
  // A key on the primary that will die; WAIT so its replica has it.
  auto victim = owner_of(cm::cluster_slot("cachemeter:t:k"));
  std::string lk = "k";  // an L1 key on the same primary
  for (int i = 0; owner_of(cm::cluster_slot("cachemeter:l:" + lk)).second != victim.second; ++i)
    lk = "k" + std::to_string(i);
  ASSERT_EQ(a.set(lk, "1"), CM_OK);
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  RawConn vc(victim.second);
  // (The replica may still be in its first sync: WAIT in short rounds.)
  ASSERT_TRUE(wait_until([&] { return vc.run({"WAIT", "1", "1000"}) == ":1"; }, 30000));
  node_on(victim.second)->stop(SIGKILL);

  auto t0 = std::chrono::steady_clock::now();
  int64_t slowest = 0;
  int rc = -1;
  std::string v;
  while (cmrs::ms_since(t0) < 60000) {
    auto c0 = std::chrono::steady_clock::now();
    rc = h.get("k", &v);
    slowest = std::max<int64_t>(slowest, cmrs::ms_since(c0));
    if (rc == CM_OK) break;
    EXPECT_TRUE(rc == CM_EUNAVAILABLE || rc == CM_ETIMEOUT) << rc << " " << cm_errmsg();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(rc, CM_OK) << "no recovery within 60 s: " << cm_errmsg();
  EXPECT_EQ(v, "v");
  std::printf("cluster failover: calls recovered %lld ms after the SIGKILL; slowest failing call %lld ms\n",
              static_cast<long long>(cmrs::ms_since(t0)), static_cast<long long>(slowest));
  EXPECT_LT(slowest, 4 * (500 + 500));
  ASSERT_EQ(h.set("k", "w"), CM_OK);
  EXPECT_NE(owner_of(cm::cluster_slot("cachemeter:t:k")).second, victim.second);
  EXPECT_GE(redis(h)->primary_changes(), 1u);
  EXPECT_GE(r.metric("cachemeter_redis_failovers_total{cache=\"t\"}"), 1);
  // The failed calls are counted against the dead node.
  EXPECT_GE(r.metric("cachemeter_redis_node_errors_total{cache=\"t\",node=\"127.0.0.1:" +
                     std::to_string(victim.second) + "\",kind=\"connection\"}"),
            1);

  // The L1s re-subscribed on the promoted replica: A's write reaches B's L1
  // (a tiered write whose L2 part failed is absorbed: A writes until the
  // new owner has it).
  RawConn nc(owner_of(cm::cluster_slot("cachemeter:l:" + lk)).second);
  ASSERT_TRUE(wait_until([&] {
    return a.set(lk, "2") == CM_OK && nc.run({"GET", "cachemeter:l:" + lk}).substr(21) == "2";
  }, 30000)) << cm_errmsg();
  ASSERT_TRUE(b.tiered()->wait_coherent(30000));
  ASSERT_TRUE(wait_until([&] { return b.get(lk, &v) == CM_OK && v == "2" && b.get(lk, &v) == CM_OK; }, 10000));
  ASSERT_EQ(a.set(lk, "3"), CM_OK);
  ASSERT_TRUE(wait_until([&] { return b.get(lk, &v) == CM_OK && v == "3"; }, 5000)) << v;
}

TEST_F(RedisCluster, EveryPrimaryInvalidatesATieredCachesL1) {
  start_cluster(false);
  Reg r1, r2;
  Handle a, b;
  ASSERT_EQ(cm_cache_open_tiered(&a.c, r1.reg, "l", "memory://?max_entries=10000", uri().c_str()), CM_OK)
      << cm_errmsg();
  ASSERT_EQ(cm_cache_open_tiered(&b.c, r2.reg, "l", "memory://?max_entries=10000", uri().c_str()), CM_OK);
  ASSERT_TRUE(a.tiered()->wait_coherent(10000));
  ASSERT_TRUE(b.tiered()->wait_coherent(10000));
  // One key per primary.
  std::map<int, std::string> per_node;
  for (int i = 0; per_node.size() < 3 && i < 1000; ++i) {
    std::string k = "k" + std::to_string(i);
    per_node.emplace(owner_of(cm::cluster_slot("cachemeter:l:" + k)).second, k);
  }
  ASSERT_EQ(per_node.size(), 3u);
  std::string v;
  for (auto& [port, k] : per_node) {
    ASSERT_EQ(a.set(k, "1"), CM_OK);
    ASSERT_TRUE(wait_until([&] { return b.get(k, &v) == CM_OK && v == "1"; }));
    ASSERT_TRUE(wait_until([&] { return b.get(k, &v) == CM_OK && b.get(k, &v) == CM_OK; }));  // now in B's L1
    ASSERT_EQ(a.set(k, "2"), CM_OK);
    ASSERT_TRUE(wait_until([&] { return b.get(k, &v) == CM_OK && v == "2"; }, 5000))
        << "node " << port << " did not invalidate B's L1 copy of " << k;
  }
  EXPECT_GE(r2.metric("cachemeter_cache_invalidations_total{cache=\"l\",backend=\"tiered\"}"), 3);
}

// Every primary stopped (SIGSTOP: connections are accepted by the kernel,
// nothing answers): each call gives up within its budget, timeout_ms plus
// the one node contact under way, instead of paying a timeout for every
// node a map read asks before its own.
TEST_F(RedisCluster, CallsStayWithinTheirBudgetWhileEveryPrimaryHangs) {
  start_cluster(false);
  Reg r;
  Handle h;
  const int timeout_ms = 500, connect_ms = 200;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t",
                          uri("timeout_ms=" + std::to_string(timeout_ms) +
                              "&connect_timeout_ms=" + std::to_string(connect_ms) + "&breaker_failures=0")
                              .c_str()),
            CM_OK)
      << cm_errmsg();
  for (int i = 0; i < 30; ++i) ASSERT_EQ(h.set("k" + std::to_string(i), "v"), CM_OK);
  pause_all();
  int64_t slowest = 0;
  for (int i = 0; i < 6; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    int rc = h.get("k" + std::to_string(i));
    slowest = std::max<int64_t>(slowest, cmrs::ms_since(t0));
    EXPECT_EQ(rc, CM_ETIMEOUT) << cm_errmsg();
  }
  std::printf("every primary stopped: slowest call %lld ms (timeout_ms %d, connect_timeout_ms %d)\n",
              static_cast<long long>(slowest), timeout_ms, connect_ms);
  // Without the budget a call after the first read the map of three silent
  // nodes before its own: 4 x timeout_ms.
  EXPECT_LT(slowest, 2 * timeout_ms + connect_ms + 300);
  resume_all();
  std::string v;
  ASSERT_TRUE(wait_until([&] { return h.get("k7", &v) == CM_OK; }, 30000)) << cm_errmsg();
  EXPECT_EQ(v, "v");
}

// fork() while another thread is reading the slot map (every primary
// stopped, so the read hangs in CLUSTER SLOTS holding the map-read lock):
// the child must read the map itself, not wait forever on the lock it
// inherited held by a thread it does not have.
TEST_F(RedisCluster, AChildOfForkReadsTheMapWhileTheParentWasReadingIt) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "fork() of a threaded process: TSan does not follow it (the plain and ASan builds run this)";
#endif
  start_cluster(false);
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("timeout_ms=4000&breaker_failures=0").c_str()), CM_OK)
      << cm_errmsg();
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  pause_all();
  // clear() reads the map first (forced): it asks a stopped primary and
  // waits up to timeout_ms for each, holding the lock.
  std::thread reader([&] { cm_cache_clear(h.c); });
  bool sent = wait_until([&] {
    for (RedisServer* s : nodes_)
      if (has_unread_request(s->port())) return true;
    return false;
  }, 10000);
  if (!sent) {
    resume_all();
    reader.join();
    FAIL() << "the map read never reached a stopped primary";
  }
  int done[2];
  ASSERT_EQ(::pipe(done), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = -1;
    for (int i = 0; i < 5 && rc != CM_OK; ++i) rc = cm_cache_clear(h.c);  // reads the map, then SCANs
    // The parent's clear, resumed, would delete a key set before it ends.
    char byte = 0;
    if (rc == CM_OK && ::read(done[0], &byte, 1) != 1) ::_exit(3);
    if (rc == CM_OK) rc = cm_cache_set(h.c, "from-child", 10, "1", 1, -1);
    ::_exit(rc == CM_OK ? 0 : 10 + (rc < 0 ? -rc : rc));
  }
  resume_all();
  reader.join();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::write(done[1], "d", 1), 1);
  ::close(done[0]);
  ::close(done[1]);
  int rc = cmrs::reap_within(pid, 30000);
  ASSERT_NE(rc, -1) << "the child still waited after 30 s (on the map-read lock it inherited?)";
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(h.get("from-child"), CM_OK);  // the child's calls reached the cluster
}

// ---- Across processes: CM_CLUSTER_CHILD carries the URI to a child run of
// this binary (posix_spawn of /proc/self/exe), which runs ChildWrites.

const char* child_uri() { return std::getenv("CM_CLUSTER_CHILD"); }

// A plain cache on the same cluster carries the two processes' handshake:
// "go" = the round the parent wants written, "done" = the round written.
// Every step retries within a bound: the last round runs after a primary's
// failover, when the first call to a slot may still meet the dead node.
TEST_F(RedisCluster, ChildWrites) {
  if (!child_uri()) GTEST_SKIP() << "run by TwoProcessesKeepL1sCoherentOnEveryPrimary";
  Reg r, r2;
  Handle h, ctl, plain;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "x", "memory://", child_uri()), CM_OK) << cm_errmsg();
  ASSERT_EQ(cm_cache_open(&ctl.c, r.reg, "ctl", child_uri()), CM_OK) << cm_errmsg();
  ASSERT_EQ(cm_cache_open(&plain.c, r2.reg, "x", child_uri()), CM_OK) << cm_errmsg();  // reads L2 only
  for (int round = 0; round < 4; ++round) {
    const std::string tag = std::to_string(round), value = "child-" + tag;
    std::string k, v;
    ASSERT_TRUE(wait_until([&] { return ctl.get("go", &v) == CM_OK && v == tag; }, 60000)) << round;
    ASSERT_TRUE(wait_until([&] { return ctl.get("key", &k) == CM_OK; }, 30000)) << round;
    // (A tiered write whose L2 part failed is absorbed: check Redis has it.)
    ASSERT_TRUE(wait_until([&] { return h.set(k, value) == CM_OK && plain.get(k, &v) == CM_OK && v == value; },
                           30000))
        << round << ": " << cm_errmsg();
    ASSERT_TRUE(wait_until([&] { return ctl.set("done", tag) == CM_OK; }, 30000)) << round;
  }
}

TEST_F(RedisCluster, TwoProcessesKeepL1sCoherentOnEveryPrimary) {
  if (child_uri()) GTEST_SKIP();
  start_cluster(true);
  Reg r, r2;
  Handle h, ctl, plain;
  ASSERT_EQ(cm_cache_open_tiered(&h.c, r.reg, "x", "memory://", uri("timeout_ms=500").c_str()), CM_OK)
      << cm_errmsg();
  ASSERT_EQ(cm_cache_open(&ctl.c, r.reg, "ctl", uri("timeout_ms=500").c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open(&plain.c, r2.reg, "x", uri("timeout_ms=500").c_str()), CM_OK);
  ASSERT_TRUE(h.tiered()->wait_coherent(10000));
  std::map<int, std::string> per_node;  // a key on each primary
  for (int i = 0; per_node.size() < 3 && i < 1000; ++i) {
    std::string k = "k" + std::to_string(i);
    per_node.emplace(owner_of(cm::cluster_slot("cachemeter:x:" + k)).second, k);
  }
  ASSERT_EQ(per_node.size(), 3u);

  pid_t pid = cmrc::spawn_self("RedisCluster.ChildWrites", "CM_CLUSTER_CHILD", uri("timeout_ms=500"));
  ASSERT_GT(pid, 0);
  struct Reap {
    pid_t& pid;
    ~Reap() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reap{pid};

  // One round: our L1 holds our value (an L1 hit), the child overwrites the
  // key, and the write must reach our L1 within 5 s of the child's "done".
  int round = 0;
  auto round_trip = [&](const std::string& k, const std::string& where) {
    const std::string tag = std::to_string(round++), ours = "parent-" + tag;
    std::string got;
    ASSERT_TRUE(wait_until([&] { return h.set(k, ours) == CM_OK && plain.get(k, &got) == CM_OK && got == ours; },
                           30000))
        << where << ": " << cm_errmsg();
    ASSERT_TRUE(h.tiered()->wait_coherent(30000)) << where;
    ASSERT_TRUE(wait_until([&] {
      double l1 = r.metric("cachemeter_cache_tier_hits_total{cache=\"x\",backend=\"memory\",tier=\"l1\"}");
      return h.get(k, &got) == CM_OK && h.get(k, &got) == CM_OK &&
             r.metric("cachemeter_cache_tier_hits_total{cache=\"x\",backend=\"memory\",tier=\"l1\"}") > l1;
    }, 30000)) << where;
    ASSERT_EQ(got, ours) << where;
    ASSERT_TRUE(wait_until([&] { return ctl.set("key", k) == CM_OK && ctl.set("go", tag) == CM_OK; }, 30000));
    ASSERT_TRUE(wait_until([&] { return ctl.get("done", &got) == CM_OK && got == tag; }, 60000)) << where;
    ASSERT_TRUE(wait_until([&] { return h.get(k, &got) == CM_OK && got == "child-" + tag; }, 5000))
        << where << ": the other process's write did not reach this L1: " << got;
  };
  for (auto& [port, k] : per_node) {
    round_trip(k, "node " + std::to_string(port));
    if (HasFatalFailure()) return;
  }

  // A primary (not the one owner_of asks) killed: once its replica is
  // promoted, both processes' L1 listeners follow it.
  int victim = 0;
  for (auto& [port, k] : per_node)
    if (port != nodes_[0]->port()) victim = port;
  ASSERT_NE(victim, 0);
  node_on(victim)->stop(SIGKILL);
  round_trip(per_node[victim], "after the failover of node " + std::to_string(victim));
  if (HasFatalFailure()) return;
  EXPECT_NE(owner_of(cm::cluster_slot("cachemeter:x:" + per_node[victim])).second, victim);

  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  pid = -1;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST_F(RedisCluster, ReplicaReadsGoToReplicasAndFallBackToThePrimary) {
  start_cluster(true);
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("read_from=replica&timeout_ms=500&connect_timeout_ms=500").c_str()),
            CM_OK)
      << cm_errmsg();
  // Without a change feed (replicas lag the invalidations), a tiered cache
  // in front of it bounds its L1 by ttl_ms.
  EXPECT_EQ(redis(h)->change_feed(), nullptr);
  Handle tiered, coherent;
  ASSERT_EQ(cm_cache_open_tiered(&tiered.c, r.reg, "l", "memory://", uri("read_from=replica").c_str()), CM_OK);
  EXPECT_EQ(tiered.tiered()->options().l1_ttl_ms, 1000);
  ASSERT_EQ(cm_cache_open_tiered(&coherent.c, r.reg, "m", "memory://", uri().c_str()), CM_OK);
  EXPECT_EQ(coherent.tiered()->options().l1_ttl_ms, 0);  // the primaries' invalidations keep it
  const int n = 300;
  for (int i = 0; i < n; ++i) ASSERT_EQ(h.set("k" + std::to_string(i), "v" + std::to_string(i)), CM_OK);
  std::vector<int> primaries, replicas;
  for (RedisServer* s : nodes_) {
    RawConn c(s->port());
    auto* role = static_cast<redisReply*>(redisCommand(c.c, "ROLE"));
    ASSERT_TRUE(role && role->type == REDIS_REPLY_ARRAY && role->elements > 0);
    (std::string(role->element[0]->str) == "master" ? primaries : replicas).push_back(s->port());
    freeReplyObject(role);
    // Every replica has every write before the reads start (WAIT on the
    // primaries; replication is asynchronous otherwise).
    if (!primaries.empty() && primaries.back() == s->port()) {
      ASSERT_TRUE(wait_until([&] { return c.run({"WAIT", "1", "1000"}) == ":1"; }, 30000));
    }
  }
  ASSERT_EQ(primaries.size(), 3u);
  ASSERT_EQ(replicas.size(), 3u);
  for (RedisServer* s : nodes_) ASSERT_EQ(RawConn(s->port()).run({"CONFIG", "RESETSTAT"}), "+OK");
  std::string v;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK) << cm_errmsg();
    ASSERT_EQ(v, "v" + std::to_string(i));
  }
  long on_replicas = 0;
  for (int p : primaries) EXPECT_EQ(gets_served(p), 0) << "primary " << p << " served reads";
  for (int p : replicas) {
    EXPECT_GT(gets_served(p), 0) << "replica " << p << " served no read";
    on_replicas += gets_served(p);
  }
  EXPECT_EQ(on_replicas, n);
  // Writes still go to the primaries: a replica would answer MOVED.
  ASSERT_EQ(h.set("k0", "w"), CM_OK) << cm_errmsg();

  // A replica killed: every read still answers, from its primary, and the
  // failed calls are counted against the replica.
  RedisServer* dead = node_on(replicas[0]);
  dead->stop(SIGKILL);
  for (RedisServer* s : nodes_) {
    if (s != dead) {
      ASSERT_EQ(RawConn(s->port()).run({"CONFIG", "RESETSTAT"}), "+OK");
    }
  }
  for (int i = 1; i < n; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK) << i << ": " << cm_errmsg();
    ASSERT_EQ(v, "v" + std::to_string(i));
  }
  long on_primaries = 0;
  for (int p : primaries) on_primaries += gets_served(p);
  EXPECT_GT(on_primaries, 0);
  EXPECT_GE(r.metric("cachemeter_redis_node_errors_total{cache=\"t\",node=\"127.0.0.1:" +
                     std::to_string(replicas[0]) + "\",kind=\"connection\"}"),
            1);
  EXPECT_LE(r.metric("cachemeter_cache_errors_total{cache=\"t\",backend=\"redis\",op=\"get\",kind=\"connection\"}"),
            0);  // none: the reads did not fail
}

}  // namespace
