// SPDX-License-Identifier: Apache-2.0
// A worker's own slot file, mapped shared (slot_file.h).
#include "metrics/shared/slot_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace cm::shared {

static_assert(std::atomic<uint64_t>::is_always_lock_free && sizeof(std::atomic<uint64_t>) == 8,
              "cells in a shared file are plain 64-bit words");

std::unique_ptr<SlotFile> SlotFile::create(int fd, std::string path, uint32_t slot, uint64_t incarnation,
                                           const Geometry& g) {
  std::unique_ptr<SlotFile> f(new SlotFile(fd, std::move(path)));
  auto fail = [&](const char* what) {
    int err = errno;
    throw Error(status_of_errno(err), "\"" + f->path_ + "\": " + what + ": " + std::strerror(err));
  };
  // Truncating to zero first drops every old page: the file starts sparse.
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, static_cast<off_t>(g.file_bytes())) != 0) fail("cannot size the slot file");
  SlotHeader h{};
  std::memcpy(h.magic, kSlotMagic, sizeof h.magic);
  h.version = kLayoutVersion;
  h.slot = slot;
  h.chunk_words = kChunkWords;
  h.max_chunks = g.max_chunks;
  h.table_offset = g.table_offset();
  h.dir_offset = g.dir_offset();
  h.dir_capacity = g.dir_capacity;
  h.chunks_offset = g.chunks_offset();
  h.file_bytes = g.file_bytes();
  h.incarnation = incarnation;
  h.pid = static_cast<uint64_t>(::getpid());
  h.state = static_cast<uint32_t>(SlotState::InUse);
  h.claimed_unix_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  void* m = ::mmap(nullptr, g.file_bytes(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) fail("cannot map the slot file");
  f->base_ = static_cast<uint8_t*>(m);
  f->map_bytes_ = g.file_bytes();
  // The header's fixed part first, the magic last: a reader never takes a
  // half-written header for a slot file.
  std::memcpy(f->base_ + sizeof h.magic, reinterpret_cast<const uint8_t*>(&h) + sizeof h.magic, sizeof h - sizeof h.magic);
  uint64_t magic;
  std::memcpy(&magic, h.magic, sizeof magic);
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(f->base_)).store(magic, std::memory_order_release);
  f->header_copy_ = h;
  return f;
}

SlotFile::~SlotFile() {
  if (base_) ::munmap(base_, map_bytes_);
  if (fd_ >= 0) ::close(fd_);
}

std::atomic_ref<uint64_t> SlotFile::hdr64(uint64_t SlotHeader::*field) {
  auto* h = reinterpret_cast<SlotHeader*>(base_);
  return std::atomic_ref<uint64_t>(h->*field);
}

std::atomic_ref<uint32_t> SlotFile::hdr32(uint32_t SlotHeader::*field) {
  auto* h = reinterpret_cast<SlotHeader*>(base_);
  return std::atomic_ref<uint32_t>(h->*field);
}

uint64_t SlotFile::add_series(uint32_t family, uint32_t word, uint32_t width, uint32_t ndoubles,
                              const std::vector<std::string>& values, uint8_t gauge_mode) {
  if (values.size() > kMaxLabelValues)
    throw Error(CM_EINVAL, "a shared registry's series have at most " + std::to_string(kMaxLabelValues) + " labels");
  uint64_t bytes = sizeof(SeriesRecord);
  for (const auto& v : values) bytes += 4 + v.size();
  bytes = (bytes + 7) / 8 * 8;
  uint64_t used = hdr64(&SlotHeader::dir_used).load(std::memory_order_relaxed);
  if (bytes > kMaxRecordBytes || used + bytes > header_copy_.dir_capacity)
    throw Error(CM_ELIMIT, "\"" + path_ + "\": the series directory is full (" +
                               std::to_string(header_copy_.dir_capacity) + " bytes)");
  uint8_t* p = base_ + header_copy_.dir_offset + used;
  SeriesRecord r{};
  r.bytes = static_cast<uint32_t>(bytes);
  r.family = family;
  r.word = word;
  r.width = width;
  r.ndoubles = static_cast<uint16_t>(ndoubles);
  r.nvalues = static_cast<uint16_t>(values.size());
  r.gauge_mode = gauge_mode;
  std::memcpy(p, &r, sizeof r);
  size_t off = sizeof r;
  for (const auto& v : values) {
    uint32_t len = static_cast<uint32_t>(v.size());
    std::memcpy(p + off, &len, 4);
    std::memcpy(p + off + 4, v.data(), v.size());
    off += 4 + v.size();
  }
  std::memset(p + off, 0, bytes - off);
  hdr64(&SlotHeader::dir_used).store(used + bytes, std::memory_order_release);
  return used;
}

void SlotFile::note_set(uint64_t rec, uint64_t ns) noexcept {
  if (rec + sizeof(SeriesRecord) > header_copy_.dir_capacity) return;
  auto* w = reinterpret_cast<uint64_t*>(base_ + header_copy_.dir_offset + rec + kSetNsOffset);
  std::atomic_ref<uint64_t>(*w).store(ns, std::memory_order_release);
}

std::atomic<uint64_t>* SlotFile::take_chunk(ChunkRole role, uint32_t pool_chunk, uint64_t tag) {
  ChunkEntry* t = table();
  uint32_t n = hdr32(&SlotHeader::nchunks).load(std::memory_order_relaxed);
  uint32_t i = 0;
  while (i < n && t[i].role != static_cast<uint32_t>(ChunkRole::Free)) ++i;
  if (i == n && n == header_copy_.max_chunks)
    throw Error(CM_ELIMIT, "\"" + path_ + "\": all " + std::to_string(n) + " cell chunks are in use");
  Move m(*this);
  std::atomic<uint64_t>* w = chunk_words(i);
  if (i < n) std::memset(static_cast<void*>(w), 0, kChunkBytes);  // a reused chunk; new ones are holes
  t[i].pool_chunk = pool_chunk;
  t[i].tag = tag;
  t[i].role = static_cast<uint32_t>(role);
  if (i == n) hdr32(&SlotHeader::nchunks).store(n + 1, std::memory_order_release);
  return w;
}

void SlotFile::free_chunk(const std::atomic<uint64_t>* words) {
  auto off = reinterpret_cast<const uint8_t*>(words) - (base_ + header_copy_.chunks_offset);
  uint32_t i = static_cast<uint32_t>(off / static_cast<ptrdiff_t>(kChunkBytes));
  Move m(*this);
  table()[i].role = static_cast<uint32_t>(ChunkRole::Free);
}

void SlotFile::set_folded(const std::vector<uint64_t>& folded) {
  Move m(*this);
  std::memcpy(base_ + kFoldedOffset, folded.data(), 8 * std::min<size_t>(folded.size(), kMaxWorkersLimit));
}

void SlotFile::begin_move() noexcept {
  if (move_depth_++ > 0) return;  // nested: the outermost move decides
  // seq_cst read-modify-writes: a full barrier on both sides (no fences:
  // TSan does not model them), so no word of the move is written before
  // seq turns odd or after it turns even.
  hdr64(&SlotHeader::seq).fetch_add(1, std::memory_order_seq_cst);  // odd
}

void SlotFile::end_move() noexcept {
  if (--move_depth_ > 0) return;
  hdr64(&SlotHeader::seq).fetch_add(1, std::memory_order_seq_cst);  // even
}

SlotFile::Move::Move(SlotFile& f) : f_(f) { f_.begin_move(); }
SlotFile::Move::~Move() { f_.end_move(); }

}  // namespace cm::shared
