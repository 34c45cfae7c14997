/* SPDX-License-Identifier: Apache-2.0 */
// The in-process backend (memory://): a sharded hash table with S3-FIFO
// eviction per shard, bounded by entries and/or bytes, with per-entry TTLs
// dropped lazily (on get/del) and incrementally (every set samples a few
// TTL'd entries, as Redis does). Why S3-FIFO and what it buys: memory.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include <cachemeter/common.h>

#include "cache/backend.h"
#include "util/fork.h"

namespace cm {

struct Uri;

// Bytes charged per entry on top of its key and value bytes: what an entry
// really costs beyond them on x86-64 with glibc malloc (heap in use, mallinfo2,
// measured 118..143 B per entry at 100k and 1M entries, with and without TTLs):
//   56  the entry header (queue links, hash, expiry, lengths, frequency)
//   16  malloc's chunk header and rounding (the entry is one allocation,
//       requested at the size glibc rounds it to anyway; a set whose value
//       needs the same size overwrites it in place, so an entry never holds
//       more than a new one would)
//   32  its slot in the shard's open-addressing index (16 B per slot at a
//       load factor between 0.375 and 0.75)
//   24  its share of the ghost queue (8 B per slot, 2..4 slots per main entry)
//   16  its slot in the TTL sample vector (8 B, entries with a TTL only) and
//       the shard's spare vector capacity
// max_bytes therefore bounds the memory the entries hold, not only their
// payload: 1000 entries of 10-byte keys and 100-byte values count 254000 bytes.
inline constexpr uint64_t kEntryOverhead = 144;

// Caps of 0 mean "no cap" for that dimension; both 0 gives an unbounded
// cache (it grows until the process runs out of memory: only for callers that
// bound their key space themselves).
// Thread-safety: any call from any thread. A get that hits takes its shard
// shared and writes no cache line but one of its own thread's (memory.cpp,
// ShardLock), so reads scale with threads; set, del, clear and a get that drops an expired
// entry take their shard exclusive.
// fork(): every shard lock is held across it (util/fork.h), so the child
// inherits each shard whole, as the parent had it before or after an
// operation, never in the middle of one.
class MemoryBackend final : public Backend, private fork::Hooks {
 public:
  // shards: 0 picks default_shards(); otherwise rounded down to a power of
  // two, at most 64, and at most max_entries when that is a cap. The caps are
  // split across the shards so that their sum is exactly the total: entries()
  // and bytes() never exceed them, even while writers race. events may be
  // nullptr (evictions are then not reported).
  MemoryBackend(uint64_t max_entries, uint64_t max_bytes, BackendEvents* events = nullptr,
                unsigned shards = 0);
  ~MemoryBackend() override;
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;

  std::string_view kind() const override { return "memory"; }
  bool get(std::string_view key, int64_t now_ms, Fetched* out) override;
  bool get_into(std::string_view key, int64_t now_ms, void* buf, size_t cap, Fetched* out) override;
  // Throws Error(CM_ELIMIT) when key + value + kEntryOverhead exceeds one
  // shard's byte cap (max_bytes / shard_count()), or a length exceeds 4 GiB.
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override;
  bool del(std::string_view key, int64_t now_ms) override;
  void clear() override;
  uint64_t entries() const override;
  uint64_t bytes() const override;
  int health() override { return CM_OK; }  // nothing to lose a connection to

  unsigned shard_count() const { return nshards_; }

  // A power of two <= 16, <= max_entries / 64 (entry cap) and <= max_bytes /
  // 1 MiB (byte cap), at least 1: a shard keeps enough entries for S3-FIFO's
  // small queue to mean something, and its byte cap holds a 1 MiB entry
  // (the front's default max_entry_bytes) whenever max_bytes allows.
  static unsigned default_shards(uint64_t max_entries, uint64_t max_bytes);

 private:
  // get() and get_into(): into selects the copy into buf (at most cap bytes).
  bool lookup(std::string_view key, int64_t now_ms, Fetched* out, bool into, void* buf, size_t cap);
  struct Shard;
  BackendEvents* events_;
  unsigned nshards_;
  unsigned shard_shift_;  // shard = hash >> shard_shift_ (64 for one shard)
  std::unique_ptr<Shard[]> shards_;
  fork::Enrolment fork_;

  Shard& shard_of(uint64_t h) const;
  void fork_locks(std::vector<fork::Lock>& out) override;
  void fork_child() override;
};

// memory://?max_entries=N&max_bytes=S (plus the front's kFrontOptions).
//   max_entries  0..1e9, default 100000; 0 = no entry cap
//   max_bytes    a size (units B, KiB, MiB, GiB, KB, MB, GB), default 0 = no
//                byte cap; counts keys + values + kEntryOverhead per entry
// Throws Error(CM_EINVAL) for a non-empty location ("memory://x"), an unknown
// option (named in the message) or a bad value.
std::unique_ptr<Backend> make_memory_backend(const Uri& uri, BackendEvents* events);

}  // namespace cm
