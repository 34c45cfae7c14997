// SPDX-License-Identifier: Apache-2.0
// The memory:// backend: sharded hash tables, S3-FIFO eviction per shard,
// lazy and sampled TTL expiry. The interface and the byte accounting are
// documented in memory.h.
//
// Why S3-FIFO (Yang et al., SOSP '23) rather than LRU: cache traffic is
// skewed, and most keys are requested once and never again. LRU gives such a
// one-hit key a full trip through the whole cache, pushing out popular keys;
// a scan (a batch job reading every row once) flushes it entirely. S3-FIFO
// admits new keys into a small FIFO (10% of the shard) and promotes to the
// main FIFO only keys hit again while there (or seen recently, remembered
// by a ghost queue of hashes); the main FIFO gives keys with hits (2-bit
// counter) another round instead of evicting them. Hits cost a counter
// increment, not a list move, so a get never rewrites list pointers.
// Hit ratios measured with bench/bench_hit_ratio (100k keys, 1M requests,
// cache-aside: a miss is followed by a set; this backend with its default
// shard count, max_entries = the cache size; LRU = std::list + hash map):
//   trace                      cache  LRU     S3-FIFO  (one shard)
//   Zipf 0.8                   1%     0.2043  0.3149   0.3153
//                              5%     0.3683  0.4652   0.4654
//                              10%    0.4671  0.5462   0.5464
//   Zipf 1.0                   1%     0.5055  0.5978   0.5979
//                              5%     0.6639  0.7256   0.7257
//                              10%    0.7347  0.7792   0.7791
//   Zipf 0.9 + scans of        1%     0.2585  0.3417   0.3419
//   never-repeated keys (25%)  5%     0.3808  0.4532   0.4531
//                              10%    0.4330  0.5060   0.5061
// +4 to +11 points everywhere; sharding costs nothing measurable. Variants
// tried and within 0.003 of these: promotion from S after 2 hits instead of
// 1 (the paper's threshold), keeping the frequency on promotion.
//
// Locking: one ShardLock per shard, held for the whole of an operation:
// shared by a get that hits (it copies the value out and bumps the frequency
// counter, a relaxed atomic), exclusive for everything that changes the
// shard (set, del, clear, a get that drops an expired entry). A hit writes
// no cache line that another core reads: the frequency is stored only while
// it is below its cap (a hot key saturates it at once and is never written
// again) and the reader's announcement goes to a counter of its own thread's
// (ShardLock). Evictions are reported after the lock is released.
#include "backends/memory.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/backend_table.h"
#include "core/error.h"
#include "util/uri.h"

namespace cm {
namespace {

constexpr uint32_t kNoTtl = std::numeric_limits<uint32_t>::max();
constexpr uint8_t kMaxFreq = 3;      // the 2-bit frequency counter
constexpr uint8_t kPromoteFreq = 1;  // hits in the small queue that earn the main queue

// One entry: header, key bytes, value bytes, in a single malloc'd block.
// Trivially destructible: freed with std::free.
struct Node {
  Node* prev;  // towards the head (newer) of its queue
  Node* next;  // towards the tail (older)
  uint64_t hash;
  int64_t fresh_until;
  int64_t keep_until;
  uint32_t klen;
  uint32_t vlen;
  uint32_t ttl_pos;  // index in Shard::ttl, kNoTtl when keep_until == kNever
  uint8_t freq;
  bool in_main;

  const char* key() const { return reinterpret_cast<const char*>(this + 1); }
  const char* value() const { return key() + klen; }
  char* value() { return reinterpret_cast<char*>(this + 1) + klen; }
  uint64_t charge() const { return uint64_t{klen} + vlen + kEntryOverhead; }
};
static_assert(sizeof(Node) == 56, "kEntryOverhead in memory.h counts a 56-byte header");

// The bytes requested for an entry's block: its header, key and value,
// rounded up to what glibc's malloc makes usable anyway (chunks of 16 bytes
// with an 8-byte header), so the block costs exactly what an exact request
// would, and a value whose block_size is the old one's can overwrite it in
// place (set): the entry then holds the same memory a new one would.
size_t block_size(uint64_t klen, uint64_t vlen) {
  return ((sizeof(Node) + klen + vlen + 8 + 15) & ~size_t{15}) - 8;
}

struct NodeFree {
  void operator()(Node* n) const { std::free(n); }
};
using NodePtr = std::unique_ptr<Node, NodeFree>;

NodePtr make_node(uint64_t h, std::string_view key, std::string_view value, Expiry e) {
  void* mem = std::malloc(block_size(key.size(), value.size()));
  if (!mem) throw std::bad_alloc();
  NodePtr n(std::construct_at(static_cast<Node*>(mem),
                              Node{nullptr, nullptr, h, e.fresh_until_ms, e.keep_until_ms,
                                   static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()),
                                   kNoTtl, 0, false}));
  char* bytes = reinterpret_cast<char*>(n.get() + 1);
  if (!key.empty()) std::memcpy(bytes, key.data(), key.size());
  if (!value.empty()) std::memcpy(bytes + key.size(), value.data(), value.size());
  return n;
}

// An intrusive FIFO: push at the head, take from the tail, unlink anywhere.
struct Queue {
  Node* head = nullptr;
  Node* tail = nullptr;
  uint64_t n = 0;
  uint64_t bytes = 0;

  void push_head(Node* x) {
    x->prev = nullptr;
    x->next = head;
    if (head) head->prev = x;
    else tail = x;
    head = x;
    ++n;
    bytes += x->charge();
  }
  void remove(Node* x) {
    if (x->prev) x->prev->next = x->next;
    else head = x->next;
    if (x->next) x->next->prev = x->prev;
    else tail = x->prev;
    --n;
    bytes -= x->charge();
  }
  template <class Fn>
  void drain(Fn&& fn) {
    for (Node* x = head; x;) {
      Node* next = x->next;
      fn(x);
      x = next;
    }
    *this = Queue{};
  }
};

// Open addressing, linear probing, backward-shift deletion (no tombstones).
// Slots keep the full hash, so a probe compares keys only on a hash match.
class Index {
 public:
  Node* find(uint64_t h, std::string_view key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.node) return nullptr;
      if (s.hash == h && s.node->klen == key.size() &&
          (key.empty() || std::memcmp(s.node->key(), key.data(), key.size()) == 0))
        return s.node;
    }
  }
  void insert(Node* x) {
    if ((n_ + 1) * 4 > slots_.size() * 3) grow();
    place(x);
    ++n_;
  }
  void erase(Node* x) {
    size_t i = x->hash & mask_;
    while (slots_[i].node != x) i = (i + 1) & mask_;
    for (size_t j = (i + 1) & mask_; slots_[j].node; j = (j + 1) & mask_) {
      size_t home = slots_[j].hash & mask_;
      // slot j may move back to i when i lies on its probe path [home, j]
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Slot{};
    --n_;
  }
  void clear() {
    slots_ = {};
    mask_ = 0;
    n_ = 0;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    Node* node = nullptr;
  };
  void place(Node* x) {
    size_t i = x->hash & mask_;
    while (slots_[i].node) i = (i + 1) & mask_;
    slots_[i] = Slot{x->hash, x};
  }
  void grow() {
    std::vector<Slot> old(std::max<size_t>(16, slots_.size() * 2));
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old)
      if (s.node) place(s.node);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t n_ = 0;
};

// S3-FIFO's ghost queue: the hashes of keys evicted from the small queue,
// remembered for as long as `window` (about the main queue's length) later
// ghost insertions. Approximated with 4-way buckets of (fingerprint, stamp):
// no allocation per insertion and no list to maintain. A bucket overwrites
// its oldest slot; a fingerprint collision (1 in 2^32) only promotes a key.
class Ghost {
 public:
  void insert(uint64_t h, uint64_t window) {
    if (slots_.size() < 2 * window) grow(window);
    ++seq_;
    put(Slot{fingerprint(h), seq_}, window);
  }
  // True (and forgets it) when h was inserted within the last `window`.
  bool take(uint64_t h, uint64_t window) {
    if (slots_.empty()) return false;
    uint32_t f = fingerprint(h);
    Slot* b = bucket(f);
    for (int k = 0; k < 4; ++k) {
      if (b[k].fp == f && age(b[k]) <= window) {
        b[k].fp = 0;
        return true;
      }
    }
    return false;
  }
  void clear() {
    slots_ = {};
    bmask_ = 0;
  }

 private:
  struct Slot {
    uint32_t fp = 0;  // 0: empty
    uint32_t stamp = 0;
  };
  static uint32_t fingerprint(uint64_t h) {
    uint32_t f = static_cast<uint32_t>(h ^ (h >> 32));
    return f ? f : 1;
  }
  uint32_t age(const Slot& s) const { return seq_ - s.stamp; }  // wraps harmlessly
  Slot* bucket(uint32_t f) { return &slots_[(f & bmask_) * 4]; }
  void put(Slot s, uint64_t window) {
    Slot* b = bucket(s.fp);
    Slot* victim = b;
    for (int k = 0; k < 4; ++k) {
      if (b[k].fp == 0 || age(b[k]) > window) {
        victim = &b[k];
        break;
      }
      if (age(b[k]) > age(*victim)) victim = &b[k];
    }
    *victim = s;
  }
  void grow(uint64_t window) {
    size_t buckets = std::bit_ceil(std::max<uint64_t>(1, (2 * window + 3) / 4));
    std::vector<Slot> old(buckets * 4);
    old.swap(slots_);
    bmask_ = buckets - 1;
    for (const Slot& s : old)
      if (s.fp && age(s) <= window) put(s, window);
  }

  std::vector<Slot> slots_;
  size_t bmask_ = 0;
  uint32_t seq_ = 0;
};

// Reader slots: a thread takes the next one on its first shared lock, for
// life; beyond kReaderSlots threads share them (correct, only slower: two
// threads of one slot bounce its line). Slots ever handed out is what a
// writer scans, so a process with two reading threads checks two counters.
constexpr unsigned kReaderSlots = 16;
std::atomic<uint64_t> g_reader_threads{0};
// slot + 1, 0 before the thread's first read. initial-exec: a %fs-relative
// load even inside the shared library (4 bytes of the static TLS block).
constinit thread_local unsigned t_reader_slot __attribute__((tls_model("initial-exec"))) = 0;

unsigned reader_slot() noexcept {
  unsigned s = t_reader_slot;
  if (s == 0) [[unlikely]] {
    s = static_cast<unsigned>(g_reader_threads.fetch_add(1, std::memory_order_seq_cst) % kReaderSlots) + 1;
    t_reader_slot = s;
  }
  return s - 1;
}

// A reader-writer lock whose readers write only a cache line of their own.
// A shared_mutex's reader count is one word every reader increments: with
// two cores reading, its line moves between them on every lock and unlock,
// and a read costs what an exclusive lock costs (bench_cache measured no
// scaling from 1 to 2 threads). Here a reader increments the counter of its
// thread's slot (one line each), then checks the writer flag; a writer
// raises the flag (one exchange: the flag is the writers' lock too), then
// waits until the counter of every slot handed out is zero. Both sides
// store, then load the other's word, all seq_cst (Dekker): at least one of
// them sees the other. Writers come first: a reader that sees the flag
// steps back and waits for it to fall, so a writer waits only for the
// readers already inside. Waiters spin (sections are short: a futex sleep
// and wake-up would cost microseconds), then yield their CPU, so an
// oversubscribed machine does not burn a core on a descheduled holder.
// Meets Lockable (std::lock_guard), SharedLockable (std::shared_lock) and
// fork::lock_of (try_lock).
class ShardLock {
 public:
  void lock() noexcept {
    while (writing_.exchange(true, std::memory_order_seq_cst)) wait_for_writer();
    for (int spins = 0; !readers_gone(); ++spins) back_off(spins);
  }
  bool try_lock() noexcept {
    if (writing_.load(std::memory_order_relaxed) || writing_.exchange(true, std::memory_order_seq_cst)) return false;
    if (readers_gone()) return true;
    unlock();
    return false;
  }
  void unlock() noexcept { writing_.store(false, std::memory_order_release); }
  void lock_shared() noexcept {
    std::atomic<uint32_t>& n = readers_[reader_slot()].n;
    for (;;) {
      n.fetch_add(1, std::memory_order_seq_cst);
      if (!writing_.load(std::memory_order_seq_cst)) [[likely]] return;
      n.fetch_sub(1, std::memory_order_release);
      wait_for_writer();
    }
  }
  void unlock_shared() noexcept { readers_[reader_slot()].n.fetch_sub(1, std::memory_order_release); }

  // In a child of fork(), with the lock held: a thread of the parent that
  // announced itself after the lock was taken for fork(), and was about to
  // step back, left its count in the child's copy, where no one removes it.
  void forget_readers() noexcept {
    for (Slot& s : readers_) s.n.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr int kSpins = 2000;
  static void back_off(int spins) noexcept {
    if (spins >= kSpins) {
      std::this_thread::yield();
      return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  void wait_for_writer() const noexcept {
    for (int spins = 0; writing_.load(std::memory_order_relaxed); ++spins) back_off(spins);
  }
  bool readers_gone() const noexcept {
    uint64_t used = std::min<uint64_t>(g_reader_threads.load(std::memory_order_seq_cst), kReaderSlots);
    for (uint64_t i = 0; i < used; ++i)
      if (readers_[i].n.load(std::memory_order_acquire)) return false;
    return true;
  }
  struct alignas(64) Slot {
    std::atomic<uint32_t> n{0};
  };
  std::atomic<bool> writing_{false};
  Slot readers_[kReaderSlots];
};

// Evictions of one operation, reported once it has released the lock.
struct Tally {
  uint64_t size_n = 0, size_b = 0;
  uint64_t exp_n = 0, exp_b = 0;
};

std::string size_text(uint64_t n) { return std::to_string(n) + " bytes"; }

}  // namespace

struct alignas(64) MemoryBackend::Shard {
  ShardLock mu;
  Index index;
  Queue small;  // S3-FIFO's S: new entries
  Queue main;   // S3-FIFO's M: entries hit while in S, or found in the ghost
  Ghost ghost;
  std::vector<Node*> ttl;  // entries with an expiry, sampled by sweep()
  uint64_t cap_n = 0, cap_b = 0;              // 0: no cap
  uint64_t small_cap_n = 0, small_cap_b = 0;  // S's share: 10%
  uint64_t rng = 0;

  // What entries() and bytes() read: stored once per operation, after its
  // evictions and insertion, so a reader never sees a transient overshoot.
  alignas(64) std::atomic<uint64_t> pub_n{0};
  std::atomic<uint64_t> pub_b{0};

  uint64_t n() const { return small.n + main.n; }
  uint64_t b() const { return small.bytes + main.bytes; }
  void publish() {
    pub_n.store(n(), std::memory_order_relaxed);
    pub_b.store(b(), std::memory_order_relaxed);
  }
  // The ghost remembers as many keys as the main queue holds when the shard
  // is full (its entry count then is its capacity, whichever cap binds).
  uint64_t ghost_window() const { return std::max<uint64_t>(1, n() - n() / 10); }
  bool small_full() const {
    return (cap_n && small.n >= small_cap_n) || (cap_b && small.bytes >= small_cap_b);
  }
  bool over(uint64_t add_n, uint64_t add_b) const {
    return (cap_n && n() + add_n > cap_n) || (cap_b && b() + add_b > cap_b);
  }

  void ttl_add(Node* x) {
    x->ttl_pos = static_cast<uint32_t>(ttl.size());
    ttl.push_back(x);
  }
  void ttl_remove(Node* x) {
    Node* last = ttl.back();
    ttl[x->ttl_pos] = last;
    last->ttl_pos = x->ttl_pos;
    ttl.pop_back();
    x->ttl_pos = kNoTtl;
  }
  void unlink(Node* x) {
    (x->in_main ? main : small).remove(x);
    index.erase(x);
    if (x->ttl_pos != kNoTtl) ttl_remove(x);
  }
  void link(Node* x, bool to_main) {
    x->in_main = to_main;
    (to_main ? main : small).push_head(x);
    index.insert(x);
    if (x->keep_until != kNever) ttl_add(x);
  }

  // Replaces live entry x's value and expiry in its own block when the new
  // value needs the same block_size and its bytes fit the caps without an
  // eviction; false (nothing changed) otherwise. Like a replacement by a new
  // entry it keeps x's queue and hits, moves x to its queue's head and runs
  // the sampled expiry; unlike one it keeps x's index slot and allocation.
  bool overwrite(Node* x, std::string_view value, Expiry e, int64_t now, Tally& t) {
    if (block_size(x->klen, value.size()) != block_size(x->klen, x->vlen)) return false;
    if (value.size() > x->vlen && over(0, value.size() - x->vlen)) return false;
    sweep(now, t);  // x is live at `now`: the sample leaves it alone
    Queue& q = x->in_main ? main : small;
    q.remove(x);  // with its old charge
    x->vlen = static_cast<uint32_t>(value.size());
    if (!value.empty()) std::memmove(x->value(), value.data(), value.size());
    x->fresh_until = e.fresh_until_ms;
    if (x->ttl_pos != kNoTtl && e.keep_until_ms == kNever) ttl_remove(x);
    if (x->ttl_pos == kNoTtl && e.keep_until_ms != kNever) ttl_add(x);
    x->keep_until = e.keep_until_ms;
    q.push_head(x);
    return true;
  }
  void drop(Node* x, bool expired, Tally& t) {
    unlink(x);
    (expired ? t.exp_n : t.size_n) += 1;
    (expired ? t.exp_b : t.size_b) += x->charge();
    std::free(x);
  }

  // Redis-style active expiry: sample two TTL'd entries, drop the expired
  // ones, and go on (at most 4 rounds) while every sample was expired.
  void sweep(int64_t now, Tally& t) {
    for (int round = 0; round < 4 && !ttl.empty(); ++round) {
      int expired = 0;
      for (int k = 0; k < 2 && !ttl.empty(); ++k) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Node* x = ttl[rng % ttl.size()];
        if (now >= x->keep_until) {
          drop(x, true, t);
          ++expired;
        }
      }
      if (expired < 2) return;
    }
  }

  // S3-FIFO eviction of one entry (an expired one found on the way counts).
  void evict_one(int64_t now, Tally& t) {
    if (small.n && (small_full() || !main.n)) {
      while (Node* x = small.tail) {
        if (now >= x->keep_until) return drop(x, true, t);
        if (x->freq >= kPromoteFreq) {
          small.remove(x);
          x->freq = 0;
          x->in_main = true;
          main.push_head(x);
          continue;
        }
        ghost.insert(x->hash, ghost_window());
        return drop(x, false, t);
      }
    }
    while (Node* x = main.tail) {  // terminates: every pass lowers a freq
      if (now >= x->keep_until) return drop(x, true, t);
      if (x->freq) {
        --x->freq;
        main.remove(x);
        main.push_head(x);
        continue;
      }
      return drop(x, false, t);
    }
  }

  void free_all() {
    auto release = [](Node* x) { std::free(x); };
    small.drain(release);
    main.drain(release);
    index.clear();
    ghost.clear();
    ttl = {};
  }
};

unsigned MemoryBackend::default_shards(uint64_t max_entries, uint64_t max_bytes) {
  uint64_t s = 16;
  if (max_entries) s = std::min<uint64_t>(s, max_entries / 64);
  if (max_bytes) s = std::min<uint64_t>(s, max_bytes >> 20);
  return static_cast<unsigned>(std::bit_floor(std::max<uint64_t>(s, 1)));
}

MemoryBackend::MemoryBackend(uint64_t max_entries, uint64_t max_bytes, BackendEvents* events, unsigned shards)
    : events_(events) {
  uint64_t s = shards ? std::min<uint64_t>(shards, 64) : default_shards(max_entries, max_bytes);
  if (max_entries) s = std::min(s, max_entries);
  nshards_ = static_cast<unsigned>(std::bit_floor(std::max<uint64_t>(s, 1)));
  shard_shift_ = 64 - static_cast<unsigned>(std::countr_zero(nshards_));
  shards_ = std::make_unique<Shard[]>(nshards_);
  for (unsigned i = 0; i < nshards_; ++i) {
    Shard& sh = shards_[i];
    sh.cap_n = max_entries / nshards_ + (i < max_entries % nshards_ ? 1 : 0);
    sh.cap_b = max_bytes / nshards_ + (i < max_bytes % nshards_ ? 1 : 0);
    sh.small_cap_n = std::max<uint64_t>(1, sh.cap_n / 10);
    sh.small_cap_b = std::max<uint64_t>(1, sh.cap_b / 10);
    sh.rng = 0x9e3779b97f4a7c15ull * (i + 1);
  }
  fork_.enrol(this);
}

void MemoryBackend::fork_locks(std::vector<fork::Lock>& out) {
  for (unsigned i = 0; i < nshards_; ++i) out.push_back(fork::lock_of(shards_[i].mu));
}

void MemoryBackend::fork_child() {
  for (unsigned i = 0; i < nshards_; ++i) shards_[i].mu.forget_readers();
}

MemoryBackend::~MemoryBackend() {
  fork_.leave();
  for (unsigned i = 0; i < nshards_; ++i) shards_[i].free_all();
}

MemoryBackend::Shard& MemoryBackend::shard_of(uint64_t h) const {
  return shards_[shard_shift_ < 64 ? h >> shard_shift_ : 0];
}

static uint64_t hash_key(std::string_view key) { return std::hash<std::string_view>{}(key); }

// A hit: the value copied out, the frequency counter bumped. Runs under the
// shard lock shared (or exclusive): readers race on freq, so it is read
// first and stored only below its cap; a lost increment (two readers storing
// the same count) costs S3-FIFO nothing it would notice.
// into: copy the value into buf when it fits (cm_cache_get_into; out->data
// stays null), else into a new malloc'd, NUL-terminated buffer.
static void take_hit(Node* x, Fetched* out, bool into, void* buf, size_t cap) {
  if (into) {
    if (x->vlen && x->vlen <= cap) std::memcpy(buf, x->value(), x->vlen);
    out->data = nullptr;
  } else {
    void* data = std::malloc(size_t{x->vlen} + 1);
    if (!data) throw std::bad_alloc();
    if (x->vlen) std::memcpy(data, x->value(), x->vlen);
    static_cast<char*>(data)[x->vlen] = '\0';
    out->data = data;
  }
  std::atomic_ref<uint8_t> freq(x->freq);
  if (uint8_t f = freq.load(std::memory_order_relaxed); f < kMaxFreq) freq.store(f + 1, std::memory_order_relaxed);
  out->len = x->vlen;
  out->fresh_until_ms = x->fresh_until;
}

bool MemoryBackend::lookup(std::string_view key, int64_t now_ms, Fetched* out, bool into, void* buf, size_t cap) {
  uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  {
    std::shared_lock lock(s.mu);
    Node* x = s.index.find(h, key);
    if (!x) return false;
    if (now_ms < x->keep_until) [[likely]] {
      take_hit(x, out, into, buf, cap);
      return true;
    }
  }
  // Expired: dropping it needs the lock exclusive, and meanwhile another
  // thread may have dropped or replaced it.
  Tally t;
  {
    std::lock_guard lock(s.mu);
    Node* x = s.index.find(h, key);
    if (!x) return false;
    if (now_ms < x->keep_until) {
      take_hit(x, out, into, buf, cap);
      return true;
    }
    s.drop(x, true, t);
    s.publish();
  }
  if (events_) events_->on_evict(EvictReason::Expired, t.exp_n, t.exp_b);
  return false;
}

bool MemoryBackend::get(std::string_view key, int64_t now_ms, Fetched* out) {
  return lookup(key, now_ms, out, false, nullptr, 0);
}

// Copied straight from the entry under the shard lock: no allocation.
bool MemoryBackend::get_into(std::string_view key, int64_t now_ms, void* buf, size_t cap, Fetched* out) {
  return lookup(key, now_ms, out, true, buf, cap);
}

void MemoryBackend::set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) {
  constexpr uint64_t kMaxLen = std::numeric_limits<uint32_t>::max();
  if (key.size() > kMaxLen || value.size() > kMaxLen)
    throw Error(CM_ELIMIT, "memory backend: keys and values are limited to 4 GiB each");
  uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  uint64_t charge = key.size() + value.size() + kEntryOverhead;
  if (s.cap_b && charge > s.cap_b)
    throw Error(CM_ELIMIT, "memory backend: an entry of " + size_text(charge) +
                               " (key + value + per-entry overhead) exceeds the " + size_text(s.cap_b) +
                               " one shard holds (max_bytes / " + std::to_string(nshards_) + " shards)");
  Tally t;
  {
    std::lock_guard lock(s.mu);
    Node* old = s.index.find(h, key);
    // A replacement keeps the old entry's standing (queue and hits) unless
    // it had expired: the key stays as popular as it was.
    const bool live = old && now_ms < old->keep_until;
    if (!live || !s.overwrite(old, value, e, now_ms, t)) {
      // Allocated under the lock, so that a set looks its key up once; the
      // common replacement (overwrite) allocates nothing.
      NodePtr fresh = make_node(h, key, value, e);
      bool to_main = false;
      if (old) {
        to_main = live && old->in_main;
        fresh->freq = live ? old->freq : 0;
        s.unlink(old);
        std::free(old);
      } else {
        to_main = s.ghost.take(h, s.ghost_window());
      }
      s.sweep(now_ms, t);
      while (s.n() && s.over(1, charge)) s.evict_one(now_ms, t);
      s.link(fresh.release(), to_main);
    }
    s.publish();
  }
  if (events_) {
    if (t.size_n) events_->on_evict(EvictReason::Size, t.size_n, t.size_b);
    if (t.exp_n) events_->on_evict(EvictReason::Expired, t.exp_n, t.exp_b);
  }
}

bool MemoryBackend::del(std::string_view key, int64_t now_ms) {
  uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  Tally t;
  bool live = false;
  {
    std::lock_guard lock(s.mu);
    Node* x = s.index.find(h, key);
    if (!x) return false;
    live = now_ms < x->keep_until;
    if (live) {
      s.unlink(x);
      std::free(x);
    } else {
      s.drop(x, true, t);
    }
    s.publish();
  }
  if (events_ && t.exp_n) events_->on_evict(EvictReason::Expired, t.exp_n, t.exp_b);
  return live;
}

void MemoryBackend::clear() {
  for (unsigned i = 0; i < nshards_; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    s.free_all();
    s.publish();
  }
}

uint64_t MemoryBackend::entries() const {
  uint64_t n = 0;
  for (unsigned i = 0; i < nshards_; ++i) n += shards_[i].pub_n.load(std::memory_order_relaxed);
  return n;
}

uint64_t MemoryBackend::bytes() const {
  uint64_t b = 0;
  for (unsigned i = 0; i < nshards_; ++i) b += shards_[i].pub_b.load(std::memory_order_relaxed);
  return b;
}

// The table's entry (cache/backend_table.h): in-process, the L1 of a tiered
// cache, no breaker (it does not fail as a remote store does).
const BackendSpec& memory_backend_spec() {
  static constexpr std::string_view kSchemes[] = {"memory"};
  static constexpr std::string_view kOptions[] = {"max_entries", "max_bytes"};
  static constexpr BackendSpec kSpec{
      .name = "memory",
      .schemes = kSchemes,
      .make = &make_memory_backend,
      .options = kOptions,
      .traits = {.shared = false, .tier_l1 = true, .tier_l2 = false, .change_feed = false},
      .breaker = {.failures = 0},
      .entry_overhead = kEntryOverhead,
      // A hit costs ~45 ns; timing 1 in 16 added ~3.7 ns (8%), 1 in 64 adds
      // under 1 ns (bench/RESULTS.md, "Metrics overhead").
      .default_sample = 64,
  };
  return kSpec;
}

std::unique_ptr<Backend> make_memory_backend(const Uri& uri, BackendEvents* events) {
  if (!uri.location.empty())
    throw Error(CM_EINVAL, "uri \"" + uri.text + "\": memory:// takes no location (memory://?options), got \"" +
                               uri.location + "\"");
  uri.query.check_known(known_options(memory_backend_spec()));
  int64_t max_entries = uri.query.get_int("max_entries", 100000, 0, 1000000000);
  int64_t max_bytes = uri.query.get_size("max_bytes", 0, 0, int64_t{1} << 50);
  return std::make_unique<MemoryBackend>(static_cast<uint64_t>(max_entries), static_cast<uint64_t>(max_bytes),
                                         events);
}

}  // namespace cm
