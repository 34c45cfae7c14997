// SPDX-License-Identifier: Apache-2.0
// The redis backend against a real redis-server the fixture starts on a free
// port of 127.0.0.1 (no persistence, a temporary directory): real-time
// expiry, prefixes, sharing, AUTH, unix sockets, and every failure as a
// status (refused, a server that never answers, a server killed and
// restarted). The Backend contract itself: backend_contract.h.
#include <gtest/gtest.h>

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "backend_test_util.h"
#include "backends/redis.h"
#include "redis_server.h"
#include "util/uri.h"

namespace {

using cm::Expiry;
using cmbt::get;
using cmbt::kT0;
using cmbt::set;
using cmbt::status_of;

using cmrs::free_port;
using cmrs::kRedisServer;
using cmrs::ms_since;
using cmrs::RedisServer;

class RedisBackendTest : public cmrs::RedisFixture {
 protected:
  static std::unique_ptr<cm::Backend> open(const std::string& uri) {
    return cm::make_backend(cm::Uri::parse(uri.c_str()), nullptr);
  }
  static std::string url(int port, const std::string& query = "") {
    return "redis://127.0.0.1:" + std::to_string(port) + "/0" + (query.empty() ? "" : "?" + query);
  }
  static int open_status(const std::string& uri, std::string* what = nullptr) {
    return status_of([&] { open(uri); }, what);
  }
};



// The contract's TTL checks run in backend_contract.h; what is redis's own:
// the server drops a key at keep_until in real time (PXAT), and an entry
// already past keep_until when set is not stored at all.
TEST_F(RedisBackendTest, ServerDropsKeysAtKeepUntilInRealTime) {
  auto& s = server();
  auto b = open(url(s.port(), "prefix=t:"));
  set(*b, "short", "v", kT0, Expiry{kT0 + 50, kT0 + 50});
  auto t0 = std::chrono::steady_clock::now();
  while (get(*b, "short", kT0) && ms_since(t0) < 5000) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(get(*b, "short", kT0), std::nullopt);
  set(*b, "past", "v", kT0 + 10, Expiry{kT0 - 1000, kT0 - 1000});
  EXPECT_EQ(get(*b, "past", kT0 - 2000), std::nullopt);
}

TEST_F(RedisBackendTest, ClearTouchesOnlyItsPrefixAndInstancesShare) {
  auto& s = server();
  auto a = open(url(s.port(), "prefix=a*[x]:&count_interval_ms=0"));  // glob characters are escaped
  auto a2 = open(url(s.port(), "prefix=a*[x]:&count_interval_ms=0"));
  auto other = open(url(s.port(), "prefix=ab:&count_interval_ms=0"));
  for (int i = 0; i < 2500; ++i) set(*a, "k" + std::to_string(i), "v");  // several SCAN batches
  set(*other, "k1", "other");
  EXPECT_EQ(get(*a2, "k7"), "v");  // a second instance sees the first one's writes
  set(*a2, "from2", "x");
  EXPECT_EQ(get(*a, "from2"), "x");
  EXPECT_EQ(a->entries(), 2501u);
  a->clear();
  EXPECT_EQ(get(*a, "k1"), std::nullopt);
  EXPECT_EQ(get(*a2, "from2"), std::nullopt);
  EXPECT_EQ(a->entries(), 0u);
  EXPECT_EQ(get(*other, "k1"), "other");
  EXPECT_EQ(other->entries(), 1u);
}

TEST_F(RedisBackendTest, DefaultPrefixFromNamespaceAndCountInterval) {
  auto& s = server();
  auto a = open(url(s.port(), "namespace=users"));
  auto b = open(url(s.port(), "namespace=orders&count_interval_ms=3600000"));
  set(*a, "k", "v");
  EXPECT_EQ(get(*b, "k"), std::nullopt);
  auto raw = open(url(s.port(), "prefix=cachemeter:users:"));
  EXPECT_EQ(get(*raw, "k"), "v");
  EXPECT_EQ(b->entries(), 0u);
  set(*b, "k", "v");
  EXPECT_EQ(b->entries(), 0u);  // the last count, until count_interval_ms passes
}

// An omitted host is 127.0.0.1 and an omitted port 6379 (cache.h): never an
// empty host handed to the resolver.
TEST(RedisUri, OmittedHostAndPortAreTheLocalDefaults) {
  auto where = [](const char* uri) {
    auto b = cm::make_backend(cm::Uri::parse(uri), nullptr);
    return dynamic_cast<cm::RedisBackend&>(*b).options().where();
  };
  EXPECT_EQ(where("redis://"), "127.0.0.1:6379");
  EXPECT_EQ(where("redis://?timeout_ms=10"), "127.0.0.1:6379");
  EXPECT_EQ(where("redis://:6380"), "127.0.0.1:6380");
  EXPECT_EQ(where("redis://:secret@/2"), "127.0.0.1:6379");
  EXPECT_EQ(where("redis://cache.example"), "cache.example:6379");
}

TEST_F(RedisBackendTest, ForeignValueIsCorrupt) {
  auto& s = server();
  auto b = open(url(s.port(), "prefix=t:"));
  redisContext* c = redisConnect("127.0.0.1", s.port());
  ASSERT_TRUE(c && !c->err);
  freeReplyObject(redisCommand(c, "SET t:foreign hello"));
  redisFree(c);
  std::string what;
  EXPECT_EQ(status_of([&] { get(*b, "foreign"); }, &what), CM_ECORRUPT);
  EXPECT_NE(what.find("not a cachemeter entry"), std::string::npos) << what;
}

TEST_F(RedisBackendTest, PasswordAuth) {
  auto& s = server({"--requirepass", "s3cret"});
  auto ok = open("redis://:s3cret@127.0.0.1:" + std::to_string(s.port()) + "/0");
  set(*ok, "k", "v");
  EXPECT_EQ(get(*ok, "k"), "v");
  auto ok2 = open(url(s.port(), "password=s3cret"));
  EXPECT_EQ(get(*ok2, "k"), "v");
  auto acl = open("redis://default:s3cret@127.0.0.1:" + std::to_string(s.port()) + "/0");
  EXPECT_EQ(get(*acl, "k"), "v");

  std::string what;
  auto wrong = open(url(s.port(), "password=nope"));
  EXPECT_EQ(status_of([&] { get(*wrong, "k"); }, &what), CM_EBACKEND);
  EXPECT_NE(what.find("authentication failed"), std::string::npos) << what;
  EXPECT_NE(what.find("127.0.0.1:" + std::to_string(s.port())), std::string::npos) << what;
  EXPECT_EQ(what.find("nope"), std::string::npos) << what;  // never the password
  EXPECT_EQ(wrong->health(), CM_EBACKEND);
  auto none = open(url(s.port()));
  EXPECT_EQ(status_of([&] { get(*none, "k"); }, &what), CM_EBACKEND);
  EXPECT_NE(what.find("NOAUTH"), std::string::npos) << what;
}

TEST_F(RedisBackendTest, UnixSocketAndDb) {
  std::string sock = dir_ + "/redis.sock";
  auto& s = server({"--unixsocket", sock, "--unixsocketperm", "700"});
  auto b = open("redis+unix://" + sock + "?db=3&prefix=t:");
  set(*b, "k", "v");
  EXPECT_EQ(get(*b, "k"), "v");
  EXPECT_EQ(b->health(), CM_OK);
  auto db3 = open("redis://127.0.0.1:" + std::to_string(s.port()) + "/3?prefix=t:");
  EXPECT_EQ(get(*db3, "k"), "v");
  auto db0 = open(url(s.port(), "prefix=t:"));
  EXPECT_EQ(get(*db0, "k"), std::nullopt);
}

TEST_F(RedisBackendTest, UnreachableIsUnavailableQuickly) {
  int port = free_port();
  auto b = open(url(port));  // opening does not connect
  auto t0 = std::chrono::steady_clock::now();
  std::string what;
  EXPECT_EQ(status_of([&] { get(*b, "k"); }, &what), CM_EUNAVAILABLE);
  EXPECT_LT(ms_since(t0), 1000);
  EXPECT_NE(what.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << what;
  EXPECT_EQ(b->health(), CM_EUNAVAILABLE);
  EXPECT_NE(std::string(cm_errmsg()).find("refused"), std::string::npos) << cm_errmsg();
}

TEST_F(RedisBackendTest, ServerThatNeverAnswersTimesOut) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);  // accepted by the kernel, never read
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  auto b = open(url(ntohs(a.sin_port), "timeout_ms=200"));
  auto t0 = std::chrono::steady_clock::now();
  std::string what;
  EXPECT_EQ(status_of([&] { set(*b, "k", "v"); }, &what), CM_ETIMEOUT);
  int64_t took = ms_since(t0);
  EXPECT_GE(took, 150);
  EXPECT_LT(took, 2000);
  EXPECT_NE(what.find("timeout_ms"), std::string::npos) << what;
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(b->health(), CM_ETIMEOUT);
  EXPECT_LT(ms_since(t0), 2000);
  ::close(fd);
}

TEST_F(RedisBackendTest, ServerKilledThenRestartedReconnects) {
  auto& s = server();
  int port = s.port();
  auto b = open(url(port, "prefix=t:&pool=2"));
  set(*b, "k", "v");
  EXPECT_EQ(get(*b, "k"), "v");
  s.stop(SIGKILL);
  std::string what;
  int st = status_of([&] { get(*b, "k"); }, &what);
  EXPECT_EQ(st, CM_EUNAVAILABLE) << what;
  EXPECT_EQ(status_of([&] { set(*b, "k", "v"); }), CM_EUNAVAILABLE);
  EXPECT_EQ(b->health(), CM_EUNAVAILABLE);
  server({}, port);  // the same port, empty (no persistence)
  EXPECT_EQ(b->health(), CM_OK);
  EXPECT_EQ(get(*b, "k"), std::nullopt);
  set(*b, "k", "v2");
  EXPECT_EQ(get(*b, "k"), "v2");
}


TEST_F(RedisBackendTest, OptionErrorsNameTheOption) {
  std::string what;
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?colour=blue", &what), CM_EINVAL);
  EXPECT_NE(what.find("colour"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?timeout_ms=0", &what), CM_EINVAL);
  EXPECT_NE(what.find("timeout_ms"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?connect_timeout_ms=x", &what), CM_EINVAL);
  EXPECT_NE(what.find("connect_timeout_ms"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?pool=0", &what), CM_EINVAL);
  EXPECT_NE(what.find("pool"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?db=2", &what), CM_EINVAL);  // db is the path for TCP
  EXPECT_NE(what.find("db"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:99999/0", &what), CM_EINVAL);
  EXPECT_NE(what.find("port"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis://127.0.0.1:6379/x", &what), CM_EINVAL);
  EXPECT_NE(what.find("database"), std::string::npos) << what;
  EXPECT_EQ(open_status("redis+unix://relative.sock", &what), CM_EINVAL);
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?user=u", &what), CM_EINVAL);
  EXPECT_EQ(open_status("redis://127.0.0.1:1/0?ttl_ms=5&stale_ms=1&prefix=p"), CM_OK);  // front options pass
  EXPECT_EQ(open_status("redis://"), CM_OK);  // 127.0.0.1:6379, not connected at open
}

}  // namespace
