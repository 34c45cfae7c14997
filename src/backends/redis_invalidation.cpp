// SPDX-License-Identifier: Apache-2.0
// The invalidation listener for a coherent L1. Interface and guarantees:
// redis_invalidation.h.
//
// One dedicated connection, in RESP2 (hiredis 0.14 speaks nothing else):
// connect, AUTH, SELECT, CLIENT ID, then pipelined
//   CLIENT TRACKING on REDIRECT <its own id> BCAST PREFIX <prefix>
//   SUBSCRIBE __redis__:invalidate
// Redirecting to itself works in RESP2 (checked on Redis 7.0): tracking must
// come first, because a RESP2 connection in subscribe mode may only
// (un)subscribe, PING, QUIT or RESET; and Redis drops a RESP2 invalidation
// whose redirect target is not subscribed yet, hence one flush once SUBSCRIBE
// is confirmed, before connected() turns true. What arrives then:
//   ["message", "__redis__:invalidate", [key, ...]]  keys modified (BCAST
//                                                    batches one event-loop turn)
//   ["message", "__redis__:invalidate", nil]          FLUSHALL or FLUSHDB
//   ["pong", ""]                                      our idle PING's reply
//
// All I/O is non-blocking: every wait is a poll() on the socket and on an
// eventfd that the destructor signals, so stopping never waits for a timeout,
// and the deadlines (connect_timeout_ms, timeout_ms) are poll timeouts. A
// blocking context with a socket timeout would not do: hiredis marks the
// context failed on the first timeout. SIGPIPE is blocked in this thread:
// hiredis writes with write(), and a write to a connection the server reset
// must fail with EPIPE, not kill the process.
//
// Could be shared with redis.cpp later: the connect + AUTH + SELECT sequence
// and the error texts (here over a non-blocking context, there blocking).
#include "backends/redis_invalidation.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "backends/hiredis_util.h"
#include "backends/redis_sentinel.h"

namespace cm {
namespace {

constexpr std::string_view kChannel = "__redis__:invalidate";
constexpr int kBackoffFirstMs = 50;
constexpr int kBackoffMaxMs = 2000;

using hiredis::Ctx;
using hiredis::Reply;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

bool is_text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}
std::string_view text(const redisReply& r) { return {r.str, r.len}; }

std::string errno_text(int e) { return std::error_code(e, std::system_category()).message(); }

}  // namespace

// One connection: a non-blocking hiredis context whose every wait also
// watches the wake eventfd (Stopping is thrown when it fires). Failures
// throw Error with a message that names the server, never the password.
class RedisInvalidation::Conn {
 public:
  Conn(const RedisOptions& opt, int wake_fd) : opt_(opt), wake_fd_(wake_fd) {}

  int fd() const { return ctx_ ? ctx_->fd : -1; }

  void connect() {
    redisContext* raw = opt_.socket.empty() ? redisConnectNonBlock(opt_.host.c_str(), opt_.port)
                                            : redisConnectUnixNonBlock(opt_.socket.c_str());
    if (!raw) throw std::bad_alloc();
    ctx_.reset(raw);
    if (raw->err) fail("cannot connect");
    if (!poll_io(POLLOUT, now_ms() + opt_.connect_timeout_ms))
      throw Error(CM_ETIMEOUT, msg("cannot connect", "connect_timeout_ms=" + std::to_string(opt_.connect_timeout_ms) +
                                                         " expired"));
    int err = 0;
    socklen_t n = sizeof err;
    if (::getsockopt(raw->fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0) err = errno;
    if (err != 0) throw Error(CM_EUNAVAILABLE, msg("cannot connect", errno_text(err)));
  }

  void append(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
      throw std::bad_alloc();
  }

  // Sends what append() queued, waiting up to deadline for the socket.
  void send(int64_t deadline, const char* what) {
    while (!write_some())
      if (!poll_io(POLLOUT, deadline)) timeout(what);
  }

  // The next reply, waiting up to deadline; an error reply throws.
  Reply reply(int64_t deadline, const char* what) {
    for (;;) {
      if (Reply r = next()) {
        if (r->type == REDIS_REPLY_ERROR) {
          std::string t(text(*r));
          bool auth = t.rfind("NOAUTH", 0) == 0 || t.rfind("WRONGPASS", 0) == 0 ||
                      t.find("invalid password") != std::string::npos;
          throw Error(CM_EBACKEND, msg(what, (auth ? "authentication failed: " : "") + t));
        }
        return r;
      }
      if (!poll_io(POLLIN, deadline)) timeout(what);
      read_some(what);
    }
  }

  Reply command(std::initializer_list<std::string_view> args, const char* what) {
    append(args);
    int64_t deadline = now_ms() + opt_.timeout_ms;
    send(deadline, what);
    return reply(deadline, what);
  }

  // A reply already received and parsed, or null; no I/O.
  Reply next() {
    void* r = nullptr;
    if (redisGetReplyFromReader(ctx_.get(), &r) != REDIS_OK) fail("reading");
    return Reply(static_cast<redisReply*>(r));
  }
  // true once everything queued is written.
  bool write_some() {
    int done = 0;
    if (redisBufferWrite(ctx_.get(), &done) != REDIS_OK) fail("writing");
    return done != 0;
  }
  void read_some(const char* what) {
    if (redisBufferRead(ctx_.get()) != REDIS_OK) fail(what);
  }

  // Waits until the socket is ready for `events` or deadline passes: its
  // revents (POLLERR/POLLHUP included: the next read reports them), or 0.
  short poll_io(short events, int64_t deadline) {
    for (;;) {
      pollfd p[2] = {{ctx_->fd, events, 0}, {wake_fd_, POLLIN, 0}};
      int64_t left = std::max<int64_t>(0, deadline - now_ms());
      int n = ::poll(p, 2, static_cast<int>(std::min<int64_t>(left, 3600000)));
      if (n < 0 && errno != EINTR) throw Error(CM_EBACKEND, msg("poll", errno_text(errno)));
      if (p[1].revents) throw Stopping{};
      if (n > 0 && p[0].revents) return p[0].revents;
      if (n == 0 && left == 0) return 0;
    }
  }

  std::string msg(std::string_view what, const std::string& why) const {
    return "redis invalidation: " + opt_.where() + ": " + std::string(what) + ": " + why;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    int err = ctx_->err;
    std::string t = ctx_->errstr[0] ? ctx_->errstr : "unknown error";
    int status = err == REDIS_ERR_PROTOCOL ? CM_EBACKEND : err == REDIS_ERR_OOM ? CM_ENOMEM : CM_EUNAVAILABLE;
    throw Error(status, msg(what, t));
  }
  [[noreturn]] void timeout(const char* what) {
    throw Error(CM_ETIMEOUT, msg(what, "no reply within timeout_ms=" + std::to_string(opt_.timeout_ms)));
  }

  const RedisOptions& opt_;
  const int wake_fd_;
  Ctx ctx_;
};

RedisInvalidation::RedisInvalidation(RedisOptions opt, std::string prefix, Callbacks cb,
                                     std::function<void()> on_state)
    : opt_(std::move(opt)), prefix_(std::move(prefix)), cb_(std::move(cb)), on_state_(std::move(on_state)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw Error(CM_EBACKEND, "redis invalidation: eventfd: " + errno_text(errno));
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    ::close(wake_fd_);
    throw Error(CM_EBACKEND, std::string("redis invalidation: cannot start the listener thread: ") + e.what());
  }
  fork_.enrol(this);
}

RedisInvalidation::~RedisInvalidation() {
  fork_.leave();
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);  // fails only on counter overflow
  }
  if (thread_.joinable()) thread_.join();  // not in a child that never revived it
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void RedisInvalidation::fork_child() {
  // The listener thread is the parent's: the child has none. Its socket and
  // wake-up eventfd are closed here (the parent's copies stay open; nothing
  // is sent), and the thread object is forgotten without a join.
  if (int fd = sock_fd_.exchange(-1); fd >= 0) ::close(fd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  fork::renew(thread_);
  fork::renew(cv_);  // threads of the parent may have waited in wait_connected()
  connected_ = false;
  last_error_ = "inherited through fork(): not listening yet in this process";
  inherited_ = true;
}

void RedisInvalidation::revive() {
  std::lock_guard lock(revive_mu_);
  if (!inherited_.load() || wake_fd_ < 0) return;  // no eventfd: stays disconnected (the L1 never serves)
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    set_error(std::string("redis invalidation: cannot start the listener thread: ") + e.what());
    return;  // tried again on the next call
  }
  inherited_ = false;
}

bool RedisInvalidation::wait_connected(int timeout_ms) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return connected_.load(); });
}

std::string RedisInvalidation::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void RedisInvalidation::set_connected(bool on) {
  {
    std::lock_guard lock(mu_);
    connected_ = on;
  }
  cv_.notify_all();
  if (on_state_) on_state_();
}

void RedisInvalidation::set_error(std::string_view what) noexcept {
  std::lock_guard lock(mu_);
  try {
    last_error_ = what;
  } catch (...) {
    last_error_.clear();  // out of memory: the reason is lost, not the thread
  }
}

bool RedisInvalidation::backoff(int ms) const {
  pollfd p{wake_fd_, POLLIN, 0};
  int64_t deadline = now_ms() + ms;
  for (;;) {
    int64_t left = std::max<int64_t>(0, deadline - now_ms());
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return false;
    if (n == 0 && left == 0) return true;
  }
}

void RedisInvalidation::flush_now() {
  ++epoch_;
  if (cb_.flush) cb_.flush();
}

void RedisInvalidation::run() noexcept {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  int delay = kBackoffFirstMs;
  for (;;) {
    bool was_connected = false;
    try {
      session(&was_connected);
    } catch (const Stopping&) {
      break;
    } catch (const std::exception& e) {
      set_error(e.what());
    } catch (...) {
      set_error("redis invalidation: unknown error");
    }
    if (was_connected) {
      // Not serving first, then drop what may have gone stale.
      set_connected(false);
      ++losses_;
      try {
        flush_now();
      } catch (...) {
        // The L1 does not serve now, and the reconnect flushes again before it may.
      }
      delay = kBackoffFirstMs;
    }
    if (!backoff(delay)) break;
    delay = std::min(delay * 2, kBackoffMaxMs);
  }
  set_connected(false);
}

void RedisInvalidation::session(bool* was_connected) {
  // redis+sentinel://: the master the sentinels name now (a blocking query,
  // bounded by connect_timeout_ms + timeout_ms per sentinel).
  RedisOptions at = opt_;
  if (opt_.sentinel) {
    HostPort m = opt_.sentinel->master();
    at.host = m.host;
    at.port = m.port;
    at.sentinel.reset();  // messages name the address
  }
  Conn c(at, wake_fd_);
  c.connect();
  // Known to a child of fork(), which closes its copy (fork_child()).
  sock_fd_.store(c.fd());
  struct Forget {
    std::atomic<int>& fd;
    ~Forget() { fd.store(-1); }
  } forget{sock_fd_};
  if (!opt_.password.empty()) {
    if (opt_.user.empty())
      c.command({"AUTH", opt_.password}, "AUTH");
    else
      c.command({"AUTH", opt_.user, opt_.password}, "AUTH");
  }
  if (opt_.db != 0) c.command({"SELECT", std::to_string(opt_.db)}, "SELECT");
  if (opt_.sentinel) {
    // A sentinel may name the old master for a moment during a failover.
    Reply role = c.command({"ROLE"}, "ROLE");
    if (role->type != REDIS_REPLY_ARRAY || role->elements == 0 || !is_text(role->element[0]) ||
        text(*role->element[0]) != "master")
      throw Error(CM_EUNAVAILABLE, c.msg("ROLE", "not a master (a failover in progress?)"));
  }
  Reply id = c.command({"CLIENT", "ID"}, "CLIENT ID");
  if (id->type != REDIS_REPLY_INTEGER) throw Error(CM_EBACKEND, c.msg("CLIENT ID", "unexpected reply"));
  const std::string self = std::to_string(id->integer);
  // Pipelined: Redis runs both in one go, so no write falls between them.
  if (prefix_.empty())
    c.append({"CLIENT", "TRACKING", "on", "REDIRECT", self, "BCAST"});
  else
    c.append({"CLIENT", "TRACKING", "on", "REDIRECT", self, "BCAST", "PREFIX", prefix_});
  c.append({"SUBSCRIBE", kChannel});
  int64_t deadline = now_ms() + opt_.timeout_ms;
  c.send(deadline, "CLIENT TRACKING");
  c.reply(deadline, "CLIENT TRACKING");
  Reply sub = c.reply(deadline, "SUBSCRIBE");
  if (sub->type != REDIS_REPLY_ARRAY || sub->elements < 2 || !is_text(sub->element[0]) ||
      text(*sub->element[0]) != "subscribe" || !is_text(sub->element[1]) || text(*sub->element[1]) != kChannel)
    throw Error(CM_EBACKEND, c.msg("SUBSCRIBE", "unexpected reply"));

  // Tracking and subscribed. What changed while we were not is unknown:
  // flush, and only then let the L1 serve.
  try {
    flush_now();
  } catch (...) {
    throw Error(CM_EBACKEND, c.msg("flush callback", "threw; retrying"));
  }
  set_error("");
  set_connected(true);
  *was_connected = true;

  // Listen. A PING after kIdlePingMs of silence, due within timeout_ms,
  // notices a link that died without a FIN or RST.
  int64_t last_rx = now_ms(), pong_due = 0;  // 0: no PING outstanding
  int64_t asked_at = last_rx;                  // redis+sentinel://: when the sentinels were last asked
  bool writing = false;
  for (;;) {
    while (Reply r = c.next()) {
      bool pong = false;
      handle(*r, &pong);
      if (pong) pong_due = 0;
    }
    int64_t now = now_ms();
    if (opt_.sentinel && now - asked_at >= kSentinelCheckMs) {
      // A demoted master keeps this (pub/sub) connection open: Sentinel's
      // CLIENT KILL TYPE normal spares it. Ask who the master is now.
      asked_at = now;
      HostPort m;
      try {
        m = opt_.sentinel->master();
      } catch (const Error&) {
        m = {};  // no sentinel answered: keep listening (the master may be fine)
      }
      if (!m.host.empty() && !(m.host == at.host && m.port == at.port))
        throw Error(CM_EUNAVAILABLE, c.msg("sentinel", "the master is now " + m.text() + ": re-subscribing"));
      now = now_ms();
    }
    if (pong_due && now >= pong_due)
      throw Error(CM_ETIMEOUT, c.msg("PING", "no reply within timeout_ms=" + std::to_string(opt_.timeout_ms)));
    if (!pong_due && now - last_rx >= kIdlePingMs) {
      c.append({"PING"});
      pong_due = now + opt_.timeout_ms;
      writing = true;
    }
    if (writing) writing = !c.write_some();
    short events = writing ? POLLIN | POLLOUT : POLLIN;
    int64_t wake_at = pong_due ? pong_due : last_rx + kIdlePingMs;
    if (opt_.sentinel) wake_at = std::min(wake_at, asked_at + kSentinelCheckMs);
    if (c.poll_io(events, wake_at) & (POLLIN | POLLHUP | POLLERR)) {
      c.read_some("reading");  // also reports a hang-up or error
      last_rx = now_ms();
    }
  }
}

void RedisInvalidation::handle(const redisReply& r, bool* pong) {
  if (r.type == REDIS_REPLY_ERROR)
    throw Error(CM_EBACKEND, "redis invalidation: " + opt_.where() + ": " + std::string(text(r)));
  if (r.type != REDIS_REPLY_ARRAY || r.elements < 2 || !is_text(r.element[0])) return;
  std::string_view kind = text(*r.element[0]);
  if (kind == "pong") {
    *pong = true;
    return;
  }
  if (kind != "message" || r.elements < 3 || !is_text(r.element[1]) || text(*r.element[1]) != kChannel) return;
  const redisReply& payload = *r.element[2];
  ++epoch_;  // before the callbacks: see "Epoch" in the header
  try {
    auto one = [&](const redisReply* k) {
      if (!is_text(k)) return;
      std::string_view key = text(*k);
      if (key.starts_with(prefix_) && cb_.invalidate) cb_.invalidate(key.substr(prefix_.size()));
    };
    if (payload.type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < payload.elements; ++i) one(payload.element[i]);
    } else if (is_text(&payload)) {
      one(&payload);  // a single key (Redis 6.0 without BCAST batching)
    } else if (cb_.flush) {
      cb_.flush();  // nil: FLUSHALL/FLUSHDB; anything else unknown: flush to stay safe
    }
  } catch (...) {
    throw Error(CM_EBACKEND, "redis invalidation: a callback threw; dropping the connection to stay coherent");
  }
}

}  // namespace cm
