// SPDX-License-Identifier: Apache-2.0
// The memory backend's own behaviour: sampled expiry, eviction preferring
// expired entries, caps split across shards, URI options, and S3-FIFO's hit
// ratio against a plain LRU on skewed and scan-polluted traces. The Backend
// contract (get/set/del/clear, TTLs, bounds, accounting, threads):
// backend_contract.h. Time is passed in, never waited for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "backend_test_util.h"
#include "backends/memory.h"
#include "util/uri.h"
#include "traces.h"

namespace {

using cmsim::Lru;
using cmsim::Zipf;

using cm::EvictReason;
using cm::Expiry;
using cm::kEntryOverhead;
using cm::MemoryBackend;

using cmbt::Events;
using cmbt::get;
using cmbt::kT0;
using cmbt::set;
using cmbt::status_of;

uint64_t charge(std::string_view k, std::string_view v) { return k.size() + v.size() + kEntryOverhead; }

}  // namespace

// Values of 96..111 bytes under a 1-byte key need the same block, so each
// set below overwrites the entry in place, except the 112-byte one (a larger
// block) and the empty one (a smaller one): whichever path a set takes, the
// bytes counted are the new key + value + overhead, and the value read back
// is the last one written.
TEST(MemoryBackend, OverwriteInPlaceKeepsAccountingExact) {
  Events ev;
  MemoryBackend b(100, 0, &ev, 1);
  set(b, "other", "x");
  for (size_t len : {100u, 100u, 111u, 96u, 112u, 100u, 0u, 100u}) {
    std::string v(len, static_cast<char>('a' + len % 26));
    set(b, "k", v);
    EXPECT_EQ(get(b, "k", kT0), v) << len;
    EXPECT_EQ(b.entries(), 2u);
    EXPECT_EQ(b.bytes(), charge("other", "x") + charge("k", v)) << len;
  }
  EXPECT_TRUE(b.del("k", kT0));
  EXPECT_EQ(b.bytes(), charge("other", "x"));
  EXPECT_EQ(ev.size.calls + ev.expired.calls, 0u);
}

// A same-block overwrite that grows the value past the byte cap may not
// happen in place: it evicts, as a new entry would, and the cap holds.
TEST(MemoryBackend, OverwriteThatGrowsPastTheByteCapEvicts) {
  Events ev;
  const uint64_t cap = charge("a", std::string(100, 'x')) + charge("b", std::string(100, 'x'));
  MemoryBackend b(0, cap, &ev, 1);
  set(b, "a", std::string(100, 'x'));
  set(b, "b", std::string(100, 'x'));
  EXPECT_EQ(b.bytes(), cap);
  set(b, "a", std::string(105, 'y'));  // same block as 100 bytes, 5 bytes over
  EXPECT_LE(b.bytes(), cap);
  EXPECT_EQ(ev.size.entries, 1u);
  EXPECT_EQ(get(b, "a", kT0), std::string(105, 'y'));
  EXPECT_EQ(b.bytes(), charge("a", std::string(105, 'y')));
}

// An in-place overwrite that adds a TTL enrols the entry for sampled expiry
// (unread, it is dropped by other keys' sets); one that removes it keeps the
// entry past the old TTL (SetRenewsExpiry).
TEST(MemoryBackend, OverwriteInPlaceAddsTtlToSampling) {
  Events ev;
  MemoryBackend b(0, 0, &ev, 1);
  set(b, "k", "value1");
  set(b, "k", "value2", kT0, Expiry{kT0 + 10, kT0 + 10});
  for (int i = 0; i < 2000 && ev.expired.entries == 0; ++i) set(b, "other" + std::to_string(i), "v", kT0 + 20);
  EXPECT_EQ(ev.expired.entries, 1u);
  EXPECT_EQ(ev.expired.bytes, charge("k", "value2"));
  EXPECT_FALSE(get(b, "k", kT0 + 20));
}

TEST(MemoryBackend, SampledCleanupDropsUnreadExpiredEntries) {
  Events ev;
  MemoryBackend b(0, 0, &ev, 1);
  for (int i = 0; i < 1000; ++i) set(b, "ttl" + std::to_string(i), "v", kT0, Expiry{kT0 + 10, kT0 + 10});
  for (int i = 0; i < 500; ++i) set(b, "long" + std::to_string(i), "v", kT0, Expiry{kT0 + 1000000, kT0 + 1000000});
  EXPECT_EQ(b.entries(), 1500u);
  // Before expiry, sets of other keys drop nothing.
  for (int i = 0; i < 100; ++i) set(b, "early" + std::to_string(i), "v", kT0 + 5);
  EXPECT_EQ(ev.expired.entries, 0u);
  EXPECT_EQ(b.entries(), 1600u);
  // After it, they sample the TTL'd entries and drop the expired ones.
  for (int i = 0; i < 5000; ++i) set(b, "other" + std::to_string(i), "v", kT0 + 20);
  uint64_t expired_bytes = 0;
  for (int i = 0; i < 1000; ++i) expired_bytes += charge("ttl" + std::to_string(i), "v");
  EXPECT_EQ(ev.expired.entries, 1000u);
  EXPECT_EQ(ev.expired.bytes, expired_bytes);
  EXPECT_EQ(ev.size.calls, 0u);
  EXPECT_EQ(b.entries(), 500u + 100u + 5000u);
  for (int i = 0; i < 500; ++i) EXPECT_TRUE(get(b, "long" + std::to_string(i), kT0 + 20));
}

TEST(MemoryBackend, EvictionPrefersExpiredEntries) {
  Events ev;
  MemoryBackend b(10, 0, &ev, 1);
  for (int i = 0; i < 10; ++i) set(b, "k" + std::to_string(i), "v", kT0, Expiry{kT0 + 5, kT0 + 5});
  set(b, "new", "v", kT0 + 10);  // full: an expired entry makes the room
  EXPECT_EQ(ev.size.calls, 0u);
  EXPECT_GE(ev.expired.entries, 1u);
  EXPECT_EQ(b.entries(), 11u - ev.expired.entries);
}

TEST(MemoryBackend, CapsSplitAcrossShardsNeverExceedTotal) {
  for (uint64_t cap : {64u, 1000u, 1001u, 5000u}) {
    MemoryBackend b(cap, 0);
    EXPECT_GE(b.shard_count(), 1u);
    EXPECT_LE(b.shard_count(), 16u);
    EXPECT_LE(b.shard_count() * 64u, std::max<uint64_t>(cap, 64));
    for (uint64_t i = 0; i < cap * 3; ++i) {
      set(b, "k" + std::to_string(i), "v");
      ASSERT_LE(b.entries(), cap);
    }
    EXPECT_GE(b.entries(), cap * 9 / 10) << cap;  // the split wastes little
  }
  EXPECT_EQ(MemoryBackend::default_shards(100000, 0), 16u);
  EXPECT_EQ(MemoryBackend::default_shards(1000, 0), 8u);
  EXPECT_EQ(MemoryBackend::default_shards(10, 0), 1u);
  EXPECT_EQ(MemoryBackend::default_shards(0, 0), 16u);
  EXPECT_EQ(MemoryBackend::default_shards(0, 4u << 20), 4u);
  EXPECT_EQ(MemoryBackend::default_shards(0, 1000), 1u);
  EXPECT_EQ(MemoryBackend(3, 0, nullptr, 16).shard_count(), 2u);  // never a shard without room
}

TEST(MemoryBackend, RefusesEntryLargerThanAShard) {
  const uint64_t cap = 1000;
  MemoryBackend b(0, cap, nullptr, 1);
  std::string what;
  std::string big(cap - kEntryOverhead, 'x');  // + the key's byte: one too many
  EXPECT_EQ(status_of([&] { set(b, "k", big); }, &what), CM_ELIMIT);
  EXPECT_NE(what.find("exceeds"), std::string::npos) << what;
  EXPECT_EQ(b.entries(), 0u);
  big.pop_back();
  EXPECT_EQ(status_of([&] { set(b, "k", big); }), CM_OK);  // exactly the cap fits
  EXPECT_EQ(b.bytes(), cap);
  set(b, "k2", "");  // and evicts it to make room
  EXPECT_EQ(b.entries(), 1u);
  EXPECT_TRUE(get(b, "k2", kT0));
}

TEST(MemoryBackend, UriOptions) {
  auto make = [](const char* uri) { return cm::make_memory_backend(cm::Uri::parse(uri), nullptr); };
  auto dflt = make("memory://");
  EXPECT_EQ(dflt->kind(), "memory");
  EXPECT_EQ(dynamic_cast<MemoryBackend&>(*dflt).shard_count(), 16u);

  // max_entries=5 holds 5; the front's options are accepted silently.
  auto b = make("memory://?max_entries=5&max_bytes=1MiB&ttl_ms=5&max_entry_bytes=1000&sample=2&metrics=off"
                "&load_timeout_ms=10&stale_ms=3");
  for (int i = 0; i < 20; ++i) set(*b, "k" + std::to_string(i), "v");
  EXPECT_EQ(b->entries(), 5u);
  auto by_bytes = make("memory://?max_entries=0&max_bytes=2KiB");
  for (int i = 0; i < 100; ++i) set(*by_bytes, "k" + std::to_string(i), "v");
  EXPECT_LE(by_bytes->bytes(), 2048u);
  EXPECT_EQ(by_bytes->entries(), 2048 / (kEntryOverhead + 3));
  auto unbounded = make("memory://?max_entries=0");
  for (int i = 0; i < 1000; ++i) set(*unbounded, "k" + std::to_string(i), "v");
  EXPECT_EQ(unbounded->entries(), 1000u);

  std::string what;
  EXPECT_EQ(status_of([&] { make("memory://?max_entries=10&bogus_opt=1"); }, &what), CM_EINVAL);
  EXPECT_NE(what.find("bogus_opt"), std::string::npos) << what;
  EXPECT_EQ(status_of([&] { make("memory://somewhere?max_entries=10"); }, &what), CM_EINVAL);
  EXPECT_NE(what.find("somewhere"), std::string::npos) << what;
  EXPECT_EQ(status_of([&] { make("memory://?max_entries=-1"); }, &what), CM_EINVAL);
  EXPECT_NE(what.find("max_entries"), std::string::npos) << what;
  EXPECT_EQ(status_of([&] { make("memory://?max_entries=1000000001"); }), CM_EINVAL);
  EXPECT_EQ(status_of([&] { make("memory://?max_entries=ten"); }), CM_EINVAL);
  EXPECT_EQ(status_of([&] { make("memory://?max_bytes=12XB"); }, &what), CM_EINVAL);
  EXPECT_NE(what.find("max_bytes"), std::string::npos) << what;
  EXPECT_EQ(status_of([&] { make("memory://?max_entries=1000000000&max_bytes=1GiB"); }), CM_OK);
}

// ---- hit ratio: S3-FIFO against a plain LRU on deterministic traces

namespace {

// Zipf(alpha) over ranks [0, n) by inverse CDF; fixed seed, so the traces
// (and the ratios) are the same on every run.

struct Ratios {
  double lru, ours;
};

// Cache-aside replay: a miss is followed by a set.
Ratios replay(const std::vector<uint64_t>& trace, size_t cap, unsigned shards) {
  Lru lru(cap);
  MemoryBackend b(cap, 0, nullptr, shards);
  uint64_t lru_hits = 0, hits = 0;
  for (uint64_t k : trace) {
    lru_hits += lru.access(k);
    std::string key = "key:" + std::to_string(k);
    if (get(b, key, kT0)) ++hits;
    else set(b, key, "value");
  }
  double n = static_cast<double>(trace.size());
  return {static_cast<double>(lru_hits) / n, static_cast<double>(hits) / n};
}

}  // namespace

TEST(MemoryBackendHitRatio, ZipfAtLeastLru) {
  Zipf z(10000, 1.0, 42);
  std::vector<uint64_t> trace(200000);
  for (uint64_t& k : trace) k = z.next();
  for (unsigned shards : {1u, 0u}) {
    Ratios r = replay(trace, 500, shards);
    EXPECT_GE(r.ours, r.lru) << "shards " << shards << ": S3-FIFO " << r.ours << " vs LRU " << r.lru;
    std::printf("zipf 1.0, 500 of 10000 keys, shards %u: LRU %.4f S3-FIFO %.4f\n", shards, r.lru, r.ours);
  }
}

TEST(MemoryBackendHitRatio, ScanPollutedBeatsLru) {
  // Zipf(0.9) requests, with a sequential scan of never-repeated keys
  // (2x the cache) after every 5000 of them.
  Zipf z(10000, 0.9, 7);
  std::vector<uint64_t> trace;
  uint64_t scan_key = 1000000;
  for (int block = 0; block < 40; ++block) {
    for (int i = 0; i < 5000; ++i) trace.push_back(z.next());
    for (int i = 0; i < 1000; ++i) trace.push_back(scan_key++);
  }
  for (unsigned shards : {1u, 0u}) {
    Ratios r = replay(trace, 500, shards);
    EXPECT_GE(r.ours, r.lru + 0.03) << "shards " << shards << ": S3-FIFO " << r.ours << " vs LRU " << r.lru;
    std::printf("scan-polluted, 500 of 10000 keys, shards %u: LRU %.4f S3-FIFO %.4f\n", shards, r.lru, r.ours);
  }
}
