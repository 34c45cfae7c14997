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

void fold_word(const Block& b, uint32_t i, uint64_t& acc, uint64_t v) {
  if (i < b.ndoubles)
    acc = to_bits(from_bits(acc) + from_bits(v));
  else
    acc += v;
}

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

void Space::attach(Block& b, uint32_t payload_words, uint32_t ndoubles) {
  uint32_t width = payload_words + 1;
  std::lock_guard<std::mutex> g(mu_);
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
  for (const auto& a : arenas_) {
    if (ci >= a->chunks.size() || !a->chunks[ci]) continue;
    Word* w = a->chunks[ci].get() + (b.slot & kChunkMask);
    for (uint32_t i = 0; i < b.width; ++i) w[i].store(0, std::memory_order_relaxed);
  }
  owners_[b.slot] = nullptr;
  if (free_by_width_.size() <= b.width) free_by_width_.resize(b.width + 1);
  free_by_width_[b.width].push_back(b.slot);
  b.width = 0;
}

Word* Space::add_chunk(Arena* a, uint32_t ci) {
  if (a->chunks.size() <= ci) a->chunks.resize(ci + 1);
  if (!a->chunks[ci]) a->chunks[ci] = std::make_unique<Word[]>(kChunkWords);  // zeroed
  return a->chunks[ci].get();
}

Word* Space::local_slow(const Block& b) {
  if (t_exiting) return nullptr;
  std::lock_guard<std::mutex> g(mu_);
  Arena* a = t_arena;
  if (!a) {
    arenas_.push_back(std::make_unique<Arena>());
    a = t_arena = arenas_.back().get();
    (void)&t_exit_hook;  // odr-use: registers the exit hook for this thread
  }
  uint32_t ci = b.slot >> kChunkShift;
  return add_chunk(a, ci) + (b.slot & kChunkMask);
}

void Space::fold_direct(Block& b, uint32_t word, uint64_t bits_or_count) {
  std::lock_guard<std::mutex> g(mu_);
  fold_word(b, word, b.base[word], bits_or_count);
}

void Space::read(const Block& b, uint64_t* out, const Lock&) const {
  uint32_t n = b.width - 1;
  std::copy(b.base.begin(), b.base.end(), out);
  uint64_t g = b.gen.load(std::memory_order_relaxed);
  uint32_t ci = b.slot >> kChunkShift;
  for (const auto& a : arenas_) {
    if (ci >= a->chunks.size() || !a->chunks[ci]) continue;
    const Word* w = a->chunks[ci].get() + (b.slot & kChunkMask);
    if (w[0].load(std::memory_order_acquire) != g) continue;
    for (uint32_t i = 0; i < n; ++i) fold_word(b, i, out[i], w[1 + i].load(std::memory_order_relaxed));
  }
}

void Space::reset(Block& b, const uint64_t* new_base, const Lock&) {
  if (new_base)
    std::copy(new_base, new_base + b.base.size(), b.base.begin());
  else
    std::fill(b.base.begin(), b.base.end(), 0);
  b.gen.store(next_gen_.fetch_add(1, std::memory_order_relaxed), std::memory_order_release);
}

void Space::retire(Arena* a) {
  std::lock_guard<std::mutex> g(mu_);
  for (uint32_t ci = 0; ci < a->chunks.size(); ++ci) {
    const Word* c = a->chunks[ci].get();
    if (!c) continue;
    uint32_t first = ci << kChunkShift;
    uint32_t last = std::min<uint32_t>(first + kChunkWords, static_cast<uint32_t>(owners_.size()));
    for (uint32_t slot = first; slot < last; ++slot) {
      Block* b = owners_[slot];
      if (!b) continue;
      const Word* w = c + (slot - first);
      if (w[0].load(std::memory_order_relaxed) != b->gen.load(std::memory_order_relaxed)) continue;
      for (uint32_t i = 0; i + 1 < b->width; ++i)
        fold_word(*b, i, b->base[i], w[1 + i].load(std::memory_order_relaxed));
    }
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
