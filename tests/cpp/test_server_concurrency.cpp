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
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

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
