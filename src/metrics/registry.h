/* SPDX-License-Identifier: Apache-2.0 */
// The metrics registry: families, labelled series and their lock-free lookup.
// The C handle types are these classes themselves (no wrapper, no casts).
#pragma once

#include <cachemeter/metrics.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "metrics/cells.h"
#include "util/fork.h"
#include "util/text.h"

namespace cm {
class OutBuf;

enum class Kind : uint8_t { Counter, Gauge, Histogram };
const char* kind_name(Kind k);

// Hash of a label-value tuple, as used by SeriesIndex.
// Hash of a label-value tuple. When lens is not null it receives each value's
// length (lens must hold n entries); find() can then compare without strlen.
uint64_t hash_values(const char* const* values, size_t n, size_t* lens = nullptr);
// Lookup needs lengths only for the first kMaxFastLabels values; past that it
// compares with strcmp.
constexpr size_t kMaxFastLabels = 16;

// Open-addressing index of a family's series. find() takes no lock: tables
// only ever gain entries, a full table is replaced by a larger copy, and
// replaced tables stay alive until the index is destroyed. insert() must be
// serialised by the caller (the registry mutex).
class SeriesIndex {
 public:
  SeriesIndex();
  cm_series* find(uint64_t h, const char* const* values, size_t n, const size_t* lens = nullptr) const;
  void insert(cm_series* s);

 private:
  struct Table {
    explicit Table(size_t cap) : mask(cap - 1), slots(std::make_unique<std::atomic<cm_series*>[]>(cap)) {}
    size_t mask;
    std::unique_ptr<std::atomic<cm_series*>[]> slots;
  };
  void place(Table& t, cm_series* s);
  std::atomic<Table*> cur_;
  std::vector<std::unique_ptr<Table>> tables_;
  size_t count_ = 0;
};

// The in-flight guard of a function that runs without the lock of the map
// it was copied from (a health check, a collector): retire() refuses new
// runs and waits for those in progress, so what the function points to is
// never freed under a run. Several runs may be in progress at once.
class RunGuard {
 public:
  bool enter();  // false once retired: do not run
  void leave();
  void retire();
  // In a child of fork(), with every lock held: runs of the parent's
  // threads never end here; forget them (the lock and the condition
  // variable start afresh, never destroyed: waiters of the parent's).
  void forget_runs();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  bool retired_ = false;
};

class SinkHost;  // metrics/sink.h
namespace shared {
class SharedPool;  // metrics/shared/pool.h
class Directory;   // metrics/shared/directory.h
class Refresher;   // metrics/shared/refresher.h
}

}  // namespace cm

struct cm_series {
  cm_family* family = nullptr;
  cm::Kind kind = cm::Kind::Counter;
  uint32_t nbounds = 0;           // histograms: copy of the family's, for the hot path
  const double* bounds = nullptr;
  uint64_t hash = 0;
  std::vector<std::string> values;
  double created = 0;             // unix seconds; guarded by the registry mutex
  // Held series (hold_series): not in the family's lock-free index, removed
  // when the last hold is released. Registry mutex.
  bool held = false;
  uint32_t holds = 0;
  cm::cells::Block block;
};

struct cm_family {
  cm_registry* reg = nullptr;
  cm::Kind kind = cm::Kind::Counter;
  bool internal = false;          // cachemeter's self metrics: outside max_series
  std::string name;               // exposed name (a counter's ends in _total)
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;     // histograms, +Inf implicit
  cm::SeriesIndex index;
  std::vector<std::string> le_text;  // histograms: each bound as an `le` value
  uint32_t shared_id = 0;            // shared registries: the family's id in the directory
  uint8_t gauge_mode = 0;            // shared registries' gauges: shared::GaugeMode
  // Owns the series in creation order, sorted by label values on demand
  // (sorted_series()); a vector scans far faster than a tree when rendering.
  // Registry mutex.
  std::vector<std::unique_ptr<cm_series>> series;
  bool series_sorted = true;
  // The held series (see cm_series::held), by their label values (held_key).
  // Registry mutex.
  std::unordered_map<std::string, cm_series*> held;

  // The OpenMetrics family name: a counter's name without "_total".
  std::string_view om_name() const;
  // The series ordered by label values (sorts if needed). Registry mutex.
  const std::vector<std::unique_ptr<cm_series>>& sorted_series();
};

struct cm_registry final : private cm::fork::Hooks {
  std::mutex mu;  // families, series creation, reset, rendering
  std::string prefix = "cachemeter_";
  std::vector<std::pair<std::string, std::string>> const_labels;
  size_t max_series = 10000;
  size_t max_label_value_bytes = 2048;  // longer values: CM_ELIMIT, counted in series_rejected
  size_t nseries = 0;  // application series; registry mutex
  std::map<std::string, std::unique_ptr<cm_family>, std::less<>> families;
  std::unordered_map<std::string, cm_family*> sample_names;  // every sample name a family exposes
  cm_series* series_rejected = nullptr;
  cm_series* invalid_observations = nullptr;
  bool is_default = false;
  // Output size of the last render per format (text, OpenMetrics, JSON): the
  // next render reserves a little more up front. Registry mutex.
  size_t last_render_bytes[3] = {0, 0, 0};
  // The JSON render's "caches" section (per-cache hit ratios), written by the
  // cache layer once a cache joined this registry (cache_metrics.cpp). Called
  // after the walk, holding no registry lock.
  std::atomic<void (*)(cm_registry&, cm::OutBuf&)> json_caches{nullptr};
  // Run before every render, outside `mu`: refresh gauges that mirror state
  // held elsewhere (a cache's entries and bytes, which for redis is backend
  // I/O). Keyed by their owner. collectors_mu guards the map only: run_
  // collectors copies the entries under it and runs them without it, so a
  // collector blocked on a dead backend holds up no add or remove of others.
  struct Collector {
    std::function<void()> fn;
    bool may_block = false;  // does backend I/O (a redis key count)
    cm::RunGuard guard;      // remove_collector waits for runs in progress
  };
  std::mutex collectors_mu;
  std::map<const void*, std::shared_ptr<Collector>> collectors;
  size_t blocking_collectors = 0;  // how many have may_block; collectors_mu
  // Health of what reports into this registry (each open cache's backend),
  // for the HTTP endpoint's /health. Keyed by their owner. health_mu guards
  // the map and health_gen only, never a check's run: a checker copies the
  // shared entries under it and runs them without it (run_health_check), so
  // a check blocked on a dead backend holds up neither the map nor
  // cm_cache_open. Use add/remove_health_check.
  struct HealthCheck {
    std::string cache, backend;
    std::function<int()> check;  // CM_OK when healthy
    // remove_health_check waits for a run in progress, so what `check`
    // points to (the cache's backend) is never freed under a running check.
    cm::RunGuard guard;
  };
  std::mutex health_mu;
  std::map<const void*, std::shared_ptr<HealthCheck>> health;
  uint64_t health_gen = 0;  // bumped by every add and remove; health_mu
  // Persistence (cm_registry_persist): gauges too when the registry was made
  // with persist_gauges=true.
  bool persist_gauges = false;
  // The outlets of this registry's values (persistence, exporters), told
  // about new families and series under `mu` (metrics/sink.h). Created with
  // the first sink, under `mu`; the destructor drops it first (the sinks'
  // last flush still sees every series).
  std::unique_ptr<cm::SinkHost> sinks;
  // Shared registries (options shared=DIR, docs/multiprocess.md): the
  // worker's slot, where the cells of every series live, and the default
  // mode of gauge families. Set at creation, never changed.
  std::unique_ptr<cm::shared::SharedPool> shared;
  // shared_readonly=true: a view of a directory (a sidecar's): renders the
  // pool's aggregate, claims no slot, registers no application family.
  std::unique_ptr<cm::shared::Directory> shared_view;
  // Shared registries: runs the collectors every shared_refresh_ms, so this
  // worker's gauges are fresh when another worker renders. Stopped first
  // when the registry is freed.
  std::unique_ptr<cm::shared::Refresher> refresher;
  uint8_t default_gauge_mode = 0;
  double created = 0;  // unix seconds: the _created of series other workers made

  ~cm_registry();

 private:
  // mu, collectors_mu and health_mu are held across fork() (util/fork.h).
  void fork_locks(std::vector<cm::fork::Lock>& out) override {
    out.push_back(cm::fork::lock_of(mu));
    out.push_back(cm::fork::lock_of(collectors_mu));
    out.push_back(cm::fork::lock_of(health_mu));
  }
  // In a child: forgets the health-check and collector runs that the
  // parent's endpoint threads had in flight (they never end here).
  void fork_child() override;
  cm::fork::Enrolment fork_enrolment{this};  // last
};

namespace cm {

// The sample names a family of kind and name exposes (a counter's with and
// without _total, _created; a histogram's _bucket, _count, _sum, _created).
std::vector<std::string> sample_names_of(Kind kind, const std::string& name);

// Parses options and builds a registry (throws Error).
std::unique_ptr<cm_registry> make_registry(const char* options);

// Registers (or finds) a family; throws Error. gauge_mode (gauges of shared
// registries, shared::GaugeMode): -1 takes the registry's gauge_mode; a
// family found with another mode is CM_EEXIST.
cm_family* register_family(cm_registry& r, Kind kind, std::string_view name, const char* help,
                           const char* const* label_names, size_t nlabels, const double* bounds,
                           size_t nbounds, bool internal, int gauge_mode = -1);

// Finds or creates a series; throws Error. A held series it finds is
// published: it joins the index and is never removed from then on (the
// caller may keep the pointer for the registry's lifetime).
cm_series* family_series(cm_family& f, const char* const* values, size_t n);

// Series whose life a component manages (a cache's series, while one of its
// handles is open): hold_series() finds or creates the series like
// family_series() and takes a hold on it; release_series() drops one hold
// each and removes a series when its last hold goes, unless it was published
// meanwhile (found through family_series / cm_family_series, or existing
// before the first hold): removed series leave the render, max_series and
// the cell space (their slots are reused), and persistence writes their last
// value (docs/metrics.md). Pointers to a removed series dangle: only the
// holder may keep them. A held series is created and found under the
// registry mutex only, never through the lock-free index, so removing it
// races no lookup. Both throw Error / never throw respectively.
// gauge_mode (shared registries): a gauge series' own aggregation mode
// (shared::GaugeMode but all), -1 for its family's; fixed when the series
// is made.
cm_series* hold_series(cm_family& f, const char* const* values, size_t n, int gauge_mode = -1);
void release_series(cm_registry& r, cm_series* const* series, size_t n) noexcept;

// Counts one rejected update (wrong type, NaN, negative counter increment)
// and records why in cm_errmsg().
void count_invalid(cm_series* s, const char* api, const char* why);

void reset_registry(cm_registry& r);
// Zeroes the given series (Prometheus reads it as a counter reset).
void reset_series(cm_registry& r, cm_series* const* series, size_t n);
// Collectors (see cm_registry::collectors). remove_collector returns once no
// run of the owner's collector is in progress and none will start.
// may_block: the collector may do backend I/O (the HTTP endpoint runs those
// off its polling thread).
void add_collector(cm_registry& r, const void* owner, std::function<void()> fn, bool may_block = false);
void remove_collector(cm_registry& r, const void* owner);
enum class Collectors { All, NonBlocking, Blocking };
void run_collectors(cm_registry& r, Collectors which = Collectors::All);
bool has_blocking_collectors(cm_registry& r);
// Health checks (see cm_registry::health). remove_health_check returns once
// no run of the owner's check is in progress (a run is bounded by the
// backend's own timeout) and none will start.
void add_health_check(cm_registry& r, const void* owner, std::string cache, std::string backend,
                      std::function<int()> check);
void remove_health_check(cm_registry& r, const void* owner);
// Runs h's check on the calling thread, holding no lock across it. Returns
// false (and runs nothing) once h was removed; else *rc is the check's status
// and *err its message (empty when healthy).
bool run_health_check(cm_registry::HealthCheck& h, int* rc, std::string* err);

// Exposition; the caller holds nothing, the renderer takes the locks.
// names: when not null and not empty, only the families one of whose exposed
// names (family name, OpenMetrics name, any sample name) is listed.
using NameFilter = std::vector<std::string>;
// collect: run the collectors first (the HTTP endpoint runs them on its own
// thread instead: they may do backend I/O).
void render_text(cm_registry& r, OutBuf& out, bool openmetrics, const NameFilter* names = nullptr,
                 bool collect = true);
void render_json(cm_registry& r, OutBuf& out, const NameFilter* names = nullptr, bool collect = true);
// The families a filter selects (nullptr: all). Requires the registry mutex.
std::unique_ptr<std::unordered_set<const cm_family*>> select_families(const cm_registry& r, const NameFilter* names);

// Prometheus-style quantile estimate from cumulative bucket counts (cum has
// bounds.size() + 1 entries, the last one the +Inf bucket). NaN when empty.
double histogram_quantile(double q, const std::vector<double>& bounds, const uint64_t* cum);

}  // namespace cm
