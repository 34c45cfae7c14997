/* SPDX-License-Identifier: Apache-2.0 */
// SQLite for the sqlite:// backend and for persistence: a connection and a
// prepared statement as RAII objects, and the one mapping from SQLite's
// result codes (and the errno of the file calls around them) to a status.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"

namespace cm::sqlite {

// The status of a failed SQLite call, from its primary code (rc & 0xff; an
// extended code is accepted). The one table for the library (also in
// docs/persistence.md "Statuses"): a cache (cm_cache_open and every call
// on a sqlite:// cache) and persistence (cm_registry_persist, _flush, _load)
// answer the same status for the same failure.
//   SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH
//       -> CM_EUNAVAILABLE  the file cannot be opened, created or written
//                           (permissions, a missing or read-only directory,
//                           a read-only file, the file moved away)
//   SQLITE_BUSY, SQLITE_LOCKED
//       -> CM_ETIMEOUT      another connection held the lock past the busy
//                           timeout
//   SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FORMAT, SQLITE_SCHEMA
//       -> CM_ECORRUPT      not a SQLite file, damaged, or not our layout
//   SQLITE_TOOBIG, SQLITE_INTERRUPT
//       -> CM_ECORRUPT      a stored value past the connection's length
//                           limit, or a read stopped by its deadline: both
//                           are a hostile file's (writers check sizes before
//                           writing; only persistence's read deadline
//                           interrupts)
//   SQLITE_NOMEM, SQLITE_IOERR_NOMEM
//       -> CM_ENOMEM
//   SQLITE_FULL, SQLITE_IOERR and anything else
//       -> CM_EBACKEND      the store failed (a full disk is not CM_ELIMIT,
//                           which a cache counts as a too-large rejection)
int status_of(int rc) noexcept;

// errno from the file calls made beside SQLite (stat, open and lock of
// persistence's lock file) maps by cm::status_of_errno (core/error.h), the
// same table.

// The Error for rc: status_of(rc) and "<label>: <what>: <SQLite's message>"
// (no "<label>: " when label is empty), with a hint for a busy timeout, a
// value past the length limit, or an interrupted read. db may be null.
Error error(int rc, sqlite3* db, std::string_view label, std::string_view what, int busy_timeout_ms = -1);

class Stmt;

// One connection (sqlite3_open_v2 with extended result codes). Moveable; the
// destructor closes it (sqlite3_close_v2). Thread-safety: SQLite's, as opened
// (the users open SQLITE_OPEN_NOMUTEX connections and use each from one
// thread at a time).
class Db {
 public:
  Db() = default;
  // Opens path with flags (SQLITE_OPEN_*). label prefixes every message of
  // this connection's errors ("sqlite backend: /path"; may be empty). Throws
  // error(rc, ..., what) when SQLite refuses.
  static Db open(const std::string& path, int flags, std::string label, std::string_view what = "cannot open");

  sqlite3* get() const noexcept { return s_ ? s_->db : nullptr; }
  explicit operator bool() const noexcept { return get() != nullptr; }
  const std::string& label() const noexcept { return s_->label; }

  // sqlite3_busy_timeout, remembered for the message of a busy failure.
  void busy_timeout(int ms);

  // Throws the Error for rc (error() with this connection's label).
  [[noreturn]] void fail(int rc, std::string_view what) const;
  void check(int rc, std::string_view what) const {
    if (rc != SQLITE_OK) [[unlikely]]
      fail(rc, what);
  }
  // Runs sql (one or more statements, rows ignored); throws on failure.
  void exec(const char* sql, std::string_view what) const { check(sqlite3_exec(get(), sql, nullptr, nullptr, nullptr), what); }
  // Runs sql, ignoring any failure (ROLLBACK on a path that is failing already).
  void exec_quietly(const char* sql) const noexcept { sqlite3_exec(get(), sql, nullptr, nullptr, nullptr); }
  // Prepares sql (sqlite3_prepare_v3 with flags); throws with what, or
  // "preparing \"<sql>\"" when what is empty.
  Stmt prepare(const char* sql, std::string_view what = {}, unsigned flags = SQLITE_PREPARE_PERSISTENT) const;
  // The first column of sql's first row (PRAGMA user_version); throws when
  // it has no row.
  int64_t query_int(const char* sql) const;

  // Forgets the connection without closing it: for a child of fork(), which
  // must not touch a connection its parent may have been using. The
  // statements prepared on it must be abandoned as well.
  void abandon() noexcept;

 private:
  struct State {
    sqlite3* db = nullptr;
    std::string label;
    int busy_timeout_ms = -1;
    ~State() { sqlite3_close_v2(db); }
  };
  std::unique_ptr<State> s_;  // heap: statements keep a pointer across moves
  friend class Stmt;
};

// One prepared statement of a Db, which must outlive it. Moveable; the
// destructor finalizes it. Binds take 1-based indexes, columns 0-based (as
// SQLite's). Strings bound with bind_text/bind_blob are not copied: they
// must stay valid until the statement is reset or rebound.
class Stmt {
 public:
  Stmt() = default;
  sqlite3_stmt* get() const noexcept { return st_.get(); }
  explicit operator bool() const noexcept { return st_ != nullptr; }

  // An empty string or blob binds "" (a null pointer would bind SQL NULL).
  void bind_text(int i, std::string_view t) const {
    check(sqlite3_bind_text64(get(), i, t.empty() ? "" : t.data(), t.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  void bind_blob(int i, std::string_view b) const {
    check(sqlite3_bind_blob64(get(), i, b.empty() ? "" : b.data(), b.size(), SQLITE_STATIC));
  }
  void bind_int(int i, int64_t v) const { check(sqlite3_bind_int64(get(), i, v)); }
  void bind_double(int i, double v) const { check(sqlite3_bind_double(get(), i, v)); }

  // Steps: true for a row, false when done; throws the Error for anything
  // else, with what in its message.
  bool step(std::string_view what) const {
    int rc = sqlite3_step(get());
    if (rc == SQLITE_ROW) [[likely]]
      return true;
    if (rc == SQLITE_DONE) return false;
    fail(rc, what);
  }
  // Steps until done (the rows of a RETURNING that nobody reads).
  void drain(std::string_view what) const {
    while (step(what)) {
    }
  }
  // Ends the current use (and its read transaction); bindings stay.
  void reset() const noexcept { sqlite3_reset(get()); }
  void clear_bindings() const noexcept { sqlite3_clear_bindings(get()); }

  int64_t int64(int i) const noexcept { return sqlite3_column_int64(get(), i); }
  double real(int i) const noexcept { return sqlite3_column_double(get(), i); }
  int bytes(int i) const noexcept { return sqlite3_column_bytes(get(), i); }
  // The column as text; "" for NULL. Copied.
  std::string text(int i) const {
    const unsigned char* p = sqlite3_column_text(get(), i);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(bytes(i))) : std::string();
  }
  // The column as bytes, valid until the next step, reset or column call of i.
  std::string_view blob(int i) const noexcept {
    const void* p = sqlite3_column_blob(get(), i);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(bytes(i))) : std::string_view();
  }

  [[noreturn]] void fail(int rc, std::string_view what) const;

  // Forgets the statement without finalizing it (Db::abandon).
  void abandon() noexcept { static_cast<void>(st_.release()); }

 private:
  friend class Db;
  struct Finalize {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  Stmt(sqlite3_stmt* st, const Db::State* db) : st_(st), db_(db) {}
  void check(int rc) const {
    if (rc != SQLITE_OK) [[unlikely]]
      fail(rc, "bind");
  }
  std::unique_ptr<sqlite3_stmt, Finalize> st_;
  const Db::State* db_ = nullptr;
};

// Resets a statement when a use of it ends (ending its implicit read
// transaction), whatever path leaves the scope.
class Use {
 public:
  explicit Use(const Stmt& s) noexcept : s_(s) {}
  ~Use() { s_.reset(); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  const Stmt& s_;
};

// A write transaction (BEGIN IMMEDIATE: the write lock up front, waiting at
// most the busy timeout) that rolls back unless committed.
class Tx {
 public:
  explicit Tx(const Db& db) : db_(&db) { db.exec("BEGIN IMMEDIATE", "cannot take the write lock"); }
  ~Tx() {
    if (db_) db_->exec_quietly("ROLLBACK");
  }
  void commit() {
    db_->exec("COMMIT", "commit");
    db_ = nullptr;
  }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

 private:
  const Db* db_;
};

}  // namespace cm::sqlite
