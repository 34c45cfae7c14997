// SPDX-License-Identifier: Apache-2.0
// redis+sentinel:// caches against a real group started by the test on free
// 127.0.0.1 ports: 1 master, 1 replica, 3 sentinels (quorum 2). The master is
// killed with SIGKILL; calls must recover on the promoted replica, read back
// what was replicated before the kill, and a tiered cache's L1 must follow
// the new master's invalidations. Bad URIs and unreachable or wrong
// sentinels must fail at open with a clear status and message.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis.h"
#include "backends/redis_sentinel.h"
#include "redis_cache_util.h"
#include "redis_server.h"

namespace {

using cmrc::Handle;
using cmrc::Reg;
using cmrs::RawConn;
using cmrs::RedisServer;
using cmrs::gets_served;
using cmrs::wait_until;

// The sum of the samples of r whose line starts with prefix and contains
// also (0 if none).
double sum_of(Reg& r, const std::string& prefix, const std::string& also = "") {
  char* out = nullptr;
  size_t len = 0;
  EXPECT_EQ(cm_registry_render(r.reg, CM_FORMAT_PROMETHEUS, &out, &len), CM_OK);
  std::string text(out, len);
  cm_free(out);
  double sum = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0 && line.find(also) != std::string::npos) sum += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    at = end + 1;
  }
  return sum;
}

// One RESP bulk string.
std::string bulk(const std::string& t) { return "$" + std::to_string(t.size()) + "\r\n" + t + "\r\n"; }

// Reads resp (one whole RESP reply) with hiredis's reader, as a connection
// would, and returns take(reply); false and a test failure when it is not.
template <class Take>
bool with_reply(const std::string& resp, Take&& take) {
  redisReader* rd = redisReaderCreate();
  EXPECT_EQ(redisReaderFeed(rd, resp.data(), resp.size()), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(rd, &reply), REDIS_OK);
  redisReaderFree(rd);
  if (!reply) {
    ADD_FAILURE() << "incomplete RESP in the test: " << resp;
    return false;
  }
  bool ok = take(*static_cast<redisReply*>(reply));
  freeReplyObject(reply);
  return ok;
}

class RedisSentinel : public cmrs::RedisFixture {
 protected:
  // The group: a master, its replica (replicating), and three sentinels;
  // for a failover, they must know the replica and one another (so that two
  // can elect a leader), which takes a few of their 2 s hello periods.
  void start_group(bool for_failover = true) {
    master_ = &server();
    replica_ = &server({"--replicaof", "127.0.0.1", std::to_string(master_->port())});
    ASSERT_TRUE(wait_until([&] {
      RawConn c(replica_->port());
      return c.ok() && c.run({"INFO", "replication"}).find("master_link_status:up") != std::string::npos;
    }, 30000)) << "the replica did not sync";
    for (int i = 0; i < 3; ++i) sentinels_.push_back(&sentinel("mym", master_->port()));
    if (!for_failover) return;
    for (RedisServer* s : sentinels_)
      ASSERT_TRUE(wait_until([&] {
        RawConn c(s->port());
        return c.ok() && c.run({"SENTINEL", "REPLICAS", "mym"}) == "*1" &&
               c.run({"SENTINEL", "SENTINELS", "mym"}) == "*2";
      }, 30000)) << "sentinel " << s->port() << " did not discover its peers";
  }
  std::string uri(const std::string& query = "") const {
    std::string u = "redis+sentinel://";
    for (size_t i = 0; i < sentinels_.size(); ++i)
      u += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(sentinels_[i]->port());
    return u + "/mym" + (query.empty() ? "" : "?" + query);
  }
  // The port the sentinels name as the master now (0 if they disagree or fail).
  int named_master() {
    int port = 0;
    for (RedisServer* s : sentinels_) {
      RawConn c(s->port());
      if (!c.ok()) return 0;
      auto* r = static_cast<redisReply*>(redisCommand(c.c, "SENTINEL GET-MASTER-ADDR-BY-NAME mym"));
      int p = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? std::atoi(r->element[1]->str) : 0;
      if (r) freeReplyObject(r);
      if (p == 0 || (port != 0 && p != port)) return 0;
      port = p;
    }
    return port;
  }

  RedisServer* master_ = nullptr;
  RedisServer* replica_ = nullptr;
  std::vector<RedisServer*> sentinels_;
};

// A sentinel's answer to GET-MASTER-ADDR-BY-NAME is dialled and named in
// messages: only [host, port] strings with a clean host and a port in range
// pass; a refusal says why without quoting a control byte.
TEST(RedisSentinelReplies, MasterAddressIsCheckedBeforeItIsDialled) {
  auto parse = [](const std::string& resp, cm::HostPort* out, std::string* why) {
    return with_reply(resp, [&](const redisReply& r) { return cm::parse_master_address(r, out, why); });
  };
  auto addr = [](const std::string& host, const std::string& port) { return "*2\r\n" + bulk(host) + bulk(port); };
  cm::HostPort hp;
  std::string why;
  ASSERT_TRUE(parse(addr("10.0.0.7", "6380"), &hp, &why)) << why;
  EXPECT_EQ(hp.host, "10.0.0.7");
  EXPECT_EQ(hp.port, 6380);
  ASSERT_TRUE(parse(addr("::1", "65535"), &hp, &why)) << why;
  EXPECT_EQ(hp.text(), "[::1]:65535");
  ASSERT_TRUE(parse(addr(std::string(255, 'h'), "1"), &hp, &why)) << why;

  const std::vector<std::string> refused = {
      "$-1\r\n",                              // nil: no such master (the caller tells it apart)
      "*1\r\n$1\r\na\r\n",                    // one element
      "*2\r\n:1\r\n$1\r\n1\r\n",              // an integer host
      addr("", "6379"),                        // empty host
      addr(std::string(256, 'h'), "6379"),     // too long
      addr("a b", "6379"),                     // a space
      addr(std::string("a\0b", 3), "6379"),    // a NUL
      addr("a\r\nQUIT", "6379"),               // control bytes
      addr("a\x7f", "6379"),                   // DEL
      addr("a,b", "6379"),  addr("a/b", "6379"),  // list and path separators
      addr("h", "0"),       addr("h", "65536"), addr("h", "-1"), addr("h", "+80"),
      addr("h", " 80"),     addr("h", "80x"),   addr("h", ""),   addr("h", "0000080"),
      addr("h", std::string("8\x01", 2)),
  };
  for (const std::string& r : refused) {
    why.clear();
    EXPECT_FALSE(parse(r, &hp, &why)) << r;
    EXPECT_FALSE(why.empty()) << r;
    for (char ch : why) EXPECT_FALSE(static_cast<unsigned char>(ch) < ' ' || ch == '\x7f') << why;
  }
}

// What SENTINEL REPLICAS lists: only replicas up and linked are used for
// reads; a malformed answer is refused whole.
TEST(RedisSentinelReplies, ReplicaListKeepsOnlyUsableReplicas) {
  auto entry = [&](const std::vector<std::string>& fields) {
    std::string e = "*" + std::to_string(fields.size()) + "\r\n";
    for (const std::string& f : fields) e += bulk(f);
    return e;
  };
  auto replica = [&](const std::string& ip, const std::string& port, const std::string& flags, const std::string& link) {
    return entry({"name", ip + ":" + port, "ip", ip, "port", port, "runid", "x", "flags", flags, "master-link-status",
                  link, "slave-priority", "100"});
  };
  auto parse = [](const std::string& resp, std::vector<cm::HostPort>* out, std::string* why) {
    return with_reply(resp, [&](const redisReply& r) { return cm::parse_replica_list(r, out, why); });
  };
  std::vector<cm::HostPort> got;
  std::string why;
  ASSERT_TRUE(parse("*6\r\n" + replica("127.0.0.1", "6380", "slave", "ok") + replica("10.0.0.2", "6381", "s_down,slave", "err") +
                        replica("10.0.0.3", "6382", "slave,disconnected", "ok") + replica("10.0.0.4", "6383", "slave", "err") +
                        replica("127.0.0.1", "6380", "slave", "ok") + replica("::1", "6384", "slave", "ok"),
                    &got, &why))
      << why;
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text(), "127.0.0.1:6380");
  EXPECT_EQ(got[1].text(), "[::1]:6384");
  ASSERT_TRUE(parse("*0\r\n", &got, &why)) << why;  // no replica: reads go to the master
  EXPECT_TRUE(got.empty());

  const std::vector<std::string> refused = {
      "$-1\r\n",
      ":3\r\n",
      "*1\r\n:1\r\n",                                                      // an entry that is no array
      "*1\r\n" + entry({"ip", "h", "port"}),                                // odd field count
      "*1\r\n" + entry({"ip", "h", "flags", "slave"}),                      // no port
      "*1\r\n" + entry({"port", "1", "flags", "slave"}),                    // no ip
      "*1\r\n" + entry({"ip", "h", "port", "1"}),                           // no flags
      "*1\r\n" + replica("a b", "6379", "slave", "ok"),                     // a bad host
      "*1\r\n" + replica(std::string("a\0", 2), "6379", "slave", "ok"),    // a NUL
      "*1\r\n" + replica("h", "70000", "slave", "ok"),                      // a bad port
      "*2\r\n" + replica("h", "1", "slave", "ok") + replica("h", "x", "s_down,slave", "err"),  // one bad entry
      "*1\r\n*2\r\n:1\r\n$1\r\nx\r\n",                                    // an integer field
  };
  for (const std::string& r : refused) {
    why.clear();
    got = {cm::HostPort{"left", 1}};
    EXPECT_FALSE(parse(r, &got, &why)) << r;
    EXPECT_TRUE(got.empty()) << r;
    EXPECT_FALSE(why.empty()) << r;
    for (char ch : why) EXPECT_FALSE(static_cast<unsigned char>(ch) < ' ' || ch == '\x7f') << why;
  }
}

TEST_F(RedisSentinel, ReadsAndWritesTheMasterTheSentinelsName) {
  start_group(false);
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri().c_str()), CM_OK) << cm_errmsg();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(h.set("k" + std::to_string(i), "v" + std::to_string(i)), CM_OK);
  std::string v;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK);
    EXPECT_EQ(v, "v" + std::to_string(i));
  }
  // On the master itself, under the cache's prefix, behind the header.
  RawConn m(master_->port());
  EXPECT_EQ(m.run({"GET", "cachemeter:t:k7"}).substr(21), "v7");
  EXPECT_EQ(h.c->backend->health(), CM_OK);
  EXPECT_EQ(r.metric("cachemeter_cache_entries{cache=\"t\",backend=\"redis\"}"), 100);
  EXPECT_EQ(r.metric("cachemeter_cache_errors_total{cache=\"t\",backend=\"redis\",kind=\"connection\"}"), -1);
  EXPECT_EQ(sum_of(r, "cachemeter_redis_node_errors_total{"), 0);
}

TEST_F(RedisSentinel, RecoversOnThePromotedReplicaWithReplicatedDataAndACoherentL1) {
  start_group();
  const std::string q = "timeout_ms=500&connect_timeout_ms=500";
  Reg r1, r2;
  Handle plain, a, b;
  ASSERT_EQ(cm_cache_open(&plain.c, r1.reg, "t", uri(q).c_str()), CM_OK) << cm_errmsg();
  ASSERT_EQ(cm_cache_open_tiered(&a.c, r1.reg, "l", "memory://?max_entries=1000", uri(q).c_str()), CM_OK);
  ASSERT_EQ(cm_cache_open_tiered(&b.c, r2.reg, "l", "memory://?max_entries=1000", uri(q).c_str()), CM_OK);
  ASSERT_TRUE(a.tiered()->wait_coherent(10000));
  ASSERT_TRUE(b.tiered()->wait_coherent(10000));

  const int n = 200;
  for (int i = 0; i < n; ++i) ASSERT_EQ(plain.set("k" + std::to_string(i), "v" + std::to_string(i)), CM_OK);
  // B holds k in its L1; A's write must reach it through the invalidation.
  ASSERT_EQ(a.set("k", "1"), CM_OK);
  std::string v;
  ASSERT_TRUE(wait_until([&] { return b.get("k", &v) == CM_OK && v == "1"; }));
  ASSERT_EQ(a.set("k", "2"), CM_OK);
  ASSERT_TRUE(wait_until([&] { return b.get("k", &v) == CM_OK && v == "2"; }, 5000)) << v;

  // Redis replicates asynchronously: what the master acknowledged may be
  // lost in a failover. WAIT makes sure the replica has it all first.
  RawConn m(master_->port());
  ASSERT_EQ(m.run({"WAIT", "1", "10000"}), ":1");
  const int old_master = master_->port();
  master_->stop(SIGKILL);

  // Until the sentinels promote the replica, calls fail fast and by kind.
  auto t0 = std::chrono::steady_clock::now();
  std::set<int> statuses;
  int64_t slowest_ms = 0;
  int rc = -1, failed = 0;
  while (cmrs::ms_since(t0) < 60000) {
    auto c0 = std::chrono::steady_clock::now();
    rc = plain.get("k0", &v);
    slowest_ms = std::max<int64_t>(slowest_ms, cmrs::ms_since(c0));
    if (rc == CM_OK) break;
    ++failed;
    statuses.insert(rc);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t recovered_ms = cmrs::ms_since(t0);
  ASSERT_EQ(rc, CM_OK) << "no recovery within 60 s: " << cm_errmsg();
  std::printf("sentinel failover: calls recovered %lld ms after the SIGKILL; slowest failing call %lld ms\n",
              static_cast<long long>(recovered_ms), static_cast<long long>(slowest_ms));
  for (int s : statuses) EXPECT_TRUE(s == CM_EUNAVAILABLE || s == CM_ETIMEOUT) << s;
  // Each call is bounded: one sentinel query + one connect attempt (the
  // dead master refuses at once), well under these timeouts.
  EXPECT_LT(slowest_ms, 3 * (500 + 500));
  // The leader switched first; the others follow within a hello period.
  EXPECT_TRUE(wait_until([&] { return named_master() == replica_->port(); }, 30000));
  EXPECT_NE(replica_->port(), old_master);

  // Everything replicated before the kill is read back from the new master.
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(plain.get("k" + std::to_string(i), &v), CM_OK) << i << ": " << cm_errmsg();
    EXPECT_EQ(v, "v" + std::to_string(i));
  }
  ASSERT_EQ(plain.set("after", "x"), CM_OK);
  EXPECT_EQ(r1.metric("cachemeter_redis_failovers_total{cache=\"t\"}"), 1);
  EXPECT_EQ(r1.metric("cachemeter_redis_redirects_total{cache=\"t\",kind=\"moved\"}"), 0);
  // The failed calls count against the node each reached: the killed master
  // first of all (its pooled connection, then the sentinels naming it until
  // they switch); a call that reached no node is not counted there.
  const double at_old =
      sum_of(r1, "cachemeter_redis_node_errors_total{cache=\"t\",node=\"127.0.0.1:" + std::to_string(old_master) + "\"");
  const double refused = sum_of(r1, "cachemeter_cache_errors_total{cache=\"t\",", "kind=\"circuit_open\"");
  EXPECT_GE(at_old, 1);
  EXPECT_LE(sum_of(r1, "cachemeter_redis_node_errors_total{cache=\"t\",") + refused, failed);
  std::printf("sentinel failover: %d failed calls, %.0f refused by the circuit breaker, %.0f counted against the "
              "old master\n",
              failed, refused, at_old);
  RawConn nm(replica_->port());
  EXPECT_EQ(nm.run({"GET", "cachemeter:t:after"}).substr(21), "x");

  // The L1s re-subscribed on the new master (after flushing): A's write
  // still reaches B's L1. (A tiered write that fails in L2 is absorbed and
  // counted, so A writes until its L2's stale connections are gone.)
  ASSERT_TRUE(a.tiered()->wait_coherent(30000));
  ASSERT_TRUE(b.tiered()->wait_coherent(30000));
  ASSERT_TRUE(wait_until([&] {
    return a.set("k", "3") == CM_OK && nm.run({"GET", "cachemeter:l:k"}).substr(21) == "3";
  }, 30000)) << cm_errmsg();
  ASSERT_TRUE(wait_until([&] { return b.get("k", &v) == CM_OK && v == "3"; }, 5000)) << v;
  ASSERT_EQ(a.set("k", "4"), CM_OK);
  ASSERT_TRUE(wait_until([&] { return b.get("k", &v) == CM_OK && v == "4"; }, 5000)) << v;
  EXPECT_GE(r2.metric("cachemeter_cache_l1_flushes_total{cache=\"l\",backend=\"tiered\"}"), 2);
}

// read_from=replica: gets go to the replica the sentinels list; writes,
// counts and the lock stay on the master; a killed replica hands the reads
// back to the master without an operation error, its failures counted
// against it; no change feed (replicas lag the invalidations).
TEST_F(RedisSentinel, ReplicaReadsGoToTheListedReplicaAndFallBackToTheMaster) {
  start_group();
  if (HasFatalFailure()) return;
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("read_from=replica&timeout_ms=500&connect_timeout_ms=500").c_str()),
            CM_OK)
      << cm_errmsg();
  EXPECT_EQ(h.c->backend->change_feed(), nullptr);
  Handle tiered;
  ASSERT_EQ(cm_cache_open_tiered(&tiered.c, r.reg, "l", "memory://", uri("read_from=replica").c_str()), CM_OK);
  EXPECT_EQ(tiered.tiered()->options().l1_ttl_ms, 1000);

  const int n = 200;
  for (int i = 0; i < n; ++i) ASSERT_EQ(h.set("k" + std::to_string(i), "v" + std::to_string(i)), CM_OK);
  RawConn m(master_->port());
  ASSERT_EQ(m.run({"WAIT", "1", "10000"}), ":1");
  // The sentinels list the replica as usable once they saw it linked (they
  // ask it INFO every 10 s): wait until a read reaches it.
  std::string v;
  ASSERT_TRUE(wait_until([&] {
    long before = gets_served(replica_->port());
    return h.get("k0", &v) == CM_OK && gets_served(replica_->port()) > before;
  }, 30000)) << "no read reached the replica";
  ASSERT_EQ(m.run({"CONFIG", "RESETSTAT"}), "+OK");
  ASSERT_EQ(RawConn(replica_->port()).run({"CONFIG", "RESETSTAT"}), "+OK");
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK) << cm_errmsg();
    ASSERT_EQ(v, "v" + std::to_string(i));
  }
  EXPECT_EQ(gets_served(replica_->port()), n);
  EXPECT_EQ(gets_served(master_->port()), 0);
  ASSERT_EQ(h.set("k0", "w"), CM_OK) << cm_errmsg();  // a replica would refuse it (READONLY)
  EXPECT_EQ(m.run({"GET", "cachemeter:t:k0"}).substr(21), "w");

  // The replica killed: every read answers from the master, none fails.
  const int dead = replica_->port();
  replica_->stop(SIGKILL);
  ASSERT_EQ(m.run({"CONFIG", "RESETSTAT"}), "+OK");
  for (int i = 1; i < n; ++i) {
    ASSERT_EQ(h.get("k" + std::to_string(i), &v), CM_OK) << i << ": " << cm_errmsg();
    ASSERT_EQ(v, "v" + std::to_string(i));
  }
  EXPECT_EQ(gets_served(master_->port()), n - 1);
  EXPECT_GE(sum_of(r, "cachemeter_redis_node_errors_total{cache=\"t\",node=\"127.0.0.1:" + std::to_string(dead) + "\""),
            1);
  EXPECT_EQ(sum_of(r, "cachemeter_cache_errors_total{cache=\"t\","), 0);  // the reads did not fail
}

// fork() while another thread lists the replicas (every sentinel stopped,
// so the listing hangs holding the listing lock): the child must list them
// itself when due, not skip listing for ever on a lock it inherited held by
// a thread it does not have.
TEST_F(RedisSentinel, AChildOfForkListsTheReplicasWhileTheParentWasListingThem) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "fork() of a threaded process: TSan does not follow it (the plain and ASan builds run this)";
#endif
  start_group();
  if (HasFatalFailure()) return;
  Reg r;
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", uri("read_from=replica&timeout_ms=4000&breaker_failures=0").c_str()),
            CM_OK)
      << cm_errmsg();
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  RawConn m(master_->port());
  ASSERT_EQ(m.run({"WAIT", "1", "10000"}), ":1");
  // Stopped sentinels accept connections and never answer.
  cmrs::Paused sentinels;
  sentinels.stop(sentinels_);
  // The first get lists the replicas: it asks a stopped sentinel, holding
  // the listing lock for up to timeout_ms per sentinel.
  std::thread reader([&] { h.get("k"); });
  bool sent = wait_until([&] {
    for (RedisServer* s : sentinels_)
      if (cmrs::has_unread_request(s->port())) return true;
    return false;
  }, 10000);
  if (!sent) {
    sentinels.resume();
    reader.join();
    FAIL() << "the listing never reached a stopped sentinel";
  }
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const int replica = replica_->port();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Once the parent's reader is done (so only this process reads), get
    // until a read is served by the replica: the listing is due again 5 s
    // after the parent's began.
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(3);
    bool on_replica = false, right = true;
    wait_until([&] {
      long before = gets_served(replica);
      std::string v;
      right = h.get("k", &v) == CM_OK && v == "v";
      on_replica = right && gets_served(replica) > before;
      return on_replica || !right;
    }, 30000);
    ::_exit(!right ? 2 : on_replica ? 0 : 1);
  }
  sentinels.resume();
  reader.join();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[0]);
  ::close(go[1]);
  int rc = cmrs::reap_within(pid, 60000);
  ASSERT_NE(rc, -1) << "the child still ran after 60 s";
  EXPECT_NE(rc, 1) << "the child never read from the replica (the listing lock it inherited?)";
  EXPECT_EQ(rc, 0);
}

TEST_F(RedisSentinel, BadUrisAndUnreachableOrWrongSentinelsFailAtOpen) {
  Reg r;
  auto open = [&](const std::string& u) { return cmrc::open_status(r.reg, u); };
  auto says = [](const std::string& what) { return cmrc::errmsg_has(what); };
  EXPECT_EQ(open("redis+sentinel:///mym"), CM_EINVAL);
  EXPECT_TRUE(says("at least one sentinel")) << cm_errmsg();
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:26379"), CM_EINVAL);
  EXPECT_TRUE(says("master's name")) << cm_errmsg();
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:1,,127.0.0.1:2/mym"), CM_EINVAL);
  EXPECT_TRUE(says("empty entry")) << cm_errmsg();
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:0/mym"), CM_EINVAL);
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:1/mym?sentinel_user=u"), CM_EINVAL);
  EXPECT_EQ(open("redis://127.0.0.1:1/0?sentinel_password=p"), CM_EINVAL);
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:1/mym?read_from=nearest"), CM_EINVAL);
  EXPECT_TRUE(says("read_from= is primary or replica")) << cm_errmsg();

  // Nothing listens: every sentinel is named in the message.
  int p1 = cmrs::free_port(), p2 = cmrs::free_port();
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:" + std::to_string(p1) + ",127.0.0.1:" + std::to_string(p2) + "/mym"),
            CM_EUNAVAILABLE);
  EXPECT_TRUE(says(("127.0.0.1:" + std::to_string(p1) + ": cannot connect").c_str())) << cm_errmsg();
  EXPECT_TRUE(says(("127.0.0.1:" + std::to_string(p2) + ": cannot connect").c_str())) << cm_errmsg();

  // A plain Redis behind the sentinel URI.
  RedisServer& plain = server();
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:" + std::to_string(plain.port()) + "/mym"), CM_EUNAVAILABLE);
  EXPECT_TRUE(says("SENTINEL")) << cm_errmsg();

  // A sentinel that knows no such master: the URI's mistake.
  RedisServer& s = sentinel("mym", plain.port());
  const std::string at = "redis+sentinel://127.0.0.1:" + std::to_string(s.port());
  EXPECT_EQ(open(at + "/other"), CM_EINVAL);
  EXPECT_TRUE(says("knows no master named \"other\"")) << cm_errmsg();
  EXPECT_EQ(open(at + "/mym"), CM_OK) << cm_errmsg();
  // A sentinel that names a replica (it has not noticed a failover yet) is
  // not trusted: the server's ROLE must be master.
  RedisServer& replica = server({"--replicaof", "127.0.0.1", std::to_string(plain.port())});
  RedisServer& wrong = sentinel("rep", replica.port());
  EXPECT_EQ(open("redis+sentinel://127.0.0.1:" + std::to_string(wrong.port()) + "/rep"), CM_EUNAVAILABLE);
  EXPECT_TRUE(says("not master")) << cm_errmsg();
}

TEST_F(RedisSentinel, SentinelPasswordIsSentToTheSentinelsOnly) {
  RedisServer& m = server({"--requirepass", "data"});
  // The sentinel needs the master's password to monitor it, and has one of its own.
  RedisServer& s = sentinel("mym", m.port(), 500, "sentinel auth-pass mym data\nrequirepass guard\n");
  Reg r;
  cm_cache* c = nullptr;
  const std::string base = "redis+sentinel://127.0.0.1:" + std::to_string(s.port()) + "/mym?password=data";
  EXPECT_EQ(cm_cache_open(&c, r.reg, "t", base.c_str()), CM_EUNAVAILABLE);
  EXPECT_NE(std::string(cm_errmsg()).find("sentinel_password"), std::string::npos) << cm_errmsg();
  EXPECT_EQ(cm_cache_open(&c, r.reg, "t", (base + "&sentinel_password=nope").c_str()), CM_EUNAVAILABLE);
  EXPECT_EQ(std::string(cm_errmsg()).find("nope"), std::string::npos) << "a password in a message: " << cm_errmsg();
  Handle h;
  ASSERT_EQ(cm_cache_open(&h.c, r.reg, "t", (base + "&sentinel_password=guard").c_str()), CM_OK) << cm_errmsg();
  ASSERT_EQ(h.set("k", "v"), CM_OK);
  std::string v;
  ASSERT_EQ(h.get("k", &v), CM_OK);
  EXPECT_EQ(v, "v");
}

}  // namespace
