// SPDX-License-Identifier: Apache-2.0
// The snapshot walk and the single-series read and write: the only readers of
// the cell payload layout (cells.h) outside the cells themselves.
#include "metrics/snapshot.h"

#include <algorithm>

#include "metrics/shared/pool.h"
#include "metrics/shared/view.h"

namespace cm {
namespace {

// The payload words of a series: 1 + buckets for a histogram (sum, then one
// count per bucket), kScalarWords for a counter or gauge.
size_t payload_words(Kind kind, size_t nbounds) {
  return kind == Kind::Histogram ? nbounds + 2 : cells::kScalarWords;
}

void fold(Kind kind, const uint64_t* p, size_t nbounds, SeriesValue& v) {
  v.kind = kind;
  if (kind == Kind::Histogram) {
    v.double_part = 0;
    v.int_part = 0;
    v.sum = cells::from_bits(p[0]);
    v.buckets.assign(p + 1, p + 2 + nbounds);
    uint64_t n = 0;
    for (uint64_t c : v.buckets) n += c;
    v.count = n;
  } else {
    v.double_part = cells::from_bits(p[0]);
    v.int_part = static_cast<int64_t>(p[1]);
    v.sum = 0;
    v.count = 0;
    v.buckets.clear();
  }
}

uint64_t bits(double d) { return cells::to_bits(d); }

}  // namespace

double SeriesValue::value() const {
  if (kind == Kind::Histogram) return static_cast<double>(count);
  if (int_part == 0) return double_part;  // keeps a set -0.0 negative
  return double_part + static_cast<double>(int_part);
}

std::vector<uint64_t> SeriesValue::cumulative() const {
  std::vector<uint64_t> cum(buckets.size());
  uint64_t run = 0;
  for (size_t i = 0; i < buckets.size(); ++i) cum[i] = run += buckets[i];
  return cum;
}

bool SeriesValue::same(const SeriesValue& o) const {
  return kind == o.kind && bits(double_part) == bits(o.double_part) && int_part == o.int_part &&
         bits(sum) == bits(o.sum) && count == o.count && buckets == o.buckets;
}

void read_series(const cm_series& s, SeriesValue& into) {
  uint64_t small[cells::kScalarWords];
  std::vector<uint64_t> big;
  uint64_t* p = small;
  if (s.kind == Kind::Histogram) {
    big.resize(payload_words(s.kind, s.nbounds));
    p = big.data();
  }
  {
    cells::Space& space = cells::Space::get();
    auto lk = space.lock();
    space.read(s.block, p, lk);
  }
  fold(s.kind, p, s.nbounds, into);
}

SeriesValue read_series(const cm_series& s) {
  SeriesValue v;
  read_series(s, v);
  return v;
}

bool write_series(cm_series& s, const SeriesValue& v, bool add) {
  if (v.kind != s.kind) return false;
  uint64_t small[cells::kScalarWords];
  std::vector<uint64_t> big;  // histograms only: a gauge set allocates nothing
  uint64_t* p = small;
  size_t n = payload_words(s.kind, s.nbounds);
  if (s.kind == Kind::Histogram) {
    if (v.buckets.size() != s.nbounds + 1u) return false;
    big.resize(2 * n);  // the new payload, then (add) the current one
    p = big.data();
    p[0] = bits(v.sum);
    std::copy(v.buckets.begin(), v.buckets.end(), p + 1);
  } else {
    p[0] = bits(v.double_part);
    p[1] = static_cast<uint64_t>(v.int_part);
  }
  cells::Space& space = cells::Space::get();
  auto lk = space.lock();
  if (add) {
    uint64_t cur_small[cells::kScalarWords];
    uint64_t* cur = s.kind == Kind::Histogram ? p + n : cur_small;
    space.read(s.block, cur, lk);
    for (size_t i = 0; i < n; ++i)
      p[i] = i < s.block.ndoubles ? bits(cells::from_bits(cur[i]) + cells::from_bits(p[i])) : cur[i] + p[i];
  }
  space.reset(s.block, p, lk);
  return true;
}

void snapshot_locked(cm_registry& r, SnapshotVisitor& v, const NameFilter* names) {
  v.begin(r);
  cells::Space& space = cells::Space::get();
  std::vector<uint64_t> payload;
  SeriesValue val;
  auto keep = select_families(r, names);
  for (const auto& [key, fp] : r.families) {
    if (keep && !keep->count(fp.get())) continue;
    cm_family& f = *fp;
    if (!v.family(f)) continue;
    payload.resize(payload_words(f.kind, f.bounds.size()));
    {
      auto lk = space.lock();
      for (const auto& sp : f.sorted_series()) {
        space.read(sp->block, payload.data(), lk);
        fold(f.kind, payload.data(), f.bounds.size(), val);
        v.series(f, *sp, val);
      }
    }
    v.family_end(f);
  }
  v.end(r);
}

void snapshot(cm_registry& r, SnapshotVisitor& v, const SnapshotOptions& o) {
  if (o.collect) run_collectors(r);
  if (shared::rendered_directory(r)) return shared::snapshot_shared(r, v, o.names);  // the pool's aggregate
  std::lock_guard<std::mutex> g(r.mu);
  snapshot_locked(r, v, o.names);
}

}  // namespace cm
