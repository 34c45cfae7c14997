// SPDX-License-Identifier: Apache-2.0
// The memory backend under concurrent writers (also run under TSan): caps
// hold at every observation, every value read back was written for its key,
// and the accounting agrees with the entries left at the end.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backends/memory.h"

namespace {

using cm::EvictReason;
using cm::kEntryOverhead;
using cm::MemoryBackend;

constexpr int kWriters = 4;
constexpr int kKeys = 600;  // overlapping: every writer touches every key
constexpr int kIters = 30000;

struct Events final : cm::BackendEvents {
  void on_evict(EvictReason why, uint64_t entries, uint64_t bytes) override {
    (why == EvictReason::Size ? size_n : expired_n).fetch_add(entries, std::memory_order_relaxed);
    (why == EvictReason::Size ? size_b : expired_b).fetch_add(bytes, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> size_n{0}, size_b{0}, expired_n{0}, expired_b{0};
};

std::string key_of(int k) { return "key:" + std::to_string(k); }

// "<key>|w<writer>|<seq>" padded to a length that varies with seq, so
// replacements change the byte count.
std::string value_of(int k, int writer, int seq) {
  std::string v = key_of(k) + "|w" + std::to_string(writer) + "|" + std::to_string(seq) + "|";
  v.append(static_cast<size_t>(seq % 97), static_cast<char>('a' + writer));
  return v;
}

// The value is one that some writer wrote for key k.
bool plausible(const std::string& v, int k) {
  std::string prefix = key_of(k) + "|w";
  if (v.compare(0, prefix.size(), prefix) != 0) return false;
  size_t bar = v.find('|', prefix.size());
  if (bar == std::string::npos) return false;
  int writer = std::atoi(v.c_str() + prefix.size());
  int seq = std::atoi(v.c_str() + bar + 1);
  return writer >= 0 && writer < kWriters && v == value_of(k, writer, seq);
}

void run(uint64_t max_entries, uint64_t max_bytes, unsigned shards) {
  Events ev;
  MemoryBackend b(max_entries, max_bytes, &ev, shards);
  std::atomic<int64_t> clock{1000000};
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad_reads{0}, observations{0};

  std::thread observer([&] {
    while (!done.load(std::memory_order_acquire)) {
      uint64_t n = b.entries(), bytes = b.bytes();
      if (max_entries) {
        ASSERT_LE(n, max_entries);
      }
      if (max_bytes) {
        ASSERT_LE(bytes, max_bytes);
      }
      observations.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(w + 1);
      for (int i = 0; i < kIters; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = static_cast<int>(x % kKeys);
        int64_t now = clock.fetch_add(1, std::memory_order_relaxed);
        unsigned op = static_cast<unsigned>(x >> 32) % 10;
        if (op < 5) {
          cm::Fetched f;
          if (b.get(key_of(k), now, &f)) {
            std::string v(static_cast<const char*>(f.data), f.len);
            std::free(f.data);
            if (!plausible(v, k)) bad_reads.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (op < 9) {
          // a third of the sets carry a short TTL, so expiry runs alongside
          cm::Expiry e;
          if (op == 8) e = {now + 50, now + 100};
          b.set(key_of(k), value_of(k, w, i), e, now);
        } else {
          b.del(key_of(k), now);
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  done.store(true, std::memory_order_release);
  observer.join();

  EXPECT_EQ(bad_reads.load(), 0u);
  EXPECT_GT(observations.load(), 0u);
  EXPECT_GT(ev.size_n.load(), 0u);     // the caps were reached
  EXPECT_GT(ev.expired_n.load(), 0u);  // and TTLs ran out

  // Past every TTL: each get either returns a plausible value or drops an
  // expired entry, so afterwards the counters equal what is really there.
  const int64_t later = clock.load() + 1000;
  uint64_t found = 0, found_bytes = 0;
  for (int k = 0; k < kKeys; ++k) {
    cm::Fetched f;
    if (!b.get(key_of(k), later, &f)) continue;
    std::string v(static_cast<const char*>(f.data), f.len);
    std::free(f.data);
    EXPECT_TRUE(plausible(v, k)) << v;
    ++found;
    found_bytes += key_of(k).size() + v.size() + kEntryOverhead;
  }
  EXPECT_EQ(b.entries(), found);
  EXPECT_EQ(b.bytes(), found_bytes);
  if (max_entries) {
    EXPECT_LE(found, max_entries);
  }
  if (max_bytes) {
    EXPECT_LE(found_bytes, max_bytes);
  }
}

}  // namespace

// Readers against writers that overwrite in place (values of one length):
// a reader holds its shard shared while it copies, so it never sees a value
// half written. Every value is one letter repeated after its key.
TEST(MemoryConcurrency, ReadersNeverSeeAHalfOverwrittenValue) {
  constexpr int kHot = 64;
  constexpr size_t kLen = 100;
  MemoryBackend b(1000, 0, nullptr, 4);
  auto value = [](int k, int round) {
    std::string v = key_of(k) + "|";
    v.append(kLen - v.size(), static_cast<char>('a' + round % 26));
    return v;
  };
  for (int k = 0; k < kHot; ++k) b.set(key_of(k), value(k, 0), {}, 1);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, hits{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; !done.load(std::memory_order_relaxed) || i < 1000; ++i) {
        int k = (i * 7 + r) % kHot;
        cm::Fetched f;
        if (!b.get(key_of(k), 1, &f)) {
          bad.fetch_add(1, std::memory_order_relaxed);  // nothing deletes
          continue;
        }
        std::string v(static_cast<const char*>(f.data), f.len);
        std::free(f.data);
        hits.fetch_add(1, std::memory_order_relaxed);
        std::string prefix = key_of(k) + "|";
        if (v.size() != kLen || v.compare(0, prefix.size(), prefix) != 0 ||
            v.find_first_not_of(v.back(), prefix.size()) != std::string::npos)
          bad.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::thread writer([&] {
    for (int round = 1; round <= 2000; ++round)
      for (int k = 0; k < kHot; ++k) b.set(key_of(k), value(k, round), {}, 1);
    done.store(true, std::memory_order_relaxed);
  });
  writer.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  EXPECT_EQ(b.entries(), static_cast<uint64_t>(kHot));
  uint64_t bytes = 0;
  for (int k = 0; k < kHot; ++k) bytes += key_of(k).size() + kLen + kEntryOverhead;
  EXPECT_EQ(b.bytes(), bytes);
}

TEST(MemoryConcurrency, EntryCapHoldsUnderWritersOneShardPerWriter) { run(200, 0, 4); }

TEST(MemoryConcurrency, ByteCapHoldsUnderWritersOneShard) { run(0, 40 * (kEntryOverhead + 60), 1); }

TEST(MemoryConcurrency, BothCapsDefaultShards) { run(256, 300 * (kEntryOverhead + 40), 0); }
