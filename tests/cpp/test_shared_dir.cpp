// SPDX-License-Identifier: Apache-2.0
// The shared metrics directory (src/metrics/shared/): slot files written the
// way the cell space will write them, read back and aggregated by any
// process; worker slots claimed, held while their process lives, folded and
// reused when it dies (fork + _exit / SIGKILL, no hook); families registered
// once across processes; hostile directories refused untouched.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "metrics/shared/directory.h"

using namespace cm::shared;

namespace {

constexpr uint8_t kCounter = 0, kGauge = 1;

class TmpDir {
 public:
  TmpDir() {
    char tmpl[] = "/tmp/cm-shared-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p) path_ = p;
  }
  ~TmpDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& n) const { return path_ + "/" + n; }

 private:
  std::string path_;
};

FamilyDef counter(const std::string& name, std::vector<std::string> labels = {}) {
  FamilyDef f;
  f.kind = kCounter;
  f.name = name;
  f.help = "help of " + name;
  f.label_names = std::move(labels);
  return f;
}

FamilyDef gauge(const std::string& name, GaugeMode m) {
  FamilyDef f = counter(name);
  f.kind = kGauge;
  f.gauge_mode = static_cast<uint8_t>(m);
  return f;
}

// Writes series into a slot the way cm::cells lays them out: a base chunk
// holding each series' generation, one thread chunk holding the cells.
class Writer {
 public:
  explicit Writer(SlotFile& f) : f_(f) {
    base_ = f.take_chunk(ChunkRole::Base, 0, 0);
    cell_ = f.take_chunk(ChunkRole::Thread, 0, 1);
  }
  // A counter or gauge series (payload: double part, integer part).
  uint32_t add(uint32_t family, std::vector<std::string> values = {}) {
    uint32_t w = fill_;
    base_[w].store(1);
    f_.add_series(family, w, 3, 1, values);
    fill_ += 3;
    return w;
  }
  // As cm::cells does: a stale cell restarts from zero under the base's generation.
  void current(uint32_t w) {
    if (cell_[w].load() == base_[w].load()) return;
    cell_[w + 1].store(0);
    cell_[w + 2].store(0);
    cell_[w].store(base_[w].load());
  }
  void count(uint32_t w, int64_t n) {
    current(w);
    cell_[w + 2].fetch_add(static_cast<uint64_t>(n));
  }
  void add_double(uint32_t w, double d) {
    current(w);
    cell_[w + 1].store(std::bit_cast<uint64_t>(std::bit_cast<double>(cell_[w + 1].load()) + d));
  }
  // A reset: new generation, new base; the thread's cell goes stale.
  void reset_to(uint32_t w, int64_t base_count) {
    SlotFile::Move m(f_);
    base_[w + 2].store(static_cast<uint64_t>(base_count));
    base_[w].store(base_[w].load() + 1);
  }

 private:
  SlotFile& f_;
  std::atomic<uint64_t>* base_;
  std::atomic<uint64_t>* cell_;
  uint32_t fill_ = 0;
};

double value_of(const Directory::View& v, const std::string& family, std::vector<std::string> values = {},
                int64_t worker = -1) {
  for (uint32_t i = 0; i < v.families.size(); ++i) {
    if (v.families[i].name != family) continue;
    auto it = v.agg.series().find(Aggregate::Key{i, values, worker});
    if (it == v.agg.series().end()) return NAN;
    const auto& p = it->second.payload;
    return std::bit_cast<double>(p[0]) + static_cast<double>(static_cast<int64_t>(p[1]));
  }
  return NAN;
}

int status_of(auto&& fn) {
  try {
    fn();
    return CM_OK;
  } catch (const cm::Error& e) {
    return e.status();
  }
}

std::string errmsg_of(auto&& fn) {
  try {
    fn();
    return "";
  } catch (const cm::Error& e) {
    return e.what();
  }
}

// Every file of the directory and its bytes: "nothing touched" is checked
// against this.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::ifstream f(dir + "/" + n, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    out[n] = ss.str();
  }
  ::closedir(d);
  return out;
}

size_t count_files(const std::string& dir) { return snapshot(dir).size(); }

// Runs fn in a child process; returns its exit status (fn's failures exit 1).
int in_child(auto&& fn, bool sigkill_self = false) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 0;
    try {
      fn();
    } catch (...) {
      rc = 1;
    }
    if (sigkill_self) ::kill(::getpid(), SIGKILL);
    ::_exit(rc);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return WEXITSTATUS(st);
}

}  // namespace

TEST(SharedDir, SlotsOfTwoWorkersAreSummed) {
  TmpDir t;
  auto a = Directory::open(t.path(), 4);
  auto b = Directory::open(t.path(), 4);
  uint32_t fam = a->family_id(counter("requests_total", {"code"}));
  EXPECT_EQ(b->family_id(counter("requests_total", {"code"})), fam);
  auto sa = a->claim();
  auto sb = b->claim();
  EXPECT_NE(sa->slot(), sb->slot());
  Writer wa(*sa), wb(*sb);
  uint32_t a200 = wa.add(fam, {"200"}), a500 = wa.add(fam, {"500"});
  uint32_t b200 = wb.add(fam, {"200"});
  wa.count(a200, 5);
  wa.count(a500, 1);
  wb.count(b200, 7);
  wb.add_double(b200, 0.5);
  auto v = a->read();
  EXPECT_EQ(v->live_workers, 2u);
  EXPECT_EQ(value_of(*v, "requests_total", {"200"}), 12.5);
  EXPECT_EQ(value_of(*v, "requests_total", {"500"}), 1.0);
  EXPECT_EQ(v->agg.series().size(), 2u);
}

TEST(SharedDir, StaleCellsCountOnlyTheirBase) {
  TmpDir t;
  auto d = Directory::open(t.path(), 2);
  uint32_t fam = d->family_id(counter("x_total"));
  auto s = d->claim();
  Writer w(*s);
  uint32_t x = w.add(fam);
  w.count(x, 10);
  EXPECT_EQ(value_of(*d->read(), "x_total"), 10.0);
  w.reset_to(x, 3);  // the cell (10) is now stale
  EXPECT_EQ(value_of(*d->read(), "x_total"), 3.0);
  w.count(x, 2);  // the thread's cell restarts under the new generation
  EXPECT_EQ(value_of(*d->read(), "x_total"), 5.0);
}

TEST(SharedDir, LiveWorkersHoldTheirSlotsPastMaxWorkersIsElimit) {
  TmpDir t;
  auto a = Directory::open(t.path(), 2);
  auto b = Directory::open(t.path(), 2);
  auto c = Directory::open(t.path(), 2);
  auto sa = a->claim();
  auto sb = b->claim();
  EXPECT_TRUE(a->slot_live(0));
  EXPECT_TRUE(a->slot_live(1));
  std::string msg = errmsg_of([&] { c->claim(); });
  EXPECT_NE(msg.find("all 2 worker slots"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { c->claim(); }), CM_ELIMIT);
  sb.reset();  // that worker is gone: its slot is free again
  EXPECT_FALSE(a->slot_live(1));
  auto sc = c->claim();
  EXPECT_EQ(sc->slot(), 1u);
}

TEST(SharedDir, AKilledWorkerLosesNothingAndItsSlotIsFoldedOnReuse) {
  TmpDir t;
  {
    auto d = Directory::open(t.path(), 2);
    d->family_id(counter("jobs_total"));
  }
  // A worker counts 3 and is SIGKILLed: no destructor, no hook ran.
  int rc = in_child(
      [&] {
        auto d = Directory::open(t.path(), 2);
        auto s = d->claim();
        Writer w(*s);
        w.count(w.add(d->family_id(counter("jobs_total"))), 3);
      },
      true);
  ASSERT_EQ(rc, 128 + SIGKILL);
  auto d = Directory::open(t.path(), 2);
  auto v = d->read();
  EXPECT_EQ(v->live_workers, 0u);
  EXPECT_EQ(value_of(*v, "jobs_total"), 3.0);
  // Its slot is the first free one: claiming folds it into compact.cm.
  auto s = d->claim();
  EXPECT_EQ(s->slot(), 0u);
  EXPECT_EQ(s->incarnation(), 2u);
  Writer w(*s);
  w.count(w.add(d->family_id(counter("jobs_total"))), 4);
  EXPECT_EQ(value_of(*d->read(), "jobs_total"), 7.0);
}

// The churn test: 1000 short-lived workers each add 1.
TEST(SharedDir, ChurnOfAThousandWorkersIsExactAndBounded) {
  TmpDir t;
  constexpr uint32_t kMaxWorkers = 4;
  constexpr int kWorkers = 1000;
  for (int i = 0; i < kWorkers; ++i) {
    int rc = in_child([&] {
      auto d = Directory::open(t.path(), kMaxWorkers);
      auto s = d->claim();
      Writer w(*s);
      w.count(w.add(d->family_id(counter("churn_total"))), 1);
    });
    ASSERT_EQ(rc, 0) << "worker " << i;
  }
  auto d = Directory::open(t.path(), kMaxWorkers);
  auto v = d->read();
  EXPECT_EQ(value_of(*v, "churn_total"), kWorkers);
  // The layout file, families.cm, compact.cm and at most max_workers slots.
  EXPECT_LE(count_files(t.path()), kMaxWorkers + 3);
}

TEST(SharedDir, GaugeModesApplyAcrossLiveAndDeadWorkers) {
  TmpDir t;
  auto d = Directory::open(t.path(), 4);
  const std::vector<std::pair<std::string, GaugeMode>> modes = {
      {"g_sum", GaugeMode::Sum}, {"g_max", GaugeMode::Max},         {"g_min", GaugeMode::Min},
      {"g_livesum", GaugeMode::LiveSum}, {"g_livemax", GaugeMode::LiveMax}, {"g_all", GaugeMode::All}};
  // A dead worker set every gauge to 5.
  ASSERT_EQ(in_child(
                [&] {
                  auto c = Directory::open(t.path(), 4);
                  auto s = c->claim();
                  Writer w(*s);
                  for (auto& [n, m] : modes) w.count(w.add(c->family_id(gauge(n, m))), 5);
                },
                true),
            128 + SIGKILL);
  // This live worker set them to 2.
  auto s = d->claim();
  Writer w(*s);
  for (auto& [n, m] : modes) w.count(w.add(d->family_id(gauge(n, m))), 2);
  auto v = d->read();
  EXPECT_EQ(value_of(*v, "g_sum"), 7.0);
  EXPECT_EQ(value_of(*v, "g_max"), 5.0);
  EXPECT_EQ(value_of(*v, "g_min"), 2.0);
  EXPECT_EQ(value_of(*v, "g_livesum"), 2.0);
  EXPECT_EQ(value_of(*v, "g_livemax"), 2.0);
  EXPECT_EQ(value_of(*v, "g_all", {}, s->slot()), 2.0);
  EXPECT_TRUE(std::isnan(value_of(*v, "g_all", {}, 1 - static_cast<int64_t>(s->slot()))));
}

TEST(SharedDir, EightProcessesRegisteringTheSameSeriesYieldOne) {
  TmpDir t;
  { auto d = Directory::open(t.path(), 16); }
  std::vector<pid_t> kids;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  for (int i = 0; i < 8; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 0) ::_exit(2);  // released together when the pipe closes
      try {
        auto d = Directory::open(t.path(), 16);
        auto s = d->claim();
        Writer w(*s);
        w.count(w.add(d->family_id(counter("same_total", {"k"})), {"v"}), 1);
        ::pause();  // stay alive: the parent counts live workers
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);  // releases them
  auto d = Directory::open(t.path(), 16);
  // Wait (bounded) for all eight to have written.
  double total = 0;
  for (int i = 0; i < 10000 && total != 8; ++i) {
    auto v = d->read();
    total = value_of(*v, "same_total", {"v"});
    if (total != 8) ::usleep(1000);
  }
  auto v = d->read();
  EXPECT_EQ(v->families.size(), 1u);
  EXPECT_EQ(v->agg.series().size(), 1u);
  EXPECT_EQ(value_of(*v, "same_total", {"v"}), 8.0);
  EXPECT_EQ(v->live_workers, 8u);
  for (pid_t p : kids) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, 0);
  }
  EXPECT_EQ(d->read()->live_workers, 0u);
  EXPECT_EQ(value_of(*d->read(), "same_total", {"v"}), 8.0);  // dead workers still count
}

// The fuzz seeds are written by tests/fuzz/make_shared_seeds.py, from the
// layout as docs/multiprocess.md describes it: the decoder must agree.
TEST(SharedDir, DecodesTheLayoutAsDocumented) {
  auto load = [](const std::string& name) {
    std::ifstream f(std::string(CM_FUZZ_SEEDS) + "/shared_slot/corpus/" + name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  std::string seed = load("slot_two_threads");
  ASSERT_GT(seed.size(), 4u);
  uint32_t n;
  std::memcpy(&n, seed.data(), 4);
  auto bytes = reinterpret_cast<const uint8_t*>(seed.data()) + 4;
  std::vector<FamilyDef> fams = decode_families(bytes, n, "families");
  ASSERT_EQ(fams.size(), 3u);
  EXPECT_EQ(fams[0].name, "requests_total");
  EXPECT_EQ(fams[0].label_names, std::vector<std::string>{"code"});
  EXPECT_EQ(fams[1].gauge_mode, static_cast<uint8_t>(GaugeMode::LiveSum));
  EXPECT_EQ(fams[2].bounds, (std::vector<double>{0.1, 1.0}));
  SlotContents c = decode_slot(bytes + n, seed.size() - 4 - n, "slot");
  EXPECT_EQ(c.pid, 4242u);
  ASSERT_EQ(c.series.size(), 4u);
  Directory::View v;
  v.families = fams;
  v.agg = Aggregate(&v.families);
  v.agg.add(c, true, 0);
  // Two thread chunks, each holding the payload once.
  EXPECT_EQ(value_of(v, "requests_total", {"200"}), 10.0);
  EXPECT_EQ(value_of(v, "requests_total", {"500"}), 3.0);
  EXPECT_EQ(value_of(v, "inflight"), 6.0);
  const auto& h = v.agg.series().at(Aggregate::Key{2, {"get"}, -1}).payload;
  EXPECT_EQ(std::bit_cast<double>(h[0]), 0.5);
  EXPECT_EQ(h[1], 2u);
  EXPECT_EQ(h[2], 4u);
  EXPECT_EQ(h[3], 0u);

  std::string compact = load("compact");
  std::memcpy(&n, compact.data(), 4);
  SlotContents cc = decode_slot(reinterpret_cast<const uint8_t*>(compact.data()) + 4 + n, compact.size() - 4 - n, "compact");
  EXPECT_EQ(cc.slot, kCompactSlot);
  EXPECT_EQ(cc.folded[0], 3u);
  EXPECT_EQ(cc.folded[2], 1u);
}

TEST(SharedDir, ALayoutConflictIsRefused) {
  TmpDir t;
  auto a = Directory::open(t.path(), 2);
  auto b = Directory::open(t.path(), 2);
  a->family_id(counter("conflict_total", {"a"}));
  std::string msg = errmsg_of([&] { b->family_id(counter("conflict_total", {"b"})); });
  EXPECT_NE(msg.find("conflict_total"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { b->family_id(counter("conflict_total", {"b"})); }), CM_EEXIST);
  EXPECT_EQ(status_of([&] { b->family_id(gauge("conflict_total", GaugeMode::Sum)); }), CM_EEXIST);
}

// ---- hostile directories: a clear status, no byte changed -----------------------

TEST(SharedDirBadInput, NotADirectory) {
  TmpDir t;
  std::ofstream(t.sub("file")) << "x";
  auto before = snapshot(t.path());
  EXPECT_EQ(status_of([&] { Directory::open(t.sub("file"), 4); }), CM_EINVAL);
  EXPECT_EQ(snapshot(t.path()), before);
}

TEST(SharedDirBadInput, ADirectoryOfOtherFilesIsForeign) {
  TmpDir t;
  std::ofstream(t.sub("notes.txt")) << "mine";
  auto before = snapshot(t.path());
  std::string msg = errmsg_of([&] { Directory::open(t.path(), 4); });
  EXPECT_NE(msg.find("notes.txt"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { Directory::open(t.path(), 4); }), CM_ECORRUPT);
  EXPECT_EQ(snapshot(t.path()), before);
}

TEST(SharedDirBadInput, AnotherLayoutVersionOrMaxWorkers) {
  TmpDir t;
  { auto d = Directory::open(t.path(), 4); }
  // max_workers must match the directory's.
  EXPECT_EQ(status_of([&] { Directory::open(t.path(), 8); }), CM_EINVAL);
  std::ofstream(t.sub(kLayoutName), std::ios::trunc) << kLayoutTitle << "\nlayout 2\nbyte_order little\nmax_workers 4\n";
  auto before = snapshot(t.path());
  std::string msg = errmsg_of([&] { Directory::open(t.path(), 4); });
  EXPECT_NE(msg.find("another version"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { Directory::open(t.path(), 4); }), CM_ECORRUPT);
  EXPECT_EQ(snapshot(t.path()), before);
}

TEST(SharedDirBadInput, TruncatedOrDamagedFiles) {
  TmpDir t;
  {
    auto d = Directory::open(t.path(), 4);
    uint32_t fam = d->family_id(counter("t_total"));
    auto s = d->claim();
    Writer w(*s);
    w.count(w.add(fam), 1);
  }
  ASSERT_EQ(::truncate(t.sub(slot_name(0)).c_str(), 5000), 0);
  auto before = snapshot(t.path());
  std::string msg = errmsg_of([&] { Directory::open(t.path(), 4); });
  EXPECT_NE(msg.find("slot-000.cm"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { Directory::open(t.path(), 4); }), CM_ECORRUPT);
  EXPECT_EQ(snapshot(t.path()), before);

  ASSERT_EQ(::unlink(t.sub(slot_name(0)).c_str()), 0);
  {
    std::fstream f(t.sub(kFamiliesName), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kFamiliesStart);
    f << "garbage!";
  }
  before = snapshot(t.path());
  EXPECT_EQ(status_of([&] { Directory::open(t.path(), 4); }), CM_ECORRUPT);
  EXPECT_EQ(snapshot(t.path()), before);
}

TEST(SharedDirBadInput, AnUnwritableDirectory) {
  TmpDir t;
  ASSERT_EQ(::mkdir(t.sub("ro").c_str(), 0555), 0);
  ASSERT_EQ(::chmod(t.path().c_str(), 0755), 0);
  // Root writes anywhere: the check runs as nobody.
  int rc = in_child([&] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    int st = status_of([&] { Directory::open(t.sub("ro"), 4); });
    ::_exit(st == CM_EUNAVAILABLE ? 0 : 4);
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(count_files(t.sub("ro")), 0u);
}
