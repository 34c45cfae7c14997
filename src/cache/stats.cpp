// SPDX-License-Identifier: Apache-2.0
// cm_cache_stats_json and cm_cache_reset_stats: a cache's statistics from
// its metrics group (hit ratios, evictions, latency quantiles, hit-ratio
// windows). See cache.h and docs/metrics.md.
#include <cmath>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "metrics/registry.h"
#include "metrics/shared/view.h"
#include "metrics/snapshot.h"
#include "util/text.h"

namespace cm {

namespace {

void json_num(OutBuf& out, double v) {
  if (std::isfinite(v))
    out.append_double(v);
  else
    out.append("null");
}

// A series' value: the pool's (a shared registry's aggregate, when pool is
// not null and holds it), else this process's.
SeriesValue value_of(cm_series* s, const shared::PoolValues* pool) {
  SeriesValue v;
  if (pool && pool->get(*s, v)) return v;
  return read_series(*s);
}

double series_quantile(cm_series* s, const shared::PoolValues* pool, double q, uint64_t* count) {
  const SeriesValue v = value_of(s, pool);
  *count = v.count;
  return histogram_quantile(q, s->family->bounds, v.cumulative().data());
}

}  // namespace

void append_hit_ratio_windows(OutBuf& out, CacheGroup* g, double own_hits, double own_misses, int64_t now) {
  out.push('{');
  const std::pair<const char*, int64_t> windows[] = {{"1m", 60000}, {"5m", 300000}, {"1h", 3600000}};
  bool first = true;
  for (const auto& [label, span] : windows) {
    if (!first) out.push(',');
    first = false;
    append_json_string(out, label);
    out.push(':');
    double ratio = NAN;
    if (g) {
      std::lock_guard<std::mutex> lk(g->window.mu);
      const auto& snaps = g->window.snaps;
      // The newest snapshot at or before the window's start, else the oldest
      // (the cache is younger than the window).
      const WindowRing::Snap* base = nullptr;
      for (const auto& snap : snaps)
        if (snap.t_ms <= now - span) base = &snap;
      if (!base && !snaps.empty()) base = &snaps.front();
      if (base) {
        double dh = own_hits - base->hits, dm = own_misses - base->misses;
        if (dh >= 0 && dm >= 0 && dh + dm > 0) ratio = dh / (dh + dm);
      }
    }
    json_num(out, ratio);
  }
  out.push('}');
}

std::string cache_stats_json(cm_cache& c) {
  int64_t now = c.clock->coarse_ms();
  OutBuf out;
  out.append("{\"cache\":");
  append_json_string(out, c.name);
  out.append(",\"backend\":");
  append_json_string(out, c.backend->kind());
  out.append(",\"metrics\":");
  CacheGroup* g = c.metrics.group();
  out.append(g ? "true" : "false");
  // A shared registry's cache: the pool's totals (docs/multiprocess.md),
  // read from the directory once for this call.
  std::unique_ptr<shared::PoolValues> pool = g ? shared::PoolValues::of(*c.reg) : nullptr;
  auto v = [&](cm_series* s) { return g ? value_of(s, pool.get()).value() : 0.0; };
  double hits = v(g ? g->hits : nullptr), misses = v(g ? g->misses : nullptr);
  // The hit-ratio windows are this process's snapshots: differences of its own counts.
  double own_hits = g ? cm_series_value(g->hits) : 0.0, own_misses = g ? cm_series_value(g->misses) : 0.0;
  out.append(",\"hits\":");
  json_num(out, hits);
  out.append(",\"misses\":");
  json_num(out, misses);
  out.append(",\"stale_hits\":");
  json_num(out, v(g ? g->stale_hits : nullptr));
  out.append(",\"hit_ratio\":");
  json_num(out, hits + misses > 0 ? hits / (hits + misses) : NAN);
  out.append(",\"entries\":");
  out.append_u64(c.backend->entries());
  out.append(",\"bytes\":");
  out.append_u64(c.backend->bytes());
  out.append(",\"evictions\":{\"size\":");
  json_num(out, v(g ? g->evict_size : nullptr));
  out.append(",\"expired\":");
  json_num(out, v(g ? g->evict_expired : nullptr));
  out.append("},\"latency_seconds\":{");
  bool first = true;
  for (Op op : {Op::Get, Op::Set, Op::Delete, Op::Load}) {
    if (!first) out.push(',');
    first = false;
    append_json_string(out, op_name(op));
    out.append(":{\"count\":");
    uint64_t n = 0;
    double p50 = NAN, p99 = NAN;
    if (g) {
      p50 = series_quantile(g->duration[static_cast<int>(op)], pool.get(), 0.5, &n);
      p99 = series_quantile(g->duration[static_cast<int>(op)], pool.get(), 0.99, &n);
    }
    out.append_u64(n);
    out.append(",\"p50\":");
    json_num(out, p50);
    out.append(",\"p99\":");
    json_num(out, p99);
    out.push('}');
  }
  out.append("},\"hit_ratio_window\":");
  append_hit_ratio_windows(out, g, own_hits, own_misses, now);
  out.append("}");
  return std::string(out.view());
}

void cache_reset_stats(cm_cache& c) { c.metrics.reset(c.clock->coarse_ms()); }

}  // namespace cm
