/* SPDX-License-Identifier: Apache-2.0 */
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

// Cell memory other than the process heap: a shared registry's worker slot
// file (metrics/shared/pool.h), where every cell is visible to the other
// processes of the pool. A pool owns whole chunks of the slot space; for
// each of its chunks it holds a *base* chunk (per block: the generation,
// then the base payload) and hands out the threads' chunks. Every call is
// made with the Space's mutex held.
class Pool {
 public:
  // The base chunk of pool chunk pc (taken on first use). Throws Error
  // (a full slot file: CM_ELIMIT).
  virtual Word* base_chunk(uint32_t pc) = 0;
  // A thread's chunk for pool chunk pc, zeroed; nullptr when the pool has
  // none to give (then the thread's updates fold into the base under the
  // lock). Never throws.
  virtual Word* thread_chunk(uint32_t pc, uint64_t tag) noexcept = 0;
  // Takes back a thread chunk whose values were folded into the base.
  virtual void release_thread_chunk(Word* chunk) noexcept = 0;
  // A block of pool word `word` was set (a gauge set, a reset): its time
  // (gauge mode mostrecent).
  virtual void on_set(uint32_t word) noexcept = 0;
  // Brackets a move of values between words (base writes, thread exits):
  // the pool's readers in other processes retry across it.
  virtual void move_begin() noexcept = 0;
  virtual void move_end() noexcept = 0;
  // A pool may lose its memory (the child of a fork() must not write the
  // parent's slot) and find new memory later (the child claims its own
  // slot on its first write). claim_pending(): it has none now;
  // claim(): tries to get it (false: still none). After a successful claim
  // the Space re-homes the pool's blocks into its new base chunks.
  virtual bool claim_pending() const noexcept = 0;
  virtual bool claim() noexcept = 0;
  // In the child of fork(), one thread, locks held: drop the parent's
  // memory (the Space re-homes the blocks to fresh base chunks next).
  virtual void fork_child() noexcept = 0;

 protected:
  ~Pool() = default;
};

// The series side of a cell block. Payload words [0, ndoubles) hold doubles
// (summed as doubles), the rest hold integer counts.
struct Block {
  uint32_t slot = 0;
  uint32_t width = 0;  // 1 + payload words
  uint32_t ndoubles = 0;
  std::atomic<uint64_t> gen{0};
  // Payload not held in live cells; guarded by Space::mu. In the heap
  // (`base`), or for a pool's block in its base chunk (`home`: the
  // generation's copy, then the payload).
  std::vector<uint64_t> base;
  Pool* pool = nullptr;
  Word* home = nullptr;
};

struct Arena {
  // Written by the owning thread under Space's mutex; read by the owner
  // without it and by other threads (readers) with it. A heap chunk is
  // owned by `owned`, a pool's by the pool.
  std::vector<Word*> chunks;
  std::vector<std::unique_ptr<Word[]>> owned;
  uint64_t tag = 0;  // for people reading a slot file: which thread
};

// Enrolled for fork(): the cell lock is held across it (util/fork.h).
class Space final : private fork::Hooks {
 public:
  static Space& get();

  // Gives b a slot range and a fresh generation; its payload starts at zero.
  // pool: the cells live in that pool's memory (may throw its Error).
  void attach(Block& b, uint32_t payload_words, uint32_t ndoubles, Pool* pool = nullptr);
  // Returns b's slots (zeroing every thread's copy) for reuse. A pool's
  // block keeps its words: its values (folded into its base) stay where
  // the pool's readers count them, and its slots are not reused.
  void detach(Block& b);
  // The word of b in its pool's word space (pool chunk * kChunkWords + offset).
  uint32_t pool_word(const Block& b);
  // The pool goes away (its blocks are all detached): forget its chunks.
  void drop_pool(Pool* p);

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
  Pool* pool_of(uint32_t ci) const { return ci < chunk_pool_.size() ? chunk_pool_[ci] : nullptr; }
  // A pool that lost its memory gets new memory (claims) before any write.
  void ensure_claimed(Pool* p);
  // Points every block of p at p's current base chunks, writing their
  // generations there; keep: copies the base payloads over, else zero.
  void rehome(Pool* p, bool keep);
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  void fork_child() override;

  std::mutex mu_;
  std::vector<std::unique_ptr<Arena>> arenas_;
  std::vector<Block*> owners_;  // slot -> block starting there (nullptr elsewhere)
  std::vector<std::vector<uint32_t>> free_by_width_;
  uint32_t next_slot_ = 0;
  std::atomic<uint64_t> next_gen_{1};
  // Pools: the owner of each chunk index (nullptr: heap), its pool chunk
  // number, and where each pool's next block goes.
  std::vector<Pool*> chunk_pool_;
  std::vector<uint32_t> chunk_pc_;
  struct PoolFill {
    uint32_t ci = 0;
    uint32_t fill = kChunkWords;  // full: the next block opens a chunk
    uint32_t next_pc = 0;
  };
  std::vector<std::pair<Pool*, PoolFill>> pools_;
  uint64_t next_tag_ = 1;
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
      Word* c = a->chunks[ci];
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
  Word* c = a->chunks[ci];
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
