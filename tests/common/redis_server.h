/* SPDX-License-Identifier: Apache-2.0 */
// Real redis-server processes for the Redis tests: a child on a free port of
// 127.0.0.1 (no persistence, a temporary directory), a fixture that owns
// them, and a listening socket that accepts and never answers.
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace cmrs {

inline constexpr const char* kRedisServer = "/usr/bin/redis-server";

inline int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
}

// Polls pred every 2 ms until it holds or timeout_ms passes; returns pred().
inline bool wait_until(const std::function<bool()>& pred, int timeout_ms = 10000) {
  auto t0 = std::chrono::steady_clock::now();
  while (!pred()) {
    if (ms_since(t0) > timeout_ms) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A port nothing listens on (bound, then released).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A plain hiredis connection (blocking), freed with the object.
struct RawConn {
  explicit RawConn(int port) {
    timeval tv{2, 0};
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c && !c->err) redisSetTimeout(c, tv);
  }
  ~RawConn() {
    if (c) redisFree(c);
  }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool ok() const { return c && !c->err; }
  // Runs a command (argv form: binary-safe); the reply's type and text as
  // "+OK", ":1", "$value", "-ERR ...", "nil", "*n", or "!io" on failure.
  std::string run(std::vector<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) return "!io";
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_STATUS: out = "+" + std::string(r->str, r->len); break;
      case REDIS_REPLY_ERROR: out = "-" + std::string(r->str, r->len); break;
      case REDIS_REPLY_STRING: out = "$" + std::string(r->str, r->len); break;
      case REDIS_REPLY_INTEGER: out = ":" + std::to_string(r->integer); break;
      case REDIS_REPLY_NIL: out = "nil"; break;
      default: out = "*" + std::to_string(r->elements); break;
    }
    freeReplyObject(r);
    return out;
  }
  redisContext* c = nullptr;
};

// The GET calls the server on port served since its last CONFIG RESETSTAT.
inline long gets_served(int port) {
  RawConn c(port);
  auto* r = static_cast<redisReply*>(redisCommand(c.c, "INFO commandstats"));
  long calls = 0;
  if (r && r->type == REDIS_REPLY_STRING) {
    std::string text(r->str, r->len);
    auto at = text.find("cmdstat_get:calls=");
    if (at != std::string::npos) calls = std::atol(text.c_str() + at + 18);
  }
  if (r) freeReplyObject(r);
  return calls;
}

// Whether a socket that `port` accepted holds bytes its server has not read
// (/proc/net/tcp: local port, state ESTABLISHED, rx_queue): a request sent
// to a stopped server.
inline bool has_unread_request(int port) {
  FILE* f = std::fopen("/proc/net/tcp", "r");
  if (!f) return false;
  char line[512];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f)) {
    char local[64] = "";
    unsigned st = 0, tx = 0, rx = 0;
    if (std::sscanf(line, " %*u: %63s %*s %x %x:%x", local, &st, &tx, &rx) != 4) continue;
    const char* colon = std::strchr(local, ':');
    found = colon && std::strtoul(colon + 1, nullptr, 16) == static_cast<unsigned long>(port) && st == 1 && rx > 0;
  }
  std::fclose(f);
  return found;
}

// Waits up to timeout_ms for the child pid to end: its exit status (128 +
// the signal when a signal ended it), or -1 when it still ran, after
// killing and reaping it.
inline int reap_within(pid_t pid, int timeout_ms) {
  int st = 0;
  if (!wait_until([&] { return ::waitpid(pid, &st, WNOHANG) == pid; }, timeout_ms)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// A redis-server child process, started with posix_spawn (safe in a
// multi-threaded test, unlike fork + allocation).
class RedisServer {
 public:
  // conf: a configuration file read first (a sentinel's: it must be
  // writable, Sentinel rewrites it); sentinel: start in Sentinel mode.
  RedisServer(std::string dir, int port, std::vector<std::string> extra = {}, std::string conf = "",
              bool sentinel = false)
      : dir_(std::move(dir)), port_(port), extra_(std::move(extra)), conf_(std::move(conf)), sentinel_(sentinel) {}
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts it and waits until it answers PING (10 s at most).
  bool start() {
    std::vector<std::string> args{kRedisServer};
    if (!conf_.empty()) args.push_back(conf_);
    if (sentinel_) args.push_back("--sentinel");
    args.insert(args.end(), {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", dir_, "--daemonize", "no", "--loglevel", "warning", "--logfile",
                             dir_ + "/redis.log"});
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Its output goes to the log file; /dev/null for the standard streams,
    // so that a server orphaned by a crashed test does not hold the test's
    // output pipe open (ctest would wait for it).
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    int rc = ::posix_spawn(&pid_, kRedisServer, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    for (int i = 0; i < 1000; ++i) {
      if (ping()) return true;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Sends sig and reaps the process (SIGKILL after 5 s).
  void stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // A signal that does not end it (SIGSTOP, SIGCONT).
  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  int port() const { return port_; }

 private:
  bool ping() {
    timeval tv{0, 200000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c && !c->err) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      // A server with --requirepass answers NOAUTH: it is up.
      ok = r && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR);
      if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
  }
  std::string dir_;
  int port_;
  std::vector<std::string> extra_;
  std::string conf_;
  bool sentinel_ = false;
  pid_t pid_ = -1;
};

// SIGSTOP on a set of servers: the kernel still accepts their connections
// and takes requests, nothing answers. resume(), or the object's end,
// continues them (a stopped server would not end at teardown).
class Paused {
 public:
  Paused() = default;
  ~Paused() { resume(); }
  Paused(const Paused&) = delete;
  Paused& operator=(const Paused&) = delete;
  void stop(const std::vector<RedisServer*>& servers) {
    resume();
    servers_ = servers;
    for (RedisServer* s : servers_) s->signal(SIGSTOP);
  }
  void resume() {
    for (RedisServer* s : servers_) s->signal(SIGCONT);
    servers_.clear();
  }

 private:
  std::vector<RedisServer*> servers_;
};

// A socket on 127.0.0.1 that the kernel accepts connections on and nobody
// ever reads or answers.
class SilentServer {
 public:
  // backlog 0 and fill_backlog(): further connection attempts hang in
  // SYN_SENT (Linux drops the SYN while the accept queue is full).
  explicit SilentServer(int backlog = 16) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, backlog) != 0) return;
    socklen_t n = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() {
    for (int c : accepted_) ::close(c);
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  int port() const { return port_; }
  // Waits up to timeout_ms for a client to connect, and keeps its socket
  // open without a word; true if one did.
  bool accept_one(int timeout_ms = 10000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return false;
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return false;
    accepted_.push_back(c);
    return true;
  }
  // Connects until one attempt stays pending (the accept queue is full):
  // true when it got there.
  bool fill_backlog() {
    for (int i = 0; i < 64; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      fillers_.push_back(c);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port_));
      if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) continue;
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 300) == 0) return true;  // still in SYN_SENT
    }
    return false;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::vector<int> accepted_, fillers_;
};

// Skips when redis-server is not installed; owns a temporary directory and
// the servers started in it.
class RedisFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRedisServer, X_OK) != 0)
      GTEST_SKIP() << kRedisServer << " is not installed (apt-get install redis-server)";
    char tmpl[] = "/tmp/cm-redis-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    servers_.clear();
    if (!dir_.empty()) {
      std::string cmd = "rm -rf '" + dir_ + "'";
      EXPECT_EQ(std::system(cmd.c_str()), 0);
    }
  }
  // Starts a server (on port, or a free one); fails the test if it does not start.
  RedisServer& server(std::vector<std::string> extra = {}, int port = 0) {
    servers_.push_back(std::make_unique<RedisServer>(dir_, port ? port : free_port(), std::move(extra)));
    EXPECT_TRUE(servers_.back()->start()) << "redis-server did not start; see " << dir_ << "/redis.log";
    return *servers_.back();
  }
  // A sentinel monitoring master_port as `name` with quorum 2, which
  // considers a master down after down_after_ms without a reply; extra_conf
  // is appended to its configuration file.
  RedisServer& sentinel(const std::string& name, int master_port, int down_after_ms = 500,
                        const std::string& extra_conf = "") {
    int port = free_port();
    std::string conf = dir_ + "/sentinel-" + std::to_string(port) + ".conf";
    FILE* f = std::fopen(conf.c_str(), "w");
    EXPECT_NE(f, nullptr);
    if (f) {
      std::fprintf(f,
                   "sentinel monitor %s 127.0.0.1 %d 2\n"
                   "sentinel down-after-milliseconds %s %d\n"
                   "sentinel failover-timeout %s 10000\n",
                   name.c_str(), master_port, name.c_str(), down_after_ms, name.c_str());
      std::fputs(extra_conf.c_str(), f);
      std::fclose(f);
    }
    servers_.push_back(std::make_unique<RedisServer>(dir_, port, std::vector<std::string>{}, conf, true));
    EXPECT_TRUE(servers_.back()->start()) << "redis-sentinel did not start; see " << dir_ << "/redis.log";
    return *servers_.back();
  }
  std::string dir_;
  std::vector<std::unique_ptr<RedisServer>> servers_;
};

}  // namespace cmrs
