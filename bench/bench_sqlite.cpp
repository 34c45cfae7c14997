// SPDX-License-Identifier: Apache-2.0
// The sqlite:// backend's get (hit) and set against raw sqlite3 prepared
// statements on the same schema and pragmas (WAL, synchronous=NORMAL), in
// one binary: what the backend's pool, stats row and purge cost on top.
//   Raw/GetHit       one SELECT, value copied into a malloc'd buffer
//   Raw/SetMinimal   INSERT OR REPLACE in autocommit (no counts, no bounds)
//   Raw/SetSameWork  the backend's transaction written out by hand: BEGIN
//                    IMMEDIATE, stats read, delete old, purge, insert,
//                    stats write, COMMIT
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/sqlite.h"
#include "util/uri.h"

namespace {

constexpr int kKeys = 10000;
constexpr int64_t kNow = 1000000;
const std::string kValue(100, 'v');

std::string key(int i) { return "key:" + std::to_string(i); }

std::string temp_db(const char* tag) {
  char tmpl[] = "/tmp/cm-bench-sqlite-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  return std::string(tmpl) + "/" + tag + ".db";
}

void must(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::abort();
  }
}

struct Raw {
  sqlite3* db = nullptr;
  sqlite3_stmt *get = nullptr, *replace = nullptr, *begin = nullptr, *commit = nullptr, *stats_get = nullptr,
               *del = nullptr, *purge = nullptr, *insert = nullptr, *stats_put = nullptr;
  explicit Raw(const std::string& path) {
    must(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr),
         db, "open");
    must(sqlite3_exec(db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                      "CREATE TABLE IF NOT EXISTS cm_entries(ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
                      " fresh_until INTEGER NOT NULL, keep_until INTEGER NOT NULL, written INTEGER NOT NULL,"
                      " PRIMARY KEY (ns, key)) WITHOUT ROWID;"
                      "CREATE INDEX IF NOT EXISTS cm_entries_expiry ON cm_entries(ns, keep_until, written);"
                      "CREATE TABLE IF NOT EXISTS cm_stats(ns TEXT PRIMARY KEY, entries INTEGER NOT NULL,"
                      " bytes INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;",
                      nullptr, nullptr, nullptr),
         db, "schema");
    prep(&get, "SELECT value, fresh_until, keep_until FROM cm_entries WHERE ns = ?1 AND key = ?2");
    prep(&replace,
         "INSERT OR REPLACE INTO cm_entries(ns, key, value, fresh_until, keep_until, written) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    prep(&begin, "BEGIN IMMEDIATE");
    prep(&commit, "COMMIT");
    prep(&stats_get, "SELECT entries, bytes, seq FROM cm_stats WHERE ns = ?1");
    prep(&del, "DELETE FROM cm_entries WHERE ns = ?1 AND key = ?2 RETURNING length(key) + length(value), keep_until");
    prep(&purge,
         "DELETE FROM cm_entries WHERE ns = ?1 AND key IN (SELECT key FROM cm_entries WHERE ns = ?1 AND "
         "keep_until <= ?2 ORDER BY keep_until LIMIT ?3) RETURNING length(key) + length(value)");
    prep(&insert,
         "INSERT INTO cm_entries(ns, key, value, fresh_until, keep_until, written) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    prep(&stats_put,
         "INSERT INTO cm_stats(ns, entries, bytes, seq) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(ns) DO UPDATE SET "
         "entries = excluded.entries, bytes = excluded.bytes, seq = excluded.seq");
  }
  ~Raw() {
    for (auto* s : {get, replace, begin, commit, stats_get, del, purge, insert, stats_put}) sqlite3_finalize(s);
    sqlite3_close(db);
  }
  void prep(sqlite3_stmt** s, const char* sql) {
    must(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, nullptr), db, sql);
  }
  void step_all(sqlite3_stmt* s) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    must(rc, db, "step");
    sqlite3_reset(s);
  }
  void set_minimal(const std::string& k, int64_t seq) {
    sqlite3_bind_text(replace, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_blob(replace, 2, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    sqlite3_bind_blob(replace, 3, kValue.data(), static_cast<int>(kValue.size()), SQLITE_STATIC);
    sqlite3_bind_int64(replace, 4, cm::kNever);
    sqlite3_bind_int64(replace, 5, cm::kNever);
    sqlite3_bind_int64(replace, 6, seq);
    step_all(replace);
  }
  void set_same_work(const std::string& k) {
    step_all(begin);
    int64_t n = 0, b = 0, seq = 0;
    sqlite3_bind_text(stats_get, 1, "b", 1, SQLITE_STATIC);
    if (sqlite3_step(stats_get) == SQLITE_ROW) {
      n = sqlite3_column_int64(stats_get, 0);
      b = sqlite3_column_int64(stats_get, 1);
      seq = sqlite3_column_int64(stats_get, 2);
    }
    sqlite3_reset(stats_get);
    sqlite3_bind_text(del, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_blob(del, 2, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    while (sqlite3_step(del) == SQLITE_ROW) {
      --n;
      b -= sqlite3_column_int64(del, 0);
    }
    sqlite3_reset(del);
    sqlite3_bind_text(purge, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_int64(purge, 2, kNow);
    sqlite3_bind_int(purge, 3, 4);
    step_all(purge);
    sqlite3_bind_text(insert, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_blob(insert, 2, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert, 3, kValue.data(), static_cast<int>(kValue.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert, 4, cm::kNever);
    sqlite3_bind_int64(insert, 5, cm::kNever);
    sqlite3_bind_int64(insert, 6, ++seq);
    step_all(insert);
    sqlite3_bind_text(stats_put, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_int64(stats_put, 2, n + 1);
    sqlite3_bind_int64(stats_put, 3, b + static_cast<int64_t>(k.size() + kValue.size()));
    sqlite3_bind_int64(stats_put, 4, seq);
    step_all(stats_put);
    step_all(commit);
  }
  bool get_hit(const std::string& k, void** out, size_t* len) {
    sqlite3_bind_text(get, 1, "b", 1, SQLITE_STATIC);
    sqlite3_bind_blob(get, 2, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
    bool hit = false;
    if (sqlite3_step(get) == SQLITE_ROW && kNow < sqlite3_column_int64(get, 2)) {
      size_t n = static_cast<size_t>(sqlite3_column_bytes(get, 0));
      void* p = std::malloc(n + 1);
      std::memcpy(p, sqlite3_column_blob(get, 0), n);
      static_cast<char*>(p)[n] = '\0';
      *out = p;
      *len = n;
      hit = true;
    }
    sqlite3_reset(get);
    return hit;
  }
};

std::unique_ptr<cm::Backend> backend(const std::string& path) {
  std::string uri = "sqlite://" + path + "?namespace=b&max_entries=0";
  return cm::make_backend(cm::Uri::parse(uri.c_str()), nullptr);
}

std::vector<std::string> keys() {
  std::vector<std::string> v;
  for (int i = 0; i < kKeys; ++i) v.push_back(key(i));
  return v;
}

void BM_Backend_GetHit(benchmark::State& state) {
  auto b = backend(temp_db("get"));
  auto ks = keys();
  for (const auto& k : ks) b->set(k, kValue, cm::Expiry{}, kNow);
  size_t i = 0;
  for (auto _ : state) {
    cm::Fetched f;
    if (!b->get(ks[i++ % kKeys], kNow, &f)) std::abort();
    std::free(f.data);
  }
}
BENCHMARK(BM_Backend_GetHit);

void BM_Raw_GetHit(benchmark::State& state) {
  Raw r(temp_db("rawget"));
  auto ks = keys();
  for (int i = 0; i < kKeys; ++i) r.set_minimal(ks[i], i);
  size_t i = 0;
  for (auto _ : state) {
    void* p = nullptr;
    size_t n = 0;
    if (!r.get_hit(ks[i++ % kKeys], &p, &n)) std::abort();
    std::free(p);
  }
}
BENCHMARK(BM_Raw_GetHit);

void BM_Backend_Set(benchmark::State& state) {
  auto b = backend(temp_db("set"));
  auto ks = keys();
  size_t i = 0;
  for (auto _ : state) b->set(ks[i++ % kKeys], kValue, cm::Expiry{}, kNow);
}
BENCHMARK(BM_Backend_Set);

void BM_Raw_SetMinimal(benchmark::State& state) {
  Raw r(temp_db("rawset"));
  auto ks = keys();
  int64_t i = 0;
  for (auto _ : state) {
    r.set_minimal(ks[static_cast<size_t>(i) % kKeys], i);
    ++i;
  }
}
BENCHMARK(BM_Raw_SetMinimal);

void BM_Raw_SetSameWork(benchmark::State& state) {
  Raw r(temp_db("rawsame"));
  auto ks = keys();
  size_t i = 0;
  for (auto _ : state) r.set_same_work(ks[i++ % kKeys]);
}
BENCHMARK(BM_Raw_SetSameWork);

}  // namespace

BENCHMARK_MAIN();
