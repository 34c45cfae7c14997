// SPDX-License-Identifier: Apache-2.0
// Decoders of the shared directory's files (layout.h). Hostile input: every
// offset and length is checked against what was read, memory grows with the
// bytes actually present, never with a count read from the file.
#include "metrics/shared/layout.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>

#include "core/error.h"

namespace cm::shared {

std::string slot_name(uint32_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "slot-%03u.cm", i);
  return b;
}

static constexpr const char* kGaugeModeNames[kGaugeModes] = {"sum",     "max",        "min", "livesum",
                                                             "livemax", "mostrecent", "all"};

const char* gauge_mode_name(GaugeMode m) {
  auto i = static_cast<uint8_t>(m);
  return i < kGaugeModes ? kGaugeModeNames[i] : "unknown";
}

bool parse_gauge_mode(std::string_view s, GaugeMode* out) {
  for (uint8_t i = 0; i < kGaugeModes; ++i)
    if (s == kGaugeModeNames[i]) {
      *out = static_cast<GaugeMode>(i);
      return true;
    }
  return false;
}

static constexpr uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

uint64_t Geometry::dir_offset() const { return kTableOffset + round_up(16ull * max_chunks, 4096); }
uint64_t Geometry::chunks_offset() const { return dir_offset() + round_up(dir_capacity, 4096); }
uint64_t Geometry::file_bytes() const { return chunks_offset() + uint64_t{max_chunks} * kChunkBytes; }

namespace {

[[noreturn]] void corrupt(std::string_view what, const std::string& why) {
  throw Error(CM_ECORRUPT, "\"" + std::string(what) + "\": " + why + "; left untouched");
}

std::string num(uint64_t v) { return std::to_string(v); }

// Reads [off, off + len) of the file into dst.
using Source = std::function<void(uint64_t off, size_t len, uint8_t* dst)>;

Source pread_source(int fd, std::string_view what) {
  return [fd, what](uint64_t off, size_t len, uint8_t* dst) {
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pread(fd, dst + done, len - done, static_cast<off_t>(off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        throw Error(CM_EUNAVAILABLE, "\"" + std::string(what) + "\": read failed: " + std::strerror(errno));
      if (n == 0) corrupt(what, "truncated while being read");
      done += static_cast<size_t>(n);
    }
  };
}

// Bytes in memory; a sparse file's holes read as zeros past the end.
Source memory_source(const uint8_t* data, size_t size) {
  return [data, size](uint64_t off, size_t len, uint8_t* dst) {
    std::memset(dst, 0, len);
    if (off >= size) return;
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, size - off));
    std::memcpy(dst, data + off, n);
  };
}

// The mutable part of the header, read as one copy.
SlotHeader read_header(const Source& src) {
  uint8_t buf[sizeof(SlotHeader)];
  src(0, sizeof buf, buf);
  SlotHeader h;
  std::memcpy(&h, buf, sizeof h);
  return h;
}

void fold(uint64_t& acc, uint64_t v, bool is_double) {
  if (is_double) {
    double a, b;
    std::memcpy(&a, &acc, 8);
    std::memcpy(&b, &v, 8);
    a += b;
    std::memcpy(&acc, &a, 8);
  } else {
    acc += v;
  }
}

struct Parsed {
  SlotContents c;
  std::vector<uint32_t> word;  // per series
};

// Parses the directory [dir_offset, dir_offset + used) record by record,
// through a window of at most 2 * kMaxRecordBytes.
void parse_directory(const Source& src, const SlotHeader& h, uint64_t used, std::string_view what, Parsed& p) {
  std::vector<uint8_t> win;
  uint64_t win_off = 0;  // directory offset of win[0]
  uint64_t pos = 0;
  uint64_t words_claimed = 0;
  const uint64_t word_space = uint64_t{h.max_chunks} * kChunkWords;
  while (pos < used) {
    // Make sure [pos, pos + header) and then the whole record are in the window.
    auto ensure = [&](uint64_t need) {
      if (pos + need > used) corrupt(what, "series record at " + num(pos) + " runs past the directory's end");
      if (pos >= win_off && pos + need <= win_off + win.size()) return;
      size_t len = static_cast<size_t>(std::min<uint64_t>(used - pos, std::max<uint64_t>(need, kMaxRecordBytes)));
      win.resize(len);
      src(h.dir_offset + pos, len, win.data());
      win_off = pos;
    };
    ensure(sizeof(SeriesRecord));
    SeriesRecord r;
    std::memcpy(&r, win.data() + (pos - win_off), sizeof r);
    std::string at = "series record at directory offset " + num(pos);
    if (r.bytes < sizeof r || r.bytes % 8 != 0 || r.bytes > kMaxRecordBytes) corrupt(what, at + ": bad length " + num(r.bytes));
    if (r.width < 2 || r.width > kMaxWidth || r.ndoubles > r.width - 1) corrupt(what, at + ": bad width");
    if (r.nvalues > kMaxLabelValues) corrupt(what, at + ": too many label values");
    if (r.gauge_mode != kFamilyMode &&
        (r.gauge_mode >= kGaugeModes || r.gauge_mode == static_cast<uint8_t>(GaugeMode::All) ||
         r.gauge_mode == static_cast<uint8_t>(GaugeMode::MostRecent)))
      corrupt(what, at + ": unknown gauge mode " + num(r.gauge_mode));
    if (r.word >= word_space || (r.word % kChunkWords) + r.width > kChunkWords) corrupt(what, at + ": cells outside the cell space");
    words_claimed += r.width;
    if (words_claimed > word_space) corrupt(what, "series claim more cells than the file holds");
    ensure(r.bytes);
    const uint8_t* rec = win.data() + (pos - win_off);
    size_t off = sizeof r;
    SlotSeries s;
    s.family = r.family;
    s.ndoubles = r.ndoubles;
    s.gauge_mode = r.gauge_mode;
    s.set_ns = r.set_ns;
    s.values.reserve(r.nvalues);
    for (uint32_t i = 0; i < r.nvalues; ++i) {
      uint32_t len;
      if (off + 4 > r.bytes) corrupt(what, at + ": label values run past the record");
      std::memcpy(&len, rec + off, 4);
      off += 4;
      if (len > r.bytes - off) corrupt(what, at + ": label values run past the record");
      s.values.emplace_back(reinterpret_cast<const char*>(rec + off), len);
      off += len;
    }
    if (round_up(off, 8) != r.bytes) corrupt(what, at + ": length does not match its contents");
    s.payload.assign(r.width - 1, 0);
    p.c.series.push_back(std::move(s));
    p.word.push_back(r.word);
    pos += r.bytes;
  }
}

// Reads once: header, chunk table, directory, then the chunks the series
// live in. Returns the header seen at the start (its seq decides a retry).
SlotHeader read_once(const Source& src, uint64_t file_size, std::string_view what, Parsed& p) {
  uint8_t head[sizeof(SlotHeader)];
  src(0, sizeof head, head);
  SlotHeader h = check_slot_header(head, file_size, what);
  p = Parsed{};
  p.c.slot = h.slot;
  p.c.incarnation = h.incarnation;
  p.c.pid = h.pid;
  if (h.state > static_cast<uint32_t>(SlotState::Folded)) corrupt(what, "unknown slot state " + num(h.state));
  p.c.state = static_cast<SlotState>(h.state);
  p.c.folded.assign(kMaxWorkersLimit, 0);
  if (h.slot == kCompactSlot) src(kFoldedOffset, 8 * kMaxWorkersLimit, reinterpret_cast<uint8_t*>(p.c.folded.data()));
  if (h.nchunks > h.max_chunks) corrupt(what, "chunk table claims " + num(h.nchunks) + " of " + num(h.max_chunks) + " chunks");
  if (h.dir_used > h.dir_capacity) corrupt(what, "directory claims more than its capacity");
  std::vector<ChunkEntry> table(h.nchunks);
  if (h.nchunks) src(h.table_offset, 16ull * h.nchunks, reinterpret_cast<uint8_t*>(table.data()));
  parse_directory(src, h, h.dir_used, what, p);

  // Chunks by pool chunk: its base, its threads'.
  std::map<uint32_t, std::pair<int64_t, std::vector<uint32_t>>> by_pool;  // pool chunk -> (base, threads)
  for (uint32_t i = 0; i < h.nchunks; ++i) {
    const ChunkEntry& e = table[i];
    if (e.role == static_cast<uint32_t>(ChunkRole::Free)) continue;
    if (e.role > static_cast<uint32_t>(ChunkRole::Thread) || e.pool_chunk >= h.max_chunks)
      corrupt(what, "chunk table entry " + num(i) + " is damaged");
    auto& slot = by_pool.try_emplace(e.pool_chunk, -1, std::vector<uint32_t>{}).first->second;
    if (e.role == static_cast<uint32_t>(ChunkRole::Base)) {
      if (slot.first >= 0) corrupt(what, "two base chunks for pool chunk " + num(e.pool_chunk));
      slot.first = i;
    } else {
      slot.second.push_back(i);
    }
  }
  // Series by pool chunk.
  std::map<uint32_t, std::vector<size_t>> series_of;
  for (size_t i = 0; i < p.word.size(); ++i) series_of[p.word[i] / kChunkWords].push_back(i);
  std::vector<uint64_t> base(kChunkWords), cell(kChunkWords);
  for (auto& [pc, idx] : series_of) {
    auto it = by_pool.find(pc);
    if (it == by_pool.end() || it->second.first < 0) corrupt(what, "series in pool chunk " + num(pc) + " have no base chunk");
    src(h.chunks_offset + uint64_t(it->second.first) * kChunkBytes, kChunkBytes, reinterpret_cast<uint8_t*>(base.data()));
    for (size_t i : idx) {
      SlotSeries& s = p.c.series[i];
      uint32_t w = p.word[i] % kChunkWords;
      std::copy(base.begin() + w + 1, base.begin() + w + 1 + s.payload.size(), s.payload.begin());
    }
    for (uint32_t t : it->second.second) {
      src(h.chunks_offset + uint64_t(t) * kChunkBytes, kChunkBytes, reinterpret_cast<uint8_t*>(cell.data()));
      for (size_t i : idx) {
        SlotSeries& s = p.c.series[i];
        uint32_t w = p.word[i] % kChunkWords;
        if (cell[w] != base[w]) continue;  // stale: written under an older generation
        for (size_t k = 0; k < s.payload.size(); ++k) fold(s.payload[k], cell[w + 1 + k], k < s.ndoubles);
      }
    }
  }
  return h;
}

SlotContents read_with(const Source& src, uint64_t file_size, std::string_view what, int tries) {
  Parsed p;
  for (int attempt = 0;; ++attempt) {
    SlotHeader before = read_once(src, file_size, what, p);
    SlotHeader after = read_header(src);
    bool stable = before.seq % 2 == 0 && after.seq == before.seq;
    if (stable || attempt + 1 >= tries) return std::move(p.c);
    sched_yield();
  }
}

}  // namespace

SlotHeader check_slot_header(const uint8_t* head, uint64_t file_size, std::string_view what) {
  if (file_size < kTableOffset) corrupt(what, "too short for a slot file (" + num(file_size) + " bytes)");
  SlotHeader h;
  std::memcpy(&h, head, sizeof h);
  if (std::memcmp(h.magic, kSlotMagic, sizeof h.magic) != 0) corrupt(what, "not a cachemeter slot file");
  if (h.version != kLayoutVersion)
    corrupt(what, "slot layout version " + num(h.version) + ", this library reads version " + num(kLayoutVersion));
  if (h.chunk_words != kChunkWords || h.max_chunks == 0 || h.max_chunks > kMaxChunksLimit ||
      h.dir_capacity == 0 || h.dir_capacity > kMaxDirCapacity)
    corrupt(what, "unknown geometry");
  Geometry g{h.max_chunks, h.dir_capacity};
  if (h.table_offset != g.table_offset() || h.dir_offset != g.dir_offset() || h.chunks_offset != g.chunks_offset() ||
      h.file_bytes != g.file_bytes())
    corrupt(what, "inconsistent geometry");
  if (file_size < h.file_bytes) corrupt(what, "truncated (" + num(file_size) + " of " + num(h.file_bytes) + " bytes)");
  return h;
}

SlotContents read_slot(int fd, std::string_view what, int tries) {
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 0) throw Error(CM_EUNAVAILABLE, "\"" + std::string(what) + "\": " + std::strerror(errno));
  return read_with(pread_source(fd, what), static_cast<uint64_t>(size), what, std::max(tries, 1));
}

SlotContents decode_slot(const uint8_t* data, size_t size, std::string_view what) {
  // The bytes are the start of a sparse file as long as its header says.
  uint64_t logical = size;
  if (size >= sizeof(SlotHeader)) {
    SlotHeader h;
    std::memcpy(&h, data, sizeof h);
    logical = std::max<uint64_t>(size, h.file_bytes);
  }
  return read_with(memory_source(data, size), logical, what, 1);
}

// ---- families.cm --------------------------------------------------------------

namespace {

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

}  // namespace

std::string encode_family(const FamilyDef& f) {
  std::string out(sizeof(FamilyRecord), '\0');
  put_str(out, f.name);
  put_str(out, f.help);
  for (const auto& l : f.label_names) put_str(out, l);
  if (!f.bounds.empty()) out.append(reinterpret_cast<const char*>(f.bounds.data()), 8 * f.bounds.size());
  out.resize(round_up(out.size(), 8), '\0');
  FamilyRecord r{};
  r.bytes = static_cast<uint32_t>(out.size());
  r.kind = f.kind;
  r.gauge_mode = f.gauge_mode;
  r.nlabels = static_cast<uint32_t>(f.label_names.size());
  r.nbounds = static_cast<uint32_t>(f.bounds.size());
  std::memcpy(out.data(), &r, sizeof r);
  return out;
}

std::vector<FamilyDef> decode_families(const uint8_t* data, size_t size, std::string_view what) {
  if (size < kFamiliesStart) corrupt(what, "too short for a families file");
  FamiliesHeader h;
  std::memcpy(&h, data, sizeof h);
  if (std::memcmp(h.magic, kFamiliesMagic, sizeof h.magic) != 0) corrupt(what, "not a cachemeter families file");
  if (h.version != kLayoutVersion)
    corrupt(what, "families layout version " + num(h.version) + ", this library reads version " + num(kLayoutVersion));
  if (h.used > size - kFamiliesStart) corrupt(what, "truncated");
  std::vector<FamilyDef> out;
  uint64_t pos = kFamiliesStart, end = kFamiliesStart + h.used;
  while (pos < end && out.size() < h.count) {
    std::string at = "family record at offset " + num(pos);
    if (end - pos < sizeof(FamilyRecord)) corrupt(what, at + " is cut short");
    FamilyRecord r;
    std::memcpy(&r, data + pos, sizeof r);
    if (r.bytes < sizeof r || r.bytes % 8 != 0 || r.bytes > end - pos) corrupt(what, at + ": bad length");
    if (r.kind > 2 || r.gauge_mode >= kGaugeModes || r.nlabels > kMaxFamilyNames || r.nbounds > kMaxWidth)
      corrupt(what, at + ": damaged");
    const uint8_t* rec = data + pos;
    size_t off = sizeof r;
    auto get_str = [&](std::string& s) {
      uint32_t len;
      if (off + 4 > r.bytes) corrupt(what, at + ": runs past its end");
      std::memcpy(&len, rec + off, 4);
      off += 4;
      if (len > r.bytes - off) corrupt(what, at + ": runs past its end");
      s.assign(reinterpret_cast<const char*>(rec + off), len);
      off += len;
    };
    FamilyDef f;
    f.kind = r.kind;
    f.gauge_mode = r.gauge_mode;
    get_str(f.name);
    get_str(f.help);
    for (uint32_t i = 0; i < r.nlabels; ++i) get_str(f.label_names.emplace_back());
    if (uint64_t{r.nbounds} * 8 > r.bytes - off) corrupt(what, at + ": runs past its end");
    f.bounds.resize(r.nbounds);
    if (r.nbounds) std::memcpy(f.bounds.data(), rec + off, 8ull * r.nbounds);
    off += 8ull * r.nbounds;
    if (round_up(off, 8) != r.bytes) corrupt(what, at + ": length does not match its contents");
    out.push_back(std::move(f));
    pos += r.bytes;
  }
  if (out.size() != h.count) corrupt(what, "holds " + num(out.size()) + " of " + num(h.count) + " families");
  return out;
}

}  // namespace cm::shared
