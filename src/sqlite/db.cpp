// SPDX-License-Identifier: Apache-2.0
// SQLite connections, statements and the status table (sqlite/db.h).
#include "sqlite/db.h"

#include <cerrno>

namespace cm::sqlite {

int status_of(int rc) noexcept {
  if (rc == SQLITE_IOERR_NOMEM) return CM_ENOMEM;
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return CM_EUNAVAILABLE;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return CM_ETIMEOUT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
    case SQLITE_SCHEMA:
    case SQLITE_TOOBIG:
    case SQLITE_INTERRUPT: return CM_ECORRUPT;
    case SQLITE_NOMEM: return CM_ENOMEM;
    default: return CM_EBACKEND;  // SQLITE_FULL, SQLITE_IOERR, ...
  }
}

Error error(int rc, sqlite3* db, std::string_view label, std::string_view what, int busy_timeout_ms) {
  std::string msg;
  if (!label.empty()) {
    msg += label;
    msg += ": ";
  }
  msg += what;
  msg += ": ";
  // The connection's message (sqlite3_open_v2 failing leaves one too).
  const char* detail = db ? sqlite3_errmsg(db) : nullptr;
  msg += detail ? detail : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
      if (busy_timeout_ms >= 0) msg += " (busy timeout of " + std::to_string(busy_timeout_ms) + " ms expired)";
      break;
    case SQLITE_TOOBIG:
      if (db)
        msg += " (a value longer than " + std::to_string(sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1)) +
               " bytes: refused, not loaded)";
      break;
    case SQLITE_INTERRUPT: msg += " (reading passed its deadline: refused)"; break;
    default: break;
  }
  return Error(status_of(rc), msg);
}

Db Db::open(const std::string& path, int flags, std::string label, std::string_view what) {
  Db d;
  d.s_ = std::make_unique<State>();
  d.s_->label = std::move(label);
  int rc = sqlite3_open_v2(path.c_str(), &d.s_->db, flags | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) d.fail(rc, what);
  return d;
}

void Db::busy_timeout(int ms) {
  sqlite3_busy_timeout(get(), ms);
  s_->busy_timeout_ms = ms;
}

void Db::fail(int rc, std::string_view what) const {
  throw s_ ? error(rc, s_->db, s_->label, what, s_->busy_timeout_ms) : error(rc, nullptr, {}, what);
}

Stmt Db::prepare(const char* sql, std::string_view what, unsigned flags) const {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v3(get(), sql, -1, flags, &st, nullptr);
  Stmt out(st, s_.get());
  if (rc != SQLITE_OK) fail(rc, what.empty() ? "preparing \"" + std::string(sql) + "\"" : std::string(what));
  return out;
}

int64_t Db::query_int(const char* sql) const {
  Stmt st = prepare(sql);
  if (!st.step(sql)) throw Error(CM_EBACKEND, (label().empty() ? "" : label() + ": ") + sql + ": no row");
  return st.int64(0);
}

void Db::abandon() noexcept {
  static_cast<void>(s_.release());  // never closed; statements may still point here
}

void Stmt::fail(int rc, std::string_view what) const {
  sqlite3* db = get() ? sqlite3_db_handle(get()) : nullptr;
  throw db_ ? error(rc, db, db_->label, what, db_->busy_timeout_ms) : error(rc, db, {}, what);
}

}  // namespace cm::sqlite
