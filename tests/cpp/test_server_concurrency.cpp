// SPDX-License-Identifier: Apache-2.0
// The HTTP endpoint under concurrency (TSan runs this): writer threads update
// series while clients scrape /metrics over real sockets; the final scrape
// shows exactly what was written, and a server stop with clients connected
// returns.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include <cachemeter/cache.h>

#include "server/server.h"
#include "metrics/registry.h"

namespace {

std::string get(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return {};
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return {};
  }
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// The value of the sample line starting with `key ` in a text exposition.
double sample(const std::string& text, const std::string& key) {
  size_t p = text.find("\n" + key + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + key.size() + 2));
}

}  // namespace

TEST(ServerConcurrency, ScrapesWhileWritersUpdateAndFinalValuesAreExact) {
  cm_registry* reg = nullptr;
  ASSERT_EQ(cm_registry_new(&reg, nullptr), CM_OK);
  const char* labels[] = {"w"};
  cm_family* f = nullptr;
  ASSERT_EQ(cm_counter_new(reg, "hammered_total", "Hammered.", labels, 1, &f), CM_OK);
  std::unique_ptr<cm_server> srv = cm::start_server(reg, "127.0.0.1:0", "threads=2");
  int port = srv->port;

  constexpr int kWriters = 4, kAdds = 20000;
  std::atomic<int> scrapes_ok{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> ts;
  for (int w = 0; w < kWriters; ++w)
    ts.emplace_back([&, w] {
      std::string v = std::to_string(w % 2);  // two threads per series
      const char* vals[] = {v.c_str()};
      cm_series* s = nullptr;
      ASSERT_EQ(cm_family_series(f, vals, 1, &s), CM_OK);
      for (int i = 0; i < kAdds; ++i) cm_counter_add(s, 1);
    });
  // Each client scrapes while the writers run, and at least kMinScrapes
  // times whatever the timing (fast writers may finish first).
  constexpr int kMinScrapes = 10;
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c)
    clients.emplace_back([&] {
      for (int n = 0; writing.load() || n < kMinScrapes; ++n) {
        std::string r = get(port, "/metrics");
        if (r.find("HTTP/1.1 200") == 0) scrapes_ok.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  writing = false;
  for (auto& t : clients) t.join();
  EXPECT_GE(scrapes_ok.load(), 2 * kMinScrapes);

  std::string last = get(port, "/metrics");
  EXPECT_EQ(sample(last, "hammered_total{w=\"0\"}"), 2.0 * kAdds);
  EXPECT_EQ(sample(last, "hammered_total{w=\"1\"}"), 2.0 * kAdds);
  EXPECT_GE(sample(last, "cachemeter_http_requests_total{path=\"/metrics\",code=\"200\"}"), scrapes_ok.load());
  srv.reset();
  cm_registry_free(reg);
}

TEST(ServerConcurrency, StopReturnsWithClientsConnected) {
  cm_registry* reg = nullptr;
  ASSERT_EQ(cm_registry_new(&reg, nullptr), CM_OK);
  std::unique_ptr<cm_server> srv = cm::start_server(reg, "127.0.0.1:0", nullptr);
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};  // a server that failed to close them fails the test, not hangs it
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(srv->port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    if (i % 2) {
      ASSERT_EQ(write(fd, "GET /metr", 9), 9);  // half a request line
    }
    fds.push_back(fd);
  }
  EXPECT_NE(get(srv->port, "/health").find("HTTP/1.1 200"), std::string::npos);
  srv.reset();  // must return: the idle and half-sent connections are closed
  for (int fd : fds) {
    char c;
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    EXPECT_TRUE(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        << "connection not closed by the server (read " << n << ", errno " << errno << ")";
    close(fd);
  }
  cm_registry_free(reg);
}

// A health check that blocks (a backend that never answers) holds up neither
// scrapes nor the opening and closing of other caches; /health answers
// "pending" instead of hanging; removing the blocked check waits for it to
// return, and only for that (issue 13, item 3).
TEST(ServerConcurrency, BlockedHealthCheckBlocksNothingElse) {
  cm_registry* reg = nullptr;
  ASSERT_EQ(cm_registry_new(&reg, nullptr), CM_OK);
  std::unique_ptr<cm_server> srv = cm::start_server(reg, "127.0.0.1:0", "health_interval_ms=0");
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
  int owner = 0;
  cm::add_health_check(*reg, &owner, "stuck", "fake", [&] {
    std::unique_lock<std::mutex> lk(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lk, [&] { return released; });
    return CM_OK;
  });
  std::string h = get(srv->port, "/health");  // starts the check, waits for it at most 1 s
  EXPECT_NE(h.find("HTTP/1.1 503"), std::string::npos) << h;
  EXPECT_NE(h.find("\"status\":\"pending\""), std::string::npos) << h;
  {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return entered; }));
  }
  // The check is blocked now and cannot return until `released`.
  EXPECT_NE(get(srv->port, "/metrics").find("HTTP/1.1 200"), std::string::npos);
  EXPECT_NE(get(srv->port, "/metrics.json").find("HTTP/1.1 200"), std::string::npos);
  for (int i = 0; i < 20; ++i) {
    cm_cache* c = nullptr;
    ASSERT_EQ(cm_cache_open(&c, reg, ("other" + std::to_string(i % 3)).c_str(), "memory://"), CM_OK);
    cm_cache_close(c);
  }
  EXPECT_NE(get(srv->port, "/health").find("\"refreshing\":true"), std::string::npos);
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    cm::remove_health_check(*reg, &owner);  // must wait for the running check
    std::lock_guard<std::mutex> lk(mu);
    EXPECT_TRUE(released) << "a running health check was removed (its owner freed) under it";
    removed = true;
  });
  {
    std::lock_guard<std::mutex> lk(mu);
    released = true;
  }
  cv.notify_all();
  remover.join();
  EXPECT_TRUE(removed.load());
  std::string last;
  for (int i = 0; i < 1000; ++i) {  // the next refresh no longer has it
    last = get(srv->port, "/health");
    if (last.find("HTTP/1.1 200") != std::string::npos && last.find("stuck") == std::string::npos) break;
  }
  EXPECT_NE(last.find("HTTP/1.1 200"), std::string::npos) << last;
  EXPECT_EQ(last.find("stuck"), std::string::npos) << last;
  srv.reset();
  cm_registry_free(reg);
}

// /health, /metrics and cm_registry_render race with caches opening and
// closing (their health checks and collectors come and go while the
// server's checker and collector threads run them). TSan checks the guards.
TEST(ServerConcurrency, HealthAndScrapesWhileCachesComeAndGo) {
  cm_registry* reg = nullptr;
  ASSERT_EQ(cm_registry_new(&reg, nullptr), CM_OK);
  std::unique_ptr<cm_server> srv = cm::start_server(reg, "127.0.0.1:0", "health_interval_ms=0&threads=2");
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, answered{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t)
    ts.emplace_back([&, t] {
      while (!done.load()) {
        std::string r = get(srv->port, t ? "/health" : "/metrics");
        if (r.find("HTTP/1.1 200") == std::string::npos && r.find("HTTP/1.1 503") == std::string::npos) ++bad;
        ++answered;
      }
    });
  ts.emplace_back([&] {
    while (!done.load()) {
      char* out = nullptr;
      size_t len = 0;
      if (cm_registry_render(reg, CM_FORMAT_PROMETHEUS, &out, &len) != CM_OK) ++bad;
      cm_free(out);
    }
  });
  // At least 300 cycles, and on until the clients have had answers while
  // caches came and went.
  for (int i = 0; i < 300 || (answered.load() < 50 && i < 1000000); ++i) {
    cm_cache* c = nullptr;
    ASSERT_EQ(cm_cache_open(&c, reg, ("c" + std::to_string(i % 7)).c_str(), "memory://"), CM_OK);
    cm_cache_set(c, "k", 1, "v", 1, 0);
    cm_cache_close(c);
  }
  done = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(answered.load(), 50);
  srv.reset();
  cm_registry_free(reg);
}
