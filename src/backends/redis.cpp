// SPDX-License-Identifier: Apache-2.0
// The redis:// backend. Interface and options: redis.h.
//
// Value format: one Redis string per entry, key = prefix + key, value =
// kRedisHeaderBytes of header (magic "cm\x01\0", fresh_until, keep_until as
// little-endian Unix ms) + the value. SET ... PXAT keep_until lets Redis drop
// the entry itself; keep_until is also checked on get, so a front whose clock
// is ahead of Redis's (or a test's manual clock) still sees the expiry. One
// string (not a hash) keeps a get and a set at one round trip each.
//
// Connections: synchronous hiredis contexts, created on demand up to `pool`,
// each with the command timeout set (so a server that accepts but never
// answers costs timeout_ms, then CM_ETIMEOUT). A context that failed (I/O,
// EOF, timeout, protocol) is freed, never reused: the next call connects
// again. A connection-level failure also frees the idle contexts, which were
// connected to the same (probably restarted) server: one failed call after a
// Redis restart, not one per pooled connection.
//
// Errors: connection refused/reset/closed -> CM_EUNAVAILABLE, a timeout ->
// CM_ETIMEOUT, a server error reply (WRONGPASS, NOAUTH, OOM, ...) or a
// protocol error -> CM_EBACKEND; messages name host:port (or the socket)
// and Redis's text, never the password.
#include "backends/redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "cache/backend_table.h"
#include "core/error.h"
#include "backends/hiredis_util.h"
#include "backends/redis_invalidation.h"
#include "backends/redis_sentinel.h"
#include "util/fork.h"
#include "util/uri.h"

namespace cm {
namespace {

constexpr char kMagic[4] = {'c', 'm', 1, 0};
constexpr size_t kMaxRedisString = size_t{512} << 20;

using hiredis::Ctx;
using hiredis::Reply;
using hiredis::SigpipeBlock;

void put_i64(char* p, int64_t v) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(u >> (8 * i));
}
int64_t get_i64(const char* p) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return static_cast<int64_t>(u);
}

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Escapes glob metacharacters for SCAN MATCH.
std::string glob_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

bool is_timeout(int err, int saved_errno, const char* errstr) {
#ifdef REDIS_ERR_TIMEOUT
  if (err == REDIS_ERR_TIMEOUT) return true;
#endif
  if (err != REDIS_ERR_IO) return false;
  if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT || saved_errno == EINPROGRESS)
    return true;
  return std::strstr(errstr, "temporarily unavailable") || std::strstr(errstr, "timed out");
}

}  // namespace

std::string RedisOptions::where() const {
  if (sentinel) return sentinel->where();
  if (!socket.empty()) return socket;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

// Idle contexts, and how many exist (idle or leased), at most opt.pool.
//
// fork(): a child must never talk on the parent's sockets (the replies of
// the two processes would cross: one key's value returned for another). In
// the child the pool forgets every inherited context: idle ones are freed,
// which closes the child's copy of the socket and sends nothing (no QUIT),
// and those leased by the parent's other threads, which the child does not
// have, are abandoned. The child connects anew on its next call.
class RedisBackend::Pool final : private fork::Hooks {
 public:
  explicit Pool(const RedisOptions& opt) : opt_(opt) { fork_.enrol(this); }

  // An idle context, or nullptr with a slot reserved for a new one; waits up
  // to timeout_ms when all are leased.
  Ctx take(bool* fresh) {
    std::unique_lock lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.timeout_ms);
    while (free_.empty() && live_ >= opt_.pool) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && free_.empty() && live_ >= opt_.pool)
        throw Error(CM_ETIMEOUT, "redis backend: " + opt_.where() + ": all " + std::to_string(opt_.pool) +
                                     " pool connections stayed busy for timeout_ms=" +
                                     std::to_string(opt_.timeout_ms),
                    ErrorKind::Timeout);
    }
    if (!free_.empty()) {
      Ctx c = std::move(free_.back());
      free_.pop_back();
      *fresh = false;
      return c;
    }
    ++live_;
    *fresh = true;
    return nullptr;
  }
  void give(Ctx c) {
    {
      std::lock_guard lock(mu_);
      if (c)
        free_.push_back(std::move(c));
      else
        --live_;
    }
    cv_.notify_one();
  }
  // After a connection-level failure: the idle contexts talk to the same
  // server and are dropped too (freed outside the lock).
  void drop_idle() {
    std::vector<Ctx> old;
    {
      std::lock_guard lock(mu_);
      old.swap(free_);
      live_ -= static_cast<int>(old.size());
    }
    cv_.notify_all();
  }

 private:
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  void fork_child() override {
    free_.clear();
    live_ = 0;
    fork::renew(cv_);  // threads of the parent may have waited in take()
  }

  const RedisOptions& opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Ctx> free_;
  int live_ = 0;
  fork::Enrolment fork_;
};

// One leased connection: connects when the pool had none idle; runs commands
// mapping failures to Error; returns the context to the pool unless it failed.
class RedisBackend::Lease {
 public:
  explicit Lease(const RedisBackend& b) : b_(b), opt_(b.opt_) {
    bool fresh = false;
    ctx_ = b_.pool_->take(&fresh);
    if (fresh) {
      try {
        connect();
      } catch (...) {
        ctx_.reset();
        b_.pool_->give(nullptr);
        throw;
      }
    }
  }
  ~Lease() { b_.pool_->give(std::move(ctx_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Runs a command; throws for a failed connection or an error reply.
  Reply run(std::initializer_list<std::string_view> args, const char* what) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return run(argv, lens, what);
  }
  Reply run(std::vector<const char*>& argv, std::vector<size_t>& lens, const char* what) {
    void* r;
    int saved;
    {
      SigpipeBlock no_sigpipe;
      errno = 0;
      r = redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
      saved = errno;
      if (!r) no_sigpipe.failed();
    }
    if (!r) fail_ctx(saved, what);
    Reply reply(static_cast<redisReply*>(r));
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string text(reply->str, reply->len);
      if (opt_.sentinel && text.rfind("READONLY", 0) == 0) {
        // The master we connected to was demoted by a failover: drop this
        // connection and the idle ones; the next connects ask the sentinels.
        ctx_.reset();
        b_.pool_->drop_idle();
        throw Error(CM_EUNAVAILABLE,
                    "redis backend: " + opt_.where() + ": " + what + ": " +
                        (connected_to_.empty() ? std::string("the server") : connected_to_) +
                        " is a replica now (failover): " + text,
                    ErrorKind::Connection);
      }
      bool auth = text.rfind("NOAUTH", 0) == 0 || text.rfind("WRONGPASS", 0) == 0 ||
                  text.find("invalid password") != std::string::npos;
      throw Error(CM_EBACKEND,
                  "redis backend: " + opt_.where() + ": " + what + ": " + (auth ? "authentication failed: " : "") + text,
                  ErrorKind::Server);
    }
    return reply;
  }

 private:
  void connect() {
    timeval ct{opt_.connect_timeout_ms / 1000, (opt_.connect_timeout_ms % 1000) * 1000};
    HostPort to{opt_.host, opt_.port};
    if (opt_.sentinel) {
      to = opt_.sentinel->master();
      connected_to_ = to.text();
    }
    errno = 0;
    redisContext* raw = opt_.socket.empty() ? redisConnectWithTimeout(to.host.c_str(), to.port, ct)
                                            : redisConnectUnixWithTimeout(opt_.socket.c_str(), ct);
    int saved = errno;
    if (!raw) throw std::bad_alloc();
    ctx_.reset(raw);
    if (raw->err) fail_ctx(saved, "cannot connect");
    timeval t{opt_.timeout_ms / 1000, (opt_.timeout_ms % 1000) * 1000};
    if (redisSetTimeout(raw, t) != REDIS_OK) fail_ctx(errno, "cannot set the timeout");
    try {
      if (!opt_.password.empty()) {
        if (opt_.user.empty())
          run({"AUTH", opt_.password}, "AUTH");
        else
          run({"AUTH", opt_.user, opt_.password}, "AUTH");
      }
      if (opt_.db != 0) run({"SELECT", std::to_string(opt_.db)}, "SELECT");
      if (opt_.sentinel) check_master();
    } catch (...) {
      ctx_.reset();  // never pool a half-set-up connection
      throw;
    }
  }

  // A sentinel may name the old master for a moment during a failover:
  // only a server whose ROLE is master is used.
  void check_master() {
    Reply r = run({"ROLE"}, "ROLE");
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
        std::string_view(r->element[0]->str, r->element[0]->len) == "master")
      return;
    std::string role = r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING
                           ? std::string(r->element[0]->str, r->element[0]->len)
                           : "unknown";
    throw Error(CM_EUNAVAILABLE,
                "redis backend: " + opt_.where() + ": the sentinels named " + connected_to_ +
                    ", whose role is " + role + ", not master (a failover in progress?)",
                ErrorKind::Connection);
  }

  [[noreturn]] void fail_ctx(int saved_errno, const char* what) {
    redisContext* c = ctx_.get();
    int err = c ? c->err : REDIS_ERR_OTHER;
    std::string text = c && c->errstr[0] ? c->errstr : "unknown error";
    int status = CM_EBACKEND;  // REDIS_ERR_PROTOCOL: a reply hiredis cannot parse
    ErrorKind kind = ErrorKind::Protocol;
    const char* note = "";
    if (is_timeout(err, saved_errno, text.c_str())) {
      status = CM_ETIMEOUT;
      kind = ErrorKind::Timeout;
      note = std::strcmp(what, "cannot connect") == 0 ? " (connect_timeout_ms expired)" : " (timeout_ms expired)";
    } else if (err == REDIS_ERR_IO || err == REDIS_ERR_EOF || err == REDIS_ERR_OTHER) {
      status = CM_EUNAVAILABLE;  // refused, reset, closed, unresolvable host
      kind = ErrorKind::Connection;
    } else if (err == REDIS_ERR_OOM) {
      status = CM_ENOMEM;
      kind = ErrorKind::Other;
    }
    ctx_.reset();
    if (status == CM_EUNAVAILABLE || status == CM_ETIMEOUT) b_.pool_->drop_idle();
    std::string at = connected_to_.empty() ? "" : " (" + connected_to_ + ")";
    throw Error(status, "redis backend: " + opt_.where() + at + ": " + what + ": " + text + note, kind);
  }

  const RedisBackend& b_;
  const RedisOptions& opt_;
  Ctx ctx_;
  std::string connected_to_;  // redis+sentinel://: the master's address
};

RedisBackend::RedisBackend(RedisOptions opt) : opt_(std::move(opt)), pool_(std::make_unique<Pool>(opt_)) {}

RedisBackend::~RedisBackend() = default;

std::string RedisBackend::key_of(std::string_view key) const {
  std::string k;
  k.reserve(opt_.prefix.size() + key.size());
  k += opt_.prefix;
  k += key;
  return k;
}

bool RedisBackend::get(std::string_view key, int64_t now_ms_front, Fetched* out) {
  const int64_t now_ms = wall_.to_wall(now_ms_front);
  std::string k = key_of(key);
  Reply r;
  {
    Lease c(*this);
    r = c.run({"GET", k}, "GET");
  }
  if (r->type == REDIS_REPLY_NIL) return false;
  if (r->type != REDIS_REPLY_STRING || r->len < kRedisHeaderBytes || std::memcmp(r->str, kMagic, 4) != 0)
    throw Error(CM_ECORRUPT, "redis backend: " + opt_.where() + ": the value under a key of prefix \"" + opt_.prefix +
                                 "\" is not a cachemeter entry (another program's key?)",
                ErrorKind::Corrupt);
  int64_t fresh = get_i64(r->str + 4), keep = get_i64(r->str + 12);
  if (now_ms >= keep) return false;  // Redis drops it at keep_until (PXAT)
  size_t n = r->len - kRedisHeaderBytes;
  void* data = std::malloc(n + 1);
  if (!data) throw std::bad_alloc();
  if (n) std::memcpy(data, r->str + kRedisHeaderBytes, n);
  static_cast<char*>(data)[n] = '\0';
  out->data = data;
  out->len = n;
  out->fresh_until_ms = wall_.from_wall(fresh);
  return true;
}

void RedisBackend::set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms_front) {
  wall_.to_wall(now_ms_front);  // fixes the offset on a first call
  const int64_t fresh = wall_.to_wall(e.fresh_until_ms), keep = wall_.to_wall(e.keep_until_ms);
  if (opt_.prefix.size() + key.size() > kMaxRedisString || value.size() > kMaxRedisString - kRedisHeaderBytes)
    throw Error(CM_ELIMIT, "redis backend: keys and values are limited to 512 MB (Redis's string limit)");
  std::string k = key_of(key);
  std::string v;
  v.resize(kRedisHeaderBytes + value.size());
  std::memcpy(v.data(), kMagic, 4);
  put_i64(v.data() + 4, fresh);
  put_i64(v.data() + 12, keep);
  if (!value.empty()) std::memcpy(v.data() + kRedisHeaderBytes, value.data(), value.size());
  Lease c(*this);
  if (keep == kNever) {
    c.run({"SET", k, v}, "SET");
  } else {
    // PXAT in the past deletes the key: an entry already past keep_until.
    std::string at = std::to_string(std::max<int64_t>(keep, 1));
    c.run({"SET", k, v, "PXAT", at}, "SET");
  }
}

bool RedisBackend::del(std::string_view key, int64_t now_ms_front) {
  wall_.to_wall(now_ms_front);
  std::string k = key_of(key);
  Lease c(*this);
  Reply r = c.run({"UNLINK", k}, "UNLINK");
  return r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

void RedisBackend::clear() {
  const std::string match = glob_escape(opt_.prefix) + "*";
  Lease c(*this);
  std::string cursor = "0";
  do {
    Reply r = c.run({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}, "SCAN");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING)
      throw Error(CM_EBACKEND, "redis backend: " + opt_.where() + ": SCAN: unexpected reply", ErrorKind::Protocol);
    cursor.assign(r->element[0]->str, r->element[0]->len);
    const redisReply* keys = r->element[1];
    if (keys->elements == 0) continue;
    std::vector<const char*> argv{"UNLINK"};
    std::vector<size_t> lens{6};
    for (size_t i = 0; i < keys->elements; ++i) {
      argv.push_back(keys->element[i]->str);
      lens.push_back(keys->element[i]->len);
    }
    c.run(argv, lens, "UNLINK");
  } while (cursor != "0");
  last_entries_ = 0;
}

uint64_t RedisBackend::count() const {
  const std::string match = glob_escape(opt_.prefix) + "*";
  Lease c(*this);
  std::string cursor = "0";
  uint64_t n = 0;
  do {
    Reply r = c.run({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}, "SCAN");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING)
      throw Error(CM_EBACKEND, "redis backend: " + opt_.where() + ": SCAN: unexpected reply", ErrorKind::Protocol);
    cursor.assign(r->element[0]->str, r->element[0]->len);
    n += r->element[1]->elements;
  } while (cursor != "0");
  return n;
}

uint64_t RedisBackend::entries() const {
  int64_t now = steady_ms();
  int64_t at = counted_at_.load(std::memory_order_relaxed);
  if (at != INT64_MIN && now - at < opt_.count_interval_ms) return last_entries_;
  // One counter per interval; the others return the last count.
  if (opt_.count_interval_ms > 0 && !counted_at_.compare_exchange_strong(at, now)) return last_entries_;
  try {
    last_entries_ = count();
  } catch (...) {
  }
  counted_at_ = steady_ms();
  return last_entries_;
}

namespace {
constexpr const char* kUnlockScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
}

bool RedisBackend::try_lock(std::string_view key, std::string_view token, int64_t ttl_ms) {
  std::string k = "cachemeter-lock:" + key_of(key);
  Lease c(*this);
  Reply r = c.run({"SET", k, token, "NX", "PX", std::to_string(std::max<int64_t>(ttl_ms, 1))}, "SET NX (load lock)");
  return r->type == REDIS_REPLY_STATUS;  // +OK; nil when someone holds it
}

void RedisBackend::unlock(std::string_view key, std::string_view token) {
  std::string k = "cachemeter-lock:" + key_of(key);
  Lease c(*this);
  c.run({"EVAL", kUnlockScript, "1", k, token}, "EVAL (load unlock)");
}

void RedisBackend::verify() {
  Lease c(*this);
  Reply r = c.run({"PING"}, "PING");
  if (r->type != REDIS_REPLY_STATUS || std::string_view(r->str, r->len) != "PONG")
    throw Error(CM_EBACKEND, "redis backend: " + opt_.where() + ": PING: unexpected reply", ErrorKind::Protocol);
}

int RedisBackend::health() {
  return report("redis backend", [&]() -> int {
    verify();
    return CM_OK;
  });
}

namespace {

int parse_port(const Uri& uri, std::string_view s) {
  int port = 0;
  if (s.empty() || s.size() > 5) port = -1;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return -1;
    port = port * 10 + (ch - '0');
  }
  if (port < 1 || port > 65535)
    throw Error(CM_EINVAL, "uri \"" + uri.text + "\": bad port \"" + std::string(s) + "\" (1..65535)");
  return port;
}

Error bad_uri(const Uri& uri, const std::string& why) { return Error(CM_EINVAL, "uri \"" + uri.text + "\": " + why); }

// host[:port] or [v6addr][:port]; an empty host is 127.0.0.1.
HostPort parse_host_port(const Uri& uri, const std::string& hostport, int default_port) {
  HostPort hp{"", default_port};
  std::string port;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos) throw bad_uri(uri, "unclosed '[' in the host");
    hp.host = hostport.substr(1, close - 1);
    std::string rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw bad_uri(uri, "expected ':' after ']'");
      port = rest.substr(1);
    }
  } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    hp.host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  } else {
    hp.host = hostport;
  }
  if (hp.host.empty()) hp.host = "127.0.0.1";
  if (!port.empty()) {
    hp.port = parse_port(uri, port);
    if (hp.port < 0) throw bad_uri(uri, "bad port \"" + port + "\" (1..65535)");
  }
  return hp;
}

// [user:password@]rest: the credentials (the password may hold '@' or '/',
// percent-encoded in the URI: split at the last '@'); returns rest.
std::string take_user_info(std::string loc, RedisOptions* o) {
  if (auto at = loc.rfind('@'); at != std::string::npos) {
    std::string info = loc.substr(0, at);
    loc = loc.substr(at + 1);
    if (auto colon = info.find(':'); colon != std::string::npos) {
      o->user = info.substr(0, colon);
      o->password = info.substr(colon + 1);
    } else {
      o->password = info;  // redis://secret@host
    }
  }
  return loc;
}

}  // namespace

std::unique_ptr<ChangeFeed::Subscription> RedisBackend::subscribe(Callbacks cb) {
  return std::make_unique<RedisInvalidation>(opt_, opt_.prefix, std::move(cb));
}

// The table's entry (cache/backend_table.h): a server other processes
// share, the L2 of a tiered cache with a change feed (its invalidations),
// behind a breaker by default (a server that went away fails fast).
const BackendSpec& redis_backend_spec() {
  static constexpr std::string_view kSchemes[] = {"redis", "redis+unix", "redis+sentinel"};
  static constexpr std::string_view kOptions[] = {
      "namespace", "prefix", "timeout_ms",        "connect_timeout_ms", "pool",
      "user",      "password", "count_interval_ms", "db",                 "sentinel_user",
      "sentinel_password"};
  static constexpr BackendSpec kSpec{
      .name = "redis",
      .schemes = kSchemes,
      .make = &make_redis_backend,
      .options = kOptions,
      .traits = {.shared = true, .tier_l1 = false, .tier_l2 = true, .change_feed = true},
      .breaker = {.failures = 5, .cooldown_ms = 1000},
      .entry_overhead = 0,  // bytes() is not accounted (redis.h)
  };
  return kSpec;
}

std::unique_ptr<Backend> make_redis_backend(const Uri& uri, BackendEvents* /*events: Redis expires keys itself*/) {
  const bool unix_socket = uri.scheme == "redis+unix";
  const bool sentinel = uri.scheme == "redis+sentinel";
  std::vector<std::string_view> known = known_options(redis_backend_spec());
  auto drop = [&](std::string_view name) { known.erase(std::find(known.begin(), known.end(), name)); };
  // db= is for sockets and sentinels only: redis://host:port/db names it in the path.
  if (!unix_socket && !sentinel) drop("db");
  if (!sentinel) {
    drop("sentinel_user");
    drop("sentinel_password");
  }
  uri.query.check_known(known);
  RedisOptions o;
  SentinelOptions so;  // redis+sentinel://
  auto bad = [&](const std::string& why) { return Error(CM_EINVAL, "uri \"" + uri.text + "\": " + why); };
  std::string loc = uri.location;
  if (loc.find('\0') != std::string::npos) throw bad("NUL byte in the location");
  if (unix_socket) {
    if (loc.empty() || loc.front() != '/')
      throw bad("redis+unix:// needs an absolute socket path (redis+unix:///path/redis.sock)");
    o.socket = loc;
    o.db = static_cast<int>(uri.query.get_int("db", 0, 0, 1000000));
  } else if (sentinel) {
    // [user:password@]sentinel[:port][,sentinel[:port]...]/master-name
    loc = take_user_info(loc, &o);
    auto slash = loc.find('/');
    so.master_name = slash == std::string::npos ? "" : loc.substr(slash + 1);
    if (so.master_name.empty())
      throw bad("redis+sentinel:// needs the master's name (redis+sentinel://host:26379,host2:26379/mymaster)");
    std::string hosts = loc.substr(0, slash);
    if (hosts.empty()) throw bad("redis+sentinel:// needs at least one sentinel (host:port before the master's name)");
    for (size_t at = 0; at <= hosts.size();) {
      size_t comma = hosts.find(',', at);
      if (comma == std::string::npos) comma = hosts.size();
      std::string one = hosts.substr(at, comma - at);
      if (one.empty()) throw bad("an empty entry in the sentinel list");
      so.sentinels.push_back(parse_host_port(uri, one, 26379));
      at = comma + 1;
    }
    so.user = uri.query.get("sentinel_user", "");
    so.password = uri.query.get("sentinel_password", "");
    if (!so.user.empty() && so.password.empty()) throw bad("a sentinel user needs a sentinel_password");
    o.db = static_cast<int>(uri.query.get_int("db", 0, 0, 1000000));
  } else {
    // [user:password@]host[:port][/db]
    loc = take_user_info(loc, &o);
    std::string hostport = loc, db;
    if (auto slash = loc.find('/'); slash != std::string::npos) {
      hostport = loc.substr(0, slash);
      db = loc.substr(slash + 1);
    }
    if (!db.empty()) {
      if (db.size() > 7 || db.find_first_not_of("0123456789") != std::string::npos)
        throw bad("bad database number \"" + db + "\" (redis://host:port/N)");
      o.db = std::atoi(db.c_str());
    }
    HostPort hp = parse_host_port(uri, hostport, 6379);
    o.host = hp.host;
    o.port = hp.port;
  }
  if (uri.query.has("user")) o.user = uri.query.get("user", "");
  if (uri.query.has("password")) o.password = uri.query.get("password", "");
  if (!o.user.empty() && o.password.empty()) throw bad("a Redis user needs a password");
  if (uri.query.has("prefix")) {
    o.prefix = uri.query.get("prefix", "");
    // An empty prefix would make clear() delete every key of the database.
    if (o.prefix.empty()) throw bad("prefix= must not be empty (clear() deletes every key under the prefix)");
  } else {
    // The namespace is escaped so that names holding ':' cannot collide
    // ("a" with key "b:k" vs "a:b" with key "k").
    std::string ns;
    for (char ch : uri.query.get("namespace", "")) {
      if (ch == '%')
        ns += "%25";
      else if (ch == ':')
        ns += "%3A";
      else
        ns += ch;
    }
    o.prefix = "cachemeter:" + ns + ":";
  }
  o.timeout_ms = static_cast<int>(uri.query.get_int("timeout_ms", 1000, 1, 3600000));
  o.connect_timeout_ms = static_cast<int>(uri.query.get_int("connect_timeout_ms", 1000, 1, 3600000));
  o.pool = static_cast<int>(uri.query.get_int("pool", 4, 1, 1024));
  o.count_interval_ms = uri.query.get_int("count_interval_ms", 5000, 0, 86400000);
  if (sentinel) {
    so.connect_timeout_ms = o.connect_timeout_ms;
    so.timeout_ms = o.timeout_ms;
    auto resolver = std::make_shared<SentinelResolver>(std::move(so));
    o.sentinel = resolver;
    auto b = std::make_unique<RedisBackend>(std::move(o));
    try {
      b->verify();
    } catch (const Error& e) {
      // A master name no sentinel knows is the URI's mistake, not an outage.
      if (resolver->unknown_master()) throw Error(CM_EINVAL, "uri \"" + uri.text + "\": " + e.what());
      throw;
    }
    return b;
  }
  return std::make_unique<RedisBackend>(std::move(o));
}

}  // namespace cm
