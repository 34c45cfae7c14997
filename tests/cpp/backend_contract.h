/* SPDX-License-Identifier: Apache-2.0 */
// The backend contract (src/cache/backend.h) as one typed GoogleTest suite:
// every backend joins with one INSTANTIATE_TYPED_TEST_SUITE_P line over a
// factory (test_backend_contract.cpp), and backend-specific behaviour
// (eviction order, files, connections, options) stays in its own test file.
//
// A factory F provides:
//   static constexpr ContractTraits kTraits;    what the backend promises
//   std::string start();                        "" when ready, else why to skip
//   std::unique_ptr<cm::Backend> make(Bounds, cm::BackendEvents*);
// Time is the now_ms each call passes (backends never read a clock); the
// windows are long (minutes past kT0) so a backend that also expires in
// real time (redis) agrees with the front's clock for the whole test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend_test_util.h"
#include "cache/backend.h"
#include "core/error.h"

namespace cmbt {

struct Bounds {
  uint64_t max_entries = 0;  // 0: unbounded
  uint64_t max_bytes = 0;    // 0: unbounded
};

struct ContractTraits {
  std::string_view kind;              // Backend::kind()
  std::optional<uint64_t> overhead;   // bytes() = keys + values + overhead per entry; nullopt: bytes() is 0
  bool bounded = false;               // make() honours Bounds; an entry above max_bytes is CM_ELIMIT
  bool exact_bounds = false;          // a full bounded backend holds exactly its cap (no split into shards)
  bool reports_evictions = false;     // on_evict counts exactly what left (one tier, not a copy in another)
  // del() of an entry past keep_until on the caller's clock is false. Not
  // redis: UNLINK answers for what the server holds, and the server drops
  // the key at keep_until in real time (PXAT), which a manual clock outruns.
  bool del_sees_expiry = true;
};

template <class F>
class BackendContract : public ::testing::Test {
 protected:
  static constexpr const ContractTraits& kTraits = F::kTraits;
  static constexpr int64_t kFresh = 100000;  // fresh_until - kT0
  static constexpr int64_t kKeep = 200000;   // keep_until - kT0

  void SetUp() override {
    std::string why = factory_.start();
    if (!why.empty()) {
      GTEST_SKIP() << why;
    }
  }
  std::unique_ptr<cm::Backend> open(Bounds b = {}) { return factory_.make(b, &events_); }
  static uint64_t charge(std::string_view k, std::string_view v) {
    return kTraits.overhead ? k.size() + v.size() + *kTraits.overhead : 0;
  }
  void expect_no_evictions() {
    if (!kTraits.reports_evictions) return;
    EXPECT_EQ(events_.size.calls, 0u);
    EXPECT_EQ(events_.expired.calls, 0u);
  }

  F factory_;
  Events events_;
};

TYPED_TEST_SUITE_P(BackendContract);

TYPED_TEST_P(BackendContract, GetSetDeleteClear) {
  auto b = this->open();
  EXPECT_EQ(b->kind(), this->kTraits.kind);
  EXPECT_EQ(b->health(), CM_OK);
  EXPECT_FALSE(get(*b, "a"));
  EXPECT_FALSE(b->del("a", kT0));
  set(*b, "a", "1");
  set(*b, "b", "22");
  EXPECT_EQ(get(*b, "a"), "1");
  EXPECT_EQ(get(*b, "b"), "22");
  EXPECT_EQ(b->entries(), 2u);
  EXPECT_EQ(b->bytes(), this->charge("a", "1") + this->charge("b", "22"));
  EXPECT_TRUE(b->del("a", kT0));
  EXPECT_FALSE(b->del("a", kT0));
  EXPECT_FALSE(get(*b, "a"));
  EXPECT_EQ(get(*b, "b"), "22");
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_EQ(b->bytes(), this->charge("b", "22"));
  b->clear();
  EXPECT_EQ(b->entries(), 0u);
  EXPECT_EQ(b->bytes(), 0u);
  EXPECT_FALSE(get(*b, "b"));
  set(*b, "b", "again");  // usable after clear
  EXPECT_EQ(get(*b, "b"), "again");
  EXPECT_EQ(b->health(), CM_OK);
  this->expect_no_evictions();  // neither del nor clear is an eviction
}

TYPED_TEST_P(BackendContract, EmptyValuesAndNulBytes) {
  auto b = this->open();
  set(*b, "empty", "");
  cm::Fetched f;
  ASSERT_TRUE(b->get("empty", kT0, &f));
  EXPECT_NE(f.data, nullptr);  // an empty value is still a buffer
  EXPECT_EQ(f.len, 0u);
  EXPECT_EQ(f.fresh_until_ms, cm::kNever);
  std::free(f.data);
  EXPECT_EQ(get(*b, "empty"), "");

  using namespace std::string_literals;
  const std::string k1 = "k\0one"s, k2 = "k\0two"s, v = "v\0\0x\0"s;
  set(*b, k1, v);
  set(*b, k2, "other");
  EXPECT_EQ(get(*b, k1), v);
  EXPECT_EQ(get(*b, k2), "other");
  EXPECT_FALSE(get(*b, "k"));  // the prefix up to the NUL is another key
  EXPECT_FALSE(get(*b, "k\0on"s));
  EXPECT_EQ(b->entries(), 3u);
  EXPECT_EQ(b->bytes(), this->charge("empty", "") + this->charge(k1, v) + this->charge(k2, "other"));
  EXPECT_TRUE(b->del(k1, kT0));
  EXPECT_FALSE(get(*b, k1));
  EXPECT_EQ(get(*b, k2), "other");
}

TYPED_TEST_P(BackendContract, ReplaceKeepsOneEntry) {
  auto b = this->open();
  const std::string big(300, 'x');
  set(*b, "k", "short");
  set(*b, "k", big);
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_EQ(b->bytes(), this->charge("k", big));
  EXPECT_EQ(get(*b, "k"), big);
  set(*b, "k", "");
  EXPECT_EQ(get(*b, "k"), "");
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_EQ(b->bytes(), this->charge("k", ""));
  this->expect_no_evictions();  // a replacement is not an eviction
}

TYPED_TEST_P(BackendContract, TtlFreshThenStaleThenGoneAtKeepUntil) {
  constexpr int64_t fresh = TestFixture::kFresh, keep = TestFixture::kKeep;
  auto b = this->open();
  set(*b, "k", "v", kT0, cm::Expiry{kT0 + fresh, kT0 + keep});
  set(*b, "forever", "f", kT0);
  int64_t until = 0;
  EXPECT_EQ(get(*b, "k", kT0 + fresh / 2, &until), "v");
  EXPECT_EQ(until, kT0 + fresh);  // on the caller's clock
  until = 0;
  EXPECT_EQ(get(*b, "k", kT0 + (fresh + keep) / 2, &until), "v");  // the stale window: still served
  EXPECT_EQ(until, kT0 + fresh);
  EXPECT_EQ(get(*b, "k", kT0 + keep - 1), "v");
  this->expect_no_evictions();
  EXPECT_FALSE(get(*b, "k", kT0 + keep));  // keep_until reached
  EXPECT_FALSE(get(*b, "k", kT0 + 2 * keep));
  if (this->kTraits.del_sees_expiry) {
    EXPECT_FALSE(b->del("k", kT0 + 2 * keep));
  }
  if (this->kTraits.reports_evictions) {
    EXPECT_EQ(this->events_.expired.calls, 1u);  // reported once only
    EXPECT_EQ(this->events_.expired.entries, 1u);
    EXPECT_EQ(this->events_.expired.bytes, this->charge("k", "v"));
    EXPECT_EQ(this->events_.size.calls, 0u);
    EXPECT_EQ(b->entries(), 1u);
    EXPECT_EQ(b->bytes(), this->charge("forever", "f"));
  }
  until = 0;
  EXPECT_EQ(get(*b, "forever", kT0 + 1000000000, &until), "f");  // kNever round-trips
  EXPECT_EQ(until, cm::kNever);
}

TYPED_TEST_P(BackendContract, DelOfAnExpiredEntryIsFalse) {
  constexpr int64_t ttl = TestFixture::kFresh;
  auto b = this->open();
  set(*b, "live", "1", kT0, cm::Expiry{kT0 + ttl, kT0 + ttl});
  set(*b, "dead", "2", kT0, cm::Expiry{kT0 + ttl, kT0 + ttl});
  EXPECT_TRUE(b->del("live", kT0 + ttl - 1));
  if (this->kTraits.del_sees_expiry) {
    EXPECT_FALSE(b->del("dead", kT0 + ttl));
  } else {
    b->del("dead", kT0 + ttl);
  }
  EXPECT_FALSE(get(*b, "dead", kT0));  // gone, not only hidden
  if (this->kTraits.reports_evictions) {
    EXPECT_EQ(this->events_.expired.entries, 1u);
    EXPECT_EQ(this->events_.expired.bytes, this->charge("dead", "2"));
    EXPECT_EQ(this->events_.size.calls, 0u);
    EXPECT_EQ(b->entries(), 0u);
  }
}

TYPED_TEST_P(BackendContract, SetRenewsExpiry) {
  constexpr int64_t ttl = TestFixture::kFresh;
  auto b = this->open();
  set(*b, "k", "old", kT0, cm::Expiry{kT0 + ttl, kT0 + ttl});
  set(*b, "k", "new", kT0 + 5);  // no expiry now
  EXPECT_EQ(get(*b, "k", kT0 + 1000000000), "new");
  // Replacing an entry already past keep_until: the new value, and no eviction.
  set(*b, "r", "v", kT0, cm::Expiry{kT0 + ttl, kT0 + ttl});
  set(*b, "r", "w", kT0 + 2 * ttl);
  EXPECT_EQ(get(*b, "r", kT0 + 2 * ttl), "w");
  EXPECT_EQ(b->entries(), 2u);
  this->expect_no_evictions();
}

TYPED_TEST_P(BackendContract, BoundByEntriesWithExactAccounting) {
  if (!this->kTraits.bounded) {
    GTEST_SKIP() << this->kTraits.kind << " has no size bound";
  }
  constexpr uint64_t cap = 100;
  auto b = this->open(Bounds{cap, 0});
  uint64_t inserted = 0;
  for (int i = 0; i < 250; ++i) {
    std::string k = "key" + std::to_string(i), v(static_cast<size_t>(i % 37), 'v');
    set(*b, k, v);
    inserted += this->charge(k, v);
    ASSERT_LE(b->entries(), cap);
  }
  if (this->kTraits.exact_bounds) {
    EXPECT_EQ(b->entries(), cap);
  }
  EXPECT_GE(b->entries(), cap * 9 / 10);  // shards split the cap, wasting little
  uint64_t present = 0;
  for (int i = 0; i < 250; ++i) present += get(*b, "key" + std::to_string(i)).has_value();
  EXPECT_EQ(present, b->entries());
  if (this->kTraits.reports_evictions) {  // what left is what was reported
    EXPECT_EQ(this->events_.size.entries + b->entries(), 250u);
    EXPECT_EQ(this->events_.size.bytes + b->bytes(), inserted);
    EXPECT_EQ(this->events_.expired.calls, 0u);
  }
  // A replacement at the cap evicts nothing.
  const uint64_t evicted = this->events_.size.entries;
  set(*b, "key249", "replaced");
  EXPECT_EQ(get(*b, "key249"), "replaced");
  EXPECT_EQ(this->events_.size.entries, evicted);
}

TYPED_TEST_P(BackendContract, BoundByBytesWithExactAccounting) {
  if (!this->kTraits.bounded) {
    GTEST_SKIP() << this->kTraits.kind << " has no size bound";
  }
  const uint64_t cap = 20 * (*this->kTraits.overhead + 100);
  auto b = this->open(Bounds{0, cap});
  uint64_t inserted = 0;
  for (int i = 0; i < 300; ++i) {
    std::string k = "k" + std::to_string(i), v(static_cast<size_t>((i * 53) % 400), 'x');
    set(*b, k, v);
    inserted += this->charge(k, v);
    ASSERT_LE(b->bytes(), cap);
  }
  EXPECT_GT(b->bytes(), cap - (*this->kTraits.overhead + 404));  // full, give or take the largest entry's room
  uint64_t left = 0;
  for (int i = 0; i < 300; ++i) left += get(*b, "k" + std::to_string(i)).has_value();
  EXPECT_EQ(left, b->entries());
  if (this->kTraits.reports_evictions) {
    EXPECT_EQ(left + this->events_.size.entries, 300u);
    EXPECT_EQ(this->events_.size.bytes + b->bytes(), inserted);
  }
}

TYPED_TEST_P(BackendContract, EntryLargerThanTheCapacityIsLimit) {
  if (!this->kTraits.bounded) {
    GTEST_SKIP() << this->kTraits.kind << " has no size bound";
  }
  constexpr uint64_t cap = 1000;
  auto b = this->open(Bounds{0, cap});
  set(*b, "small", "v");
  std::string what;
  std::string big(cap - *this->kTraits.overhead, 'x');  // + the key's byte: one too many
  EXPECT_EQ(status_of([&] { set(*b, "k", big); }, &what), CM_ELIMIT);
  EXPECT_FALSE(what.empty());
  EXPECT_FALSE(get(*b, "k"));
  EXPECT_EQ(get(*b, "small"), "v");  // nothing evicted for it
  EXPECT_EQ(b->entries(), 1u);
  this->expect_no_evictions();
  if (!this->kTraits.exact_bounds) return;
  big.pop_back();  // exactly the cap fits, evicting the rest
  EXPECT_EQ(status_of([&] { set(*b, "k", big); }), CM_OK);
  EXPECT_EQ(b->bytes(), cap);
  EXPECT_EQ(b->entries(), 1u);
  EXPECT_EQ(get(*b, "k"), big);
}

TYPED_TEST_P(BackendContract, ConcurrentWritersReadersAndDeleters) {
  auto b = this->open();
  constexpr int kThreads = 8, kKeys = 200;
  std::vector<std::thread> ts;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kKeys; ++i) {
        std::string k = std::to_string(t) + ":" + std::to_string(i), v = k + std::string(static_cast<size_t>(i % 7), '\0');
        b->set(k, v, cm::Expiry{}, kT0);
        cm::Fetched f;
        if (!b->get(k, kT0, &f) || std::string_view(static_cast<const char*>(f.data), f.len) != v) ++bad[t];
        std::free(f.data);
        if (i % 2 == 1) {  // every other key is deleted again
          if (!b->del(k, kT0)) ++bad[t];
          cm::Fetched g;
          if (b->get(k, kT0, &g)) ++bad[t];
          std::free(g.data);
        }
      }
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
  EXPECT_EQ(b->entries(), static_cast<uint64_t>(kThreads * kKeys / 2));
  uint64_t bytes = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kKeys; i += 2) {
      std::string k = std::to_string(t) + ":" + std::to_string(i), v = k + std::string(static_cast<size_t>(i % 7), '\0');
      EXPECT_EQ(get(*b, k), v);
      bytes += this->charge(k, v);
    }
  EXPECT_EQ(b->bytes(), bytes);
  this->expect_no_evictions();
}

// get_into (cm_cache_get_into): the value lands in the caller's buffer when
// it fits; a buffer too small gets nothing written and learns the length; a
// miss, a value past keep_until and an empty value behave as get() does.
TYPED_TEST_P(BackendContract, GetIntoCopiesWhatFitsAndReportsTheLength) {
  constexpr int64_t fresh = TestFixture::kFresh, keep = TestFixture::kKeep;
  auto b = this->open();
  const std::string v = "value with a \0 NUL";
  set(*b, "k", v, kT0, cm::Expiry{kT0 + fresh, kT0 + keep});
  set(*b, "empty", "", kT0);
  std::string buf(64, '#');
  cm::Fetched f;
  ASSERT_TRUE(b->get_into("k", kT0, buf.data(), buf.size(), &f));
  EXPECT_EQ(f.data, nullptr);
  EXPECT_EQ(f.len, v.size());
  EXPECT_EQ(f.fresh_until_ms, kT0 + fresh);
  EXPECT_EQ(buf.substr(0, v.size()), v);
  EXPECT_EQ(buf[v.size()], '#');  // nothing past the value
  std::string small(v.size() - 1, '#');
  cm::Fetched g;
  ASSERT_TRUE(b->get_into("k", kT0, small.data(), small.size(), &g));
  EXPECT_EQ(g.data, nullptr);
  EXPECT_EQ(g.len, v.size());
  EXPECT_EQ(small, std::string(v.size() - 1, '#'));  // untouched
  cm::Fetched exact;
  std::string fit(v.size(), '#');
  ASSERT_TRUE(b->get_into("k", kT0, fit.data(), fit.size(), &exact));
  EXPECT_EQ(fit, v);
  cm::Fetched e;
  ASSERT_TRUE(b->get_into("empty", kT0, nullptr, 0, &e));
  EXPECT_EQ(e.len, 0u);
  EXPECT_EQ(e.data, nullptr);
  cm::Fetched m;
  EXPECT_FALSE(b->get_into("missing", kT0, buf.data(), buf.size(), &m));
  EXPECT_FALSE(b->get_into("k", kT0 + keep, buf.data(), buf.size(), &m));  // keep_until reached
  EXPECT_FALSE(get(*b, "k", kT0 + keep));
  if (this->kTraits.reports_evictions) {
    EXPECT_EQ(this->events_.expired.entries, 1u);
    EXPECT_EQ(this->events_.expired.bytes, this->charge("k", v));
  }
}

REGISTER_TYPED_TEST_SUITE_P(BackendContract, GetSetDeleteClear, EmptyValuesAndNulBytes, ReplaceKeepsOneEntry,
                            TtlFreshThenStaleThenGoneAtKeepUntil, DelOfAnExpiredEntryIsFalse, SetRenewsExpiry,
                            GetIntoCopiesWhatFitsAndReportsTheLength,
                            BoundByEntriesWithExactAccounting, BoundByBytesWithExactAccounting,
                            EntryLargerThanTheCapacityIsLimit, ConcurrentWritersReadersAndDeleters);

}  // namespace cmbt
