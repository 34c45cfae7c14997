// SPDX-License-Identifier: Apache-2.0
// The persisted-row decoder (persist.cpp's read_rows and JsonArray: label
// names, bounds, label values and bucket counts as JSON, the numeric
// columns), reached through cm_registry_load on a well-formed metrics file
// whose rows come from the input. The decoder is not separable from
// persist.cpp, so the rows are written with SQLite into a file that
// cm_registry_persist created (its schema untouched), then loaded twice into
// one registry (the second load meets its own families: the conflict path)
// and rendered. The input is lines of tab-separated columns, missing ones NULL:
//   f <id> <name> <kind> <label_names> <bounds> <help>
//   s <family_id> <label_values> <int_part> <double_part> <sum> <buckets> <created> <updated>
// Values are bound as text (SQLite's column affinity makes numbers of what
// reads as one); CHECK constraints are off, as a hand-edited file may have them.
#include <cachemeter/cachemeter.h>
#include <sqlite3.h>

#include "fuzz_tmp.h"
#include "fuzz_util.h"

namespace {

std::string base_file;  // bytes of an empty metrics file

std::string read_all(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fuzz::fail("cannot read", path);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) fuzz::fail(sql, err ? err : "?");
}

void insert(sqlite3* db, const std::string& line) {
  std::vector<std::string> col = fuzz::fields(reinterpret_cast<const uint8_t*>(line.data()), line.size(), '\t', 9);
  const char* sql;
  int ncols;
  if (col[0] == "f") {
    sql = "INSERT OR IGNORE INTO cm_family(id, name, kind, label_names, bounds, help) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    ncols = 6;
  } else if (col[0] == "s") {
    sql = "INSERT OR IGNORE INTO cm_series(family_id, label_values, int_part, double_part, sum, buckets, "
          "created, updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    ncols = 8;
  } else {
    return;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) fuzz::fail(sql, sqlite3_errmsg(db));
  for (int i = 0; i < ncols; ++i) {
    if (static_cast<size_t>(i + 1) < col.size())
      sqlite3_bind_text(st, i + 1, col[i + 1].data(), static_cast<int>(col[i + 1].size()), SQLITE_TRANSIENT);
    else
      sqlite3_bind_null(st, i + 1);
  }
  (void)sqlite3_step(st);  // a NOT NULL or UNIQUE violation: row skipped
  sqlite3_finalize(st);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string& dir = fuzz::tmp_dir();
  std::string path = dir + "/base.db";
  cm_registry* reg = nullptr;
  if (cm_registry_new(&reg, nullptr) != CM_OK || cm_registry_persist(reg, path.c_str(), 0) != CM_OK)
    fuzz::fail("creating the base metrics file", cm_errmsg());
  cm_registry_free(reg);  // the last flush; the owner lock goes
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) fuzz::fail("sqlite3_open", path);
  exec(db, "PRAGMA journal_mode = DELETE");  // one file, no -wal or -shm to carry
  sqlite3_close(db);
  base_file = read_all(path);
  fuzz::clear_dir(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16384) return -1;
  const std::string& dir = fuzz::tmp_dir();
  std::string path = dir + "/metrics.db";
  fuzz::clear_dir(dir);
  fuzz::write_file(path, reinterpret_cast<const uint8_t*>(base_file.data()), base_file.size());
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) fuzz::fail("sqlite3_open", path);
  // No journal, no fsync: the file is scratch until loaded.
  exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA ignore_check_constraints = ON; BEGIN");
  for (const std::string& line : fuzz::fields(data, size, '\n', 4096)) insert(db, line);
  exec(db, "COMMIT");
  sqlite3_close(db);

  cm_registry* reg = nullptr;
  if (cm_registry_new(&reg, nullptr) != CM_OK) fuzz::fail("cm_registry_new", cm_errmsg());
  for (int round = 0; round < 2; ++round) {
    int rc = cm_registry_load(reg, path.c_str());
    fuzz::check_status(rc, "cm_registry_load");
  }
  fuzz::render_all(reg);
  cm_registry_free(reg);
  fuzz::clear_dir(dir);
  return 0;
}
