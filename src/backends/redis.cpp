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
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "cache/backend_table.h"
#include "core/error.h"
#include "backends/hiredis_util.h"
#include "backends/redis_cluster.h"
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
  if (cluster) {
    std::string s = "cluster ";
    for (size_t i = 0; i < seeds.size(); ++i) s += (i ? "," : "") + seeds[i].text();
    return s;
  }
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
  // where: what its messages name.
  Pool(const RedisOptions& opt, std::string where) : opt_(opt), where_(std::move(where)) { fork_.enrol(this); }

  // An idle context, or nullptr with a slot reserved for a new one; waits up
  // to timeout_ms when all are leased.
  Ctx take(bool* fresh) {
    std::unique_lock lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt_.timeout_ms);
    while (free_.empty() && live_ >= opt_.pool) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && free_.empty() && live_ >= opt_.pool)
        throw Error(CM_ETIMEOUT, "redis backend: " + where_ + ": all " + std::to_string(opt_.pool) +
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
  const std::string where_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Ctx> free_;
  int live_ = 0;
  fork::Enrolment fork_;
};

// A command's arguments as hiredis takes them, without a heap allocation
// for the short commands of the data path (at most kInline arguments).
struct RedisBackend::Argv {
  static constexpr size_t kInline = 8;
  Argv(const char* const* a, const size_t* l, size_t count) : argv(a), lens(l), n(count) {}
  explicit Argv(std::initializer_list<std::string_view> args) : argv(own_argv_), lens(own_lens_), n(args.size()) {
    if (n > kInline) throw std::logic_error("redis backend: more than 8 arguments in an inline command");
    size_t i = 0;
    for (auto a : args) {
      own_argv_[i] = a.data();
      own_lens_[i++] = a.size();
    }
  }
  Argv(const Argv&) = delete;
  Argv& operator=(const Argv&) = delete;
  const char* const* argv;
  const size_t* lens;
  size_t n;

 private:
  const char* own_argv_[kInline] = {};
  size_t own_lens_[kInline] = {};
};

// One server's connections: the URI's server (host empty: connect() decides,
// asking the sentinels for redis+sentinel://) or one cluster node.
struct RedisBackend::Node {
  Node(const RedisOptions& opt, HostPort a)
      : addr(std::move(a)), pool(std::make_unique<Pool>(opt, addr.host.empty() ? opt.where()
                                                                             : opt.where() + ": node " + addr.text())) {}
  const HostPort addr;
  const std::unique_ptr<Pool> pool;
};

// One leased connection: connects when the pool had none idle; runs commands
// mapping failures to Error; returns the context to the pool unless it failed.
class RedisBackend::Lease {
 public:
  // A connection to node (the one server of redis:// and redis+sentinel://,
  // or one node of a cluster). peer (optional): set to the address of the
  // server reached ("host:port") before anything is sent to it, also when
  // the connection then fails to set up (empty if no address was known).
  Lease(const RedisBackend& b, Node& node, std::string* peer = nullptr) : b_(b), opt_(b.opt_), node_(node) {
    bool fresh = false;
    ctx_ = node_.pool->take(&fresh);
    if (fresh) {
      try {
        connect(peer);
      } catch (...) {
        ctx_.reset();
        node_.pool->give(nullptr);
        throw;
      }
    } else if (peer && ctx_->connection_type == REDIS_CONN_TCP && ctx_->tcp.host) {
      *peer = HostPort{ctx_->tcp.host, ctx_->tcp.port}.text();
    }
  }
  explicit Lease(const RedisBackend& b) : Lease(b, *b.single_) {}
  ~Lease() { node_.pool->give(std::move(ctx_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Runs a command; throws for a failed connection or an error reply.
  Reply run(std::initializer_list<std::string_view> args, const char* what) { return run(Argv(args), what); }
  Reply run(std::vector<const char*>& argv, std::vector<size_t>& lens, const char* what) {
    return run(Argv{argv.data(), lens.data(), argv.size()}, what);
  }
  // Cluster: MOVED and ASK error replies are returned (the caller follows
  // them); CLUSTERDOWN and TRYAGAIN throw CM_EUNAVAILABLE.
  Reply run(const Argv& argv, const char* what) {
    void* r;
    int saved;
    {
      SigpipeBlock no_sigpipe;
      errno = 0;
      // hiredis 0.14 takes const char** but does not write through it.
      r = redisCommandArgv(ctx_.get(), static_cast<int>(argv.n), const_cast<const char**>(argv.argv), argv.lens);
      saved = errno;
      if (!r) no_sigpipe.failed();
    }
    if (!r) fail_ctx(saved, what);
    Reply reply(static_cast<redisReply*>(r));
    if (reply->type == REDIS_REPLY_ERROR) {
      std::string text(reply->str, reply->len);
      if (opt_.cluster) {
        if (text.rfind("MOVED ", 0) == 0 || text.rfind("ASK ", 0) == 0) return reply;
        if (text.rfind("CLUSTERDOWN", 0) == 0 || text.rfind("TRYAGAIN", 0) == 0)
          throw Error(CM_EUNAVAILABLE, "redis backend: " + where() + ": " + what + ": " + text, ErrorKind::Connection);
      }
      if (opt_.sentinel && text.rfind("READONLY", 0) == 0) {
        // The master we connected to was demoted by a failover: drop this
        // connection and the idle ones; the next connects ask the sentinels.
        ctx_.reset();
        node_.pool->drop_idle();
        throw Error(CM_EUNAVAILABLE,
                    "redis backend: " + opt_.where() + ": " + what + ": " +
                        (connected_to_.empty() ? std::string("the server") : connected_to_) +
                        " is a replica now (failover): " + text,
                    ErrorKind::Connection);
      }
      bool auth = text.rfind("NOAUTH", 0) == 0 || text.rfind("WRONGPASS", 0) == 0 ||
                  text.find("invalid password") != std::string::npos;
      throw Error(CM_EBACKEND,
                  "redis backend: " + where() + ": " + what + ": " + (auth ? "authentication failed: " : "") + text,
                  ErrorKind::Server);
    }
    return reply;
  }

 private:
  void connect(std::string* peer) {
    timeval ct{opt_.connect_timeout_ms / 1000, (opt_.connect_timeout_ms % 1000) * 1000};
    HostPort to{opt_.host, opt_.port};
    if (!node_.addr.host.empty()) {
      to = node_.addr;
    } else if (opt_.sentinel) {
      to = opt_.sentinel->master();
      connected_to_ = to.text();
      b_.note_switches();
    }
    if (peer && opt_.socket.empty()) *peer = to.text();
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
      // The master's connections (a sentinel replica's, for reads, are to a
      // replica by design).
      if (opt_.sentinel && node_.addr.host.empty()) check_master();
      // Lets a replica answer reads of its primary's slots (harmless on a
      // primary: a node's role changes with failovers, its connections stay).
      if (opt_.cluster && opt_.read_replicas) run({"READONLY"}, "READONLY");
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
    if (status == CM_EUNAVAILABLE || status == CM_ETIMEOUT) node_.pool->drop_idle();
    throw Error(status, "redis backend: " + where() + ": " + what + ": " + text + note, kind);
  }

  // What messages name: the URI's server (and the address a sentinel gave),
  // or the cluster node.
  std::string where() const {
    if (!node_.addr.host.empty()) return opt_.where() + ": node " + node_.addr.text();
    return opt_.where() + (connected_to_.empty() ? "" : " (" + connected_to_ + ")");
  }

  const RedisBackend& b_;
  const RedisOptions& opt_;
  Node& node_;
  Ctx ctx_;
  std::string connected_to_;  // redis+sentinel://: the master's address
};

// redis+cluster://: the slot map and the nodes' pools. Nodes are never
// forgotten (a node that left keeps an idle pool: cheap, and a later MOVED
// may name it again); the map is replaced whole by a refresh.
//
// fork(): `mu` is held across fork (short sections, no I/O under it);
// refresh_mu, which a thread holds for the network round trips of a map
// read, is renewed in the child instead (the child has no such thread, and
// would otherwise wait on the inherited lock forever). The child keeps the
// parent's map and refreshes it as the parent would.
struct RedisBackend::Cluster final : private fork::Hooks {
  Cluster() { fork_.enrol(this); }
  ~Cluster() { fork_.leave(); }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  std::vector<HostPort> seeds;
  mutable std::mutex mu;                                  // guards the three below
  NodeMap nodes;                                          // node_in()
  // The owner of each slot (null: none known): read without the lock (one
  // atomic load per call), written under it. Nodes live as long as the
  // backend (in `nodes`), so a pointer read here stays valid.
  std::unique_ptr<std::atomic<Node*>[]> slots;
  std::vector<std::shared_ptr<Node>> primaries;           // the owners, each once
  // read_replicas: the replica each slot's reads go to (null: the primary),
  // like `slots`.
  std::unique_ptr<std::atomic<Node*>[]> replicas;
  std::atomic<bool> stale{false};                         // refresh before the next routing
  std::timed_mutex refresh_mu;                            // one refresh at a time
  std::atomic<int64_t> refreshed_at{INT64_MIN};          // steady ms; written under refresh_mu
  std::atomic<uint64_t> refreshes{0}, moved{0}, asked{0}, changes{0};

 private:
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu)); }
  void fork_child() override { fork::renew(refresh_mu); }
  fork::Enrolment fork_;
};

// redis+sentinel:// read_from=replica: the replica this process reads from,
// chosen among those the sentinels list as usable (redis_sentinel.h), one per
// process (by pid, so a fleet's processes spread over the replicas). Listed
// at the first read and again when kReplicaMapMaxAgeMs old or after the
// replica failed; one thread lists while the others read from the current
// choice (or the master when there is none) instead of waiting.
//
// fork(): `mu` is held across fork; list_mu, held over the sentinel round
// trips, is renewed in the child (as Cluster::refresh_mu).
struct RedisBackend::Replicas final : private fork::Hooks {
  Replicas() { fork_.enrol(this); }
  ~Replicas() { fork_.leave(); }
  Replicas(const Replicas&) = delete;
  Replicas& operator=(const Replicas&) = delete;

  mutable std::mutex mu;                               // guards nodes
  NodeMap nodes;                                       // node_in()
  std::atomic<Node*> current{nullptr};                 // null: read from the master
  std::atomic<bool> stale{true};                       // list before the next read
  std::mutex list_mu;                                  // one listing at a time (try_lock)
  std::atomic<int64_t> listed_at{INT64_MIN};           // steady ms

 private:
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu)); }
  void fork_child() override { fork::renew(list_mu); }
  fork::Enrolment fork_;
};

namespace {
// Redirections one call follows before giving up (a reshard moves a slot
// once: MOVED, or ASK then MOVED; more means a map in flux).
constexpr int kMaxRedirects = 5;
// A refresh asked for sooner than this after the last one is skipped (the
// current map is used): MOVED storms during a reshard cost one CLUSTER
// SLOTS per interval, not one per call.
constexpr int64_t kMinRefreshGapMs = 100;
// read_from=replica: the slot map (cluster) or the sentinels' replica list
// is read again when older than this, so replicas added (or re-attached
// after a failover) start taking reads without an error to prompt a
// refresh. One caller's read pays for it.
constexpr int64_t kReplicaMapMaxAgeMs = 5000;
}  // namespace

RedisBackend::RedisBackend(RedisOptions opt, BackendEvents* events) : opt_(std::move(opt)), events_(events) {
  if (opt_.cluster) {
    cluster_ = std::make_unique<Cluster>();
    cluster_->seeds = opt_.seeds;
    cluster_->slots = std::make_unique<std::atomic<Node*>[]>(kClusterSlots);
    if (opt_.read_replicas) cluster_->replicas = std::make_unique<std::atomic<Node*>[]>(kClusterSlots);
  } else {
    single_ = std::make_shared<Node>(opt_, HostPort{});
    if (opt_.sentinel && opt_.read_replicas) replicas_ = std::make_unique<Replicas>();
  }
}

RedisBackend::~RedisBackend() = default;

uint64_t RedisBackend::topology_refreshes() const { return cluster_ ? cluster_->refreshes.load() : 0; }
uint64_t RedisBackend::redirects(bool ask) const {
  return cluster_ ? (ask ? cluster_->asked : cluster_->moved).load() : 0;
}
uint64_t RedisBackend::primary_changes() const { return cluster_ ? cluster_->changes.load() : 0; }

void RedisBackend::note_switches() const {
  uint64_t now = opt_.sentinel->switches(), seen = switches_seen_.load();
  while (now > seen)
    if (switches_seen_.compare_exchange_weak(seen, now)) {
      for (uint64_t i = seen; i < now; ++i)
        if (events_) events_->on_failover();
      return;
    }
}

std::string RedisBackend::key_of(std::string_view key) const {
  std::string k;
  k.reserve(opt_.prefix.size() + key.size());
  k += opt_.prefix;
  k += key;
  return k;
}

std::shared_ptr<RedisBackend::Node> RedisBackend::node_in(std::mutex& mu, NodeMap& nodes, const HostPort& addr) const {
  std::lock_guard lock(mu);
  auto& n = nodes[addr.text()];
  if (!n) n = std::make_shared<Node>(opt_, addr);
  return n;
}

std::shared_ptr<RedisBackend::Node> RedisBackend::node_at(const HostPort& addr) const {
  return node_in(cluster_->mu, cluster_->nodes, addr);
}

std::vector<std::shared_ptr<RedisBackend::Node>> RedisBackend::primaries() const {
  if (!cluster_) return {single_};
  std::lock_guard lock(cluster_->mu);
  return cluster_->primaries;
}

void RedisBackend::refresh(bool force, int64_t deadline_ms) const {
  Cluster& c = *cluster_;
  std::unique_lock rl(c.refresh_mu, std::defer_lock);
  if (force) {
    if (deadline_ms == INT64_MAX) {
      rl.lock();
    } else if (!rl.try_lock_until(std::chrono::steady_clock::time_point(std::chrono::milliseconds(deadline_ms)))) {
      throw Error(CM_ETIMEOUT,
                  "redis backend: " + opt_.where() + ": another call was reading the slot map for longer than timeout_ms=" +
                      std::to_string(opt_.timeout_ms),
                  ErrorKind::Timeout);
    }
  } else if (!rl.try_lock()) {
    return;  // another thread is refreshing: route with the current map
  }
  if (!force && steady_ms() - c.refreshed_at.load() < kMinRefreshGapMs) return;
  // Ask the primaries first (they know the newest map), then every node
  // seen, then the seeds.
  std::vector<std::shared_ptr<Node>> ask = primaries();
  {
    std::lock_guard lock(c.mu);
    for (auto& [name, n] : c.nodes)
      if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
  }
  for (const HostPort& seed : c.seeds) {
    auto n = node_at(seed);
    if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
  }
  std::string failures;
  bool not_cluster = false, out_of_time = false;
  for (auto& n : ask) {
    // Each node asked may cost its timeouts: a call's budget stops the walk.
    if (!failures.empty() && steady_ms() >= deadline_ms) {
      out_of_time = true;
      break;
    }
    std::vector<SlotRange> ranges;
    try {
      Lease l(*this, *n);
      Reply r = l.run({"CLUSTER", "SLOTS"}, "CLUSTER SLOTS");
      ranges = parse_cluster_slots(*r, n->addr.host);
    } catch (const Error& e) {
      std::string what = e.what();
      if (what.find("cluster support disabled") != std::string::npos) not_cluster = true;
      failures += "; " + what;
      continue;
    }
    if (ranges.empty()) {
      failures += "; " + n->addr.text() + ": serves no slot (a cluster still forming?)";
      continue;
    }
    install(ranges);
    c.refreshed_at = steady_ms();
    c.stale = false;
    ++c.refreshes;
    if (events_) events_->on_topology_refresh();
    return;
  }
  c.refreshed_at = steady_ms();
  throw Error(out_of_time ? CM_ETIMEOUT : not_cluster ? CM_EINVAL : CM_EUNAVAILABLE,
              "redis backend: " + opt_.where() + ": no node gave the slot map (" +
                  (failures.empty() ? std::string("no node known") : failures.substr(2)) + ")" +
                  (out_of_time ? "; the other nodes were not asked: the call's timeout_ms=" +
                                     std::to_string(opt_.timeout_ms) + " had passed"
                               : "") +
                  (not_cluster ? ": a node is not in cluster mode (cluster-enabled no)" : ""),
              out_of_time ? ErrorKind::Timeout : ErrorKind::Connection);
}

void RedisBackend::install(const std::vector<SlotRange>& ranges) const {
  Cluster& c = *cluster_;
  std::vector<std::shared_ptr<Node>> owners;
  // read_replicas: one replica per range (chosen by its first slot, so the
  // ranges of a primary with several replicas spread over them).
  std::vector<std::shared_ptr<Node>> readers(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const SlotRange& r = ranges[i];
    auto n = node_at(r.primary);
    if (std::find(owners.begin(), owners.end(), n) == owners.end()) owners.push_back(n);
    if (c.replicas && !r.replicas.empty())
      readers[i] = node_at(r.replicas[static_cast<size_t>(r.first) % r.replicas.size()]);
  }
  std::lock_guard lock(c.mu);
  std::vector<Node*> slots(kClusterSlots, nullptr), reps(kClusterSlots, nullptr);
  for (size_t i = 0; i < ranges.size(); ++i) {
    const SlotRange& r = ranges[i];
    Node* n = c.nodes[r.primary.text()].get();
    for (int s = r.first; s <= r.last; ++s) {
      slots[static_cast<size_t>(s)] = n;
      reps[static_cast<size_t>(s)] = readers[i].get();
    }
  }
  for (size_t s = 0; s < slots.size(); ++s) {
    c.slots[s].store(slots[s], std::memory_order_release);
    if (c.replicas) c.replicas[s].store(reps[s], std::memory_order_release);
  }
  auto sorted = [](std::vector<std::shared_ptr<Node>> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (sorted(owners) != sorted(c.primaries)) {
    // A primary joined, left or was replaced (a failover): invalidation
    // listeners must follow (change_feed()).
    const bool failover = !c.primaries.empty();
    c.primaries = std::move(owners);
    if (failover) {
      ++c.changes;
      if (events_) events_->on_failover();
    }
  }
}

bool RedisBackend::read_replica(int slot, Node* rep, const Argv& argv, const char* what, Reply* out) const {
  Cluster& cl = *cluster_;
  Reply r;
  try {
    Lease c(*this, *rep);
    r = c.run(argv, what);
  } catch (const Error& e) {
    if (e.status() != CM_EUNAVAILABLE && e.status() != CM_ETIMEOUT) throw;
    // A replica down or failing over: a read is safe to repeat, so the
    // primary answers this one; the replica is tried again once a refresh
    // lists it (Redis leaves failed replicas out of CLUSTER SLOTS).
    if (events_) events_->on_node_error(rep->addr.text(), e.kind());
    cl.replicas[static_cast<size_t>(slot)].store(nullptr, std::memory_order_release);
    cl.stale = true;
    return false;
  }
  Redirect to;
  if (r->type == REDIS_REPLY_ERROR && parse_redirect(std::string_view(r->str, r->len), &to)) {
    // The replica's primary no longer serves the slot (a reshard or a
    // failover): the primary route follows the map.
    cl.replicas[static_cast<size_t>(slot)].store(nullptr, std::memory_order_release);
    cl.stale = true;
    return false;
  }
  *out = std::move(r);
  return true;
}

RedisBackend::Node* RedisBackend::sentinel_replica() const {
  Replicas& rs = *replicas_;
  const int64_t now = steady_ms();
  if ((rs.stale.load(std::memory_order_relaxed) ||
       now - rs.listed_at.load(std::memory_order_relaxed) >= kReplicaMapMaxAgeMs) &&
      rs.list_mu.try_lock()) {
    std::lock_guard<std::mutex> listing(rs.list_mu, std::adopt_lock);
    rs.stale = false;
    rs.listed_at = now;
    std::vector<HostPort> usable;
    try {
      usable = opt_.sentinel->replicas();
    } catch (const Error&) {
      // No sentinel answers: keep the current choice until the next listing.
      return rs.current.load(std::memory_order_acquire);
    }
    Node* pick = usable.empty()
                     ? nullptr
                     : node_in(rs.mu, rs.nodes, usable[static_cast<size_t>(::getpid()) % usable.size()]).get();
    rs.current.store(pick, std::memory_order_release);
  }
  return rs.current.load(std::memory_order_acquire);
}

bool RedisBackend::read_sentinel_replica(Node& rep, const Argv& argv, const char* what, Reply* out) const {
  try {
    Lease c(*this, rep);
    *out = c.run(argv, what);
    return true;
  } catch (const Error& e) {
    // Down, timing out, loading, or cut off from its master
    // (replica-serve-stale-data no): a read is safe to repeat, and the
    // master answers this one; the next read lists the replicas again.
    if (events_) events_->on_node_error(rep.addr.text(), e.kind());
    Node* expected = &rep;
    replicas_->current.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel);
    replicas_->stale = true;
    return false;
  }
}

RedisBackend::Reply RedisBackend::call(std::string_view route_key, const Argv& argv, const char* what,
                                       bool read) const {
  if (!cluster_) {
    if (!opt_.sentinel) {
      Lease c(*this);
      return c.run(argv, what);
    }
    if (read && replicas_)
      if (Node* rep = sentinel_replica()) {
        Reply r;
        if (read_sentinel_replica(*rep, argv, what, &r)) return r;
      }
    // redis+sentinel://: a failed call counts against the master it reached
    // (the old one, until the sentinels name the new); a call that found no
    // sentinel to name one reached no node.
    std::string at;
    try {
      Lease c(*this, *single_, &at);
      return c.run(argv, what);
    } catch (const Error& e) {
      if (events_ && !at.empty()) events_->on_node_error(at, e.kind());
      throw;
    }
  }
  Cluster& cl = *cluster_;
  // The call's budget: no node is contacted (map read, replica, redirection)
  // once timeout_ms has passed since the call began; the contact under way
  // ends within its own timeouts. The first contact is always made.
  const int64_t started = steady_ms(), deadline = started + opt_.timeout_ms;
  bool contacted = false;
  auto in_budget = [&](const char* doing) {
    if (!contacted) return;
    if (steady_ms() >= deadline)
      throw Error(CM_ETIMEOUT,
                  "redis backend: " + opt_.where() + ": " + what + ": timeout_ms=" + std::to_string(opt_.timeout_ms) +
                      " passed before " + doing,
                  ErrorKind::Timeout);
  };
  if (cl.stale ||
      (read && cl.replicas && started - cl.refreshed_at.load(std::memory_order_relaxed) >= kReplicaMapMaxAgeMs)) {
    contacted = true;
    try {
      refresh(false, deadline);
    } catch (const Error&) {
      // The call below reports the outage as it meets it.
    }
  }
  const int slot = cluster_slot(route_key);
  auto owner = [&] { return cl.slots[static_cast<size_t>(slot)].load(std::memory_order_acquire); };
  Node* node = owner();
  if (!node) {
    in_budget("reading the slot map");
    contacted = true;
    refresh(true, deadline);
    node = owner();
    if (!node)
      throw Error(CM_EUNAVAILABLE,
                  "redis backend: " + opt_.where() + ": no node serves slot " + std::to_string(slot) +
                      " (the cluster is missing slots)",
                  ErrorKind::Connection);
  }
  if (Node* rep = read && cl.replicas ? cl.replicas[static_cast<size_t>(slot)].load(std::memory_order_acquire)
                                      : nullptr) {
    in_budget("reading a replica");
    contacted = true;
    Reply r;
    if (read_replica(slot, rep, argv, what, &r)) return r;
  }
  bool asking = false;
  for (int hop = 0;; ++hop) {
    Reply r;
    in_budget(hop == 0 ? "calling the slot's primary" : "following a redirection");
    contacted = true;
    try {
      Lease c(*this, *node);
      if (asking) c.run({"ASKING"}, "ASKING");
      r = c.run(argv, what);
    } catch (const Error& e) {
      // A node down or a cluster failing over: learn the new map before the
      // next call (the failed call itself is not retried: it may have run).
      if (e.status() == CM_EUNAVAILABLE || e.status() == CM_ETIMEOUT) cl.stale = true;
      if (events_) events_->on_node_error(node->addr.text(), e.kind());
      throw;
    }
    Redirect to;
    if (r->type != REDIS_REPLY_ERROR || !parse_redirect(std::string_view(r->str, r->len), &to)) return r;
    if (hop >= kMaxRedirects)
      throw Error(CM_EUNAVAILABLE,
                  "redis backend: " + opt_.where() + ": " + what + ": more than " + std::to_string(kMaxRedirects) +
                      " redirections for slot " + std::to_string(slot) + " (last: " +
                      std::string(r->str, r->len) + ")",
                  ErrorKind::Connection);
    if (to.to.host.empty()) to.to.host = node->addr.host;
    node = node_at(to.to).get();
    if (to.ask) {
      // The slot is migrating: this one key is at the target already. The
      // map is unchanged until the migration ends (then MOVED).
      ++cl.asked;
      if (events_) events_->on_redirect(true);
      asking = true;
    } else {
      ++cl.moved;
      if (events_) events_->on_redirect(false);
      asking = false;
      cl.slots[static_cast<size_t>(to.slot)].store(node, std::memory_order_release);
      if (cl.replicas) cl.replicas[static_cast<size_t>(to.slot)].store(nullptr, std::memory_order_release);
      cl.stale = true;  // other slots probably moved too: refresh soon
    }
  }
}

RedisBackend::Reply RedisBackend::call(std::string_view route_key, std::initializer_list<std::string_view> args,
                                       const char* what) const {
  return call(route_key, Argv(args), what);
}

RedisBackend::Reply RedisBackend::call(std::string_view route_key, std::vector<const char*>& argv,
                                       std::vector<size_t>& lens, const char* what) const {
  return call(route_key, Argv(argv.data(), lens.data(), argv.size()), what);
}

bool RedisBackend::get(std::string_view key, int64_t now_ms_front, Fetched* out) {
  const int64_t now_ms = wall_.to_wall(now_ms_front);
  std::string k = key_of(key);
  Reply r = call(k, Argv({"GET", k}), "GET", /*read=*/true);
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
  if (keep == kNever) {
    call(k, {"SET", k, v}, "SET");
  } else {
    // PXAT in the past deletes the key: an entry already past keep_until.
    std::string at = std::to_string(std::max<int64_t>(keep, 1));
    call(k, {"SET", k, v, "PXAT", at}, "SET");
  }
}

bool RedisBackend::del(std::string_view key, int64_t now_ms_front) {
  wall_.to_wall(now_ms_front);
  std::string k = key_of(key);
  Reply r = call(k, {"UNLINK", k}, "UNLINK");
  return r->type == REDIS_REPLY_INTEGER && r->integer > 0;
}

// SCAN MATCH <prefix>* on one node, calling each(keys reply) per batch.
template <class F>
void RedisBackend::scan(Node& node, F&& each) const {
  const std::string match = glob_escape(opt_.prefix) + "*";
  std::string cursor = "0";
  do {
    Reply r;
    {
      Lease c(*this, node);
      r = c.run({"SCAN", cursor, "MATCH", match, "COUNT", "1000"}, "SCAN");
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
      throw Error(CM_EBACKEND, "redis backend: " + opt_.where() + ": SCAN: unexpected reply", ErrorKind::Protocol);
    cursor.assign(r->element[0]->str, r->element[0]->len);
    each(*r->element[1]);
  } while (cursor != "0");
}

void RedisBackend::clear() {
  if (cluster_) refresh(true);  // every primary, as the cluster is now
  for (auto& node : primaries()) {
    scan(*node, [&](const redisReply& keys) {
      // UNLINK of several keys must stay within one slot in a cluster:
      // group the batch by slot (one group on a single server).
      std::map<int, std::vector<size_t>> by_slot;
      for (size_t i = 0; i < keys.elements; ++i) {
        const redisReply* k = keys.element[i];
        if (k->type != REDIS_REPLY_STRING) continue;
        by_slot[cluster_ ? cluster_slot(std::string_view(k->str, k->len)) : 0].push_back(i);
      }
      for (auto& [slot, idx] : by_slot) {
        std::vector<const char*> argv{"UNLINK"};
        std::vector<size_t> lens{6};
        for (size_t i : idx) {
          argv.push_back(keys.element[i]->str);
          lens.push_back(keys.element[i]->len);
        }
        call(std::string_view(argv[1], lens[1]), argv, lens, "UNLINK");
      }
    });
  }
  last_entries_ = 0;
}

uint64_t RedisBackend::count() const {
  if (cluster_ && primaries().empty()) refresh(true);
  uint64_t n = 0;
  for (auto& node : primaries()) scan(*node, [&](const redisReply& keys) { n += keys.elements; });
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
  Reply r = call(k, {"SET", k, token, "NX", "PX", std::to_string(std::max<int64_t>(ttl_ms, 1))}, "SET NX (load lock)");
  return r->type == REDIS_REPLY_STATUS;  // +OK; nil when someone holds it
}

void RedisBackend::unlock(std::string_view key, std::string_view token) {
  std::string k = "cachemeter-lock:" + key_of(key);
  call(k, {"EVAL", kUnlockScript, "1", k, token}, "EVAL (load unlock)");
}

void RedisBackend::verify() {
  if (cluster_) refresh(true);
  for (auto& node : primaries()) {
    Lease c(*this, *node);
    Reply r = c.run({"PING"}, "PING");
    if (r->type != REDIS_REPLY_STATUS || std::string_view(r->str, r->len) != "PONG")
      throw Error(CM_EBACKEND, "redis backend: " + opt_.where() + ": PING: unexpected reply", ErrorKind::Protocol);
  }
}

int RedisBackend::health() {
  return report("redis backend", [&]() -> int {
    verify();
    return CM_OK;
  });
}

namespace {

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
    hp.port = decimal_port(port);
    if (hp.port == 0) throw bad_uri(uri, "bad port \"" + port + "\" (1..65535)");
  }
  return hp;
}

// host[:port],host[:port]...: a sentinel or seed node list (non-empty).
std::vector<HostPort> parse_host_list(const Uri& uri, const std::string& hosts, int default_port, const char* what) {
  std::vector<HostPort> out;
  for (size_t at = 0; at <= hosts.size();) {
    size_t comma = hosts.find(',', at);
    if (comma == std::string::npos) comma = hosts.size();
    std::string one = hosts.substr(at, comma - at);
    if (one.empty()) throw bad_uri(uri, std::string("an empty entry in the ") + what + " list");
    out.push_back(parse_host_port(uri, one, default_port));
    at = comma + 1;
  }
  return out;
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

// redis+cluster://: one invalidation listener per primary (each tracks its
// node's keys under the prefix: BCAST tracking is per node), connected only
// while all are. The set follows the primaries: when a refresh of the slot
// map sees it change (a failover, a node added or removed), the next
// connected() or wait_connected() starts listeners on the new primaries,
// stops those on nodes that left, and flushes (each new listener flushes
// again once subscribed, before it counts as connected).
//
// connected() is on a tiered get's path: an atomic compare and an atomic
// load, the listeners' state being folded into all_connected_ by their
// state hook (RedisInvalidation's on_state).
class RedisBackend::ClusterFeed final : public ChangeFeed::Subscription, private fork::Hooks {
 public:
  ClusterFeed(const RedisBackend& b, Callbacks cb) : b_(b), cb_(std::move(cb)) {
    follow(true);
    fork_.enrol(this);
  }
  ~ClusterFeed() override {
    fork_.leave();
    std::vector<std::unique_ptr<RedisInvalidation>> stop;
    {
      std::lock_guard lock(mu_);
      for (auto& l : listeners_) stop.push_back(std::move(l.second));
      listeners_.clear();
      closing_ = true;
    }
    stop.clear();  // joins their threads, outside mu_ (their hooks take it)
  }

  bool connected() const override {
    if (b_.cluster_->changes.load(std::memory_order_acquire) != seen_.load(std::memory_order_acquire))
      [[unlikely]] const_cast<ClusterFeed*>(this)->follow(false);
    return all_connected_.load(std::memory_order_acquire);
  }
  bool wait_connected(int timeout_ms) const override {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      if (connected()) return true;
      // A primary may be gone for good: read the map again (rate-limited),
      // so that listeners move to its replacement.
      try {
        b_.refresh(false);
      } catch (const Error&) {
      }
      std::unique_lock lock(mu_);
      if (std::chrono::steady_clock::now() >= deadline) return all_connected_.load();
      cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
    }
  }
  // fork(): each listener is inherited (redis_invalidation.h); revive()
  // starts the child's own.
  bool inherited() const override { return inherited_.load(std::memory_order_relaxed); }
  void revive() override {
    std::lock_guard lock(mu_);
    for (auto& l : listeners_) l.second->revive();
    inherited_ = false;
  }

 private:
  // Listeners for the primaries now; flush when the set changed.
  void follow(bool first) {
    std::vector<std::unique_ptr<RedisInvalidation>> stop;
    bool changed = false;
    {
      std::lock_guard lock(mu_);
      uint64_t changes = b_.cluster_->changes.load(std::memory_order_acquire);
      if (!first && changes == seen_.load()) return;  // another thread followed
      std::vector<std::shared_ptr<Node>> now = b_.primaries();
      std::vector<std::pair<std::string, std::unique_ptr<RedisInvalidation>>> keep;
      for (auto& n : now) {
        std::string name = n->addr.text();
        auto it = std::find_if(listeners_.begin(), listeners_.end(), [&](auto& l) { return l.first == name; });
        if (it != listeners_.end()) {
          keep.push_back(std::move(*it));
          listeners_.erase(it);
          continue;
        }
        RedisOptions o = b_.opt_;
        o.cluster = false;
        o.seeds.clear();
        o.host = n->addr.host;
        o.port = n->addr.port;
        keep.emplace_back(name, std::make_unique<RedisInvalidation>(o, b_.opt_.prefix, cb_, [this] { update(); }));
        changed = true;
      }
      for (auto& l : listeners_) stop.push_back(std::move(l.second));
      changed = changed || !stop.empty();
      listeners_ = std::move(keep);
      seen_.store(changes, std::memory_order_release);
      recompute();
    }
    stop.clear();  // outside mu_: their hooks take it
    // Keys moved between nodes while no listener watched the new owner.
    if (changed && !first && cb_.flush) cb_.flush();
  }
  // A listener's connected() changed.
  void update() {
    {
      std::lock_guard lock(mu_);
      recompute();
    }
    cv_.notify_all();
  }
  void recompute() {  // under mu_
    bool all = !listeners_.empty() && !closing_;
    for (auto& l : listeners_) all = all && l.second->connected();
    all_connected_.store(all, std::memory_order_release);
  }

  const RedisBackend& b_;
  const Callbacks cb_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<std::pair<std::string, std::unique_ptr<RedisInvalidation>>> listeners_;  // under mu_
  bool closing_ = false;                                                              // under mu_
  std::atomic<uint64_t> seen_{0};
  std::atomic<bool> all_connected_{false};
  std::atomic<bool> inherited_{false};
  fork::Enrolment fork_;

  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  void fork_child() override {
    fork::renew(cv_);
    all_connected_ = false;
    inherited_ = true;
  }
};

std::unique_ptr<ChangeFeed::Subscription> RedisBackend::subscribe(Callbacks cb) {
  if (cluster_) return std::make_unique<ClusterFeed>(*this, std::move(cb));
  return std::make_unique<RedisInvalidation>(opt_, opt_.prefix, std::move(cb));
}

// The table's entry (cache/backend_table.h): a server other processes
// share, the L2 of a tiered cache with a change feed (its invalidations),
// behind a breaker by default (a server that went away fails fast).
const BackendSpec& redis_backend_spec() {
  static constexpr std::string_view kSchemes[] = {"redis", "redis+unix", "redis+sentinel", "redis+cluster"};
  static constexpr std::string_view kOptions[] = {
      "namespace", "prefix", "timeout_ms",        "connect_timeout_ms", "pool",
      "user",      "password", "count_interval_ms", "db",                 "sentinel_user",
      "sentinel_password", "read_from"};
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

std::unique_ptr<Backend> make_redis_backend(const Uri& uri, BackendEvents* events) {
  const bool unix_socket = uri.scheme == "redis+unix";
  const bool sentinel = uri.scheme == "redis+sentinel";
  const bool cluster = uri.scheme == "redis+cluster";
  std::vector<std::string_view> known = known_options(redis_backend_spec());
  auto drop = [&](std::string_view name) { known.erase(std::find(known.begin(), known.end(), name)); };
  // db= is for sockets and sentinels only: redis://host:port/db names it in the path.
  if (!unix_socket && !sentinel) drop("db");
  if (!sentinel) {
    drop("sentinel_user");
    drop("sentinel_password");
  }
  if (!cluster && !sentinel) drop("read_from");  // replica reads: cluster and sentinel (docs/uri.md)
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
  } else if (cluster) {
    // [user:password@]node[:port][,node[:port]...][/]
    loc = take_user_info(loc, &o);
    auto slash = loc.find('/');
    if (slash != std::string::npos && slash + 1 != loc.size())
      throw bad("redis+cluster:// has no database path (a cluster has only db 0): \"" + loc.substr(slash) + "\"");
    std::string hosts = loc.substr(0, slash);
    if (hosts.empty()) throw bad("redis+cluster:// needs at least one seed node (redis+cluster://host:port,host2:port)");
    o.seeds = parse_host_list(uri, hosts, 6379, "node");
    o.cluster = true;
  } else if (sentinel) {
    // [user:password@]sentinel[:port][,sentinel[:port]...]/master-name
    loc = take_user_info(loc, &o);
    auto slash = loc.find('/');
    so.master_name = slash == std::string::npos ? "" : loc.substr(slash + 1);
    if (so.master_name.empty())
      throw bad("redis+sentinel:// needs the master's name (redis+sentinel://host:26379,host2:26379/mymaster)");
    std::string hosts = loc.substr(0, slash);
    if (hosts.empty()) throw bad("redis+sentinel:// needs at least one sentinel (host:port before the master's name)");
    so.sentinels = parse_host_list(uri, hosts, 26379, "sentinel");
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
  if (cluster || sentinel) {
    std::string from = uri.query.get("read_from", "primary");
    if (from != "primary" && from != "replica")
      throw bad("read_from= is primary or replica, not \"" + from + "\"");
    o.read_replicas = from == "replica";
  }
  if (sentinel) {
    so.connect_timeout_ms = o.connect_timeout_ms;
    so.timeout_ms = o.timeout_ms;
    auto resolver = std::make_shared<SentinelResolver>(std::move(so));
    o.sentinel = resolver;
    auto b = std::make_unique<RedisBackend>(std::move(o), events);
    try {
      b->verify();
    } catch (const Error& e) {
      // A master name no sentinel knows is the URI's mistake, not an outage.
      if (resolver->unknown_master()) throw Error(CM_EINVAL, "uri \"" + uri.text + "\": " + e.what());
      throw;
    }
    return b;
  }
  if (cluster) {
    // The slot map must be readable at open: a typo in the node list, or a
    // node not in cluster mode, fails here rather than on every call.
    auto b = std::make_unique<RedisBackend>(std::move(o), events);
    b->verify();
    return b;
  }
  return std::make_unique<RedisBackend>(std::move(o));
}

}  // namespace cm
