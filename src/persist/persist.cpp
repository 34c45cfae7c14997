// SPDX-License-Identifier: Apache-2.0
// Registry persistence in SQLite (docs/persistence.md): the owner lock, the
// checks that leave a foreign or damaged file untouched, restore and flush.
#include "persist/persist.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <new>
#include <thread>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "backends/sqlite.h"
#include "metrics/sink.h"
#include "metrics/snapshot.h"
#include "sqlite/db.h"
#include "util/clock.h"
#include "util/fork.h"

namespace cm::persist {
namespace {

// ---- SQLite, RAII ------------------------------------------------------------

// Connections, statements, transactions and the status of every SQLite
// failure: sqlite/db.h (the table shared with the sqlite:// backend).
using sqlite::Db;
using sqlite::Stmt;
using sqlite::Tx;

// Bounds on what reading a metrics file may cost (docs/persistence.md,
// "Hostile files"): the longest single value (SQLITE_LIMIT_LENGTH), the rows
// and text bytes read in all, and the time every statement of the checks and
// the restore may take together.
constexpr int kMaxValueBytes = 16 << 20;
constexpr int64_t kMaxRows = int64_t{1} << 20;
constexpr int64_t kMaxTextBytes = int64_t{256} << 20;
constexpr auto kReadDeadline = std::chrono::seconds(30);
// Items of one JSON array in a row: label names or values (no API limit, but
// thousands of labels is no metric), bounds (CM_HISTOGRAM_MAX_BOUNDS) and
// bucket counts (one more).
constexpr size_t kMaxJsonItems = 10000;

// The progress handler's deadline: a statement running past it is
// interrupted (SQLITE_INTERRUPT). Installed while a file is checked and read.
struct Deadline {
  std::chrono::steady_clock::time_point until = std::chrono::steady_clock::now() + kReadDeadline;
  static int expired(void* self) {
    return std::chrono::steady_clock::now() > static_cast<Deadline*>(self)->until ? 1 : 0;
  }
};

// Every connection to a metrics file: nothing in the file can run code or
// grow without bound. The schema is checked exactly (check_schema) before any
// table is read; these are the second line: no triggers, no views, no
// functions from the schema, no extensions, no writable schema, small limits.
void harden(sqlite3* db, Deadline* deadline) {
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, kMaxValueBytes);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 100000);
  sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
  sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 4);
  sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 100);
  sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
  sqlite3_limit(db, SQLITE_LIMIT_WORKER_THREADS, 0);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, nullptr);
  sqlite3_progress_handler(db, deadline ? 10000 : 0, deadline ? &Deadline::expired : nullptr, deadline);
}

const char* const kSchema =
    "CREATE TABLE cm_owner(\n"
    "  id INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  pid INTEGER NOT NULL,\n"
    "  host TEXT NOT NULL,\n"
    "  since REAL NOT NULL);\n"
    "CREATE TABLE cm_family(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  name TEXT NOT NULL,\n"
    "  kind TEXT NOT NULL CHECK (kind IN ('counter', 'gauge', 'histogram')),\n"
    "  label_names TEXT NOT NULL,\n"
    "  bounds TEXT NOT NULL,\n"
    "  help TEXT NOT NULL,\n"
    "  UNIQUE (name, kind, label_names, bounds));\n"
    "CREATE TABLE cm_series(\n"
    "  family_id INTEGER NOT NULL REFERENCES cm_family(id),\n"
    "  label_values TEXT NOT NULL,\n"
    "  value REAL,\n"
    "  int_part INTEGER,\n"
    "  double_part REAL,\n"
    "  sum REAL,\n"
    "  count INTEGER,\n"
    "  buckets TEXT,\n"
    "  created REAL NOT NULL,\n"
    "  updated REAL NOT NULL,\n"
    "  PRIMARY KEY (family_id, label_values)) WITHOUT ROWID;\n";

// The objects of sqlite_schema (type, name, tbl_name, sql), sorted by name.
using SchemaRows = std::vector<std::array<std::string, 4>>;

SchemaRows schema_rows(const Db& db) {
  SchemaRows out;
  Stmt st = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name, type",
                       "reading sqlite_schema", 0);
  while (st.step("reading sqlite_schema")) {
    if (out.size() >= 64) throw Error(CM_ECORRUPT, "sqlite_schema holds too many objects");
    std::array<std::string, 4> row;
    for (int i = 0; i < 4; ++i) {
      const unsigned char* p = sqlite3_column_text(st.get(), i);
      row[i] = p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st.get(), i)))
                 : std::string("NULL");
    }
    out.push_back(std::move(row));
  }
  return out;
}

// What kSchema makes, read back from an in-memory database once: the exact
// text SQLite stores for our statements, and the indexes it adds for them.
const SchemaRows& expected_schema() {
  static SchemaRows rows;
  static std::once_flag once;
  std::call_once(once, [] {
    Db db = Db::open(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "", "opening an in-memory database");
    db.exec(kSchema, "creating the metrics schema in memory");
    rows = schema_rows(db);
  });
  return rows;
}

// Only the schema we wrote is accepted: every object of sqlite_schema equals
// one that kSchema creates (type, name, table and CREATE text, byte for
// byte), none missing, nothing else: no view, trigger, extra table or index.
void check_schema(const Db& db, const std::string& path) {
  const SchemaRows& want = expected_schema();
  SchemaRows got = schema_rows(db);
  std::string why;
  for (const auto& g : got) {
    bool found = false;
    for (const auto& w : want) found = found || w == g;
    if (!found) {
      bool same_name = false;
      for (const auto& w : want) same_name = same_name || (w[1] == g[1] && w[0] == g[0]);
      why = (same_name ? "the " + g[0] + " \"" + g[1] + "\" is not defined as cachemeter defines it"
                       : "unexpected " + g[0] + " \"" + g[1] + "\"");
      break;
    }
  }
  if (why.empty()) {
    for (const auto& w : want) {
      bool found = false;
      for (const auto& g : got) found = found || w == g;
      if (!found) {
        why = "the " + w[0] + " \"" + w[1] + "\" is missing";
        break;
      }
    }
  }
  if (!why.empty())
    throw Error(CM_ECORRUPT, "\"" + path + "\" is not a cachemeter metrics file as this library writes it (" + why +
                                 "); refused, left untouched");
}

// ---- JSON arrays (label names and values, bounds, bucket counts) -------------

std::string json_strings(const std::vector<std::string>& v) {
  OutBuf b;
  b.push('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) b.push(',');
    append_json_string(b, v[i]);
  }
  b.push(']');
  return std::string(b.view());
}

std::string json_doubles(const std::vector<double>& v) {
  OutBuf b;
  b.push('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) b.push(',');
    b.append_double(v[i]);
  }
  b.push(']');
  return std::string(b.view());
}

std::string json_counts(const uint64_t* c, size_t n) {
  OutBuf b;
  b.push('[');
  for (size_t i = 0; i < n; ++i) {
    if (i) b.push(',');
    b.append_u64(c[i]);
  }
  b.push(']');
  return std::string(b.view());
}

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A small reader for the arrays this file writes (and what a person may have
// typed in the sqlite3 shell): strings or numbers, nothing nested.
class JsonArray {
 public:
  // max_items: more is a parse failure (bounds what a hostile row can make
  // us allocate, whatever its length).
  explicit JsonArray(std::string_view t, size_t max_items = kMaxJsonItems) : t_(t), max_items_(max_items) {}

  bool strings(std::vector<std::string>& out) {
    return items([&] {
      std::string s;
      if (!string(s)) return false;
      out.push_back(std::move(s));
      return true;
    });
  }
  bool doubles(std::vector<double>& out) {
    return items([&] {
      double d;
      if (!number(d)) return false;
      out.push_back(d);
      return true;
    });
  }
  bool counts(std::vector<uint64_t>& out) {
    return items([&] {
      ws();
      const char* b = t_.data() + i_;
      if (i_ >= t_.size() || t_[i_] < '0' || t_[i_] > '9') return false;
      errno = 0;
      char* e = nullptr;
      unsigned long long v = std::strtoull(b, &e, 10);
      if (errno || e == b) return false;
      i_ += static_cast<size_t>(e - b);
      out.push_back(v);
      return true;
    });
  }

 private:
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  template <class Item>
  bool items(Item item) {
    if (!eat('[')) return false;
    if (eat(']')) return end();
    size_t n = 0;
    do {
      if (++n > max_items_ || !item()) return false;
    } while (eat(','));
    return eat(']') && end();
  }
  bool end() {
    ws();
    return i_ == t_.size();
  }
  bool hex4(uint32_t& v) {
    if (i_ + 4 > t_.size()) return false;
    v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = t_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return false;
    }
    return true;
  }
  bool string(std::string& s) {
    if (!eat('"')) return false;
    while (i_ < t_.size()) {
      char c = t_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (i_ >= t_.size()) return false;
      char e = t_[i_++];
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {
            uint32_t lo;
            if (i_ + 2 > t_.size() || t_[i_] != '\\' || t_[i_ + 1] != 'u') return false;
            i_ += 2;
            if (!hex4(lo) || lo < 0xDC00 || lo > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(s, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool number(double& d) {
    ws();
    const char* b = t_.data() + i_;
    size_t n = 0;
    while (i_ + n < t_.size() && std::strchr("+-.0123456789eE", t_[i_ + n]) && t_[i_ + n]) ++n;
    if (n == 0 || n > 64) return false;
    std::string num(b, n);
    char* e = nullptr;
    d = std::strtod(num.c_str(), &e);
    if (e != num.c_str() + n || !std::isfinite(d)) return false;
    i_ += n;
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
  size_t max_items_;
};

// ---- the file: checks, owner lock --------------------------------------------

// Opens path read-only and checks that it is a cachemeter metrics file in
// good health, without writing a byte. Returns false when there is nothing
// there yet (missing or empty). Throws Error.
struct Row {
  int64_t ival = 0;
  double dval = 0;
  double sum = 0;
  std::vector<uint64_t> counts;  // histograms: per bucket, +Inf last
  double created = 0;
};

struct SavedFamily {
  int64_t id = 0;
  std::string kind, labels_json, bounds_json, help;
  std::unordered_map<std::string, Row> rows;  // by label values (JSON)
};
using SavedMap = std::unordered_map<std::string, SavedFamily>;
using ByName = std::unordered_map<std::string, std::vector<std::string>>;
void read_rows(const Db& db, SavedMap& saved, ByName& by_name);

// Opens path read-only and checks, without writing a byte, that it is a
// cachemeter metrics file in good health: ours (application_id, user_version,
// exactly our schema), undamaged (quick_check), and every row readable within
// the bounds (read into saved/by_name, one snapshot). Returns the connection,
// or null when there is nothing there yet (missing or empty). Throws Error.
Db check_file(const std::string& path, bool must_exist, Deadline& deadline, SavedMap& saved, ByName& by_name) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT && !must_exist) return Db();
    throw Error(errno == ENOENT ? CM_EINVAL : status_of_errno(errno),
                "cannot use \"" + path + "\": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) throw Error(CM_EINVAL, "\"" + path + "\" is not a regular file");
  if (st.st_size == 0) {
    if (!must_exist) return Db();
    throw Error(CM_ECORRUPT, "\"" + path + "\" is empty: not a cachemeter metrics file");
  }
  Db db = Db::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, "", "opening \"" + path + "\" read-only");
  harden(db.get(), &deadline);
  db.busy_timeout(5000);
  int64_t app = 0, version = 0;
  try {
    app = db.query_int("PRAGMA application_id");
    version = db.query_int("PRAGMA user_version");
  } catch (const Error& e) {
    if (e.status() == CM_ECORRUPT)
      throw Error(CM_ECORRUPT, "\"" + path + "\" is not a cachemeter metrics file (" + e.what() + "); left untouched");
    throw;
  }
  if (app != kApplicationId)
    throw Error(CM_ECORRUPT, "\"" + path + "\" is a SQLite database but not a cachemeter metrics file "
                             "(application_id " + std::to_string(app) + "); left untouched");
  if (version < 1 || version > kSchemaVersion)
    throw Error(CM_ECORRUPT, "\"" + path + "\" has metrics schema version " + std::to_string(version) +
                                 ", this library reads 1.." + std::to_string(kSchemaVersion) + "; left untouched");
  // Exactly our schema before anything else reads a table: nothing the file
  // defines (a view, a trigger) runs, and every query below reads real tables.
  try {
    check_schema(db, path);
  } catch (const Error& e) {
    if (e.status() != CM_ECORRUPT) throw;
    std::string m = e.what();
    if (m.find("untouched") == std::string::npos) m = "\"" + path + "\": " + m + "; left untouched";
    throw Error(CM_ECORRUPT, m);
  }
  Stmt qc = db.prepare("PRAGMA quick_check(1)");
  int rc = sqlite3_step(qc.get());
  std::string verdict = rc == SQLITE_ROW ? qc.text(0) : std::string(sqlite3_errmsg(db.get()));
  for (char& c : verdict)
    if (c == '\n') c = ' ';
  if (verdict != "ok")
    throw Error(CM_ECORRUPT, "\"" + path + "\" is damaged (" + verdict + "); left untouched");
  qc = Stmt();  // finalized
  try {
    db.exec("BEGIN", "BEGIN");  // one consistent snapshot while an owner writes
    read_rows(db, saved, by_name);
    db.exec("COMMIT", "COMMIT");
  } catch (const Error& e) {
    if (e.status() != CM_ECORRUPT) throw;
    throw Error(CM_ECORRUPT, "\"" + path + "\" refused: " + e.what() + "; left untouched");
  }
  return db;
}

// One process owns a metrics file: an open-file-description lock on
// "<path>-lock". The kernel drops it when the owner dies, however it dies, so
// a dead owner's file is taken over by the next opener; the file's text is
// the owner's pid, for the message the next would-be owner gets.
class OwnerLock {
 public:
  explicit OwnerLock(const std::string& db_path) : path_(db_path + "-lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw Error(status_of_errno(errno), "cannot create the lock file \"" + path_ + "\": " + std::strerror(errno));
    struct flock fl{};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd_, F_OFD_SETLK, &fl) != 0) {
      int err = errno;
      std::string pid = (err == EAGAIN || err == EACCES) ? owner_pid() : "";
      ::close(fd_);
      fd_ = -1;
      if (err == EAGAIN || err == EACCES)
        throw Error(CM_ESTATE, "\"" + db_path + "\" is owned by process " + pid + " (lock file \"" + path_ + "\")");
      throw Error(status_of_errno(err), "cannot lock \"" + path_ + "\": " + std::strerror(err));
    }
    std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
      int err = errno;
      ::close(fd_);
      fd_ = -1;
      throw Error(status_of_errno(err), "cannot write the lock file \"" + path_ + "\": " + std::strerror(err));
    }
  }
  ~OwnerLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

 private:
  // The owner writes its pid right after locking: retry briefly (bounded)
  // when we catch it in between.
  std::string owner_pid() const {
    for (int attempt = 0; attempt < 100; ++attempt) {
      char buf[32] = {};
      ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      if (n > 0) {
        std::string s(buf, static_cast<size_t>(n));
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        if (!s.empty()) return s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return "(unknown pid)";
  }

  std::string path_;
  int fd_ = -1;
};

// ---- restore and flush ---------------------------------------------------------

// What a family is in the file: rows only match a family of the same layout.
std::string identity(const std::string& name, const std::string& kind, const std::string& labels,
                     const std::string& bounds) {
  std::string id = name;
  id += '\x1f';
  id += kind;
  id += '\x1f';
  id += labels;
  id += '\x1f';
  id += bounds;
  return id;
}


// Reads every family and series row of db, within the bounds (kMaxRows,
// kMaxTextBytes; SQLITE_LIMIT_LENGTH per value). Throws Error.
void read_rows(const Db& db, SavedMap& saved, ByName& by_name) {
  std::unordered_map<int64_t, SavedFamily*> by_id;
  // Bounds on what the file can make us hold (each value is bounded by
  // SQLITE_LIMIT_LENGTH already): rows and text bytes in all.
  int64_t nrows = 0, nbytes = 0;
  auto budget = [&](sqlite3_stmt* st, int ncols) {
    ++nrows;
    for (int i = 0; i < ncols; ++i) nbytes += sqlite3_column_bytes(st, i);
    if (nrows > kMaxRows)
      throw Error(CM_ECORRUPT, "more than " + std::to_string(kMaxRows) + " rows: refused, not loaded");
    if (nbytes > kMaxTextBytes)
      throw Error(CM_ECORRUPT, "more than " + std::to_string(kMaxTextBytes >> 20) + " MiB of text: refused, not loaded");
  };
  Stmt fs = db.prepare("SELECT id, name, kind, label_names, bounds, help FROM cm_family");
  while (fs.step("reading cm_family")) {
    budget(fs.get(), 6);
    SavedFamily f;
    f.id = fs.int64(0);
    std::string name = fs.text(1);
    f.kind = fs.text(2);
    std::vector<std::string> labels;
    std::vector<double> bounds;
    if (!JsonArray(fs.text(3)).strings(labels) ||
        !JsonArray(fs.text(4), CM_HISTOGRAM_MAX_BOUNDS).doubles(bounds))
      throw Error(CM_ECORRUPT, "family row " + std::to_string(f.id) + " (\"" + name +
                                   "\"): label_names or bounds is not a JSON array (of at most " +
                                   std::to_string(kMaxJsonItems) + " names, " +
                                   std::to_string(CM_HISTOGRAM_MAX_BOUNDS) + " bounds)");
    f.labels_json = json_strings(labels);  // normalised: compared byte for byte
    f.bounds_json = json_doubles(bounds);
    f.help = fs.text(5);
    std::string id = identity(name, f.kind, f.labels_json, f.bounds_json);
    auto [it, fresh] = saved.emplace(id, std::move(f));
    if (fresh) by_name[name].push_back(id);
    by_id[it->second.id] = &it->second;
  }
  Stmt ss = db.prepare("SELECT family_id, label_values, int_part, double_part, sum, buckets, created FROM cm_series");
  while (ss.step("reading cm_series")) {
    budget(ss.get(), 7);
    auto it = by_id.find(ss.int64(0));
    if (it == by_id.end()) continue;  // a family row removed by hand: nothing to restore into
    SavedFamily& f = *it->second;
    Row row;
    row.ival = ss.int64(2);
    row.dval = ss.real(3);
    row.sum = ss.real(4);
    row.created = ss.real(6);
    std::string values = ss.text(1);
    std::vector<std::string> parsed;
    if (!JsonArray(values).strings(parsed))
      throw Error(CM_ECORRUPT, "a series of family row " + std::to_string(f.id) + ": label_values is not a JSON array");
    if (f.kind == "histogram" && !JsonArray(ss.text(5), CM_HISTOGRAM_MAX_BOUNDS + 1).counts(row.counts))
      throw Error(CM_ECORRUPT, "a series of family row " + std::to_string(f.id) + ": buckets is not a JSON array (of at most " +
                                   std::to_string(CM_HISTOGRAM_MAX_BOUNDS + 1) + " counts)");
    f.rows.emplace(json_strings(parsed), std::move(row));
  }
}

// The value a row stands for, as a series of s's kind; false when the row
// does not fit s.
bool row_value(const Row& row, const cm_series& s, SeriesValue& out) {
  out.kind = s.kind;
  if (s.kind == Kind::Histogram) {
    if (row.counts.size() != s.nbounds + 1u) return false;
    out.sum = row.sum;
    out.buckets = row.counts;
    out.count = 0;
    for (uint64_t c : row.counts) out.count += c;
  } else {
    out.double_part = row.dval;
    out.int_part = row.ival;
  }
  return true;
}

void write_owner(const Db& db) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  Stmt st = db.prepare("INSERT OR REPLACE INTO cm_owner(id, pid, host, since) VALUES(1, ?1, ?2, ?3)");
  st.bind_int(1, ::getpid());
  st.bind_text(2, host);
  st.bind_double(3, unix_time_now());
  st.drain("writing cm_owner");
}

// The registry's persistence sink (metrics/sink.h): the host runs the
// flusher thread, walks the registry and remembers what the file holds per
// series (seeded with the restored rows); the persister writes what changed.
// After fork() the file stays with the process that called
// cm_registry_persist: in a child the persister is inherited but detached
// (docs/threading.md, "fork()"). It never flushes there and never closes the
// inherited SQLite connection (SQLite forbids using one across fork).
class Persister final : public Sink, private fork::Hooks {
 private:
  struct FamInfo {
    bool persisted = false;
    std::string identity, labels_json, bounds_json;
    int64_t id = 0;  // cm_family.id once known; set under r.mu before any flush sees it, then by flushes
  };
  // A row to write.
  struct Pending {
    const cm_family* f;
    FamInfo* fi;
    std::string values_json;
    const SeriesValue* value;
    double created;
  };

 public:
  Persister(cm_registry& r, std::string path, std::unique_ptr<OwnerLock> lock, Db db)
      : r_(r), path_(std::move(path)), lock_(std::move(lock)), db_(std::move(db)) {
    fork_.enrol(this);
  }

  ~Persister() override {
    fork_.leave();
    if (inherited_.load()) {
      // Leaked on purpose: the connection and its statements must not be
      // touched here (the parent's flusher may have been inside them at
      // fork()). The lock file's descriptor is closed (the parent's copy
      // keeps the lock).
      upsert_.abandon();
      family_insert_.abandon();
      db_.abandon();
    }
    // Otherwise the host flushed a last time before destroying its sinks.
  }

  // Reads the file's rows (still untouched: a refusal leaves it as it was),
  // then takes it over (WAL, the owner row) and registers the self-metrics
  // (before joining the sinks). The read runs under deadline, removed afterwards.
  void prepare_restore(Deadline& deadline) {
    harden(db_.get(), &deadline);
    check_schema(db_, path_);  // again, on this connection: the file may have changed since
    {
      Tx tx(db_);
      read_rows(db_, saved_, by_name_);
      tx.commit();
    }
    sqlite3_progress_handler(db_.get(), 0, nullptr, nullptr);
    // WAL: a flush is one append, readers (cachemeter dump) never block it.
    // synchronous=NORMAL: a process crash loses nothing committed; only a
    // power loss can drop the last flushes, never corrupt the file
    // (docs/persistence.md).
    db_.prepare("PRAGMA journal_mode = WAL").drain("PRAGMA journal_mode = WAL");
    db_.exec("PRAGMA synchronous = NORMAL", "PRAGMA synchronous = NORMAL");
    {
      Tx tx(db_);
      write_owner(db_);
      tx.commit();
    }
    upsert_ = db_.prepare(
                      "INSERT INTO cm_series(family_id, label_values, value, int_part, double_part, sum, count, "
                      "buckets, created, updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                      "ON CONFLICT(family_id, label_values) DO UPDATE SET value = excluded.value, "
                      "int_part = excluded.int_part, double_part = excluded.double_part, sum = excluded.sum, "
                      "count = excluded.count, buckets = excluded.buckets, created = excluded.created, "
                      "updated = excluded.updated");
    family_insert_ = db_.prepare(
                             "INSERT INTO cm_family(name, kind, label_names, bounds, help) VALUES(?1, ?2, ?3, ?4, ?5) "
                             "ON CONFLICT(name, kind, label_names, bounds) DO UPDATE SET help = excluded.help "
                             "RETURNING id");
    const std::string& p = r_.prefix;
    conflicts_ = family_series(*register_family(r_, Kind::Counter, p + "persist_conflicts_total",
                                                "Saved families whose layout (type, labels or buckets) differs "
                                                "from the registered one: their saved data stays in the file, "
                                                "the new series start at zero.",
                                                nullptr, 0, nullptr, 0, true),
                               nullptr, 0);
    failures_ = family_series(*register_family(r_, Kind::Counter, p + "persist_flush_failures_total",
                                               "Background flushes of the metrics file that failed (retried "
                                               "at the next interval).",
                                               nullptr, 0, nullptr, 0, true),
                              nullptr, 0);
  }

  bool wants(const cm_family& f) noexcept override {
    auto it = fams_.find(&f);
    return it != fams_.end() && it->second.persisted;
  }

  void family_registered(cm_family& f) noexcept override {
    try {
      FamInfo fi;
      fi.persisted = !f.internal && (f.kind != Kind::Gauge || r_.persist_gauges);
      if (fi.persisted) {
        fi.labels_json = json_strings(f.label_names);
        fi.bounds_json = json_doubles(f.bounds);
        fi.identity = identity(f.name, kind_name(f.kind), fi.labels_json, fi.bounds_json);
        if (auto it = saved_.find(fi.identity); it != saved_.end()) fi.id = it->second.id;
        if (auto it = by_name_.find(f.name); it != by_name_.end()) {
          for (const std::string& other : it->second) {
            if (other == fi.identity) continue;
            const SavedFamily& sf = saved_.at(other);
            set_error(CM_OK, "persist: \"" + f.name + "\" was saved in \"" + path_ + "\" as a " + sf.kind +
                                 " with labels " + sf.labels_json + " and bounds " + sf.bounds_json +
                                 "; registered now as a " + kind_name(f.kind) + " with labels " + fi.labels_json +
                                 " and bounds " + fi.bounds_json +
                                 ". The saved data stays in the file under its old layout; the new series start "
                                 "at zero.");
            cells::add_count(conflicts_->block, 1, 1);
          }
        }
      }
      std::lock_guard<std::mutex> g(fams_mu_);
      fams_.insert_or_assign(&f, std::move(fi));
    } catch (...) {
      // Out of memory: the family is simply not persisted.
    }
  }

  // Restores the saved row into s (added to what s holds: a series that
  // existed before cm_registry_persist() may have counted) and seeds the
  // host with it: the file holds it already.
  void series_created(cm_series& s, SinkSeed& seed) noexcept override {
    try {
      auto fit = fams_.find(s.family);
      if (fit == fams_.end() || !fit->second.persisted) return;
      auto sf = saved_.find(fit->second.identity);
      if (sf == saved_.end()) return;
      auto rit = sf->second.rows.find(json_strings(s.values));
      if (rit == sf->second.rows.end()) return;
      SeriesValue saved;
      if (row_value(rit->second, s, saved) && write_series(s, saved, true)) {
        s.created = rit->second.created;
        seed.set = true;
        seed.value = std::move(saved);
        seed.created = s.created;
      }
      sf->second.rows.erase(rit);  // the live series owns the row from now on
    } catch (...) {
    }
  }

  // Writes the changed series the host hands over, in one transaction.
  void flush(std::vector<SinkSeries>& changed) override {
    if (inherited_.load())
      throw Error(CM_ESTATE, "\"" + path_ + "\" is persisted by the process that called cm_registry_persist "
                             "before fork(); this child does not write it (persist after fork, to another file)");
    std::vector<Pending> batch;
    batch.reserve(changed.size());
    {
      std::lock_guard<std::mutex> g(fams_mu_);
      for (const SinkSeries& c : changed)
        batch.push_back({c.family, &fams_.at(c.family), json_strings(c.values()), &c.value, c.created});
    }
    write(batch);
  }

  void background_failed() noexcept override { cells::add_count(failures_->block, 1, 1); }

 private:
  void write(std::vector<Pending>& batch) {
    double now = unix_time_now();
    const Stmt& up = upsert_;
    Tx tx(db_);
    for (Pending& p : batch) {
      if (p.fi->id == 0) p.fi->id = insert_family(*p.f, *p.fi);
      up.reset();
      up.clear_bindings();
      up.bind_int(1, p.fi->id);
      up.bind_text(2, p.values_json);
      std::string buckets;
      if (p.f->kind == Kind::Histogram) {
        buckets = json_counts(p.value->buckets.data(), p.value->buckets.size());
        up.bind_double(6, p.value->sum);
        up.bind_int(7, static_cast<int64_t>(p.value->count));
        up.bind_text(8, buckets);
      } else {
        up.bind_double(3, p.value->value());
        up.bind_int(4, p.value->int_part);
        up.bind_double(5, p.value->double_part);
      }
      up.bind_double(9, p.created);
      up.bind_double(10, now);
      int rc = sqlite3_step(up.get());
      if (rc != SQLITE_DONE) up.fail(rc, "writing \"" + p.f->name + "\" to \"" + path_ + "\"");
    }
    up.reset();
    tx.commit();
  }


  int64_t insert_family(const cm_family& f, const FamInfo& fi) {
    const Stmt& st = family_insert_;
    sqlite::Use use(st);
    st.bind_text(1, f.name);
    st.bind_text(2, kind_name(f.kind));
    st.bind_text(3, fi.labels_json);
    st.bind_text(4, fi.bounds_json);
    st.bind_text(5, f.help);
    int rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) st.fail(rc, "writing family \"" + f.name + "\"");
    return st.int64(0);
  }

  // In the child: the file stays with the parent.
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(fams_mu_)); }
  void fork_child() override { inherited_.store(true); }

  cm_registry& r_;
  std::string path_;
  std::unique_ptr<OwnerLock> lock_;  // declared before db_: released after the file is closed
  Db db_;
  Stmt upsert_, family_insert_;      // the host's flush mutex
  // Registry mutex:
  std::unordered_map<std::string, SavedFamily> saved_;  // rows not yet owned by a live series
  std::unordered_map<std::string, std::vector<std::string>> by_name_;
  // Changed under the registry mutex and fams_mu_, read under either (a
  // flush, which runs without the registry mutex, under fams_mu_).
  std::unordered_map<const cm_family*, FamInfo> fams_;
  std::mutex fams_mu_;
  cm_series* conflicts_ = nullptr;
  cm_series* failures_ = nullptr;
  std::atomic<bool> inherited_{false};  // set in a child of fork()
  fork::Enrolment fork_;
};

// Opens (or creates) the file for writing, once the owner lock is held.
Db open_for_writing(const std::string& path, bool existed) {
  Db db = Db::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, "",
                   "opening \"" + path + "\"");
  harden(db.get(), nullptr);
  db.busy_timeout(5000);
  int64_t app = db.query_int("PRAGMA application_id");
  int64_t version = db.query_int("PRAGMA user_version");
  int64_t objects = db.query_int("SELECT count(*) FROM sqlite_schema");
  if (app == kApplicationId && version >= 1 && version <= kSchemaVersion) {
    // Ours (checked read-only, or created by an owner since we looked).
  } else if (!existed && app == 0 && version == 0 && objects == 0) {
    // New: the schema in one rollback-journal transaction, before WAL, so a
    // crash here leaves an empty file that the next opener starts again.
    Tx tx(db);
    db.exec(kSchema, "creating the metrics schema");
    db.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str(), "PRAGMA application_id");
    db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), "PRAGMA user_version");
    tx.commit();
  } else {
    throw Error(CM_ECORRUPT, "\"" + path + "\" changed under us into something that is not a metrics file");
  }
  return db;
}


// The registry's persister, or nullptr. Registry mutex.
Persister* persister_locked(cm_registry& r) {
  if (!r.sinks) return nullptr;
  for (Sink* s : r.sinks->sinks())
    if (auto* p = dynamic_cast<Persister*>(s)) return p;
  return nullptr;
}

Persister& persister_of(cm_registry& r) {
  std::lock_guard<std::mutex> g(r.mu);
  Persister* p = persister_locked(r);
  if (!p) throw Error(CM_ESTATE, "this registry does not persist (call cm_registry_persist first)");
  return *p;
}

}  // namespace

void start(cm_registry& r, const std::string& path, unsigned interval_ms) {
  {
    std::lock_guard<std::mutex> g(r.mu);
    if (persister_locked(r)) throw Error(CM_ESTATE, "this registry already persists");
  }
  enrol_sqlite_for_fork();
  Deadline deadline;
  bool existed;
  {
    // Before anything is written: every check, and one full read of the rows.
    SavedMap saved;
    ByName by_name;
    existed = static_cast<bool>(check_file(path, false, deadline, saved, by_name));
  }
  auto lock = std::make_unique<OwnerLock>(path);
  Db db = open_for_writing(path, existed);
  auto p = std::make_unique<Persister>(r, path, std::move(lock), std::move(db));
  p->prepare_restore(deadline);
  // Restores into the families and series that exist already and joins the
  // registry's sinks, all under the registry mutex.
  std::lock_guard<std::mutex> g(r.mu);
  if (persister_locked(r)) throw Error(CM_ESTATE, "this registry already persists");
  add_sink_locked(r, std::move(p), interval_ms);
}

void flush(cm_registry& r) { flush_sink(r, persister_of(r)); }

void load(cm_registry& r, const std::string& path) {
  enrol_sqlite_for_fork();
  Deadline deadline;
  SavedMap saved;
  ByName by_name;
  Db db = check_file(path, true, deadline, saved, by_name);
  // Most recently written layout first: an older layout of the same name
  // (changed buckets) is the one skipped, and counted.
  Stmt order = db.prepare(
                       "SELECT f.name, f.kind, f.label_names, f.bounds FROM cm_family f "
                       "ORDER BY (SELECT max(updated) FROM cm_series s WHERE s.family_id = f.id) DESC, f.id DESC");
  std::vector<std::string> ids;
  while (order.step("reading cm_family")) {
    std::vector<std::string> labels;
    std::vector<double> bounds;
    JsonArray(order.text(2)).strings(labels);
    JsonArray(order.text(3)).doubles(bounds);
    ids.push_back(identity(order.text(0), order.text(1), json_strings(labels), json_doubles(bounds)));
  }
  cm_series* conflicts = family_series(
      *register_family(r, Kind::Counter, r.prefix + "persist_conflicts_total",
                       "Saved families whose layout (type, labels or buckets) differs from the registered one.",
                       nullptr, 0, nullptr, 0, true),
      nullptr, 0);
  for (const std::string& id : ids) {
    auto it = saved.find(id);
    if (it == saved.end()) continue;
    SavedFamily& sf = it->second;
    std::string name = id.substr(0, id.find('\x1f'));
    Kind kind = sf.kind == "counter" ? Kind::Counter : sf.kind == "gauge" ? Kind::Gauge : Kind::Histogram;
    std::vector<std::string> labels;
    std::vector<double> bounds;
    JsonArray(sf.labels_json).strings(labels);
    JsonArray(sf.bounds_json).doubles(bounds);
    std::vector<const char*> lp;
    for (const auto& l : labels) lp.push_back(l.c_str());
    cm_family* f;
    try {
      f = register_family(r, kind, name, sf.help.c_str(), lp.data(), lp.size(), bounds.data(), bounds.size(), false);
    } catch (const Error& e) {
      if (e.status() != CM_EEXIST) throw;
      cells::add_count(conflicts->block, 1, 1);
      continue;
    }
    for (auto& [values_json, row] : sf.rows) {
      std::vector<std::string> values;
      JsonArray(values_json).strings(values);
      std::vector<const char*> vp;
      for (const auto& v : values) vp.push_back(v.c_str());
      cm_series* s = family_series(*f, vp.data(), vp.size());
      SeriesValue v;
      if (!row_value(row, *s, v)) continue;
      std::lock_guard<std::mutex> g(r.mu);
      s->created = row.created;
      write_series(*s, v, false);
    }
  }
}

}  // namespace cm::persist
