// SPDX-License-Identifier: Apache-2.0
// The sqlite:// backend. Interface and options: sqlite.h.
//
// Schema (user_version 1):
//   cm_entries(ns, key, value, fresh_until, keep_until, written)
//     PRIMARY KEY (ns, key), WITHOUT ROWID: a get is one b-tree descent that
//     lands on the value, with no rowid indirection.
//   cm_entries_expiry ON cm_entries(ns, keep_until, written)
//     serves both the incremental purge (expired rows come first) and the
//     eviction order, so a set maintains one index, not two.
//   cm_stats(ns PRIMARY KEY, entries, bytes, seq) WITHOUT ROWID
//     one row per namespace, updated in the same transaction as the rows it
//     counts: entries()/bytes() stay exact across connections and processes
//     without a COUNT(*). seq numbers writes: `written` of a row.
//
// Eviction order (when a set would exceed max_entries or max_bytes): the
// first row of the expiry index, that is the row that expires soonest (an
// already expired row first, reported as Expired; otherwise as Size), ties
// and rows that never expire by oldest write. With one TTL for a cache this
// is FIFO. Besides, every set deletes up to kPurgeRows rows past keep_until
// (Expired), and a get or del that finds its row past keep_until deletes it.
//
// Connections: a pool, one connection per concurrent caller (created on
// demand, kept until the backend closes), each with its statements prepared
// once; private page caches (no shared-cache mode). Writes run in BEGIN
// IMMEDIATE transactions: the write lock is taken up front, so two writers
// never deadlock upgrading read locks, and waiting for it is bounded by
// busy_timeout_ms. Reads are single statements (WAL: never blocked by a
// writer). Only the first connection may create the file: a pool connection
// opened after the file was removed fails instead of starting a new, empty
// database beside the open one.
//
// Time: now_ms comes from the front's monotonic clock, which restarts at boot
// and which a test may replace. The file stores wall-clock times (Unix ms):
// each backend maps its front's clock to the wall clock with an offset taken
// at its first call, so processes sharing the file (and a process after a
// reboot) agree on when a row expires, to within their clocks' agreement.
#include "backends/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "cache/backend_table.h"
#include "core/error.h"
#include "sqlite/db.h"
#include "util/fork.h"
#include "util/uri.h"

namespace cm {
namespace {

constexpr int kPurgeRows = 4;
// SQLITE_MAX_LENGTH (1e9) less room for the row's header and integers.
constexpr size_t kMaxRowBytes = 1000000000 - 4096;

const char* const kSchema =
    "CREATE TABLE IF NOT EXISTS cm_entries("
    " ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
    " fresh_until INTEGER NOT NULL, keep_until INTEGER NOT NULL, written INTEGER NOT NULL,"
    " PRIMARY KEY (ns, key)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS cm_entries_expiry ON cm_entries(ns, keep_until, written);"
    "CREATE TABLE IF NOT EXISTS cm_stats("
    " ns TEXT PRIMARY KEY, entries INTEGER NOT NULL, bytes INTEGER NOT NULL, seq INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

enum StmtId {
  kGet,
  kDelKey,
  kDelExpiredKey,
  kPurge,
  kEvictOne,
  kInsert,
  kStatsGet,
  kStatsPut,
  kClear,
  kBegin,
  kCommit,
  kRollback,
  kStmtCount
};

// Deleted rows return their charge less the overhead: length(key)+length(value).
const char* const kSql[kStmtCount] = {
    "SELECT value, fresh_until, keep_until FROM cm_entries WHERE ns = ?1 AND key = ?2",
    "DELETE FROM cm_entries WHERE ns = ?1 AND key = ?2 RETURNING length(key) + length(value), keep_until",
    "DELETE FROM cm_entries WHERE ns = ?1 AND key = ?2 AND keep_until <= ?3 RETURNING length(key) + length(value)",
    "DELETE FROM cm_entries WHERE ns = ?1 AND key IN (SELECT key FROM cm_entries WHERE ns = ?1 AND "
    "keep_until <= ?2 ORDER BY keep_until LIMIT ?3) RETURNING length(key) + length(value)",
    "DELETE FROM cm_entries WHERE ns = ?1 AND key = (SELECT key FROM cm_entries WHERE ns = ?1 "
    "ORDER BY keep_until, written LIMIT 1) RETURNING length(key) + length(value), keep_until",
    "INSERT INTO cm_entries(ns, key, value, fresh_until, keep_until, written) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    "SELECT entries, bytes, seq FROM cm_stats WHERE ns = ?1",
    "INSERT INTO cm_stats(ns, entries, bytes, seq) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(ns) DO UPDATE SET "
    "entries = excluded.entries, bytes = excluded.bytes, seq = excluded.seq",
    "DELETE FROM cm_entries WHERE ns = ?1",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

struct Tally {
  uint64_t size_n = 0, size_b = 0, exp_n = 0, exp_b = 0;
  void add(bool expired, uint64_t b) {
    (expired ? exp_n : size_n) += 1;
    (expired ? exp_b : size_b) += b;
  }
};

}  // namespace

// Errors name the backend and the file ("sqlite backend: /path: ..."); the
// status is sqlite::status_of's (sqlite/db.h).
struct SqliteBackend::Conn {
  sqlite::Db db;
  sqlite::Stmt st[kStmtCount];

  const sqlite::Stmt& stmt(StmtId id) const { return st[id]; }
  void run(StmtId id, const char* what) const {
    const sqlite::Stmt& s = st[id];
    sqlite::Use u(s);
    s.step(what);
  }
};

// Connections not in use. Grows to the number of threads calling at once.
//
// fork(): SQLite forbids carrying a connection into a child, and a child's
// new connection to a file the parent still has open shares SQLite's
// per-process lock bookkeeping (the parent's locks, which the child does not
// hold). So before fork the pool waits until no connection is leased and
// closes its idle ones (util/fork.h): neither process inherits any, both
// open new ones on their next call. SQLite's global mutexes are held across
// fork as well (enrol_sqlite_for_fork).
//
// A fork that finds connections leased closes a gate for kForkGate: new
// leases wait (at most kForkGate each) so that those in flight drain and
// the fork's next try finds the pool idle. Without it, threads that keep
// the pool leased could starve the fork of an idle moment past fork.h's
// 10 s, when the fork goes ahead unlocked and the child may hang on a SQLite
// mutex. A waiter may hold other locks: its wait is bounded, never
// lengthened by later rounds.
class SqliteBackend::Pool final : private fork::Hooks {
 public:
  Pool(const SqliteOptions& opt) : opt_(opt) {
    enrol_sqlite_for_fork();
    fork_.enrol(this);
  }

  std::unique_ptr<Conn> take() {
    {
      std::unique_lock lock(mu_);
      if (gate_until_ != Clock::time_point{}) {
        const auto until = std::min(gate_until_, Clock::now() + kForkGate);
        cv_.wait_until(lock, until, [&] { return gate_until_ == Clock::time_point{} || Clock::now() >= until; });
      }
      ++leased_;
      if (!free_.empty()) {
        auto c = std::move(free_.back());
        free_.pop_back();
        return c;
      }
    }
    try {
      return open(false);
    } catch (...) {
      std::lock_guard lock(mu_);
      --leased_;
      throw;
    }
  }
  // Returns what take() leased.
  void give(std::unique_ptr<Conn> c) {
    std::lock_guard lock(mu_);
    --leased_;
    free_.push_back(std::move(c));
  }
  // Adds a connection that was never leased (the first one).
  void add_idle(std::unique_ptr<Conn> c) {
    std::lock_guard lock(mu_);
    free_.push_back(std::move(c));
  }

  std::unique_ptr<Conn> open(bool create) {
    auto c = std::make_unique<Conn>();
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    if (create) flags |= SQLITE_OPEN_CREATE;
    c->db = sqlite::Db::open(opt_.path, flags, "sqlite backend: " + opt_.path);
    const sqlite::Db& db = c->db;
    c->db.busy_timeout(opt_.busy_timeout_ms);
    // The first statement reads the header: a file that is not SQLite fails
    // here (SQLITE_NOTADB), before anything is written to it.
    db.exec("PRAGMA journal_mode = WAL", "cannot set WAL mode");
    db.exec(opt_.sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", "pragma synchronous");
    if (opt_.mmap_mb > 0)
      db.exec(("PRAGMA mmap_size = " + std::to_string(opt_.mmap_mb << 20)).c_str(), "pragma mmap_size");
    std::vector<std::string> extra;
    {
      std::lock_guard lock(mu_);
      extra = extra_sql_;
    }
    for (const auto& sql : extra) db.exec(sql.c_str(), "test pragma");
    if (create) {
      sqlite::Tx tx(db);  // "cannot take the write lock" past busy_timeout_ms
      db.exec(kSchema, "cannot create the schema");
      tx.commit();
    }
    prepare(*c);
    return c;
  }

  void add_sql(const std::string& sql) {
    std::lock_guard lock(mu_);
    extra_sql_.push_back(sql);
    for (auto& c : free_) c->db.exec(sql.c_str(), "test pragma");
  }

 private:
  void prepare(Conn& c) {
    for (int i = 0; i < kStmtCount; ++i) {
      try {
        c.st[i] = c.db.prepare(kSql[i], "cannot prepare a statement");
      } catch (const Error&) {
        // A file with our table names but another layout is not ours.
        if (sqlite3_extended_errcode(c.db.get()) == SQLITE_ERROR)
          c.db.fail(SQLITE_CORRUPT, "unexpected schema (not a cachemeter database?)");
        throw;
      }
    }
  }

  // Held across fork only while no connection is leased; else closes the
  // gate (see above).
  bool try_lock_idle() {
    if (!mu_.try_lock()) return false;
    if (leased_ == 0) return true;
    gate_until_ = Clock::now() + kForkGate;
    mu_.unlock();
    return false;
  }
  // After fork (mu_ held): the gate opens.
  void open_gate() {
    gate_until_ = Clock::time_point{};
    cv_.notify_all();
  }
  void fork_locks(std::vector<fork::Lock>& out) override {
    out.push_back({this, [](void* p) { return static_cast<Pool*>(p)->try_lock_idle(); },
                   [](void* p) { static_cast<Pool*>(p)->mu_.unlock(); }});
  }
  void fork_prepare() override { free_.clear(); }  // in the parent, every lock held
  void fork_parent() override { open_gate(); }
  void fork_child() override {
    fork::renew(cv_);  // the parent's threads may have waited at the gate
    open_gate();
  }

  using Clock = std::chrono::steady_clock;
  static constexpr auto kForkGate = std::chrono::milliseconds(20);
  const SqliteOptions& opt_;
  std::mutex mu_;
  std::condition_variable cv_;            // the gate opened
  Clock::time_point gate_until_{};        // mu_; {}: open
  std::vector<std::unique_ptr<Conn>> free_;
  int leased_ = 0;  // connections out with a Lease; mu_
  std::vector<std::string> extra_sql_;
  fork::Enrolment fork_;
};

// A connection for the duration of one operation.
class SqliteBackend::Lease {
 public:
  explicit Lease(Pool& p) : pool_(p), c_(p.take()) {}
  ~Lease() {
    if (!sqlite3_get_autocommit(c_->db.get())) c_->db.exec_quietly("ROLLBACK");
    pool_.give(std::move(c_));
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Conn* operator->() const { return c_.get(); }
  Conn& operator*() const { return *c_; }

 private:
  Pool& pool_;
  std::unique_ptr<Conn> c_;
};

namespace {

// A namespace's row of cm_stats: entries, bytes, and the write sequence
// that orders eviction by age. Read and written inside the caller's
// transaction, so it stays exact across processes.
struct Stats {
  uint64_t n = 0, b = 0;
  int64_t seq = 0;
};

template <class Conn>
Stats read_stats(const Conn& c, const std::string& ns) {
  Stats st;
  const sqlite::Stmt& g = c.stmt(kStatsGet);
  sqlite::Use u(g);
  g.bind_text(1, ns);
  if (g.step("read stats")) st = {static_cast<uint64_t>(g.int64(0)), static_cast<uint64_t>(g.int64(1)), g.int64(2)};
  return st;
}

template <class Conn>
void write_stats(const Conn& c, const std::string& ns, const Stats& st) {
  const sqlite::Stmt& p = c.stmt(kStatsPut);
  sqlite::Use u(p);
  p.bind_text(1, ns);
  p.bind_int(2, static_cast<int64_t>(st.n));
  p.bind_int(3, static_cast<int64_t>(st.b));
  p.bind_int(4, st.seq);
  p.step("update stats");
}

}  // namespace

SqliteBackend::SqliteBackend(SqliteOptions opt, BackendEvents* events)
    : opt_(std::move(opt)), events_(events), pool_(std::make_unique<Pool>(opt_)) {
  auto first = pool_->open(true);
  {
    // What entries()/bytes() answer should the file become unreadable.
    const sqlite::Stmt& s = first->stmt(kStatsGet);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    if (s.step("cannot read the stats row")) {
      last_entries_ = static_cast<uint64_t>(s.int64(0));
      last_bytes_ = static_cast<uint64_t>(s.int64(1));
    }
  }
  struct stat st {};
  if (::stat(opt_.path.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  pool_->add_idle(std::move(first));
}

SqliteBackend::~SqliteBackend() = default;

namespace {

// SQLite's own global mutexes (its allocator, the unix VFS's list of open
// files, the page cache, ...): a child forked while another thread holds one
// would wait for it forever on its first SQLite call. They are plain pthread
// mutexes, so the forking thread may release them in the child.
class SqliteGlobals final : private fork::Hooks {
 public:
  SqliteGlobals() {
    sqlite3_initialize();
    for (int id : {SQLITE_MUTEX_STATIC_MAIN, SQLITE_MUTEX_STATIC_MEM, SQLITE_MUTEX_STATIC_OPEN,
                   SQLITE_MUTEX_STATIC_PRNG, SQLITE_MUTEX_STATIC_LRU, SQLITE_MUTEX_STATIC_PMEM,
                   SQLITE_MUTEX_STATIC_APP1, SQLITE_MUTEX_STATIC_APP2, SQLITE_MUTEX_STATIC_APP3,
                   SQLITE_MUTEX_STATIC_VFS1, SQLITE_MUTEX_STATIC_VFS2, SQLITE_MUTEX_STATIC_VFS3})
      if (sqlite3_mutex* m = sqlite3_mutex_alloc(id)) mutexes_.push_back(m);
    fork_.enrol(this);
  }

 private:
  void fork_locks(std::vector<fork::Lock>& out) override {
    for (sqlite3_mutex* m : mutexes_)
      out.push_back({m, [](void* p) { return sqlite3_mutex_try(static_cast<sqlite3_mutex*>(p)) == SQLITE_OK; },
                     [](void* p) { sqlite3_mutex_leave(static_cast<sqlite3_mutex*>(p)); },
                     /*late=*/true});  // after the pools closed their connections
  }
  std::vector<sqlite3_mutex*> mutexes_;
  fork::Enrolment fork_;
};

}  // namespace

void enrol_sqlite_for_fork() {
  static SqliteGlobals* globals = new SqliteGlobals();  // never destroyed, like SQLite's mutexes
  (void)globals;
}

void SqliteBackend::exec_on_connections_for_testing(const std::string& sql) { pool_->add_sql(sql); }

bool SqliteBackend::get(std::string_view key, int64_t now_ms_front, Fetched* out) {
  const int64_t now_ms = wall_.to_wall(now_ms_front);
  Lease c(*pool_);
  {
    const sqlite::Stmt& s = c->stmt(kGet);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_blob(2, key);
    if (!s.step("get")) return false;
    if (now_ms < s.int64(2)) [[likely]] {
      std::string_view v = s.blob(0);
      size_t n = v.size();
      void* data = std::malloc(n + 1);
      if (!data) throw std::bad_alloc();
      if (n) std::memcpy(data, v.data(), n);
      static_cast<char*>(data)[n] = '\0';
      out->data = data;
      out->len = n;
      out->fresh_until_ms = wall_.from_wall(s.int64(1));
      return true;
    }
  }
  // Past keep_until: drop it (unless another connection rewrote it since).
  c->run(kBegin, "cannot take the write lock");
  uint64_t dropped = 0;
  bool found = false;
  {
    const sqlite::Stmt& s = c->stmt(kDelExpiredKey);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_blob(2, key);
    s.bind_int(3, now_ms);
    if ((found = s.step("delete an expired entry"))) dropped = static_cast<uint64_t>(s.int64(0)) + kSqliteEntryOverhead;
    s.drain("delete an expired entry");
  }
  if (found) {
    Stats st = read_stats(*c, opt_.ns);
    st.n -= std::min<uint64_t>(st.n, 1);
    st.b -= std::min(st.b, dropped);
    write_stats(*c, opt_.ns, st);
    last_entries_ = st.n;
    last_bytes_ = st.b;
  }
  c->run(kCommit, "commit");
  if (found && events_) events_->on_evict(EvictReason::Expired, 1, dropped);
  return false;
}

void SqliteBackend::set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms_front) {
  const int64_t now_ms = wall_.to_wall(now_ms_front);
  e.fresh_until_ms = wall_.to_wall(e.fresh_until_ms);
  e.keep_until_ms = wall_.to_wall(e.keep_until_ms);
  uint64_t charge = key.size() + value.size() + kSqliteEntryOverhead;
  if (opt_.max_bytes && charge > opt_.max_bytes)
    throw Error(CM_ELIMIT, "sqlite backend: " + opt_.path + ": an entry of " + std::to_string(charge) +
                               " bytes (key + value + per-entry overhead) exceeds max_bytes=" +
                               std::to_string(opt_.max_bytes));
  // SQLITE_MAX_LENGTH bounds the whole row: checked here, so that SQLITE_TOOBIG
  // only ever means a stored value past the limit (CM_ECORRUPT, sqlite/db.h).
  if (key.size() + value.size() + opt_.ns.size() > kMaxRowBytes)
    throw Error(CM_ELIMIT, "sqlite backend: a key and value of " + std::to_string(key.size() + value.size()) +
                               " bytes exceed SQLite's row limit (SQLITE_MAX_LENGTH, 1e9 bytes)");
  Lease c(*pool_);
  Tally t;
  c->run(kBegin, "cannot take the write lock");
  Stats st = read_stats(*c, opt_.ns);
  auto forget = [&](uint64_t b) {
    st.n -= std::min<uint64_t>(st.n, 1);
    st.b -= std::min(st.b, b);
  };
  {
    // The entry being replaced (not an eviction, even if it had expired).
    const sqlite::Stmt& s = c->stmt(kDelKey);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_blob(2, key);
    while (s.step("replace")) forget(static_cast<uint64_t>(s.int64(0)) + kSqliteEntryOverhead);
  }
  {
    const sqlite::Stmt& s = c->stmt(kPurge);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_int(2, now_ms);
    s.bind_int(3, kPurgeRows);
    while (s.step("purge expired entries")) {
      uint64_t b = static_cast<uint64_t>(s.int64(0)) + kSqliteEntryOverhead;
      forget(b);
      t.add(true, b);
    }
  }
  while (st.n && ((opt_.max_entries && st.n + 1 > opt_.max_entries) || (opt_.max_bytes && st.b + charge > opt_.max_bytes))) {
    const sqlite::Stmt& s = c->stmt(kEvictOne);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    if (!s.step("evict")) {
      st.n = st.b = 0;  // the stats row overcounted: nothing left to evict
      break;
    }
    uint64_t b = static_cast<uint64_t>(s.int64(0)) + kSqliteEntryOverhead;
    forget(b);
    t.add(now_ms >= s.int64(1), b);
    s.drain("evict");
  }
  {
    const sqlite::Stmt& s = c->stmt(kInsert);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_blob(2, key);
    s.bind_blob(3, value);
    s.bind_int(4, e.fresh_until_ms);
    s.bind_int(5, e.keep_until_ms);
    s.bind_int(6, ++st.seq);
    s.step("insert");
  }
  ++st.n;
  st.b += charge;
  write_stats(*c, opt_.ns, st);
  c->run(kCommit, "commit");
  last_entries_ = st.n;
  last_bytes_ = st.b;
  if (events_) {
    if (t.size_n) events_->on_evict(EvictReason::Size, t.size_n, t.size_b);
    if (t.exp_n) events_->on_evict(EvictReason::Expired, t.exp_n, t.exp_b);
  }
}

bool SqliteBackend::del(std::string_view key, int64_t now_ms_front) {
  const int64_t now_ms = wall_.to_wall(now_ms_front);
  Lease c(*pool_);
  c->run(kBegin, "cannot take the write lock");
  bool found = false;
  bool live = false;
  uint64_t b = 0;
  {
    const sqlite::Stmt& s = c->stmt(kDelKey);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.bind_blob(2, key);
    if ((found = s.step("delete"))) {
      b = static_cast<uint64_t>(s.int64(0)) + kSqliteEntryOverhead;
      live = now_ms < s.int64(1);
    }
    s.drain("delete");
  }
  if (!found) return false;  // the lease rolls the empty transaction back
  Stats st = read_stats(*c, opt_.ns);
  st.n -= std::min<uint64_t>(st.n, 1);
  st.b -= std::min(st.b, b);
  write_stats(*c, opt_.ns, st);
  c->run(kCommit, "commit");
  last_entries_ = st.n;
  last_bytes_ = st.b;
  if (!live && events_) events_->on_evict(EvictReason::Expired, 1, b);
  return live;
}

void SqliteBackend::clear() {
  Lease c(*pool_);
  c->run(kBegin, "cannot take the write lock");
  {
    const sqlite::Stmt& s = c->stmt(kClear);
    sqlite::Use u(s);
    s.bind_text(1, opt_.ns);
    s.step("clear");
  }
  Stats st = read_stats(*c, opt_.ns);
  write_stats(*c, opt_.ns, Stats{0, 0, st.seq});  // the sequence keeps counting
  c->run(kCommit, "commit");
  last_entries_ = 0;
  last_bytes_ = 0;
}

void SqliteBackend::stats(uint64_t* n, uint64_t* b) const {
  Lease c(*pool_);
  Stats st = read_stats(*c, opt_.ns);
  last_entries_ = st.n;
  last_bytes_ = st.b;
  *n = st.n;
  *b = st.b;
}

uint64_t SqliteBackend::entries() const {
  uint64_t n = 0, b = 0;
  try {
    stats(&n, &b);
  } catch (...) {
    return last_entries_;
  }
  return n;
}

uint64_t SqliteBackend::bytes() const {
  uint64_t n = 0, b = 0;
  try {
    stats(&n, &b);
  } catch (...) {
    return last_bytes_;
  }
  return b;
}

int SqliteBackend::health() {
  return report("sqlite backend", [&]() -> int {
    struct stat st {};
    if (::stat(opt_.path.c_str(), &st) != 0)
      return set_error(CM_EUNAVAILABLE, "sqlite backend: " + opt_.path + ": the file was removed (" +
                                            std::strerror(errno) + "); the cache runs on the unlinked file");
    if (static_cast<uint64_t>(st.st_dev) != dev_ || static_cast<uint64_t>(st.st_ino) != ino_)
      return set_error(CM_EUNAVAILABLE, "sqlite backend: " + opt_.path +
                                            ": the file was replaced since it was opened; the cache runs on the old one");
    uint64_t n = 0, b = 0;
    stats(&n, &b);
    return CM_OK;
  });
}

// The table's entry (cache/backend_table.h): a file other processes share,
// the L2 of a tiered cache without a change feed; no breaker unless asked
// (a local file fails for reasons a pause does not cure).
const BackendSpec& sqlite_backend_spec() {
  static constexpr std::string_view kSchemes[] = {"sqlite"};
  static constexpr std::string_view kOptions[] = {"namespace",       "max_entries", "max_bytes",
                                                  "busy_timeout_ms", "synchronous", "mmap_mb"};
  static constexpr BackendSpec kSpec{
      .name = "sqlite",
      .schemes = kSchemes,
      .make = &make_sqlite_backend,
      .options = kOptions,
      .traits = {.shared = true, .tier_l1 = false, .tier_l2 = true, .change_feed = false},
      .breaker = {.failures = 0},
      .entry_overhead = kSqliteEntryOverhead,
  };
  return kSpec;
}

std::unique_ptr<Backend> make_sqlite_backend(const Uri& uri, BackendEvents* events) {
  uri.query.check_known(known_options(sqlite_backend_spec()));
  SqliteOptions o;
  if (uri.location.empty())
    throw Error(CM_EINVAL, "uri \"" + uri.text + "\": sqlite:// needs a file (sqlite:///abs/path.db or sqlite://rel.db)");
  if (uri.location == ":memory:" || uri.location.find('\0') != std::string::npos)
    throw Error(CM_EINVAL, "uri \"" + uri.text + "\": sqlite:// needs a file path, got \"" + uri.location + "\"");
  o.path = uri.location;
  if (o.path.front() != '/') {
    // Resolved now: connections opened later must not follow a chdir().
    std::unique_ptr<char, decltype(&std::free)> cwd(::getcwd(nullptr, 0), &std::free);
    if (!cwd) throw Error(CM_EUNAVAILABLE, "uri \"" + uri.text + "\": cannot read the working directory");
    o.path = std::string(cwd.get()) + "/" + o.path;
  }
  o.ns = uri.query.get("namespace", "");
  o.max_entries = static_cast<uint64_t>(uri.query.get_int("max_entries", 100000, 0, 1000000000000));
  o.max_bytes = static_cast<uint64_t>(uri.query.get_size("max_bytes", 0, 0, int64_t{1} << 50));
  o.busy_timeout_ms = static_cast<int>(uri.query.get_int("busy_timeout_ms", 5000, 0, 3600000));
  std::string sync = uri.query.get("synchronous", "normal");
  if (sync != "normal" && sync != "full")
    throw Error(CM_EINVAL, "uri \"" + uri.text + "\": option \"synchronous\" must be normal or full, got \"" + sync + "\"");
  o.sync_full = sync == "full";
  o.mmap_mb = uri.query.get_int("mmap_mb", 0, 0, 65536);
  return std::make_unique<SqliteBackend>(std::move(o), events);
}

}  // namespace cm
