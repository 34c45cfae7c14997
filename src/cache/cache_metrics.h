/* SPDX-License-Identifier: Apache-2.0 */
// The metrics of one cache handle (docs/metrics.md): the series it records
// into, shared with the other handles of its name, and the recording calls
// the operations make. The operations never test whether metrics are on:
// a handle opened with metrics=off (or not yet joined) keeps a disabled
// CacheMetrics whose calls each cost one predictable branch and record
// nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/backend.h"
#include "core/error.h"
#include "metrics/registry.h"
#include "util/clock.h"
#include "util/fork.h"
#include "util/text.h"

namespace cm {

// Latency buckets for cache operations, in seconds: a memory get takes well
// under a microsecond, a redis round trip a fraction of a millisecond, a
// loader anything up to seconds.
inline constexpr double kDurationBounds[] = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3,
                                             5e-3, 1e-2, 5e-2, 0.1,  0.5,  1,    5};

// Hit-ratio windows: snapshots of (hits, misses) every kStepMs, kept for the
// longest window (1 h). Ratios come from the difference between now's counts
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

class CacheMetrics;

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
  // redis_node_errors_total{cache, node, kind} (redis+cluster://): a series
  // is made on a node's first error of a kind, then kept here.
  mutable std::mutex node_errors_mu;
  std::map<std::pair<std::string, ErrorKind>, cm_series*> node_errors;

  std::mutex members_mu;
  std::vector<CacheMetrics*> members;  // the open handles' metrics (the gauges' collector reads their backends)
  WindowRing window;
  fork::Enrolment fork_enrolment{this};  // last: holds members_mu and window.mu across fork()

  // The series cm_cache_reset_stats zeroes (all but the gauges).
  std::vector<cm_series*> all() const;
  ~CacheGroup();

 private:
  void fork_locks(std::vector<fork::Lock>& out) override {
    out.push_back(fork::lock_of(members_mu));
    out.push_back(fork::lock_of(window.mu));
    out.push_back(fork::lock_of(node_errors_mu));
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
  cm_series* redirects[2] = {};  // moved, ask
  cm_series* topology_refreshes = nullptr;
  cm_series* failovers = nullptr;

  std::vector<cm_series*> all() const;
};

namespace detail {
inline void inc(cm_series* s) {
  if (s) cells::add_count(s->block, 1, 1);
}
// 1 in `sample` operations per thread is timed: a countdown per thread (no
// division, nothing shared), restarted from the sample rate of the cache
// whose operation it timed, and cut to the current cache's rate.
// constinit + initial-exec: a direct %fs-relative access, no TLS wrapper.
inline constinit thread_local uint32_t t_sample_countdown __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace detail

// Times one operation when the thread's sample countdown says so (see
// FrontOptions::sample); records into the histogram at destruction.
class OpTimer {
 public:
  OpTimer(cm_series* s, uint32_t sample, const Clock* clock) : clock_(clock) {
    using detail::t_sample_countdown;
    if (!s) return;  // metrics off
    // A countdown left by a cache with a sparser rate never delays this one.
    if (t_sample_countdown > sample) t_sample_countdown = sample;
    if (t_sample_countdown <= 1) {
      t_sample_countdown = sample;
      s_ = s;
      t0_ = clock->now_ns();
    } else {
      --t_sample_countdown;
    }
  }
  ~OpTimer() {
    if (!s_) return;
    const double secs = static_cast<double>(clock_->now_ns() - t0_) * 1e-9;
    cm_histogram_observe(s_, secs);
    if (also_) cm_histogram_observe(also_, secs);
  }
  // When this operation is timed, its duration also goes to s (a tiered
  // cache's L1 hit: the whole get is the L1 lookup).
  void also(cm_series* s) {
    if (s_) also_ = s;
  }
  // Records nothing after all.
  void cancel() { s_ = nullptr; }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  const Clock* clock_;
  cm_series* s_ = nullptr;
  cm_series* also_ = nullptr;
  int64_t t0_ = 0;
};

// The hit-ratio windows of g as a JSON object {"1m":r,"5m":r,"1h":r} (null
// without lookups in the window), from this process's counts (stats.cpp).
void append_hit_ratio_windows(OutBuf& out, CacheGroup* g, double own_hits, double own_misses, int64_t now);
// The JSON render's "caches" section of r: [{"cache","backend","hits",
// "misses","hit_ratio","hit_ratio_window"}...], one per open cache name and
// backend (cm_registry::json_caches). Takes the groups' locks, not r.mu.
void caches_json(cm_registry& r, OutBuf& out);

// The kind label of a failure: the backend's, else from the status.
ErrorKind kind_of(const Error& e);

// One handle's metrics. The backend reports its events here (it is the
// handle's BackendEvents). Thread-safety: join() and close() run at open and
// close, alone; every other call may run concurrently from any thread.
class CacheMetrics final : public BackendEvents {
 public:
  CacheMetrics() = default;
  ~CacheMetrics() { close(); }
  CacheMetrics(const CacheMetrics&) = delete;
  CacheMetrics& operator=(const CacheMetrics&) = delete;

  // What join() needs of the handle. backend (and l1/l2 of a tiered cache)
  // must stay valid until leave().
  struct Handle {
    cm_registry* reg = nullptr;
    std::string name;
    const Clock* clock = nullptr;
    uint32_t sample = 16;
    bool breaker = false;
    Backend* backend = nullptr;
    Backend* l1 = nullptr;
    Backend* l2 = nullptr;
  };
  // Enables recording: joins (or makes) the group of (registry, name,
  // backend kind) and registers the handle's extra series. Throws Error
  // (a full registry: CM_ELIMIT).
  void join(const Handle& h);
  // Stops the group's collector from reading this handle's backend: called
  // before the backend is freed.
  void leave() noexcept;
  // Leaves, releases the handle's series and its share of the group (the
  // last handle of the name removes the group's series). Idempotent.
  void close() noexcept;

  bool enabled() const { return g_ != nullptr; }
  // null when disabled. For stats and tests.
  CacheGroup* group() const { return g_; }
  const ExtraSeries& extra() const { return extra_; }
  const Clock* clock() const { return clock_; }
  // The backend the group's gauges count (null when disabled or left).
  Backend* backend() const { return backend_; }

  // The recording calls of the operations.
  OpTimer time(Op op) const {
    return OpTimer(g_ ? g_->duration[static_cast<int>(op)] : nullptr, sample_, clock_);
  }
  // Takes a hit-ratio snapshot when one is due (cheap otherwise).
  void tick(int64_t now_ms) {
    if (g_ && now_ms >= g_->window.next_ms.load(std::memory_order_relaxed)) [[unlikely]]
      snapshot(now_ms);
  }
  void hit() {
    if (g_) detail::inc(g_->hits);
  }
  // A tiered cache's L1 answered the hit: counted by tier too.
  void l1_hit(OpTimer& t) {
    detail::inc(extra_.tier_hits[0]);
    t.also(extra_.tier_duration[0]);
  }
  void miss() {
    if (g_) detail::inc(g_->misses);
  }
  void stale_hit() {
    if (g_) detail::inc(g_->stale_hits);
  }
  void set() {
    if (g_) detail::inc(g_->sets);
  }
  void del() {
    if (g_) detail::inc(g_->deletes);
  }
  void rejected_too_large() {
    if (g_) detail::inc(g_->rejected_too_large);
  }
  void load(bool ok) {
    if (g_) detail::inc(ok ? g_->loads_ok : g_->loads_error);
  }
  void load_wait_timeout() {
    if (g_) detail::inc(g_->load_wait_timeouts);
  }
  void lock_acquired() { detail::inc(extra_.lock_acquisitions); }
  void lock_timeout() { detail::inc(extra_.lock_timeouts); }
  void lock_wait(double secs) {
    if (extra_.lock_wait) cm_histogram_observe(extra_.lock_wait, secs);
  }
  // A failure of op: CM_ELIMIT is a rejection, anything else an error of
  // its kind (cache_errors_total{op, kind}).
  void failed(Op op, const Error& e);
  void error(Op op, ErrorKind k);

  // cm_cache_reset_stats: zeroes the group's series and restarts its windows.
  void reset(int64_t now_ms);

  // BackendEvents.
  void on_evict(EvictReason why, uint64_t entries, uint64_t bytes) override;
  void on_breaker(BreakerState from, BreakerState to) override;
  void on_absorbed_error(Op op, const Error& e) override;
  void on_tier_get(Tier t, bool hit, int64_t ns) override;
  void on_l1_flush() override;
  void on_invalidation() override;
  void on_redirect(bool ask) override;
  void on_topology_refresh() override;
  void on_failover() override;
  void on_node_error(const std::string& node, ErrorKind kind) override;

 private:
  void snapshot(int64_t now_ms);

  CacheGroup* g_ = nullptr;  // group_.get(): the hot path's one load
  std::shared_ptr<CacheGroup> group_;
  ExtraSeries extra_;
  const Clock* clock_ = nullptr;
  uint32_t sample_ = 16;
  // Set by join(): the labels of series made later (errors), and the group's key.
  cm_registry* reg_ = nullptr;
  std::string name_;
  std::string kind_;
  Backend* backend_ = nullptr;  // null once left
};

}  // namespace cm
