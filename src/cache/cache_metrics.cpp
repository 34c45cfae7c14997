// SPDX-License-Identifier: Apache-2.0
// A cache handle's metrics: the group of series shared by the handles of one
// name, the optional series of a handle's features, error series made on
// first use, hit-ratio snapshots. See cache_metrics.h and docs/metrics.md.
#include "cache/cache_metrics.h"

#include "cache/backend_table.h"
#include "metrics/shared/layout.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace cm {

const char* op_name(Op op) {
  switch (op) {
    case Op::Get: return "get";
    case Op::Set: return "set";
    case Op::Delete: return "delete";
    case Op::Clear: return "clear";
    case Op::Load: return "load";
  }
  return "unknown";
}

std::vector<cm_series*> CacheGroup::all() const {
  std::vector<cm_series*> v = {hits,     misses,      stale_hits,         sets,    deletes, evict_size,
                               evict_expired, loads_ok, loads_error, load_wait_timeouts, rejected_too_large};
  for (auto& row : error_series)
    for (auto& s : row)
      if (cm_series* p = s.load()) v.push_back(p);
  for (auto* s : duration) v.push_back(s);
  std::lock_guard<std::mutex> lk(node_errors_mu);
  for (auto& [key, s] : node_errors) v.push_back(s);
  return v;
}

CacheGroup::~CacheGroup() {
  remove_collector(*reg, this);  // no collector runs with this group from here on
  std::vector<cm_series*> v = all();
  v.push_back(entries);
  v.push_back(bytes);
  release_series(*reg, v.data(), v.size());
}

std::vector<cm_series*> ExtraSeries::all() const {
  std::vector<cm_series*> v = {breaker_state, breaker_opens, breaker_closes, l1_flushes,   invalidations,
                               lock_acquisitions, lock_timeouts, lock_wait, redirects[0], redirects[1],
                               topology_refreshes, failovers};
  for (int t = 0; t < kTiers; ++t) v.insert(v.end(), {tier_hits[t], tier_misses[t], tier_duration[t]});
  return v;
}

ErrorKind kind_of(const Error& e) {
  if (e.kind() != ErrorKind::None) return e.kind();
  switch (e.status()) {
    case CM_ETIMEOUT: return ErrorKind::Timeout;
    case CM_ECORRUPT: return ErrorKind::Corrupt;
    default: return ErrorKind::Other;
  }
}

namespace {

using GroupKey = std::tuple<cm_registry*, std::string, std::string>;
std::mutex g_groups_mu;

// g_groups_mu is held across fork() (util/fork.h).
struct GroupsForkHooks final : fork::Hooks {
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(g_groups_mu)); }
};

std::map<GroupKey, std::weak_ptr<CacheGroup>>& groups() {
  static auto* m = [] {
    static GroupsForkHooks hooks;
    static fork::Enrolment enrolment(&hooks);
    return new std::map<GroupKey, std::weak_ptr<CacheGroup>>();
  }();
  return *m;
}

cm_series* series_of(cm_registry& r, Kind kind, const std::string& name, const char* help,
                     std::vector<const char*> labels, std::vector<const char*> values, bool histogram = false,
                     int gauge_mode = -1) {
  cm_family* f = register_family(r, kind, name, help, labels.data(), labels.size(), histogram ? kDurationBounds : nullptr,
                                 histogram ? std::size(kDurationBounds) : 0, false);
  return hold_series(*f, values.data(), values.size(), gauge_mode);
}

std::shared_ptr<CacheGroup> make_group(cm_registry& r, const std::string& name, std::string_view kind) {
  const std::string k(kind);
  const std::string p = r.prefix + "cache_";
  const char* cn = name.c_str();
  const char* bk = k.c_str();
  auto g = std::make_shared<CacheGroup>();
  g->reg = &r;
  auto counter = [&](const char* stem, const char* help) {
    return series_of(r, Kind::Counter, p + stem, help, {"cache", "backend"}, {cn, bk});
  };
  auto counter3 = [&](const char* stem, const char* help, const char* label, const char* value) {
    return series_of(r, Kind::Counter, p + stem, help, {"cache", "backend", label}, {cn, bk, value});
  };
  g->hits = counter("hits_total", "Cache lookups that found a fresh entry.");
  g->misses = counter("misses_total", "Cache lookups that found no fresh entry.");
  g->stale_hits = counter("stale_hits_total", "get_or_load lookups answered with an expired entry inside its stale window.");
  g->sets = counter("sets_total", "Cache set operations (including values stored by loads).");
  g->deletes = counter("deletes_total", "Cache delete operations.");
  {
    const char* labels[] = {"cache", "backend", "op", "kind"};
    g->errors = register_family(r, Kind::Counter, p + "errors_total",
                                "Cache operations that failed in the backend, by operation and kind of failure.",
                                labels, 4, nullptr, 0, false);
  }
  g->evict_size = counter3("evictions_total", "Entries removed by the cache, by reason.", "reason", "size");
  g->evict_expired = counter3("evictions_total", "Entries removed by the cache, by reason.", "reason", "expired");
  g->loads_ok = counter3("loads_total", "Loader runs of get_or_load, by result.", "result", "ok");
  g->loads_error = counter3("loads_total", "Loader runs of get_or_load, by result.", "result", "error");
  g->load_wait_timeouts =
      counter("load_wait_timeouts_total", "get_or_load callers that gave up waiting for another caller's load.");
  g->rejected_too_large =
      counter3("rejections_total", "Entries refused by the cache, by reason.", "reason", "too_large");
  // Shared registries (docs/multiprocess.md): a process's own cache (memory)
  // sums over the live workers; a store every worker sees (sqlite, redis,
  // a tiered cache's L2) is counted once: the largest live worker's figure.
  const BackendSpec* spec = find_backend_kind(k);  // none for "tiered": its L2 is shared
  const int size_mode = static_cast<int>(!spec || spec->traits.shared ? shared::GaugeMode::LiveMax
                                                                       : shared::GaugeMode::LiveSum);
  g->entries = series_of(r, Kind::Gauge, p + "entries", "Entries held by the cache.", {"cache", "backend"}, {cn, bk},
                         false, size_mode);
  g->bytes = series_of(r, Kind::Gauge, p + "bytes", "Bytes held by the cache (keys, values and per-entry overhead).",
                       {"cache", "backend"}, {cn, bk}, false, size_mode);
  for (Op op : {Op::Get, Op::Set, Op::Delete, Op::Load})
    g->duration[static_cast<int>(op)] =
        series_of(r, Kind::Histogram, p + "operation_duration_seconds", "Cache operation latency, by operation.",
                  {"cache", "backend", "op"}, {cn, bk, op_name(op)}, true);
  CacheGroup* raw = g.get();
  add_collector(r, raw, [raw] {
    double e = 0, b = 0;
    int state = -1;
    cm_series* state_series = nullptr;
    {
      std::lock_guard<std::mutex> lk(raw->members_mu);
      std::vector<std::string> counted;  // shared stores are counted once
      for (const CacheMetrics* m : raw->members) {
        Backend* be = m->backend();
        if (m->extra().breaker_state) {
          state_series = m->extra().breaker_state;
          state = std::max(state, static_cast<int>(be->breaker_state()));
        }
        std::string share = be->share_key();
        if (!share.empty() && std::find(counted.begin(), counted.end(), share) != counted.end()) continue;
        if (!share.empty()) counted.push_back(std::move(share));
        e += static_cast<double>(be->entries());
        b += static_cast<double>(be->bytes());
      }
    }
    cm_gauge_set(raw->entries, e);
    cm_gauge_set(raw->bytes, b);
    // Handles of one name share the gauge: it shows the worst circuit.
    if (state_series) cm_gauge_set(state_series, state);
  }, !spec || spec->traits.shared /* counting a shared store is backend I/O */);
  return g;
}

// The optional series of a handle (ExtraSeries), registered in the group's
// families when the handle has the feature. Filled in place: what a failure
// leaves made is released by CacheMetrics::close().
void make_extra(const CacheMetrics::Handle& h, ExtraSeries& x) {
  cm_registry& r = *h.reg;
  const std::string p = r.prefix;
  const std::string kind(h.backend->kind());
  const char* cn = h.name.c_str();
  const char* bk = kind.c_str();
  auto counter = [&](const std::string& name, const char* help) {
    return series_of(r, Kind::Counter, name, help, {"cache", "backend"}, {cn, bk});
  };
  if (h.breaker) {
    x.breaker_state = series_of(r, Kind::Gauge, p + "circuit_breaker_state",
                                "State of the cache's circuit breaker: 0 closed, 1 open, 2 half-open.",
                                {"cache", "backend"}, {cn, bk});
    x.breaker_opens = counter(p + "circuit_breaker_opens_total", "Times the cache's circuit breaker opened.");
    x.breaker_closes = counter(p + "circuit_breaker_closes_total", "Times the cache's circuit breaker closed again.");
  }
  if (h.l1 && h.l2) {
    Backend* tiers[kTiers] = {h.l1, h.l2};
    const char* tier_names[kTiers] = {"l1", "l2"};
    for (int t = 0; t < kTiers; ++t) {
      const std::string tk(tiers[t]->kind());
      std::vector<const char*> labels{"cache", "backend", "tier"};
      std::vector<const char*> values{cn, tk.c_str(), tier_names[t]};
      x.tier_hits[t] = series_of(r, Kind::Counter, p + "cache_tier_hits_total",
                                 "Lookups of a tiered cache answered by the tier.", labels, values);
      x.tier_misses[t] = series_of(r, Kind::Counter, p + "cache_tier_misses_total",
                                   "Lookups of a tiered cache that the tier could not answer.", labels, values);
      x.tier_duration[t] = series_of(r, Kind::Histogram, p + "cache_tier_get_duration_seconds",
                                     "Latency of a tiered cache's lookups in one tier.", labels, values, true);
    }
    x.l1_flushes = counter(p + "cache_l1_flushes_total",
                           "Times a tiered cache emptied its L1 because invalidations may have been missed.");
    x.invalidations = counter(p + "cache_invalidations_total",
                              "Keys a tiered cache dropped from its L1 because another writer changed them.");
  }
  if (h.backend->follows_topology()) {
    const char* kinds[2] = {"moved", "ask"};
    for (int i = 0; i < 2; ++i)
      x.redirects[i] = series_of(r, Kind::Counter, p + "redis_redirects_total",
                                 "Redis Cluster redirections (MOVED, ASK) a cache's calls followed.",
                                 {"cache", "kind"}, {cn, kinds[i]});
    x.topology_refreshes = series_of(r, Kind::Counter, p + "redis_topology_refreshes_total",
                                     "Times a redis+cluster:// cache read the slot map (CLUSTER SLOTS).", {"cache"},
                                     {cn});
    x.failovers = series_of(r, Kind::Counter, p + "redis_failovers_total",
                            "Times a Redis cache saw a new master (sentinel) or a new set of primaries (cluster).",
                            {"cache"}, {cn});
  }
  if (h.backend->supports_lock()) {
    x.lock_acquisitions =
        counter(p + "lock_acquisitions_total", "Cross-process load locks taken by get_or_load.");
    x.lock_timeouts = counter(p + "lock_timeouts_total",
                              "get_or_load callers that gave up waiting for another process's load.");
    x.lock_wait = series_of(r, Kind::Histogram, p + "lock_wait_duration_seconds",
                            "Time get_or_load spent on the cross-process load lock before loading or reading the "
                            "value another process loaded.",
                            {"cache", "backend"}, {cn, bk}, true);
  }
}

using detail::inc;

}  // namespace

void CacheMetrics::join(const Handle& h) {
  reg_ = h.reg;
  name_ = h.name;
  kind_ = std::string(h.backend->kind());
  clock_ = h.clock;
  sample_ = h.sample;
  GroupKey key{reg_, name_, kind_};
  std::lock_guard<std::mutex> lk(g_groups_mu);
  std::shared_ptr<CacheGroup> g = groups()[key].lock();
  if (!g) {
    g = make_group(*reg_, name_, kind_);
    groups()[key] = g;
  }
  make_extra(h, extra_);
  backend_ = h.backend;
  {
    std::lock_guard<std::mutex> mlk(g->members_mu);
    g->members.push_back(this);
  }
  group_ = std::move(g);
  g_ = group_.get();
  reg_->json_caches.store(&caches_json, std::memory_order_release);
  snapshot(clock_->coarse_ms());
}

void CacheMetrics::leave() noexcept {
  if (!g_ || !backend_) return;
  std::lock_guard<std::mutex> lk(g_->members_mu);
  std::erase(g_->members, this);
  backend_ = nullptr;
}

void CacheMetrics::close() noexcept {
  leave();
  if (reg_) {
    std::vector<cm_series*> x = extra_.all();
    release_series(*reg_, x.data(), x.size());
    extra_ = ExtraSeries{};
  }
  if (group_) {
    std::lock_guard<std::mutex> lk(g_groups_mu);
    GroupKey key{reg_, name_, kind_};
    g_ = nullptr;
    group_.reset();  // the last handle of the name: ~CacheGroup removes the series
    auto it = groups().find(key);
    if (it != groups().end() && it->second.expired()) groups().erase(it);
  }
  reg_ = nullptr;
}

void CacheMetrics::snapshot(int64_t now_ms) {
  std::unique_lock<std::mutex> lk(g_->window.mu, std::try_to_lock);
  if (!lk.owns_lock()) return;  // another thread is taking it
  if (now_ms < g_->window.next_ms.load(std::memory_order_relaxed)) return;
  auto& v = g_->window.snaps;
  v.push_back({now_ms, cm_series_value(g_->hits), cm_series_value(g_->misses)});
  if (v.size() > WindowRing::kSlots) v.erase(v.begin());
  g_->window.next_ms.store(now_ms + WindowRing::kStepMs, std::memory_order_relaxed);
}

void CacheMetrics::reset(int64_t now_ms) {
  if (!g_) return;
  std::vector<cm_series*> s = g_->all();
  reset_series(*reg_, s.data(), s.size());
  {
    std::lock_guard<std::mutex> lk(g_->window.mu);
    g_->window.snaps.clear();
    g_->window.next_ms.store(0, std::memory_order_relaxed);
  }
  snapshot(now_ms);
}

// The series is made on first use (a full registry drops the count rather
// than fail the caller).
void CacheMetrics::error(Op op, ErrorKind k) {
  if (!g_) return;
  auto& slot = g_->error_series[static_cast<int>(op)][static_cast<int>(k)];
  cm_series* s = slot.load(std::memory_order_acquire);
  if (!s) {
    const char* values[] = {name_.c_str(), kind_.c_str(), op_name(op), error_kind_name(k)};
    try {
      s = hold_series(*g_->errors, values, 4);
    } catch (...) {
      return;
    }
    cm_series* expected = nullptr;
    if (!slot.compare_exchange_strong(expected, s, std::memory_order_acq_rel)) {
      release_series(*reg_, &s, 1);  // another thread made it first: one hold per group
      s = expected;
    }
  }
  inc(s);
}

void CacheMetrics::failed(Op op, const Error& e) {
  if (e.status() == CM_ELIMIT)
    rejected_too_large();
  else
    error(op, kind_of(e));
}

void CacheMetrics::on_evict(EvictReason why, uint64_t entries, uint64_t) {
  if (g_ && entries) cells::add_count((why == EvictReason::Size ? g_->evict_size : g_->evict_expired)->block, 1, entries);
}

void CacheMetrics::on_breaker(BreakerState from, BreakerState to) {
  if (extra_.breaker_state) cm_gauge_set(extra_.breaker_state, static_cast<double>(to));
  if (to == BreakerState::Open) inc(extra_.breaker_opens);
  if (to == BreakerState::Closed && from != BreakerState::Closed) inc(extra_.breaker_closes);
}

void CacheMetrics::on_absorbed_error(Op op, const Error& e) { error(op, kind_of(e)); }

void CacheMetrics::on_tier_get(Tier t, bool hit, int64_t ns) {
  const int i = static_cast<int>(t);
  inc(hit ? extra_.tier_hits[i] : extra_.tier_misses[i]);
  if (ns >= 0 && extra_.tier_duration[i]) cm_histogram_observe(extra_.tier_duration[i], static_cast<double>(ns) * 1e-9);
}

void CacheMetrics::on_l1_flush() { inc(extra_.l1_flushes); }

void CacheMetrics::on_invalidation() { inc(extra_.invalidations); }

void CacheMetrics::on_redirect(bool ask) { inc(extra_.redirects[ask ? 1 : 0]); }

void CacheMetrics::on_topology_refresh() { inc(extra_.topology_refreshes); }

void CacheMetrics::on_failover() { inc(extra_.failovers); }

// Made on first use like error(); a node list is small (a cluster's nodes),
// and a failing node's series stays until the cache's last handle closes.
void CacheMetrics::on_node_error(const std::string& node, ErrorKind kind) {
  if (!g_) return;
  std::lock_guard<std::mutex> lk(g_->node_errors_mu);
  cm_series*& s = g_->node_errors[{node, kind}];
  if (!s) {
    try {
      const char* labels[] = {"cache", "node", "kind"};
      cm_family* f = register_family(*reg_, Kind::Counter, reg_->prefix + "redis_node_errors_total",
                                     "Failed calls of a redis+cluster:// or redis+sentinel:// cache to one node, by kind "
                                     "of failure (counted also when a replica read fell back to the primary).",
                                     labels, 3, nullptr, 0, false);
      const char* values[] = {name_.c_str(), node.c_str(), error_kind_name(kind)};
      s = hold_series(*f, values, 3);
    } catch (...) {
      g_->node_errors.erase({node, kind});
      return;  // a full registry drops the count rather than fail the caller
    }
  }
  inc(s);
}

void caches_json(cm_registry& r, OutBuf& out) {
  std::vector<std::pair<GroupKey, std::shared_ptr<CacheGroup>>> mine;
  {
    std::lock_guard<std::mutex> lk(g_groups_mu);
    for (auto& [key, weak] : groups())
      if (std::get<0>(key) == &r)
        if (auto g = weak.lock()) mine.emplace_back(key, std::move(g));
  }
  out.push('[');
  bool first = true;
  for (auto& [key, g] : mine) {
    // The windows' "now" is a handle's clock (tests inject one). The
    // collector holds members_mu while it reads a backend, which may hang
    // (a stopped Redis): never wait for it, use the system clock then.
    int64_t now;
    {
      std::unique_lock<std::mutex> lk(g->members_mu, std::try_to_lock);
      if (lk.owns_lock() && g->members.empty()) continue;  // closing
      now = lk.owns_lock() ? g->members.front()->clock()->coarse_ms() : system_clock().coarse_ms();
    }
    double hits = cm_series_value(g->hits), misses = cm_series_value(g->misses);
    if (!first) out.push(',');
    first = false;
    out.append("{\"cache\":");
    append_json_string(out, std::get<1>(key));
    out.append(",\"backend\":");
    append_json_string(out, std::get<2>(key));
    out.append(",\"hits\":");
    out.append_double(hits);
    out.append(",\"misses\":");
    out.append_double(misses);
    out.append(",\"hit_ratio\":");
    if (hits + misses > 0)
      out.append_double(hits / (hits + misses));
    else
      out.append("null");
    out.append(",\"hit_ratio_window\":");
    append_hit_ratio_windows(out, g.get(), hits, misses, now);
    out.push('}');
  }
  out.push(']');
}

}  // namespace cm
