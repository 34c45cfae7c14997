/* SPDX-License-Identifier: Apache-2.0 */
// The SQLite backend (sqlite://path.db): entries in one WAL-mode database
// file that several caches (namespaces), threads and processes on one host
// share, with TTLs, entry/byte caps and exact entries()/bytes() kept in a
// stats row updated in every write transaction. Schema and choices: sqlite.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <cachemeter/common.h>

#include "cache/backend.h"
#include "util/wall_clock.h"

struct sqlite3;

namespace cm {

struct Uri;

// Bytes charged per entry on top of its key and value bytes: the row's record
// header, its three integers and cell pointer, and its entry in the expiry
// index (which repeats the key: short keys assumed). An estimate of the
// file's cost, not a measurement: the file also holds free pages and the WAL.
inline constexpr uint64_t kSqliteEntryOverhead = 64;

struct SqliteOptions {
  std::string path;        // absolute (relative paths are resolved at open)
  std::string ns;          // namespace: the cache's share of the file
  uint64_t max_entries = 100000;  // 0: no cap
  uint64_t max_bytes = 0;         // 0: no cap
  int busy_timeout_ms = 5000;
  bool sync_full = false;  // synchronous=FULL rather than NORMAL
  int64_t mmap_mb = 0;
};

class SqliteBackend final : public Backend {
 public:
  // Opens (creating when absent) the file and its schema. Throws Error with
  // the status of sqlite::status_of's table (sqlite/db.h), shared with
  // persistence: CM_ECORRUPT for a file that is not SQLite (left untouched),
  // CM_EUNAVAILABLE when it cannot be opened or written (permissions, a
  // missing or read-only directory), CM_ETIMEOUT when another connection
  // holds the write lock past busy_timeout_ms while the schema is created.
  // Every other call throws by the same table.
  SqliteBackend(SqliteOptions opt, BackendEvents* events = nullptr);
  ~SqliteBackend() override;
  SqliteBackend(const SqliteBackend&) = delete;
  SqliteBackend& operator=(const SqliteBackend&) = delete;

  std::string_view kind() const override { return "sqlite"; }
  bool get(std::string_view key, int64_t now_ms, Fetched* out) override;
  // Throws Error(CM_ELIMIT) when key + value + kSqliteEntryOverhead exceeds
  // max_bytes or key + value exceed SQLite's row limit; a full disk is CM_EBACKEND (not CM_ELIMIT, which the front
  // counts as a too-large rejection).
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override;
  bool del(std::string_view key, int64_t now_ms) override;
  void clear() override;
  // Read from the namespace's stats row (a point lookup): exact, and they
  // include other processes' writes. The last value read when the file
  // cannot be read.
  uint64_t entries() const override;
  uint64_t bytes() const override;
  // CM_EUNAVAILABLE when the file was removed or replaced since open (the
  // open connections keep working on the unlinked file, whose entries no
  // other process sees any more: reopen the cache), or a status when it
  // cannot be read.
  int health() override;

  const SqliteOptions& options() const { return opt_; }
  std::string share_key() const override { return "sqlite:" + opt_.path + "\n" + opt_.ns; }

  // Tests: runs sql on every connection, now and opened later (PRAGMA
  // max_page_count to simulate a full disk).
  void exec_on_connections_for_testing(const std::string& sql);

 private:
  struct Conn;
  class Pool;
  class Lease;
  SqliteOptions opt_;
  BackendEvents* events_;
  std::unique_ptr<Pool> pool_;
  uint64_t dev_ = 0, ino_ = 0;  // the file opened, for health()
  mutable std::atomic<uint64_t> last_entries_{0}, last_bytes_{0};
  // Stored expiry times are wall-clock (Unix ms): the file outlives the
  // process and the boot.
  WallClockMap wall_;

  void stats(uint64_t* n, uint64_t* b) const;
};

// sqlite://path?options (plus the front's kFrontOptions):
//   location     the file: "sqlite:///abs/path.db", or "sqlite://rel.db",
//                relative to the working directory at open (resolved then);
//                empty is CM_EINVAL.
//   namespace    the cache's share of the file (default ""): caches sharing
//                a file see only their own namespace. The front sets it to
//                the cache's name unless the URI gives one.
//   max_entries  0..1e12, default 100000; 0 = no cap
//   max_bytes    a size, default 0 = no cap; counts keys + values +
//                kSqliteEntryOverhead per entry
//   busy_timeout_ms  0..3600000, default 5000: how long an operation waits
//                for another connection's write lock (then CM_ETIMEOUT)
//   synchronous  normal (default; WAL: durable up to the last checkpoint
//                on power loss, never corrupt) | full
//   mmap_mb      0..65536, default 0: bytes of the file read through mmap
std::unique_ptr<Backend> make_sqlite_backend(const Uri& uri, BackendEvents* events);

// Holds SQLite's global mutexes across fork() from now on (util/fork.h).
// Called by whatever opens SQLite connections; idempotent, thread-safe.
void enrol_sqlite_for_fork();

}  // namespace cm
