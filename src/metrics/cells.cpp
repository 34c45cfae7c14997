// SPDX-License-Identifier: Apache-2.0
// The process-wide cell space: slot allocation, thread arenas, folding.
#include "metrics/cells.h"

#include <algorithm>
#include <memory>

namespace cm::cells {

constinit thread_local Arena* t_arena __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

// Set once a thread's exit hook ran: later updates (from other thread_local
// destructors) fold straight into the bases.
constinit thread_local bool t_exiting = false;

// Its destructor runs at thread exit and folds the thread's cells away.
struct ExitHook {
  ~ExitHook() {
    t_exiting = true;
    if (Arena* a = t_arena) {
      t_arena = nullptr;
      Space::get().retire(a);
    }
  }
};
thread_local ExitHook t_exit_hook;

uint64_t folded(const Block& b, uint32_t i, uint64_t acc, uint64_t v) {
  return i < b.ndoubles ? to_bits(from_bits(acc) + from_bits(v)) : acc + v;
}

void fold_word(const Block& b, uint32_t i, uint64_t& acc, uint64_t v) { acc = folded(b, i, acc, v); }

// The base payload: in the heap, or in the pool's base chunk.
uint64_t base_word(const Block& b, uint32_t i) {
  return b.home ? b.home[1 + i].load(std::memory_order_relaxed) : b.base[i];
}
void set_base_word(Block& b, uint32_t i, uint64_t v) {
  if (b.home)
    b.home[1 + i].store(v, std::memory_order_relaxed);
  else
    b.base[i] = v;
}
void fold_base(Block& b, uint32_t i, uint64_t v) { set_base_word(b, i, folded(b, i, base_word(b, i), v)); }
void set_gen(Block& b, uint64_t g) {
  b.gen.store(g, std::memory_order_release);
  if (b.home) b.home[0].store(g, std::memory_order_release);
}

// Brackets a base change of a pool's block for the pool's readers.
class PoolMove {
 public:
  explicit PoolMove(Pool* p) : p_(p) {
    if (p_) p_->move_begin();
  }
  ~PoolMove() {
    if (p_) p_->move_end();
  }
  PoolMove(const PoolMove&) = delete;
  PoolMove& operator=(const PoolMove&) = delete;

 private:
  Pool* p_;
};

}  // namespace

Space& Space::get() {
  // Never destroyed: threads may still update metrics while the process exits.
  static Space* space = [] {
    auto* sp = new Space();
    sp->fork_.enrol(sp);
    return sp;
  }();
  return *space;
}

void Space::attach(Block& b, uint32_t payload_words, uint32_t ndoubles, Pool* pool) {
  uint32_t width = payload_words + 1;
  std::lock_guard<std::mutex> g(mu_);
  if (pool) {
    ensure_claimed(pool);
    auto it = std::find_if(pools_.begin(), pools_.end(), [pool](const auto& p) { return p.first == pool; });
    if (it == pools_.end()) it = pools_.insert(pools_.end(), {pool, PoolFill{}});
    PoolFill& pf = it->second;
    if (pf.fill + width > kChunkWords) {
      // A new chunk index of the slot space, all the pool's.
      pool->base_chunk(pf.next_pc);  // taken first: it may throw, and nothing has changed yet
      if (next_slot_ & kChunkMask) next_slot_ = (next_slot_ | kChunkMask) + 1;
      pf.ci = next_slot_ >> kChunkShift;
      next_slot_ += kChunkWords;
      if (owners_.size() < next_slot_) owners_.resize(std::max<size_t>(next_slot_, owners_.size() * 2));
      if (chunk_pool_.size() <= pf.ci) {
        chunk_pool_.resize(pf.ci + 1, nullptr);
        chunk_pc_.resize(pf.ci + 1, 0);
      }
      chunk_pool_[pf.ci] = pool;
      chunk_pc_[pf.ci] = pf.next_pc++;
      pf.fill = 0;
    }
    b.slot = (pf.ci << kChunkShift) + pf.fill;
    pf.fill += width;
    b.width = width;
    b.ndoubles = ndoubles;
    b.base.clear();
    b.pool = pool;
    b.home = pool->base_chunk(chunk_pc_[pf.ci]) + (b.slot & kChunkMask);
    PoolMove m(pool);
    for (uint32_t i = 1; i < width; ++i) b.home[i].store(0, std::memory_order_relaxed);
    set_gen(b, next_gen_.fetch_add(1, std::memory_order_relaxed));
    owners_[b.slot] = &b;
    return;
  }
  b.width = width;
  b.ndoubles = ndoubles;
  b.base.assign(payload_words, 0);
  b.gen.store(next_gen_.fetch_add(1, std::memory_order_relaxed), std::memory_order_relaxed);
  if (width < free_by_width_.size() && !free_by_width_[width].empty()) {
    b.slot = free_by_width_[width].back();
    free_by_width_[width].pop_back();
  } else {
    // A block never straddles two chunks.
    if ((next_slot_ & kChunkMask) + width > kChunkWords) next_slot_ = (next_slot_ | kChunkMask) + 1;
    b.slot = next_slot_;
    next_slot_ += width;
    if (owners_.size() < next_slot_) owners_.resize(std::max<size_t>(next_slot_, owners_.size() * 2));
  }
  owners_[b.slot] = &b;
}

void Space::detach(Block& b) {
  if (b.width == 0) return;
  std::lock_guard<std::mutex> g(mu_);
  uint32_t ci = b.slot >> kChunkShift;
  if (b.pool) {
    // Its values stay in the pool's memory: the threads' current cells
    // fold into the base, the cells go stale, the words are not reused.
    PoolMove m(b.pool);
    uint64_t gen = b.gen.load(std::memory_order_relaxed);
    for (const auto& a : arenas_) {
      if (ci >= a->chunks.size() || !a->chunks[ci]) continue;
      Word* w = a->chunks[ci] + (b.slot & kChunkMask);
      if (w[0].load(std::memory_order_relaxed) == gen)
        for (uint32_t i = 0; i + 1 < b.width; ++i) fold_base(b, i, w[1 + i].load(std::memory_order_relaxed));
      for (uint32_t i = 0; i < b.width; ++i) w[i].store(0, std::memory_order_relaxed);
    }
    owners_[b.slot] = nullptr;
    b.width = 0;
    b.home = nullptr;
    return;
  }
  for (const auto& a : arenas_) {
    if (ci >= a->chunks.size() || !a->chunks[ci]) continue;
    Word* w = a->chunks[ci] + (b.slot & kChunkMask);
    for (uint32_t i = 0; i < b.width; ++i) w[i].store(0, std::memory_order_relaxed);
  }
  owners_[b.slot] = nullptr;
  if (free_by_width_.size() <= b.width) free_by_width_.resize(b.width + 1);
  free_by_width_[b.width].push_back(b.slot);
  b.width = 0;
}

uint32_t Space::pool_word(const Block& b) {
  std::lock_guard<std::mutex> g(mu_);
  return chunk_pc_[b.slot >> kChunkShift] * kChunkWords + (b.slot & kChunkMask);
}

void Space::drop_pool(Pool* p) {
  std::lock_guard<std::mutex> g(mu_);
  for (uint32_t ci = 0; ci < chunk_pool_.size(); ++ci) {
    if (chunk_pool_[ci] != p) continue;
    chunk_pool_[ci] = nullptr;
    for (const auto& a : arenas_)
      if (ci < a->chunks.size()) a->chunks[ci] = nullptr;  // the pool's memory
  }
  pools_.erase(std::remove_if(pools_.begin(), pools_.end(), [p](const auto& e) { return e.first == p; }), pools_.end());
}

void Space::ensure_claimed(Pool* p) {
  if (p->claim_pending() && p->claim()) rehome(p, true);
}

void Space::rehome(Pool* p, bool keep) {
  PoolMove m(p);
  for (uint32_t ci = 0; ci < chunk_pool_.size(); ++ci) {
    if (chunk_pool_[ci] != p) continue;
    Word* base = p->base_chunk(chunk_pc_[ci]);
    uint32_t first = ci << kChunkShift;
    uint32_t last = std::min<uint32_t>(first + kChunkWords, static_cast<uint32_t>(owners_.size()));
    for (uint32_t slot = first; slot < last; ++slot) {
      Block* b = owners_[slot];
      if (!b) continue;
      Word* home = base + (slot - first);
      for (uint32_t i = 1; i < b->width; ++i)
        home[i].store(keep && b->home ? b->home[i].load(std::memory_order_relaxed) : 0, std::memory_order_relaxed);
      home[0].store(b->gen.load(std::memory_order_relaxed), std::memory_order_release);
      b->home = home;
    }
  }
}

void Space::fork_child() {
  // With every lock held, one thread: the pools' memory is the parent's
  // slot file. Threads' cells there are dropped (they were the parent's
  // counts), the blocks get fresh, zero bases until the child claims.
  for (auto& [p, fill] : pools_) {
    for (uint32_t ci = 0; ci < chunk_pool_.size(); ++ci) {
      if (chunk_pool_[ci] != p) continue;
      for (const auto& a : arenas_)
        if (ci < a->chunks.size()) a->chunks[ci] = nullptr;
    }
    p->fork_child();
    rehome(p, false);
  }
}

Word* Space::add_chunk(Arena* a, uint32_t ci) {
  if (a->chunks.size() <= ci) a->chunks.resize(ci + 1, nullptr);
  if (!a->chunks[ci]) {
    if (Pool* p = pool_of(ci)) {
      ensure_claimed(p);
      a->chunks[ci] = p->thread_chunk(chunk_pc_[ci], a->tag);  // null: fold into the base
    } else {
      a->owned.push_back(std::make_unique<Word[]>(kChunkWords));  // zeroed
      a->chunks[ci] = a->owned.back().get();
    }
  }
  return a->chunks[ci];
}

Word* Space::local_slow(const Block& b) {
  if (t_exiting) return nullptr;
  std::lock_guard<std::mutex> g(mu_);
  Arena* a = t_arena;
  if (!a) {
    arenas_.push_back(std::make_unique<Arena>());
    a = t_arena = arenas_.back().get();
    a->tag = next_tag_++;
    (void)&t_exit_hook;  // odr-use: registers the exit hook for this thread
  }
  uint32_t ci = b.slot >> kChunkShift;
  Word* c = add_chunk(a, ci);
  return c ? c + (b.slot & kChunkMask) : nullptr;
}

void Space::fold_direct(Block& b, uint32_t word, uint64_t bits_or_count) {
  std::lock_guard<std::mutex> g(mu_);
  if (b.pool) ensure_claimed(b.pool);
  PoolMove m(b.pool);
  fold_base(b, word, bits_or_count);
}

void Space::read(const Block& b, uint64_t* out, const Lock&) const {
  uint32_t n = b.width - 1;
  for (uint32_t i = 0; i < n; ++i) out[i] = base_word(b, i);
  uint64_t g = b.gen.load(std::memory_order_relaxed);
  uint32_t ci = b.slot >> kChunkShift;
  for (const auto& a : arenas_) {
    if (ci >= a->chunks.size() || !a->chunks[ci]) continue;
    const Word* w = a->chunks[ci] + (b.slot & kChunkMask);
    if (w[0].load(std::memory_order_acquire) != g) continue;
    for (uint32_t i = 0; i < n; ++i) fold_word(b, i, out[i], w[1 + i].load(std::memory_order_relaxed));
  }
}

void Space::reset(Block& b, const uint64_t* new_base, const Lock&) {
  if (b.pool) ensure_claimed(b.pool);
  {
    PoolMove m(b.pool);
    for (uint32_t i = 0; i + 1 < b.width; ++i) set_base_word(b, i, new_base ? new_base[i] : 0);
    set_gen(b, next_gen_.fetch_add(1, std::memory_order_relaxed));
  }
  if (b.pool) b.pool->on_set(chunk_pc_[b.slot >> kChunkShift] * kChunkWords + (b.slot & kChunkMask));
}

void Space::retire(Arena* a) {
  std::lock_guard<std::mutex> g(mu_);
  for (uint32_t ci = 0; ci < a->chunks.size(); ++ci) {
    Word* c = a->chunks[ci];
    if (!c) continue;
    Pool* p = pool_of(ci);
    PoolMove m(p);
    uint32_t first = ci << kChunkShift;
    uint32_t last = std::min<uint32_t>(first + kChunkWords, static_cast<uint32_t>(owners_.size()));
    for (uint32_t slot = first; slot < last; ++slot) {
      Block* b = owners_[slot];
      if (!b) continue;
      const Word* w = c + (slot - first);
      if (w[0].load(std::memory_order_relaxed) != b->gen.load(std::memory_order_relaxed)) continue;
      for (uint32_t i = 0; i + 1 < b->width; ++i) fold_base(*b, i, w[1 + i].load(std::memory_order_relaxed));
    }
    if (p) p->release_thread_chunk(c);
  }
  arenas_.erase(std::find_if(arenas_.begin(), arenas_.end(), [a](const auto& p) { return p.get() == a; }));
}

// The update slow paths: the thread has no cell for b yet (first update, or
// its arena is gone at thread exit) or its cell is stale after a reset.
void add_double_slow(Block& b, uint32_t word, double v) {
  Word* w = local(b);
  if (!w) return Space::get().fold_direct(b, word, to_bits(v));
  uint64_t g = b.gen.load(std::memory_order_relaxed);
  Word& cell = w[1 + word];
  if (stale(w, g)) {
    restart(w, b.width);
    cell.store(to_bits(v), std::memory_order_relaxed);
    publish(w, g);
    return;
  }
  cell.store(to_bits(from_bits(cell.load(std::memory_order_relaxed)) + v), std::memory_order_relaxed);
}

void add_count_slow(Block& b, uint32_t word, uint64_t n) {
  Word* w = local(b);
  if (!w) return Space::get().fold_direct(b, word, n);
  uint64_t g = b.gen.load(std::memory_order_relaxed);
  Word& cell = w[1 + word];
  if (stale(w, g)) {
    restart(w, b.width);
    cell.store(n, std::memory_order_relaxed);
    publish(w, g);
    return;
  }
  cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

void observe_slow(Block& b, uint32_t bucket_word, double v) {
  Word* w = local(b);
  if (!w) {
    Space::get().fold_direct(b, 0, to_bits(v));
    return Space::get().fold_direct(b, bucket_word, 1);
  }
  uint64_t g = b.gen.load(std::memory_order_relaxed);
  Word& sum = w[1];
  Word& cnt = w[1 + bucket_word];
  if (stale(w, g)) {
    restart(w, b.width);
    sum.store(to_bits(v), std::memory_order_relaxed);
    cnt.store(1, std::memory_order_relaxed);
    publish(w, g);
    return;
  }
  cnt.store(cnt.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum.store(to_bits(from_bits(sum.load(std::memory_order_relaxed)) + v), std::memory_order_relaxed);
}

}  // namespace cm::cells
