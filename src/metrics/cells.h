// Per-thread cells: the storage behind every series value.
//
// Every thread that updates metrics owns an arena of 64-bit words, indexed by
// a process-wide slot number. A series owns a block of `width` consecutive
// slots: word 0 holds the block's generation, the rest its payload (for a
// counter or gauge a double and an integer word, see add_scalar(); for a
// histogram the sum and one count per
// bucket). Only the owning thread writes its arena's cells, with plain
// relaxed loads and stores: an update is a few instructions, takes no lock,
// allocates nothing and never shares a cache line with another thread.
//
// Readers take the space's mutex and fold base + every live arena's cells.
// A cell counts only when its generation equals the block's: a reset (or a
// gauge set) stores the new base and bumps the generation under the mutex,
// which makes every thread's old cell stale at once; the owner restarts its
// cell at its next update. A thread's cells are folded into the bases when it
// exits. See docs/threading.md.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "util/fork.h"

namespace cm::cells {

using Word = std::atomic<uint64_t>;

constexpr uint32_t kChunkShift = 12;  // 4096 words (32 KiB) per chunk and thread
constexpr uint32_t kChunkWords = 1u << kChunkShift;
constexpr uint32_t kChunkMask = kChunkWords - 1;

inline uint64_t to_bits(double d) { return std::bit_cast<uint64_t>(d); }
inline double from_bits(uint64_t u) { return std::bit_cast<double>(u); }

// The series side of a cell block. Payload words [0, ndoubles) hold doubles
// (summed as doubles), the rest hold integer counts.
struct Block {
  uint32_t slot = 0;
  uint32_t width = 0;  // 1 + payload words
  uint32_t ndoubles = 0;
  std::atomic<uint64_t> gen{0};
  std::vector<uint64_t> base;  // payload not held in live cells; guarded by Space::mu
};

struct Arena {
  // Written by the owning thread under Space's mutex; read by the owner
  // without it and by other threads (readers) with it.
  std::vector<std::unique_ptr<Word[]>> chunks;
};

// Enrolled for fork(): the cell lock is held across it (util/fork.h).
class Space final : private fork::Hooks {
 public:
  static Space& get();

  // Gives b a slot range and a fresh generation; its payload starts at zero.
  void attach(Block& b, uint32_t payload_words, uint32_t ndoubles);
  // Returns b's slots (zeroing every thread's copy) for reuse.
  void detach(Block& b);

  // The calling thread's cell block for b, or nullptr when the thread is
  // exiting (then the caller folds through fold_direct()).
  Word* local_slow(const Block& b);
  void fold_direct(Block& b, uint32_t word, uint64_t bits_or_count);

  // Readers: hold a Lock, then read(). The payload of b summed over base and
  // live cells is written to out[0 .. width-1).
  using Lock = std::unique_lock<std::mutex>;
  Lock lock() { return Lock(mu_); }
  void read(const Block& b, uint64_t* out, const Lock&) const;
  // Replaces the payload with new_base (nullptr: zeros); stale-marks all cells.
  void reset(Block& b, const uint64_t* new_base, const Lock&);

  // Called from the thread-exit hook.
  void retire(Arena* a);

 private:
  Space() = default;
  Word* add_chunk(Arena* a, uint32_t ci);
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }

  std::mutex mu_;
  std::vector<std::unique_ptr<Arena>> arenas_;
  std::vector<Block*> owners_;  // slot -> block starting there (nullptr elsewhere)
  std::vector<std::vector<uint32_t>> free_by_width_;
  uint32_t next_slot_ = 0;
  std::atomic<uint64_t> next_gen_{1};
  fork::Enrolment fork_;
};

// constinit: no dynamic initialisation, so no TLS wrapper call on the hot path;
// initial-exec: a direct %fs-relative load, even inside the shared library.
extern constinit thread_local Arena* t_arena __attribute__((tls_model("initial-exec")));

// The calling thread's block for b. Hot path: three dependent loads.
inline Word* local(const Block& b) {
  Arena* a = t_arena;
  if (a) [[likely]] {
    uint32_t ci = b.slot >> kChunkShift;
    if (ci < a->chunks.size()) [[likely]] {
      Word* c = a->chunks[ci].get();
      if (c) [[likely]] return c + (b.slot & kChunkMask);
    }
  }
  return Space::get().local_slow(b);
}

// Makes w current for generation g, zeroing the stale payload. The caller
// then writes its update and publishes with publish().
inline bool stale(const Word* w, uint64_t g) { return w[0].load(std::memory_order_relaxed) != g; }
inline void restart(Word* w, uint32_t width) {
  for (uint32_t i = 1; i < width; ++i) w[i].store(0, std::memory_order_relaxed);
}
inline void publish(Word* w, uint64_t g) { w[0].store(g, std::memory_order_release); }

// The updates: a fast path inline (the thread's cell exists and is current),
// everything else out of line so the fast path needs no stack frame.
inline Word* local_current(const Block& b) {
  Arena* a = t_arena;
  if (!a) [[unlikely]] return nullptr;
  uint32_t ci = b.slot >> kChunkShift;
  if (ci >= a->chunks.size()) [[unlikely]] return nullptr;
  Word* c = a->chunks[ci].get();
  if (!c) [[unlikely]] return nullptr;
  Word* w = c + (b.slot & kChunkMask);
  if (w[0].load(std::memory_order_relaxed) != b.gen.load(std::memory_order_relaxed)) [[unlikely]] return nullptr;
  return w;
}
[[gnu::noinline]] void add_double_slow(Block& b, uint32_t word, double v);
[[gnu::noinline]] void add_count_slow(Block& b, uint32_t word, uint64_t n);

inline void add_double(Block& b, uint32_t word, double v) {
  if (Word* w = local_current(b)) [[likely]] {
    Word& cell = w[1 + word];
    cell.store(to_bits(from_bits(cell.load(std::memory_order_relaxed)) + v), std::memory_order_relaxed);
    return;
  }
  add_double_slow(b, word, v);
}

// Integer add to payload word `word` (counts; integral increments of counters
// and gauges, negative ones as two's complement). An integer add keeps the
// loop-carried chain of a hot series short: no round trip through the FPU
// registers that a double cell needs.
inline void add_count(Block& b, uint32_t word, uint64_t n) {
  if (Word* w = local_current(b)) [[likely]] {
    Word& cell = w[1 + word];
    cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return;
  }
  add_count_slow(b, word, n);
}

// Counters and gauges hold two payload words: [0] the double sum of
// non-integral increments, [1] the integer sum of integral ones (int64, two's
// complement). Their value is the sum of both.
constexpr uint32_t kScalarWords = 2;
inline void add_scalar(Block& b, double v) {
  constexpr double kExact = 9007199254740992.0;  // 2^53: every integer below is exact
  if (v > -kExact && v < kExact) [[likely]] {
    int64_t n = static_cast<int64_t>(v);
    if (static_cast<double>(n) == v) [[likely]] return add_count(b, 1, static_cast<uint64_t>(n));
  }
  add_double(b, 0, v);
}
inline double scalar_value(const uint64_t* payload) {
  if (payload[1] == 0) return from_bits(payload[0]);  // keeps a set -0.0 negative
  return from_bits(payload[0]) + static_cast<double>(static_cast<int64_t>(payload[1]));
}

// Histogram observation: sum (payload word 0) += v, count word `bucket` += 1.
[[gnu::noinline]] void observe_slow(Block& b, uint32_t bucket_word, double v);
inline void observe(Block& b, uint32_t bucket_word, double v) {
  if (Word* w = local_current(b)) [[likely]] {
    Word& sum = w[1];
    Word& cnt = w[1 + bucket_word];
    cnt.store(cnt.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum.store(to_bits(from_bits(sum.load(std::memory_order_relaxed)) + v), std::memory_order_relaxed);
    return;
  }
  observe_slow(b, bucket_word, v);
}

}  // namespace cm::cells
