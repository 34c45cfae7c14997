// SPDX-License-Identifier: Apache-2.0
// The sqlite backend on real files in a temporary directory: expiry purges,
// eviction order, namespaces, sharing between connections and processes,
// every failure as a status, URI options. The Backend contract (basics,
// TTLs, bounds, accounting, threads): backend_contract.h. Time is passed in.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include "core/error.h"
#include "backend_test_util.h"
#include "backends/sqlite.h"
#include "sqlite/db.h"
#include "util/uri.h"

namespace {

using cm::EvictReason;
using cm::Expiry;
using cm::kSqliteEntryOverhead;
using cm::SqliteBackend;

using cmbt::Events;
using cmbt::get;
using cmbt::kT0;
using cmbt::set;
using cmbt::status_of;

uint64_t charge(std::string_view k, std::string_view v) { return k.size() + v.size() + kSqliteEntryOverhead; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

class SqliteBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cm-sqlite-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700);
    std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string path(const std::string& name = "cache.db") const { return dir_ + "/" + name; }
  std::unique_ptr<cm::Backend> open(const std::string& query = "", const std::string& name = "cache.db",
                                    cm::BackendEvents* ev = nullptr) {
    std::string uri = "sqlite://" + path(name) + (query.empty() ? "" : "?" + query);
    return cm::make_backend(cm::Uri::parse(uri.c_str()), ev);
  }
  int open_status(const std::string& uri, std::string* what = nullptr) {
    return status_of([&] { cm::make_backend(cm::Uri::parse(uri.c_str()), nullptr); }, what);
  }
  std::string dir_;
};



TEST_F(SqliteBackendTest, IncrementalPurgeOnSetReportedAsExpired) {
  Events ev;
  auto b = open("", "cache.db", &ev);
  for (int i = 0; i < 10; ++i) set(*b, "t" + std::to_string(i), "v", kT0, Expiry{kT0 + 5, kT0 + 5});
  set(*b, "keep", "v");
  EXPECT_EQ(b->entries(), 11u);
  // Each set purges up to 4 expired rows, soonest first.
  set(*b, "x", "v", kT0 + 5);
  EXPECT_EQ(ev.expired.entries, 4u);
  EXPECT_EQ(b->entries(), 8u);
  set(*b, "y", "v", kT0 + 5);
  set(*b, "z", "v", kT0 + 5);
  EXPECT_EQ(ev.expired.entries, 10u);
  EXPECT_EQ(ev.expired.bytes, 10 * charge("t0", "v"));
  EXPECT_EQ(b->entries(), 4u);
  EXPECT_EQ(b->bytes(), charge("keep", "v") + 3 * charge("x", "v"));
  EXPECT_EQ(ev.size.entries, 0u);
}

TEST_F(SqliteBackendTest, BoundByEntriesEvictsSoonestExpiringThenOldest) {
  Events ev;
  auto b = open("max_entries=3", "cache.db", &ev);
  set(*b, "never-1", "v");
  set(*b, "late", "v", kT0, Expiry{kT0 + 1000, kT0 + 1000});
  set(*b, "soon", "v", kT0, Expiry{kT0 + 10, kT0 + 10});
  set(*b, "a", "v");  // evicts "soon" (live: a size eviction)
  EXPECT_FALSE(get(*b, "soon"));
  set(*b, "b", "v");  // then "late"
  EXPECT_FALSE(get(*b, "late"));
  set(*b, "c", "v");  // then the oldest write among the rest
  EXPECT_FALSE(get(*b, "never-1"));
  EXPECT_EQ(get(*b, "a"), "v");
  EXPECT_EQ(b->entries(), 3u);
  EXPECT_EQ(ev.size.entries, 3u);
  EXPECT_EQ(ev.size.bytes, charge("soon", "v") + charge("late", "v") + charge("never-1", "v"));
  EXPECT_EQ(ev.expired.entries, 0u);
  // A replacement does not evict.
  set(*b, "a", "w");
  EXPECT_EQ(ev.size.entries, 3u);
  for (int i = 0; i < 100; ++i) set(*b, "k" + std::to_string(i), "v");
  EXPECT_EQ(b->entries(), 3u);
  EXPECT_EQ(ev.size.entries, 103u);
  EXPECT_EQ(b->bytes(), 3 * charge("k99", "v"));
}

TEST_F(SqliteBackendTest, BoundByBytesWithExactAccounting) {
  Events ev;
  uint64_t cap = 3 * charge("k0", std::string(100, 'x'));
  auto b = open("max_entries=0&max_bytes=" + std::to_string(cap), "cache.db", &ev);
  std::string v(100, 'x');
  for (int i = 0; i < 3; ++i) set(*b, "k" + std::to_string(i), v);
  EXPECT_EQ(b->bytes(), cap);
  EXPECT_EQ(ev.size.entries, 0u);
  set(*b, "big", std::string(150, 'y'));  // needs two entries' room
  EXPECT_EQ(ev.size.entries, 2u);
  EXPECT_EQ(ev.size.bytes, 2 * charge("k0", v));
  EXPECT_EQ(b->entries(), 2u);
  EXPECT_EQ(b->bytes(), charge("k2", v) + charge("big", std::string(150, 'y')));
  EXPECT_LE(b->bytes(), cap);
  // An entry larger than the whole cap is refused, nothing evicted.
  std::string what;
  EXPECT_EQ(status_of([&] { set(*b, "huge", std::string(cap, 'z')); }, &what), CM_ELIMIT);
  EXPECT_NE(what.find("max_bytes"), std::string::npos) << what;
  EXPECT_EQ(b->entries(), 2u);
  EXPECT_EQ(ev.size.entries, 2u);
}

TEST_F(SqliteBackendTest, ExpiredRowsFoundByEvictionAreReportedAsExpired) {
  Events ev;
  auto b = open("max_entries=2", "cache.db", &ev);
  set(*b, "x", "v", kT0, Expiry{kT0 + 5, kT0 + 5});
  set(*b, "y", "v");
  // At kT0 + 5 the purge takes "x" before the cap is checked.
  set(*b, "z", "v", kT0 + 5);
  EXPECT_EQ(ev.expired.entries, 1u);
  EXPECT_EQ(ev.size.entries, 0u);
  EXPECT_EQ(b->entries(), 2u);
}

TEST_F(SqliteBackendTest, NamespacesShareAFile) {
  auto a = open("namespace=users");
  auto b = open("namespace=sessions&max_entries=1");
  auto d = open();  // the default namespace ""
  set(*a, "k", "from-a");
  set(*b, "k", "from-b");
  EXPECT_EQ(get(*a, "k"), "from-a");
  EXPECT_EQ(get(*b, "k"), "from-b");
  EXPECT_FALSE(get(*d, "k"));
  set(*b, "k2", "v");  // b's cap does not touch a
  EXPECT_EQ(a->entries(), 1u);
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_EQ(d->entries(), 0u);
  b->clear();
  EXPECT_EQ(get(*a, "k"), "from-a");
  EXPECT_EQ(a->bytes(), charge("k", "from-a"));
}

TEST_F(SqliteBackendTest, TwoInstancesOnOneFileSeeEachOthersWrites) {
  auto a = open("namespace=n");
  auto b = open("namespace=n");
  set(*a, "k", "v");
  EXPECT_EQ(get(*b, "k"), "v");
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_TRUE(b->del("k", kT0));
  EXPECT_FALSE(get(*a, "k"));
  EXPECT_EQ(a->entries(), 0u);
}

// Rows carry wall-clock expiry: two instances whose fronts' clocks have
// different origins (two processes, or one before and after a reboot) agree
// on when a row expires, and fresh_until comes back on the reader's clock.
TEST_F(SqliteBackendTest, ExpiryIsWallClockAcrossClockOrigins) {
  auto a = open("namespace=n");
  auto b = open("namespace=n");
  const int64_t a0 = 1000, b0 = 987654321;  // "now" on each front's clock
  set(*a, "k", "v", a0, Expiry{a0 + 60000, a0 + 90000});
  int64_t fresh = 0;
  EXPECT_EQ(get(*b, "k", b0, &fresh), "v");
  // fresh_until on b's clock: about 60 s after b0 (the instances were
  // opened moments apart; allow a generous margin for a slow machine).
  EXPECT_GT(fresh, b0 + 60000 - 10000);
  EXPECT_LE(fresh, b0 + 60000 + 10000);
  EXPECT_EQ(get(*b, "k", b0 + 89000 - 10000), "v");  // still inside keep_until
  EXPECT_FALSE(get(*b, "k", b0 + 90000 + 10000));    // past it, whatever the origin
}

TEST_F(SqliteBackendTest, AnotherProcessWritesTheParentReads) {
  auto parent = open("namespace=p");
  set(*parent, "before", "1");
  std::string uri = "sqlite://" + path() + "?namespace=p";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child opens its own connections (never the parent's).
    int rc = 1;
    try {
      auto child = cm::make_backend(cm::Uri::parse(uri.c_str()), nullptr);
      child->set("from-child", "hello", Expiry{}, kT0);
      child->del("before", kT0);
      rc = 0;
    } catch (...) {
    }
    ::_exit(rc);
  }
  int wst = 0;
  ASSERT_EQ(::waitpid(pid, &wst, 0), pid);
  ASSERT_TRUE(WIFEXITED(wst));
  ASSERT_EQ(WEXITSTATUS(wst), 0);
  EXPECT_EQ(get(*parent, "from-child"), "hello");
  EXPECT_FALSE(get(*parent, "before"));
  EXPECT_EQ(parent->entries(), 1u);
  EXPECT_EQ(parent->bytes(), charge("from-child", "hello"));
}

// The one table that the backend and persistence share (sqlite/db.h,
// docs/persistence.md "Statuses"); extended codes map as their primary code.
TEST(SqliteStatusTable, OneStatusPerFailure) {
  using cm::sqlite::status_of;
  for (int rc : {SQLITE_CANTOPEN, SQLITE_CANTOPEN_ISDIR, SQLITE_READONLY, SQLITE_READONLY_DBMOVED, SQLITE_PERM,
                 SQLITE_AUTH})
    EXPECT_EQ(status_of(rc), CM_EUNAVAILABLE) << sqlite3_errstr(rc);
  for (int rc : {SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED}) EXPECT_EQ(status_of(rc), CM_ETIMEOUT) << rc;
  for (int rc : {SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FORMAT, SQLITE_SCHEMA, SQLITE_TOOBIG, SQLITE_INTERRUPT})
    EXPECT_EQ(status_of(rc), CM_ECORRUPT) << rc;
  EXPECT_EQ(status_of(SQLITE_NOMEM), CM_ENOMEM);
  EXPECT_EQ(status_of(SQLITE_IOERR_NOMEM), CM_ENOMEM);
  for (int rc : {SQLITE_FULL, SQLITE_IOERR, SQLITE_IOERR_WRITE, SQLITE_ERROR, SQLITE_CONSTRAINT})
    EXPECT_EQ(status_of(rc), CM_EBACKEND) << rc;
  using cm::status_of_errno;  // core/error.h: the same table for the file calls beside SQLite
  for (int e : {ENOENT, ENOTDIR, EACCES, EPERM, EROFS}) EXPECT_EQ(status_of_errno(e), CM_EUNAVAILABLE) << e;
  for (int e : {ENOSPC, EDQUOT, EIO}) EXPECT_EQ(status_of_errno(e), CM_EBACKEND) << e;
  EXPECT_EQ(status_of_errno(ENOMEM), CM_ENOMEM);

  cm::Error e = cm::sqlite::error(SQLITE_BUSY, nullptr, "sqlite backend: /x.db", "insert", 250);
  EXPECT_EQ(e.status(), CM_ETIMEOUT);
  EXPECT_STREQ(e.what(), "sqlite backend: /x.db: insert: database is locked (busy timeout of 250 ms expired)");
  EXPECT_STREQ(cm::sqlite::error(SQLITE_FULL, nullptr, "", "flush").what(), "flush: database or disk is full");
}

TEST_F(SqliteBackendTest, NotASqliteFileIsCorruptAndLeftUntouched) {
  std::string p = path("notes.db");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "this is a text file, not a database. line " + std::to_string(i) + "\n";
  {
    std::ofstream out(p, std::ios::binary);
    out << text;
  }
  std::string what;
  EXPECT_EQ(open_status("sqlite://" + p, &what), CM_ECORRUPT);
  EXPECT_NE(what.find(p), std::string::npos) << what;
  EXPECT_NE(what.find("not a database"), std::string::npos) << what;
  EXPECT_EQ(slurp(p), text);
  EXPECT_FALSE(exists(p + "-wal"));
  EXPECT_FALSE(exists(p + "-shm"));
}

// Runs fn in a child process without root's privileges (root ignores file
// modes) and returns its exit status.
int in_unprivileged_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(200);
    ::_exit(fn());
  }
  int wst = 0;
  if (::waitpid(pid, &wst, 0) != pid || !WIFEXITED(wst)) return 201;
  return WEXITSTATUS(wst);
}

TEST_F(SqliteBackendTest, ReadOnlyFileAndDirectoryAreUnavailable) {
  { open()->clear(); }  // an existing database
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path().c_str(), 0444), 0);
  for (const char* f : {"-wal", "-shm"}) ::unlink((path() + f).c_str());
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  // Exit codes: the negated status, 100 when the message lacks the path.
  auto probe = [&](const std::string& file) {
    return in_unprivileged_child([&] {
      std::string what;
      int st = open_status("sqlite://" + file, &what);
      if (st == CM_OK) return 0;
      if (what.find(file) == std::string::npos) return 100;
      return -st;
    });
  };
  EXPECT_EQ(probe(path()), -CM_EUNAVAILABLE) << "read-only file in a read-only directory";
  EXPECT_EQ(probe(path("new.db")), -CM_EUNAVAILABLE) << "cannot create in a read-only directory";
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  EXPECT_EQ(probe(path()), -CM_EUNAVAILABLE) << "read-only file";
  EXPECT_EQ(probe("/proc/cm-nonexistent/x.db"), -CM_EUNAVAILABLE) << "no such directory";
}

TEST_F(SqliteBackendTest, LockedPastTheBusyTimeout) {
  auto b = open("busy_timeout_ms=0");
  set(*b, "k", "v");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::string what;
  EXPECT_EQ(status_of([&] { set(*b, "k2", "v"); }, &what), CM_ETIMEOUT);
  EXPECT_NE(what.find(path()), std::string::npos) << what;
  EXPECT_NE(what.find("locked"), std::string::npos) << what;
  EXPECT_EQ(status_of([&] { b->del("k", kT0); }), CM_ETIMEOUT);
  EXPECT_EQ(get(*b, "k"), "v");  // WAL: readers are not blocked
  EXPECT_EQ(b->entries(), 1u);
  ASSERT_EQ(sqlite3_exec(raw, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  set(*b, "k2", "v");
  EXPECT_EQ(b->entries(), 2u);
}

TEST_F(SqliteBackendTest, DiskFullIsAStatusAndLeavesTheCacheConsistent) {
  auto b = open("max_entries=0");
  auto* sb = dynamic_cast<SqliteBackend*>(b.get());
  ASSERT_NE(sb, nullptr);
  set(*b, "first", "v");
  sb->exec_on_connections_for_testing("PRAGMA max_page_count = 20");
  std::string v(1000, 'x');
  std::string what;
  int st = CM_OK;
  int i = 0;
  for (; i < 1000 && st == CM_OK; ++i) st = status_of([&] { set(*b, "k" + std::to_string(i), v); }, &what);
  EXPECT_EQ(st, CM_EBACKEND);
  EXPECT_NE(what.find("full"), std::string::npos) << what;
  EXPECT_NE(what.find(path()), std::string::npos) << what;
  // The failed transaction left nothing behind: counts match the rows.
  EXPECT_EQ(b->entries(), static_cast<uint64_t>(i));  // "first" + i - 1 sets
  EXPECT_FALSE(get(*b, "k" + std::to_string(i - 1)));
  EXPECT_EQ(get(*b, "first"), "v");
  EXPECT_TRUE(b->del("first", kT0));  // deleting still works
  EXPECT_EQ(b->health(), CM_OK);
}

TEST_F(SqliteBackendTest, FileRemovedUnderneath) {
  auto b = open();
  set(*b, "k", "v");
  EXPECT_EQ(b->health(), CM_OK);
  ASSERT_EQ(::unlink(path().c_str()), 0);
  cm_errclear();
  EXPECT_EQ(b->health(), CM_EUNAVAILABLE);
  EXPECT_NE(std::string(cm_errmsg()).find("removed"), std::string::npos) << cm_errmsg();
  // The open connection goes on with the unlinked file...
  EXPECT_EQ(get(*b, "k"), "v");
  set(*b, "k2", "v");
  EXPECT_EQ(b->entries(), 2u);
  // ...and no new file appears at the path.
  EXPECT_FALSE(exists(path()));
  // A file put in its place is not adopted either.
  { open("", "cache.db"); }
  EXPECT_EQ(b->health(), CM_EUNAVAILABLE);
  EXPECT_NE(std::string(cm_errmsg()).find("replaced"), std::string::npos) << cm_errmsg();
}

TEST_F(SqliteBackendTest, RelativeAndAbsolutePaths) {
  char* old = ::getcwd(nullptr, 0);
  ASSERT_NE(old, nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  {
    auto b = open_status("sqlite://rel.db");
    EXPECT_EQ(b, CM_OK);
    auto rel = cm::make_backend(cm::Uri::parse("sqlite://sub-rel.db?namespace=x"), nullptr);
    EXPECT_EQ(dynamic_cast<SqliteBackend&>(*rel).options().path, dir_ + "/sub-rel.db");
    set(*rel, "k", "v");
    EXPECT_EQ(::chdir("/"), 0);
    // Connections opened after a chdir still use the resolved path.
    auto again = cm::make_backend(cm::Uri::parse(("sqlite://" + dir_ + "/sub-rel.db?namespace=x").c_str()), nullptr);
    EXPECT_EQ(get(*again, "k"), "v");
  }
  EXPECT_TRUE(exists(dir_ + "/rel.db"));
  EXPECT_EQ(::chdir(old), 0);
  std::free(old);
  std::string what;
  EXPECT_EQ(open_status("sqlite://", &what), CM_EINVAL);
  EXPECT_NE(what.find("file"), std::string::npos) << what;
  EXPECT_EQ(open_status("sqlite://?max_entries=1"), CM_EINVAL);
  EXPECT_EQ(open_status("sqlite://:memory:"), CM_EINVAL);
}

TEST_F(SqliteBackendTest, OptionErrorsNameTheOption) {
  std::string base = "sqlite://" + path() + "?";
  struct Case {
    const char* query;
    const char* name;
  } cases[] = {
      {"colour=blue", "colour"},         {"max_entries=-1", "max_entries"},
      {"max_bytes=12parsecs", "max_bytes"}, {"busy_timeout_ms=soon", "busy_timeout_ms"},
      {"synchronous=off", "synchronous"}, {"mmap_mb=-5", "mmap_mb"},
      {"max_entries=x&namespace=a", "max_entries"},
  };
  for (const auto& c : cases) {
    std::string what;
    EXPECT_EQ(open_status(base + c.query, &what), CM_EINVAL) << c.query;
    EXPECT_NE(what.find(c.name), std::string::npos) << what;
  }
  EXPECT_EQ(open_status(base + "synchronous=full&mmap_mb=16&busy_timeout_ms=100&ttl_ms=5&stale_ms=1"), CM_OK);
}

}  // namespace
