// SPDX-License-Identifier: Apache-2.0
// The worker slot as cell memory (pool.h).
#include "metrics/shared/pool.h"

#include <time.h>

#include "core/error.h"

namespace cm::shared {

SharedPool::SharedPool(const Options& o) : opt_(o) {
  dir_ = Directory::open(o.dir, o.max_workers);
  try {
    slot_ = dir_->claim();
  } catch (const Error& e) {
    if (e.status() != CM_ELIMIT || !o.fallback_local) throw;
    pending_ = true;  // counts in this process only (scratch bases, no thread cells)
    claim_failed_ = true;
    claim_error_ = e.what();
    local_only_.store(true, std::memory_order_release);
  }
}

SharedPool::~SharedPool() = default;

void SharedPool::publish(uint32_t family, uint32_t word, uint32_t width, uint32_t ndoubles,
                         std::vector<std::string> values, uint8_t gauge_mode) {
  if (has_slot()) rec_of_[word] = slot_->add_series(family, word, width, ndoubles, values, gauge_mode);
  records_.push_back({family, word, width, ndoubles, std::move(values), gauge_mode});
}

cells::Word* SharedPool::base_chunk(uint32_t pc) {
  if (pc < base_.size() && base_[pc]) return base_[pc];
  if (base_.size() <= pc) base_.resize(pc + 1, nullptr);
  if (has_slot()) {
    base_[pc] = slot_->take_chunk(ChunkRole::Base, pc, 0);
  } else {
    scratch_.push_back(std::make_unique<cells::Word[]>(cells::kChunkWords));  // zeroed
    base_[pc] = scratch_.back().get();
  }
  return base_[pc];
}

cells::Word* SharedPool::thread_chunk(uint32_t pc, uint64_t tag) noexcept {
  if (!has_slot()) return nullptr;
  try {
    return slot_->take_chunk(ChunkRole::Thread, pc, tag);
  } catch (...) {
    return nullptr;  // the table is full: this thread's updates fold into the base
  }
}

void SharedPool::release_thread_chunk(cells::Word* chunk) noexcept {
  if (has_slot()) slot_->free_chunk(chunk);
}

void SharedPool::on_set(uint32_t word) noexcept {
  if (!has_slot()) return;
  auto it = rec_of_.find(word);
  if (it == rec_of_.end()) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for every process of the boot
  slot_->note_set(it->second, static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec));
}

void SharedPool::move_begin() noexcept {
  if (has_slot()) slot_->begin_move();
}

void SharedPool::move_end() noexcept {
  if (has_slot()) slot_->end_move();
}

bool SharedPool::claim() noexcept {
  if (!pending_ || claim_failed_) return false;
  try {
    std::unique_ptr<SlotFile> s = dir_->claim();
    std::vector<cells::Word*> bases(base_.size(), nullptr);
    for (uint32_t pc = 0; pc < base_.size(); ++pc)
      if (base_[pc]) bases[pc] = s->take_chunk(ChunkRole::Base, pc, 0);
    std::unordered_map<uint32_t, uint64_t> recs;
    for (const Record& r : records_)
      recs[r.word] = s->add_series(r.family, r.word, r.width, r.ndoubles, r.values, r.gauge_mode);
    rec_of_ = std::move(recs);
    slot_ = std::move(s);
    base_ = std::move(bases);  // the Space copies the scratch bases over next (rehome)
    pending_ = false;
    if (on_claim_) on_claim_();
    return true;
  } catch (const std::exception& e) {
    claim_failed_ = true;
    claim_error_ = e.what();
    local_only_.store(true, std::memory_order_release);
    return false;
  }
}

void SharedPool::fork_child() noexcept {
  // The parent's slot: never written from here. Closing our copy of its
  // descriptor keeps its lock the parent's alone.
  slot_.reset();
  dir_->reopen_after_fork();
  base_.clear();
  rec_of_.clear();
  pending_ = true;
  claim_failed_ = false;
  claim_error_.clear();
  local_only_.store(false, std::memory_order_relaxed);
}

}  // namespace cm::shared
