// SPDX-License-Identifier: Apache-2.0
// Cache hot paths through the public C API (get hit, get miss, set) on a
// cache holding 1M entries, the price of its metrics (on, off, sampled 1 in 8)
// and a classic mutex + std::list + std::unordered_map LRU as the baseline.
// Every row is named <bench>/<side> so a pair differs only by the side.
// The 1M-key walks are memory-latency bound; the *_hot1k rows walk 1024 keys
// of the same cache to show the cost of the code path itself (gets and
// overwrites).
#include "bench_util.h"

#include <cachemeter/cachemeter.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kEntries = 1'000'000;  // entries in every pre-filled cache
constexpr size_t kKeyLen = 16;
constexpr size_t kValueLen = 100;
constexpr int kMaxThreads = 2;
// The hot rows walk only this many of the 1M keys: ~200 KB of entries and
// 1024 index lines fit a core's L2, so they show the cost of the code path
// without cache misses (on the 2-core VMs we measure on, anything beyond L2
// already costs 100-250 ns per dependent load).
constexpr size_t kHotKeys = 1024;
// Twice the entries, so the fill and the sets never evict.
constexpr const char *kCapacity = "memory://?max_entries=2000000";

using Key = std::array<char, kKeyLen>;

// "key:" or "nok:" and the index on 12 digits: 16 bytes, no NUL.
Key make_key(const char *prefix, size_t i) {
  char buf[kKeyLen + 1];
  std::snprintf(buf, sizeof buf, "%s%012zu", prefix, i);
  Key k;
  std::memcpy(k.data(), buf, kKeyLen);
  return k;
}

// Keys formatted once. Each benchmark thread walks its own shuffled copy in
// order, so the walk is pseudo-random over the cache but reading the next key
// is a sequential, prefetched load that neither side pays a cache miss for.
struct Keys {
  std::vector<Key> present;                      // the inserted keys, in order
  std::vector<Key> hit_walk[kMaxThreads];        // present, shuffled per thread
  std::vector<Key> miss_walk[kMaxThreads];       // never inserted, shuffled
  std::vector<Key> hot_walk[kMaxThreads];        // present[0, kHotKeys), shuffled
  std::string value = std::string(kValueLen, 'v');

  Keys() {
    present.reserve(kEntries);
    for (size_t i = 0; i < kEntries; ++i) present.push_back(make_key("key:", i));
    std::vector<Key> absent;
    absent.reserve(kEntries);
    for (size_t i = 0; i < kEntries; ++i) absent.push_back(make_key("nok:", i));
    for (int t = 0; t < kMaxThreads; ++t) {
      std::mt19937_64 rng(0x5eed + static_cast<uint64_t>(t));
      hit_walk[t] = present;
      std::shuffle(hit_walk[t].begin(), hit_walk[t].end(), rng);
      miss_walk[t] = absent;
      std::shuffle(miss_walk[t].begin(), miss_walk[t].end(), rng);
      hot_walk[t].assign(present.begin(), present.begin() + kHotKeys);
      std::shuffle(hot_walk[t].begin(), hot_walk[t].end(), rng);
    }
  }
};

const Keys &keys() {
  static const Keys k;
  return k;
}

// ---- cachemeter: one registry and one filled cache per URI variant

struct RegistryFree {
  void operator()(cm_registry *r) const { cm_registry_free(r); }
};
struct CacheClose {
  void operator()(cm_cache *c) const { cm_cache_close(c); }
};

struct OurCache {
  // Declared first so it is destroyed last: the registry outlives the cache.
  std::unique_ptr<cm_registry, RegistryFree> reg;
  std::unique_ptr<cm_cache, CacheClose> cache;

  explicit OurCache(const std::string &uri) {
    cm_registry *r = nullptr;
    cmbench::check(cm_registry_new(&r, nullptr), "cm_registry_new");
    reg.reset(r);
    cm_cache *c = nullptr;
    cmbench::check(cm_cache_open(&c, r, "bench", uri.c_str()), "cm_cache_open");
    cache.reset(c);
    const Keys &k = keys();
    for (const Key &key : k.present)
      cmbench::check(cm_cache_set(c, key.data(), kKeyLen, k.value.data(), kValueLen, 0),
                     "cm_cache_set (fill)");
  }
};

cm_cache *cache_metrics_on() {
  static const OurCache c(kCapacity);
  return c.cache.get();
}
cm_cache *cache_metrics_off() {
  static const OurCache c(std::string(kCapacity) + "&metrics=off");
  return c.cache.get();
}
cm_cache *cache_sample8() {
  static const OurCache c(std::string(kCapacity) + "&sample=8");
  return c.cache.get();
}

// ---- the baseline: the textbook LRU, one mutex over a list and a map

class BaselineLru {
 public:
  explicit BaselineLru(size_t capacity) : capacity_(capacity) { map_.reserve(capacity); }

  // A hit moves the entry to the front and copies the value out into a
  // malloc'd buffer, as cm_cache_get does; the caller frees it.
  bool get(std::string_view key, void **val, size_t *vlen) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    order_.splice(order_.begin(), order_, it->second);
    const std::string &v = it->second->value;
    void *buf = std::malloc(v.size() + 1);
    if (buf == nullptr) return false;
    std::memcpy(buf, v.data(), v.size());
    static_cast<char *>(buf)[v.size()] = '\0';
    *val = buf;
    *vlen = v.size();
    return true;
  }

  void set(std::string_view key, std::string_view value) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second->value.assign(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    if (map_.size() == capacity_) {
      map_.erase(order_.back().key);
      order_.pop_back();
    }
    order_.push_front(Node{std::string(key), std::string(value)});
    map_.emplace(std::string(key), order_.begin());
  }

 private:
  struct Node {
    std::string key;
    std::string value;
  };
  // Transparent hashing lets a lookup take the caller's bytes without
  // building a std::string (and allocating: 16 bytes exceed the SSO buffer).
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  size_t capacity_;
  std::mutex mu_;
  std::list<Node> order_;
  std::unordered_map<std::string, std::list<Node>::iterator, Hash, std::equal_to<>> map_;
};

BaselineLru &baseline() {
  static BaselineLru *lru = [] {
    // Leaked on purpose: tearing down 1M list and map nodes at exit would
    // only slow the run down.
    auto *l = new BaselineLru(2 * kEntries);
    const Keys &k = keys();
    for (const Key &key : k.present) l->set({key.data(), kKeyLen}, k.value);
    return l;
  }();
  return *lru;
}

// ---- benchmark bodies. Fixtures are built before the timed loop; the walk
// position starts where the thread index says and wraps around.

const std::vector<Key> &hit_walk(const benchmark::State &st) {
  return keys().hit_walk[st.thread_index() % kMaxThreads];
}
const std::vector<Key> &miss_walk(const benchmark::State &st) {
  return keys().miss_walk[st.thread_index() % kMaxThreads];
}
const std::vector<Key> &hot_walk(const benchmark::State &st) {
  return keys().hot_walk[st.thread_index() % kMaxThreads];
}

void get_hit(benchmark::State &st, cm_cache *c, const std::vector<Key> &walk) {
  size_t i = 0;
  for (auto _ : st) {
    void *val;
    size_t vlen;
    if (cm_cache_get(c, walk[i].data(), kKeyLen, &val, &vlen) != CM_OK) [[unlikely]] {
      st.SkipWithError("get of a present key did not hit");
      break;
    }
    benchmark::DoNotOptimize(val);
    cm_free(val);
    if (++i == walk.size()) i = 0;
  }
}

// The same hits through cm_cache_get_into: the value lands in the caller's
// buffer, nothing to free.
void get_hit_into(benchmark::State &st, cm_cache *c, const std::vector<Key> &walk) {
  size_t i = 0;
  char buf[kValueLen];
  for (auto _ : st) {
    size_t vlen;
    if (cm_cache_get_into(c, walk[i].data(), kKeyLen, buf, sizeof buf, &vlen) != CM_OK) [[unlikely]] {
      st.SkipWithError("get_into of a present key did not hit");
      break;
    }
    benchmark::DoNotOptimize(buf);
    if (++i == walk.size()) i = 0;
  }
}

void get_hit_cm(benchmark::State &st) { get_hit(st, cache_metrics_on(), hit_walk(st)); }
void get_hit_metrics_off_cm(benchmark::State &st) {
  get_hit(st, cache_metrics_off(), hit_walk(st));
}
void get_hit_sample8_cm(benchmark::State &st) { get_hit(st, cache_sample8(), hit_walk(st)); }
void get_hot_cm(benchmark::State &st) { get_hit(st, cache_metrics_on(), hot_walk(st)); }
void get_hot_metrics_off_cm(benchmark::State &st) {
  get_hit(st, cache_metrics_off(), hot_walk(st));
}
void get_hot_sample8_cm(benchmark::State &st) { get_hit(st, cache_sample8(), hot_walk(st)); }
void get_hit_into_cm(benchmark::State &st) { get_hit_into(st, cache_metrics_on(), hit_walk(st)); }
void get_hot_into_cm(benchmark::State &st) { get_hit_into(st, cache_metrics_on(), hot_walk(st)); }

void get_hit_lru_walk(benchmark::State &st, const std::vector<Key> &walk) {
  BaselineLru &lru = baseline();
  size_t i = 0;
  for (auto _ : st) {
    void *val;
    size_t vlen;
    if (!lru.get({walk[i].data(), kKeyLen}, &val, &vlen)) [[unlikely]] {
      st.SkipWithError("get of a present key did not hit");
      break;
    }
    benchmark::DoNotOptimize(val);
    std::free(val);
    if (++i == walk.size()) i = 0;
  }
}
void get_hit_lru(benchmark::State &st) { get_hit_lru_walk(st, hit_walk(st)); }
void get_hot_lru(benchmark::State &st) { get_hit_lru_walk(st, hot_walk(st)); }

void get_miss_cm(benchmark::State &st) {
  cm_cache *c = cache_metrics_on();
  const std::vector<Key> &walk = miss_walk(st);
  size_t i = 0;
  for (auto _ : st) {
    void *val;
    size_t vlen;
    if (cm_cache_get(c, walk[i].data(), kKeyLen, &val, &vlen) != CM_MISS) [[unlikely]] {
      st.SkipWithError("get of an absent key did not miss");
      break;
    }
    if (++i == walk.size()) i = 0;
  }
}

void get_miss_lru(benchmark::State &st) {
  BaselineLru &lru = baseline();
  const std::vector<Key> &walk = miss_walk(st);
  size_t i = 0;
  for (auto _ : st) {
    void *val;
    size_t vlen;
    if (lru.get({walk[i].data(), kKeyLen}, &val, &vlen)) [[unlikely]] {
      st.SkipWithError("get of an absent key hit");
      break;
    }
    if (++i == walk.size()) i = 0;
  }
}

// Overwrites present keys with a value of the same size: the entry count
// stays at 1M and nothing is evicted.
void set_cm_walk(benchmark::State &st, const std::vector<Key> &walk) {
  cm_cache *c = cache_metrics_on();
  const std::string &value = keys().value;
  size_t i = 0;
  for (auto _ : st) {
    if (cm_cache_set(c, walk[i].data(), kKeyLen, value.data(), kValueLen, 0) != CM_OK)
        [[unlikely]] {
      st.SkipWithError("cm_cache_set failed");
      break;
    }
    if (++i == walk.size()) i = 0;
  }
}

void set_lru_walk(benchmark::State &st, const std::vector<Key> &walk) {
  BaselineLru &lru = baseline();
  const std::string &value = keys().value;
  size_t i = 0;
  for (auto _ : st) {
    lru.set({walk[i].data(), kKeyLen}, value);
    if (++i == walk.size()) i = 0;
  }
}

void set_cm(benchmark::State &st) { set_cm_walk(st, hit_walk(st)); }
void set_hot_cm(benchmark::State &st) { set_cm_walk(st, hot_walk(st)); }
void set_lru(benchmark::State &st) { set_lru_walk(st, hit_walk(st)); }
void set_hot_lru(benchmark::State &st) { set_lru_walk(st, hot_walk(st)); }

// bench_util.h's register_pair pairs us with prometheus-cpp; here the other
// side is the baseline LRU, with the same thread counts and wall-time timing.
void register_vs_lru(const std::string &name, cmbench::BenchFn ours, cmbench::BenchFn lru) {
  cmbench::register_side(name, "cachemeter", ours, {1, 2});
  cmbench::register_side(name, "baseline_lru", lru, {1, 2});
}

void register_all() {
  register_vs_lru("get_hit/16B_key_100B_value_1M_entries", get_hit_cm, get_hit_lru);
  register_vs_lru("get_hit_hot1k/16B_key_100B_value_1M_entries", get_hot_cm, get_hot_lru);
  register_vs_lru("get_miss/16B_key_1M_entries", get_miss_cm, get_miss_lru);
  register_vs_lru("set_overwrite/16B_key_100B_value_1M_entries", set_cm, set_lru);
  register_vs_lru("set_overwrite_hot1k/16B_key_100B_value_1M_entries", set_hot_cm, set_hot_lru);
  // The same get-hit loop on three caches that differ only by their metrics
  // options, registered next to each other so they run back to back.
  const std::string m = "get_hit_metrics/16B_key_100B_value_1M_entries";
  cmbench::register_side(m, "metrics_on", get_hit_cm, {1, 2});
  cmbench::register_side(m, "metrics_off", get_hit_metrics_off_cm, {1, 2});
  cmbench::register_side(m, "sample_8", get_hit_sample8_cm, {1, 2});
  const std::string h = "get_hit_hot1k_metrics/16B_key_100B_value_1M_entries";
  cmbench::register_side(h, "metrics_on", get_hot_cm, {1, 2});
  cmbench::register_side(h, "metrics_off", get_hot_metrics_off_cm, {1, 2});
  cmbench::register_side(h, "sample_8", get_hot_sample8_cm, {1, 2});
  // cm_cache_get (a malloc'd copy the caller frees) against
  // cm_cache_get_into (a copy into the caller's buffer), same cache.
  const std::string i = "get_hit_into/16B_key_100B_value_1M_entries";
  cmbench::register_side(i, "cm_cache_get", get_hit_cm, {1, 2});
  cmbench::register_side(i, "cm_cache_get_into", get_hit_into_cm, {1, 2});
  const std::string ih = "get_hit_hot1k_into/16B_key_100B_value_1M_entries";
  cmbench::register_side(ih, "cm_cache_get", get_hot_cm, {1, 2});
  cmbench::register_side(ih, "cm_cache_get_into", get_hot_into_cm, {1, 2});
}

}  // namespace

int main(int argc, char **argv) { return cmbench::run_main(argc, argv, register_all); }
