// SPDX-License-Identifier: Apache-2.0
// The shared directory: identity, families, slots, folding, the aggregate
// view (directory.h, docs/multiprocess.md).
#include "metrics/shared/directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace cm::shared {

namespace {

constexpr uint8_t kGauge = 1, kHistogram = 2;  // cm::Kind's values (a counter is 0)
constexpr const char* kTempPrefix = ".cachemeter-shared.tmp.";  // files in the making

[[noreturn]] void sys_fail(const std::string& what) {
  int err = errno;
  throw Error(status_of_errno(err), what + ": " + std::strerror(err));
}

double scalar(const std::vector<uint64_t>& p) {
  double d = std::bit_cast<double>(p[0]);
  return p[1] == 0 ? d : d + static_cast<double>(static_cast<int64_t>(p[1]));
}

// The payload words a family's series have (cm::cells: counters and gauges
// two, histograms the sum and one count per bucket with +Inf).
size_t payload_words(const FamilyDef& f) { return f.kind == kHistogram ? f.bounds.size() + 2 : 2; }

const char* byte_order() { return std::endian::native == std::endian::little ? "little" : "big"; }

std::string layout_text(uint32_t max_workers) {
  return std::string(kLayoutTitle) + "\nlayout " + std::to_string(kLayoutVersion) + "\nbyte_order " + byte_order() +
         "\nmax_workers " + std::to_string(max_workers) + "\n";
}

// Writes bytes to a new file of dir named with kTempPrefix (which
// first_foreign_entry passes over) and returns its path: the
// caller links or renames it into place, then unlinks it. Unique per call
// (pid and a counter): no two live threads or processes share one; a file
// a dead process left under a reused pid is overwritten. Throws,
// leaving nothing behind, when the file cannot be written whole.
std::string write_aside(const std::string& dir, const std::string& bytes) {
  static std::atomic<uint64_t> seq{0};
  std::string tmp = dir + "/" + kTempPrefix + std::to_string(::getpid()) + "." +
                    std::to_string(seq.fetch_add(1, std::memory_order_relaxed));
  int t = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (t < 0) sys_fail("cannot write \"" + tmp + "\"");
  ssize_t n = ::write(t, bytes.data(), bytes.size());
  int err = n < 0 ? errno : ENOSPC;  // a short write to a file: the disk is full
  ::close(t);
  if (n != static_cast<ssize_t>(bytes.size())) {
    ::unlink(tmp.c_str());
    errno = err;
    sys_fail("cannot write \"" + tmp + "\"");
  }
  return tmp;
}

bool read_all(int fd, std::string& out, size_t limit) {
  out.clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) return true;
  }
}

// The first entry of dir that is not ours in the making ("." and "..", a
// layout file being written): empty when there is none.
std::string first_foreign_entry(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) sys_fail("cannot list \"" + dir + "\"");
  std::string found;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n.rfind(kTempPrefix, 0) == 0) continue;
    found = n;
    break;
  }
  ::closedir(d);
  return found;
}

// A slot file whose owner is making it: sized, the magic not yet written
// (SlotFile::create writes it last).
bool being_made(const uint8_t* head) {
  static constexpr uint8_t kZero[sizeof kSlotMagic] = {};
  return std::memcmp(head, kZero, sizeof kZero) == 0;
}

// Every lock of the directory is on byte 0 of a file: the slot's (its
// owner's liveness) or the layout file's (the directory lock).
struct flock byte0(short type) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_len = 1;
  return fl;
}

// Holds a write lock on [0, 1) of fd's open file description.
bool try_lock(int fd) {
  struct flock fl = byte0(F_WRLCK);
  return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

// Another open file description (a live process) holds fd's byte 0.
bool held_elsewhere(int fd) {
  struct flock fl = byte0(F_WRLCK);
  return ::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

}  // namespace

// The directory lock: an OFD lock on the layout file, plus a mutex for the
// threads of this process (they share the descriptor, so the OFD lock alone
// does not keep them apart).
class Directory::Lock {
 public:
  explicit Lock(const Directory& d) : guard_(mutex()), fd_(d.layout_fd_) {
    struct flock fl = byte0(F_WRLCK);
    while (::fcntl(fd_, F_OFD_SETLKW, &fl) != 0)
      if (errno != EINTR) sys_fail("cannot lock \"" + d.file(kLayoutName) + "\"");
  }
  ~Lock() {
    struct flock fl = byte0(F_UNLCK);
    ::fcntl(fd_, F_OFD_SETLK, &fl);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> guard_;
  int fd_;
};

std::unique_ptr<Directory> Directory::open(const std::string& path, uint32_t max_workers, bool read_only) {
  if (path.empty()) throw Error(CM_EINVAL, "shared=: the directory is empty");
  if ((max_workers == 0 && !read_only) || max_workers > kMaxWorkersLimit)
    throw Error(CM_EINVAL, "max_workers must be 1.." + std::to_string(kMaxWorkersLimit));
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || read_only) sys_fail("shared metrics directory \"" + path + "\"");
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) sys_fail("cannot make \"" + path + "\"");
    if (::stat(path.c_str(), &st) != 0) sys_fail("shared metrics directory \"" + path + "\"");
  }
  if (!S_ISDIR(st.st_mode)) throw Error(CM_EINVAL, "shared metrics directory \"" + path + "\" is not a directory");
  if (!read_only && ::access(path.c_str(), W_OK | X_OK) != 0)
    sys_fail("shared metrics directory \"" + path + "\" cannot be written");

  std::unique_ptr<Directory> d(new Directory(path, max_workers));
  d->read_only_ = read_only;
  std::string layout = d->file(kLayoutName);
  int fd = ::open(layout.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    std::string other = first_foreign_entry(path);
    if (!other.empty())
      throw Error(CM_ECORRUPT, "\"" + path + "\" is not a cachemeter shared metrics directory (it holds \"" + other +
                                   "\" and no " + kLayoutName + "); left untouched");
    if (read_only) throw Error(CM_EUNAVAILABLE, "\"" + path + "\" holds no shared metrics yet");
    // Written aside and linked into place: two processes making the
    // directory at once agree on one file, and nobody sees it half written.
    std::string tmp = write_aside(path, layout_text(max_workers));
    if (::link(tmp.c_str(), layout.c_str()) != 0 && errno != EEXIST) {
      int err = errno;
      ::unlink(tmp.c_str());
      errno = err;
      sys_fail("cannot make \"" + layout + "\"");
    }
    ::unlink(tmp.c_str());
    fd = ::open(layout.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  }
  if (fd < 0) sys_fail("cannot open \"" + layout + "\"");
  d->layout_fd_ = fd;

  std::string text;
  if (!read_all(fd, text, 4096)) sys_fail("cannot read \"" + layout + "\"");
  std::vector<std::string> lines;
  for (size_t pos = 0; pos < text.size() && lines.size() < 16;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  auto refuse = [&](const std::string& why) {
    throw Error(CM_ECORRUPT, "\"" + path + "\" refused: " + why + "; left untouched");
  };
  if (lines.size() < 4 || lines[0] != kLayoutTitle) refuse(std::string(kLayoutName) + " is not a cachemeter layout file");
  if (lines[1] != "layout " + std::to_string(kLayoutVersion))
    refuse("made by another version of cachemeter (\"" + lines[1].substr(0, 40) + "\", this library writes layout " +
           std::to_string(kLayoutVersion) + ")");
  if (lines[2] != std::string("byte_order ") + byte_order()) refuse("made on a machine of another byte order");
  if (max_workers == 0 && lines[3].rfind("max_workers ", 0) == 0) {  // a reader: the directory's own
    char* end = nullptr;
    unsigned long n = std::strtoul(lines[3].c_str() + 12, &end, 10);
    if (*end || n == 0 || n > kMaxWorkersLimit) refuse("its layout file names no valid max_workers");
    max_workers = static_cast<uint32_t>(n);
    d->max_workers_ = max_workers;
  }
  if (lines[3] != "max_workers " + std::to_string(max_workers))
    throw Error(CM_EINVAL, "\"" + path + "\" was made for " + lines[3].substr(0, 40) + ", not max_workers " +
                               std::to_string(max_workers) + " (use the same value in every worker, or a new directory)");

  // Every file we would read later, checked now: a damaged directory is
  // refused before this process writes anything into it.
  d->read_families();
  auto check = [&](const std::string& name) {
    std::string p = d->file(name);
    int f = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) {
      if (errno == ENOENT) return;
      sys_fail("cannot open \"" + p + "\"");
    }
    struct stat fs{};
    uint8_t head[sizeof(SlotHeader)] = {};
    bool ok = ::fstat(f, &fs) == 0;
    ssize_t n = ok && fs.st_size > 0 ? ::pread(f, head, sizeof head, 0) : 0;
    ::close(f);
    if (!ok) sys_fail("cannot read \"" + p + "\"");
    if (fs.st_size == 0) return;  // claimed, not yet written
    if (n != static_cast<ssize_t>(sizeof head)) refuse("\"" + name + "\" is truncated");
    if (being_made(head)) return;
    try {
      check_slot_header(head, static_cast<uint64_t>(fs.st_size), p);
    } catch (const Error& e) {
      refuse(e.what());
    }
  };
  for (uint32_t i = 0; i < max_workers; ++i) check(slot_name(i));
  check(kCompactName);
  return d;
}

Directory::~Directory() {
  if (layout_fd_ >= 0) ::close(layout_fd_);
}

void Directory::reopen_after_fork() noexcept {
  if (layout_fd_ >= 0) ::close(layout_fd_);
  layout_fd_ = ::open(file(kLayoutName).c_str(), (read_only_ ? O_RDONLY : O_RDWR) | O_CLOEXEC);
}

std::vector<FamilyDef> Directory::read_families() const {
  std::string p = file(kFamiliesName);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    sys_fail("cannot open \"" + p + "\"");
  }
  std::string bytes;
  bool ok = read_all(fd, bytes, kFamiliesStart + kMaxFamiliesBytes);
  ::close(fd);
  if (!ok) sys_fail("cannot read \"" + p + "\"");
  if (bytes.size() > kFamiliesStart + kMaxFamiliesBytes)
    throw Error(CM_ECORRUPT, "\"" + p + "\": larger than any families file; left untouched");
  return decode_families(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), p);
}

uint32_t Directory::family_id(const FamilyDef& f) {
  if (read_only_) throw Error(CM_ESTATE, "\"" + path_ + "\" was opened to read only");
  Lock lock(*this);
  std::vector<FamilyDef> fams = read_families();
  for (size_t i = 0; i < fams.size(); ++i) {
    const FamilyDef& g = fams[i];
    if (g.name != f.name) continue;
    if (g.kind != f.kind || g.label_names != f.label_names || g.bounds != f.bounds || g.gauge_mode != f.gauge_mode)
      throw Error(CM_EEXIST, "metric \"" + f.name + "\" is registered in the shared directory \"" + path_ +
                                 "\" with another type, labels, buckets or gauge mode by another worker");
    return static_cast<uint32_t>(i);
  }
  std::string p = file(kFamiliesName);
  std::string rec = encode_family(f);
  if (fams.empty()) {
    // The first family: the whole file is written aside and renamed into
    // place, so a process opening the directory (which reads the families
    // without the lock) sees no file or a complete one, never an empty
    // file just created.
    FamiliesHeader h{};
    std::memcpy(h.magic, kFamiliesMagic, sizeof h.magic);
    h.version = kLayoutVersion;
    h.used = rec.size();
    h.count = 1;
    std::string bytes(kFamiliesStart, '\0');
    std::memcpy(bytes.data(), &h, sizeof h);
    bytes += rec;
    std::string tmp = write_aside(path_, bytes);
    if (::rename(tmp.c_str(), p.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      errno = err;
      sys_fail("cannot write \"" + p + "\"");
    }
    return 0;
  }
  int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) sys_fail("cannot open \"" + p + "\"");
  FamiliesHeader h{};
  if (::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    ::close(fd);
    throw Error(CM_ECORRUPT, "\"" + p + "\" changed while being read; left untouched");
  }
  if (h.used + rec.size() > kMaxFamiliesBytes) {
    ::close(fd);
    throw Error(CM_ELIMIT, "\"" + p + "\" is full");
  }
  // The record first, then the header that publishes it.
  bool ok = ::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(kFamiliesStart + h.used)) ==
            static_cast<ssize_t>(rec.size());
  h.used += rec.size();
  h.count += 1;
  ok = ok && ::pwrite(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h);
  int err = errno;
  ::close(fd);
  if (!ok) {
    errno = err;
    sys_fail("cannot write \"" + p + "\"");
  }
  return h.count - 1;
}

bool Directory::slot_live(uint32_t i) const {
  std::string p = file(slot_name(i));
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool live = held_elsewhere(fd);
  ::close(fd);
  return live;
}

std::unique_ptr<SlotFile> Directory::claim(const Geometry& g) {
  if (read_only_) throw Error(CM_ESTATE, "\"" + path_ + "\" was opened to read only");
  Lock lock(*this);
  std::unique_ptr<SlotContents> compact;
  {
    int fd = ::open(file(kCompactName).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      try {
        compact = std::make_unique<SlotContents>(read_slot(fd, file(kCompactName), 1));
      } catch (...) {
        ::close(fd);
        throw;
      }
      ::close(fd);
    }
  }
  std::string damaged;
  for (uint32_t i = 0; i < max_workers_; ++i) {
    std::string p = file(slot_name(i));
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) sys_fail("cannot open \"" + p + "\"");
    if (!try_lock(fd)) {
      ::close(fd);
      if (errno == EAGAIN || errno == EACCES) continue;  // a live worker's
      sys_fail("cannot lock \"" + p + "\"");
    }
    uint64_t folded = compact ? compact->folded[i] : 0;
    uint64_t incarnation = folded + 1;
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      errno = err;
      sys_fail("cannot read \"" + p + "\"");
    }
    if (st.st_size > 0) {
      try {
        SlotContents dead = read_slot(fd, p, 1);
        incarnation = std::max(incarnation, dead.incarnation + 1);
        if (dead.state == SlotState::InUse && dead.incarnation != folded) {
          fold_dead(i, dead, compact.get());
        }
      } catch (const Error& e) {
        ::close(fd);
        if (e.status() != CM_ECORRUPT) throw;
        if (damaged.empty()) damaged = e.what();
        continue;  // left as it is, for people to look at
      }
    }
    return SlotFile::create(fd, p, i, incarnation, g);  // owns fd, even when it throws
  }
  std::string msg = "all " + std::to_string(max_workers_) + " worker slots of \"" + path_ +
                    "\" are held by live processes (raise max_workers, in every worker and for a new directory)";
  if (!damaged.empty()) msg += "; skipped a damaged slot: " + damaged;
  throw Error(CM_ELIMIT, msg);
}

void Directory::fold_dead(uint32_t slot, const SlotContents& dead, const SlotContents* compact) {
  std::vector<FamilyDef> fams = read_families();
  Aggregate agg(&fams);
  if (compact) agg.add(*compact, false, kCompactSlot);
  agg.add(dead, false, slot);
  // Pack the series into base chunks; size the file to fit.
  uint64_t dir_bytes = 0;
  uint32_t chunk_fill = 0, chunks = agg.series().empty() ? 0 : 1;
  for (const auto& [k, v] : agg.series()) {
    uint32_t width = static_cast<uint32_t>(v.payload.size()) + 1;
    if (chunk_fill + width > kChunkWords) {
      ++chunks;
      chunk_fill = 0;
    }
    chunk_fill += width;
    uint64_t rec = sizeof(SeriesRecord);
    for (const auto& s : k.values) rec += 4 + s.size();
    dir_bytes += (rec + 7) / 8 * 8;
  }
  if (chunks > kMaxChunksLimit || dir_bytes > kMaxDirCapacity)
    throw Error(CM_ELIMIT, "\"" + path_ + "\": the compacted series do not fit one slot file");
  Geometry g;
  g.max_chunks = std::max<uint32_t>(chunks, 1);
  g.dir_capacity = std::max<uint64_t>((dir_bytes + 4095) / 4096 * 4096, 4096);
  std::string tmp = file(std::string(kCompactName) + ".tmp");
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) sys_fail("cannot write \"" + tmp + "\"");
  {
    std::unique_ptr<SlotFile> out = SlotFile::create(fd, tmp, kCompactSlot, 1, g);
    std::vector<uint64_t> folded = compact ? compact->folded : std::vector<uint64_t>(kMaxWorkersLimit, 0);
    folded[slot] = dead.incarnation;
    out->set_folded(folded);
    std::atomic<uint64_t>* base = nullptr;
    uint32_t pc = 0, fill = kChunkWords;
    for (const auto& [k, v] : agg.series()) {
      uint32_t width = static_cast<uint32_t>(v.payload.size()) + 1;
      if (fill + width > kChunkWords) {
        pc = base ? pc + 1 : 0;
        base = out->take_chunk(ChunkRole::Base, pc, 0);
        fill = 0;
      }
      base[fill].store(1, std::memory_order_relaxed);  // generation 1; no thread chunks
      for (size_t w = 0; w < v.payload.size(); ++w) base[fill + 1 + w].store(v.payload[w], std::memory_order_relaxed);
      out->add_series(k.family, pc * kChunkWords + fill, width, v.ndoubles, k.values, v.gauge_mode);
      fill += width;
    }
  }  // unmapped and closed
  if (::rename(tmp.c_str(), file(kCompactName).c_str()) != 0) sys_fail("cannot replace \"" + file(kCompactName) + "\"");
}

std::unique_ptr<Directory::View> Directory::read(std::vector<std::string>* skipped) const {
  auto v = std::make_unique<View>();
  // Slots first, compact.cm last: a slot folded meanwhile is then either
  // read whole or skipped because compact.cm (newer) lists it.
  std::vector<std::pair<SlotContents, bool>> slots;
  for (uint32_t i = 0; i < max_workers_; ++i) {
    std::string p = file(slot_name(i));
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st{};
    if (::fstat(fd, &st) != 0 || st.st_size == 0) {
      ::close(fd);
      continue;
    }
    ++v->slot_files;
    bool live = held_elsewhere(fd);
    uint8_t head[sizeof(SlotHeader)] = {};
    if (::pread(fd, head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) && being_made(head)) {
      ::close(fd);
      continue;  // a worker is making it: nothing counted yet
    }
    try {
      slots.emplace_back(read_slot(fd, p, live ? 1000 : 1), live);
      if (live) ++v->live_workers;
    } catch (const Error& e) {
      if (skipped) skipped->push_back(e.what());
    }
    ::close(fd);
  }
  SlotContents compact;
  bool have_compact = false;
  int fd = ::open(file(kCompactName).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    try {
      compact = read_slot(fd, file(kCompactName), 1);
      have_compact = true;
    } catch (const Error& e) {
      if (skipped) skipped->push_back(e.what());
    }
    ::close(fd);
  }
  v->families = read_families();
  v->agg = Aggregate(&v->families);
  for (auto& [c, live] : slots) {
    if (c.state != SlotState::InUse || c.slot >= max_workers_) continue;
    if (have_compact && compact.folded[c.slot] == c.incarnation) continue;  // its values are in compact.cm
    v->agg.add(c, live, c.slot);
  }
  if (have_compact) v->agg.add(compact, false, kCompactSlot);
  return v;
}

// ---- Aggregate -----------------------------------------------------------------

void Aggregate::add(const SlotContents& c, bool live, uint32_t worker) {
  for (const SlotSeries& s : c.series) {
    if (!families_ || s.family >= families_->size()) {
      ++unknown_;
      continue;
    }
    const FamilyDef& f = (*families_)[s.family];
    if (s.payload.size() != payload_words(f) || s.values.size() != f.label_names.size()) {
      ++unknown_;  // does not match its family: damaged
      continue;
    }
    Key k{s.family, s.values, -1};
    if (f.kind == kGauge) {
      auto mode = static_cast<GaugeMode>(s.gauge_mode != kFamilyMode ? s.gauge_mode : f.gauge_mode);
      bool live_only = mode == GaugeMode::LiveSum || mode == GaugeMode::LiveMax || mode == GaugeMode::All ||
                       mode == GaugeMode::MostRecent;
      if (live_only && !live) continue;
      if (mode == GaugeMode::All) k.worker = worker;
      double v = scalar(s.payload);
      Value& dst = series_[k];
      if (!dst.seen || (mode == GaugeMode::MostRecent && s.set_ns > dst.set_ns)) {
        dst = Value{1, s.gauge_mode, s.set_ns, {std::bit_cast<uint64_t>(v), 0}, true};
        continue;
      }
      if (mode == GaugeMode::MostRecent) continue;  // set earlier than the value kept
      double cur = std::bit_cast<double>(dst.payload[0]);
      switch (mode) {
        case GaugeMode::Max:
        case GaugeMode::LiveMax: cur = std::max(cur, v); break;
        case GaugeMode::Min: cur = std::min(cur, v); break;
        default: cur += v; break;
      }
      dst.payload[0] = std::bit_cast<uint64_t>(cur);
      continue;
    }
    Value& dst = series_[k];
    if (!dst.seen) {
      dst = Value{s.ndoubles, kFamilyMode, 0, s.payload, true};
      continue;
    }
    for (size_t i = 0; i < s.payload.size(); ++i) {
      if (i < dst.ndoubles) {
        double a = std::bit_cast<double>(dst.payload[i]) + std::bit_cast<double>(s.payload[i]);
        dst.payload[i] = std::bit_cast<uint64_t>(a);
      } else {
        dst.payload[i] += s.payload[i];
      }
    }
  }
}

}  // namespace cm::shared
