/* SPDX-License-Identifier: Apache-2.0 */
// The owner's side of one worker slot file (layout.h): the whole file mapped
// shared, so a value stored in a cell is in the page cache at once and
// survives the process however it dies (SIGKILL included). Readers in other
// processes read the file with pread (layout.h, read_slot).
//
// Thread-safety: add_series, take_chunk, free_chunk and the Move guard are
// called under one lock of the caller's (the cell space's); the cells the
// chunks hold are written by their threads without it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/shared/layout.h"

namespace cm::shared {

class SlotFile {
 public:
  // Makes fd (open read-write, locked by the caller) a fresh, empty slot
  // file: truncated, sized (sparse) and given a header with `incarnation`,
  // state InUse and this pid, then mapped. Throws Error (CM_EUNAVAILABLE,
  // CM_EBACKEND for a full disk, CM_ENOMEM).
  static std::unique_ptr<SlotFile> create(int fd, std::string path, uint32_t slot, uint64_t incarnation,
                                          const Geometry& g = {});
  ~SlotFile();  // unmaps; closes fd (which drops the caller's lock)
  SlotFile(const SlotFile&) = delete;
  SlotFile& operator=(const SlotFile&) = delete;

  // Publishes a series record. Throws Error(CM_ELIMIT) when the directory
  // is full, CM_EINVAL for more label values than the layout holds.
  // gauge_mode: the series' own (SeriesRecord), or kFamilyMode. Returns the
  // record's offset in the directory (for note_set).
  uint64_t add_series(uint32_t family, uint32_t word, uint32_t width, uint32_t ndoubles,
                      const std::vector<std::string>& values, uint8_t gauge_mode = kFamilyMode);
  // Records that the series whose record is at dir offset rec was set at ns
  // (SeriesRecord::set_ns).
  void note_set(uint64_t rec, uint64_t ns) noexcept;
  // A chunk for pool chunk `pool_chunk` (a free one reused, zeroed), its
  // words returned. Base chunks: one per pool chunk. Throws
  // Error(CM_ELIMIT) when the table is full.
  std::atomic<uint64_t>* take_chunk(ChunkRole role, uint32_t pool_chunk, uint64_t tag);
  // Gives a chunk back (its values must have been folded elsewhere first).
  void free_chunk(const std::atomic<uint64_t>* words);

  // compact.cm: writes the folded table (kMaxWorkersLimit entries).
  void set_folded(const std::vector<uint64_t>& folded);

  // The seqlock by hand (begin, end) or as a guard (Move): readers see no
  // half-done move while one is open.
  void begin_move() noexcept;
  void end_move() noexcept;
  class Move {
   public:
    explicit Move(SlotFile& f);
    ~Move();
    Move(const Move&) = delete;
    Move& operator=(const Move&) = delete;

   private:
    SlotFile& f_;
  };

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  uint32_t slot() const { return header_copy_.slot; }
  uint64_t incarnation() const { return header_copy_.incarnation; }
  uint32_t max_chunks() const { return header_copy_.max_chunks; }

 private:
  SlotFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  std::atomic_ref<uint64_t> hdr64(uint64_t SlotHeader::*field);
  std::atomic_ref<uint32_t> hdr32(uint32_t SlotHeader::*field);
  ChunkEntry* table() { return reinterpret_cast<ChunkEntry*>(base_ + header_copy_.table_offset); }
  std::atomic<uint64_t>* chunk_words(uint32_t i) {
    return reinterpret_cast<std::atomic<uint64_t>*>(base_ + header_copy_.chunks_offset + uint64_t{i} * kChunkBytes);
  }

  int fd_ = -1;
  std::string path_;
  uint8_t* base_ = nullptr;
  size_t map_bytes_ = 0;
  SlotHeader header_copy_{};  // the fixed part, as written
  int move_depth_ = 0;        // nested moves (under the caller's lock)
};

}  // namespace cm::shared
