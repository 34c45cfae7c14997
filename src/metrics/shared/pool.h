/* SPDX-License-Identifier: Apache-2.0 */
// A shared registry's cell memory (cells::Pool): the worker's slot file in
// the shared directory. The cell space puts every cell of the registry's
// series there, so an update is the same plain store as in-process, into a
// page every process of the pool can read (docs/multiprocess.md).
//
// Thread-safety: every member is called with the cell space's mutex held
// (cells::Space::lock(); the Pool calls come from the Space itself), which
// also guards this object's state. family_id() takes the directory lock.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

#include "metrics/cells.h"
#include "metrics/shared/directory.h"

namespace cm::shared {

class SharedPool final : public cells::Pool {
 public:
  struct Options {
    std::string dir;
    uint32_t max_workers = 64;
    // No free slot: keep counting in this process only (true), or fail
    // (false: the constructor throws CM_ELIMIT).
    bool fallback_local = false;
  };
  // Opens the directory and claims a slot. Throws Error (Directory::open's,
  // CM_ELIMIT when every slot is held and !fallback_local).
  explicit SharedPool(const Options& o);
  ~SharedPool();
  SharedPool(const SharedPool&) = delete;
  SharedPool& operator=(const SharedPool&) = delete;

  Directory& dir() { return *dir_; }
  const Options& options() const { return opt_; }

  // Publishes a series: its record goes to the slot (now, or when the slot
  // is claimed) and is remembered for a slot claimed later (fork). Space
  // mutex. Throws Error (a full series directory: CM_ELIMIT).
  void publish(uint32_t family, uint32_t word, uint32_t width, uint32_t ndoubles, std::vector<std::string> values,
               uint8_t gauge_mode = kFamilyMode);

  // Called (under the Space mutex) each time this process claims a slot
  // after construction: a fork child's first write. Set once, before use.
  void on_claim(std::function<void()> fn) { on_claim_ = std::move(fn); }

  // No slot: why (empty while the worker has its slot). Space mutex.
  const std::string& claim_error() const { return claim_error_; }
  bool has_slot() const { return slot_ != nullptr && !pending_; }
  // Counting in this process only: no slot could be claimed and the
  // registry asked for shared_fallback=local (or a fork child found no free
  // slot). Any thread, no lock: its render is then the local registry's.
  bool local_only() const noexcept { return local_only_.load(std::memory_order_acquire); }
  uint32_t slot_index() const { return slot_ ? slot_->slot() : kCompactSlot; }

  // cells::Pool
  cells::Word* base_chunk(uint32_t pc) override;
  cells::Word* thread_chunk(uint32_t pc, uint64_t tag) noexcept override;
  void release_thread_chunk(cells::Word* chunk) noexcept override;
  void on_set(uint32_t word) noexcept override;
  void move_begin() noexcept override;
  void move_end() noexcept override;
  bool claim_pending() const noexcept override { return pending_; }
  bool claim() noexcept override;
  void fork_child() noexcept override;

 private:
  Options opt_;
  std::unique_ptr<Directory> dir_;
  std::unique_ptr<SlotFile> slot_;
  std::vector<cells::Word*> base_;  // per pool chunk: the slot's base chunk, or scratch while pending
  std::vector<std::unique_ptr<cells::Word[]>> scratch_;
  struct Record {
    uint32_t family, word, width, ndoubles;
    std::vector<std::string> values;
    uint8_t gauge_mode;
  };
  std::vector<Record> records_;
  std::unordered_map<uint32_t, uint64_t> rec_of_;  // pool word -> its record's offset in slot_
  bool pending_ = false;       // no slot memory: claim before the next write
  bool claim_failed_ = false;  // tried and failed: do not retry on every update
  std::atomic<bool> local_only_{false};
  std::function<void()> on_claim_;
  std::string claim_error_;
};

}  // namespace cm::shared
