// SPDX-License-Identifier: Apache-2.0
// HTTP request heads through a live cm_server: two servers on 127.0.0.1
// (one open, one with token= and basic_auth=) serve a registry with labelled
// series of every kind and a memory:// cache. Each input is sent as it is to
// both over a fresh connection; the harness half-closes, reads whatever
// comes back (bounded by a deadline) and closes. What must hold: a reply, if
// any, is HTTP; the server never crashes; and it keeps serving: a clean
// scrape succeeds every 64 inputs and after any connection the server
// neither answered nor closed within the deadline.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cachemeter/cachemeter.h>

#include <cctype>

#include "fuzz_util.h"

namespace {

constexpr int kDeadlineMs = 5000;  // for an answer to a complete head
constexpr int kQuietMs = 50;        // for an early answer to an incomplete one
cm_server* servers[2];
int ports[2];

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// True once reply holds a whole final response: the head and as many body
// bytes as its Content-Length says (none for HEAD, 1xx, 204, 304). MHD may
// keep a connection open after the client half-closed (it does not always
// see the EOF), so the harness does not wait for the close.
bool complete(const std::string& reply, bool head) {
  size_t at = 0;
  for (;;) {
    size_t end = reply.find("\r\n\r\n", at);
    if (end == std::string::npos) return false;
    end += 4;
    if (reply.size() < at + 12) return false;
    int status = std::atoi(reply.c_str() + at + 9);
    if (status >= 100 && status < 200) {  // 100 Continue: the real one follows
      at = end;
      continue;
    }
    if (head || status == 204 || status == 304) return true;
    std::string h = reply.substr(at, end - at);
    for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t cl = h.find("\r\ncontent-length:");
    if (cl == std::string::npos) return false;  // read to the close (or the deadline)
    size_t n = std::strtoull(h.c_str() + cl + 17, nullptr, 10);
    return reply.size() - end >= n;
  }
}

// Sends req to port, half-closes and reads until a complete response, EOF,
// or a quiet spell: kDeadlineMs when the request holds a complete head (the
// server owes an answer), kQuietMs otherwise (it may wait for more). Returns
// false when a complete head got no answer in time; the reply in *reply.
bool exchange(int port, const uint8_t* req, size_t len, std::string* reply) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fuzz::fail("socket", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // libFuzzer's timer signal interrupts system calls: connect() then goes on
  // in the background, so wait until it is done.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINTR && errno != EINPROGRESS) fuzz::fail("connect", std::strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t elen = sizeof err;
    while (::poll(&p, 1, kDeadlineMs) < 0 && errno == EINTR) {}
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0 || !(p.revents & POLLOUT))
      fuzz::fail("connect", std::strerror(err));
  }
  std::string_view r(reinterpret_cast<const char*>(req), len);
  bool head = r.substr(0, 5) == "HEAD ";
  bool whole = r.find("\n\r\n") != std::string_view::npos || r.find("\n\n") != std::string_view::npos;
  int quiet = whole ? kDeadlineMs : kQuietMs;
  int64_t last = now_ms();
  size_t sent = 0;
  bool ok = true, closed = false;
  char buf[65536];
  for (;;) {
    if (sent == len && !closed) {
      // The server's epoll is edge-triggered: a FIN that arrives with the
      // last bytes may go unseen, so give it a moment to read them first.
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 2);
      ::shutdown(fd, SHUT_WR);
      closed = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (sent < len ? POLLOUT : 0)), 0};
    int64_t left = last + quiet - now_ms();
    int ready = left <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      ok = !whole || !reply->empty();
      break;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EOF or reset: the server is done with us
      last = now_ms();
      if (reply->size() < (size_t{1} << 24)) reply->append(buf, static_cast<size_t>(n));
      if (sent == len && complete(*reply, head)) break;
      continue;
    }
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, req + sent, len - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) sent = len;  // the server stopped reading: read what it said
      else sent += static_cast<size_t>(n);
      last = now_ms();
    }
  }
  // Reset rather than close: the server drops the connection at once, so
  // no input leaves one behind to count against a per-client cap.
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
  return ok;
}

void probe(int port) {
  static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n";
  std::string reply;
  if (!exchange(port, reinterpret_cast<const uint8_t*>(req), sizeof req - 1, &reply) ||
      reply.compare(0, 12, "HTTP/1.1 200") != 0)
    fuzz::fail("the server stopped serving scrapes after this input", reply);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::signal(SIGPIPE, SIG_IGN);
  cm_registry* reg = nullptr;
  cm_family *c = nullptr, *g = nullptr, *h = nullptr;
  const char* labels[] = {"path", "code"};
  const char* v1[] = {"/a\"b\\c\nd", "200"};
  const char* v2[] = {"ünïcödé", "500"};
  cm_series* s = nullptr;
  if (cm_registry_new(&reg, "const_labels=env:fuzz") != CM_OK ||
      cm_counter_new(reg, "requests_total", "Requests.\nSecond line \\ ok", labels, 2, &c) != CM_OK ||
      cm_gauge_new(reg, "temperature", "A gauge.", labels, 2, &g) != CM_OK ||
      cm_histogram_new(reg, "latency_seconds", "A histogram.", labels, 2, nullptr, 0, &h) != CM_OK)
    fuzz::fail("setting up the registry", cm_errmsg());
  for (const char* const* v : {v1, v2}) {
    if (cm_family_series(c, v, 2, &s) == CM_OK) cm_counter_add(s, 3);
    if (cm_family_series(g, v, 2, &s) == CM_OK) cm_gauge_set(s, -1.5);
    if (cm_family_series(h, v, 2, &s) == CM_OK) cm_histogram_observe(s, 0.02);
  }
  cm_cache* cache = nullptr;
  if (cm_cache_open(&cache, reg, "fuzz", "memory://?max_entries=10") != CM_OK)
    fuzz::fail("cm_cache_open", cm_errmsg());
  // Both stay up until the process exits (libFuzzer has no teardown hook).
  if (cm_server_start(&servers[0], reg, "127.0.0.1:0", "") != CM_OK ||
      cm_server_start(&servers[1], reg, "127.0.0.1:0", "token=secret&basic_auth=user:pass") != CM_OK)
    fuzz::fail("cm_server_start", cm_errmsg());
  for (int i = 0; i < 2; ++i) ports[i] = cm_server_port(servers[i]);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return -1;
  static unsigned runs = 0;
  for (int i = 0; i < 2; ++i) {
    std::string reply;
    bool answered = exchange(ports[i], data, size, &reply);
    if (!reply.empty() && reply.compare(0, 5, "HTTP/") != 0) fuzz::fail("a reply that is not HTTP", reply);
    if (!answered || ++runs % 64 == 0) probe(ports[i]);
  }
  return 0;
}
