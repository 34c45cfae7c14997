/* SPDX-License-Identifier: Apache-2.0 */
// The cache front: one cm_cache per handle. It owns a backend, records the
// metrics of every operation (docs/metrics.md), applies TTL and stale
// policy, refuses oversized entries, and runs single-flight loads.
#pragma once

#include <cachemeter/cache.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "cache/backend.h"
#include "cache/cache_metrics.h"
#include "util/clock.h"
#include "util/fork.h"

namespace cm {


// Per-cache settings from the URI query (the front's options).
struct FrontOptions {
  int64_t default_ttl_ms = 0;  // 0: never expires
  int64_t max_entry_bytes = int64_t{1} << 20;
  uint32_t sample = 16;  // time 1 in N operations; the URI default is its backend spec's default_sample
  bool metrics = true;
  int64_t load_timeout_ms = 30000;
  int64_t stale_ms = 0;
  int breaker_failures = 0;  // 0: no circuit breaker (redis: 5)
  int64_t breaker_cooldown_ms = 1000;
};

struct Flight;  // load.cpp

}  // namespace cm

struct cm_cache final : private cm::fork::Hooks {
  cm_registry* reg = nullptr;
  std::string name;
  const cm::Clock* clock = nullptr;
  cm::FrontOptions opt;
  // Before the backend: the backend reports its events into it (it is the
  // backend's BackendEvents) until it is freed. Disabled when metrics are off.
  cm::CacheMetrics metrics;
  std::unique_ptr<cm::Backend> backend;

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<cm::Flight>> flights;
  cm::fork::Enrolment fork_enrolment{this};  // last

  ~cm_cache();

 private:
  // fork(): the loads in flight belong to the parent's threads, which the
  // child does not have: the child forgets them (its next get_or_load of
  // such a key leads a load of its own instead of waiting forever).
  void fork_locks(std::vector<cm::fork::Lock>& out) override { out.push_back(cm::fork::lock_of(flights_mu)); }
  void fork_child() override { flights.clear(); }
};

namespace cm {

// Opens a cache (throws Error). clock: nullptr for the system clock; tests
// pass a ManualClock, which must outlive the cache.
std::unique_ptr<cm_cache> open_cache(cm_registry* reg, const char* name, const char* uri, const Clock* clock);
// A memory L1 (l1_uri: memory:// with max_entries, max_bytes and ttl_ms, the
// longest an entry stays in L1) in front of l2_uri (redis or sqlite, with
// the front's options). See wrappers/tiered.h.
std::unique_ptr<cm_cache> open_cache_tiered(cm_registry* reg, const char* name, const char* l1_uri, const char* l2_uri,
                                            const Clock* clock);

// The operations behind the C API (throw Error; return CM_OK / CM_MISS).
// count_miss false: cm_cache_get_hit (a miss is neither counted nor timed).
int cache_get(cm_cache& c, std::string_view key, void** val, size_t* vlen, bool count_miss = true);
// cm_cache_get_into: CM_OK (the value's *vlen bytes are in buf), CM_ELIMIT
// (a hit whose *vlen bytes exceed cap; nothing copied) or CM_MISS. Counted
// and timed as cache_get.
int cache_get_into(cm_cache& c, std::string_view key, void* buf, size_t cap, size_t* vlen);
int cache_set(cm_cache& c, std::string_view key, std::string_view val, int64_t ttl_ms);
int cache_delete(cm_cache& c, std::string_view key);
int cache_clear(cm_cache& c);
int cache_get_or_load(cm_cache& c, std::string_view key, cm_loader_fn load, void* ctx, int64_t ttl_ms, void** val,
                      size_t* vlen);
std::string cache_stats_json(cm_cache& c);

// A fresh random token for the cross-process load lock (thread-safe; never
// the same in a parent and its fork() children).
std::string lock_token();
void cache_reset_stats(cm_cache& c);

}  // namespace cm
