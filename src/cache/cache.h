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
#include "util/clock.h"
#include "util/fork.h"

namespace cm {


// Per-cache settings from the URI query (the front's options).
struct FrontOptions {
  int64_t default_ttl_ms = 0;  // 0: never expires
  int64_t max_entry_bytes = int64_t{1} << 20;
  uint32_t sample = 16;  // time 1 in 16 operations (two precise clock reads cost ~50 ns)
  bool metrics = true;
  int64_t load_timeout_ms = 30000;
  int64_t stale_ms = 0;
  int breaker_failures = 0;  // 0: no circuit breaker (redis: 5)
  int64_t breaker_cooldown_ms = 1000;
};

// Hit-ratio windows: snapshots of (hits, misses) every kWindowStepMs, kept for
// the longest window. Ratios come from the difference between now's counts
// and the snapshot closest to the window's start.
struct WindowRing {
  static constexpr int64_t kStepMs = 10000;
  static constexpr size_t kSlots = 3600000 / kStepMs + 1;
  struct Snap {
    int64_t t_ms;
    double hits, misses;
  };
  std::mutex mu;
  std::vector<Snap> snaps;  // oldest first, at most kSlots
  std::atomic<int64_t> next_ms{0};
};

// The series of one (registry, cache name, backend kind), shared by every
// handle opened with that name, plus its hit-ratio windows. The group holds
// its series (hold_series): the last handle's close removes them from the
// registry (docs/metrics.md).
struct CacheGroup final : private fork::Hooks {
  cm_registry* reg = nullptr;
  cm_series* hits = nullptr;
  cm_series* misses = nullptr;
  cm_series* stale_hits = nullptr;
  cm_series* sets = nullptr;
  cm_series* deletes = nullptr;
  // cache_errors_total{op, kind}: a series is made on the first error of
  // its (op, kind), then kept here.
  cm_family* errors = nullptr;
  std::atomic<cm_series*> error_series[kOps][kErrorKinds] = {};
  cm_series* evict_size = nullptr;
  cm_series* evict_expired = nullptr;
  cm_series* loads_ok = nullptr;
  cm_series* loads_error = nullptr;
  cm_series* load_wait_timeouts = nullptr;
  cm_series* rejected_too_large = nullptr;
  cm_series* entries = nullptr;
  cm_series* bytes = nullptr;
  cm_series* duration[kOps] = {};  // Clear is not timed

  std::mutex members_mu;
  std::vector<cm_cache*> members;
  WindowRing window;
  fork::Enrolment fork_enrolment{this};  // last: holds members_mu and window.mu across fork()

  std::vector<cm_series*> all() const {
    std::vector<cm_series*> v = {hits,     misses,      stale_hits,         sets,    deletes, evict_size,
                                 evict_expired, loads_ok, loads_error, load_wait_timeouts, rejected_too_large};
    for (auto& row : error_series)
      for (auto& s : row)
        if (cm_series* p = s.load()) v.push_back(p);
    for (auto* s : duration) v.push_back(s);
    return v;
  }
  ~CacheGroup();

 private:
  void fork_locks(std::vector<fork::Lock>& out) override {
    out.push_back(fork::lock_of(members_mu));
    out.push_back(fork::lock_of(window.mu));
  }
};

// Series a handle records only when it has the feature (a breaker, tiers, a
// cross-process lock); shared by the handles of one name like the group's.
// Set at open, never changed after: read without locks.
struct ExtraSeries {
  cm_series* breaker_state = nullptr;
  cm_series* breaker_opens = nullptr;
  cm_series* breaker_closes = nullptr;
  cm_series* tier_hits[kTiers] = {};
  cm_series* tier_misses[kTiers] = {};
  cm_series* tier_duration[kTiers] = {};
  cm_series* l1_flushes = nullptr;
  cm_series* invalidations = nullptr;
  cm_series* lock_acquisitions = nullptr;
  cm_series* lock_timeouts = nullptr;
  cm_series* lock_wait = nullptr;

  std::vector<cm_series*> all() const {
    std::vector<cm_series*> v = {breaker_state, breaker_opens, breaker_closes, l1_flushes,   invalidations,
                                 lock_acquisitions, lock_timeouts, lock_wait};
    for (int t = 0; t < kTiers; ++t) v.insert(v.end(), {tier_hits[t], tier_misses[t], tier_duration[t]});
    return v;
  }
};

struct Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int status = CM_OK;
  std::string value;
  std::string errmsg;
};

}  // namespace cm

struct cm_cache final : cm::BackendEvents, private cm::fork::Hooks {
  cm_registry* reg = nullptr;
  std::string name;
  const cm::Clock* clock = nullptr;
  cm::FrontOptions opt;
  std::unique_ptr<cm::Backend> backend;
  std::shared_ptr<cm::CacheGroup> group;  // null when metrics are off
  cm::ExtraSeries extra;                  // all null when metrics are off

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<cm::Flight>> flights;
  cm::fork::Enrolment fork_enrolment{this};  // last

  void on_evict(cm::EvictReason why, uint64_t entries, uint64_t bytes) override;
  void on_breaker(cm::BreakerState from, cm::BreakerState to) override;
  void on_absorbed_error(cm::Op op, const cm::Error& e) override;
  void on_tier_get(cm::Tier t, bool hit, int64_t ns) override;
  void on_l1_flush() override;
  void on_invalidation() override;
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
