/* SPDX-License-Identifier: Apache-2.0 */
// The one walk over a registry's values: every reader (text, OpenMetrics and
// JSON render, the sinks: persistence and the exporters) is a visitor of it,
// and nothing outside src/metrics/ reads the per-thread cell layout.
#pragma once

#include <cstdint>
#include <vector>

#include "metrics/registry.h"

namespace cm {

// The folded value of one series (base + every live thread's cells).
struct SeriesValue {
  Kind kind = Kind::Counter;
  // Counters and gauges: the value is double_part + int_part. They are kept
  // apart because integral increments sum exactly as integers (persistence
  // stores both; see cells.h add_scalar). Zero for a histogram.
  double double_part = 0;
  int64_t int_part = 0;
  // Histograms: the sum of the observations, the count of each bucket (NOT
  // cumulative: bounds.size() + 1 entries, the +Inf bucket last) and their
  // total. Zero and empty for a counter or gauge.
  double sum = 0;
  uint64_t count = 0;
  std::vector<uint64_t> buckets;

  // A counter's or gauge's value (a gauge set to -0.0 stays negative); a
  // histogram's count.
  double value() const;
  // The cumulative bucket counts (what histogram_quantile() takes).
  std::vector<uint64_t> cumulative() const;
  // Bit for bit: a gauge holding NaN equals itself (nothing changed).
  bool same(const SeriesValue& o) const;
};

// Reads the folded value of s; takes the cell lock (briefly), never the
// registry mutex. The second form reuses into's storage (no allocation once
// its buckets have the capacity). Thread-safe. For one series; walk a whole
// registry with snapshot().
SeriesValue read_series(const cm_series& s);
void read_series(const cm_series& s, SeriesValue& into);

// Replaces the value of s with v (add: adds v to what s holds), as one
// update: every thread's pending cells are dropped or folded in at once, as
// cm_registry_reset does. Returns false (and changes nothing) when v does not
// fit s (another kind, another bucket count). Takes the cell lock; the caller
// may hold the registry mutex. For restoring saved values (persistence).
bool write_series(cm_series& s, const SeriesValue& v, bool add);

// What snapshot() yields, in order: begin; per family (by name) family, then
// (when family returned true) series once per series (by label values) and
// family_end; end. The registry mutex is held throughout, the cell lock
// across the series of one family: a visitor must not call back into the
// registry (no family or series creation, no value read, no render, no
// cm_gauge_set), must not block (no I/O: copy what you need and do the I/O
// after snapshot() returns) and must not throw (a throw ends the walk, leaving
// the locks released, and propagates). References are valid during the call
// only. Const labels are r.const_labels (first in every series' labels).
class SnapshotVisitor {
 public:
  virtual void begin(const cm_registry& r) { (void)r; }
  // False: skip this family's series (no cell lock taken for it).
  virtual bool family(const cm_family& f) = 0;
  virtual void series(const cm_family& f, const cm_series& s, const SeriesValue& v) = 0;
  virtual void family_end(const cm_family& f) { (void)f; }
  virtual void end(const cm_registry& r) { (void)r; }

 protected:
  ~SnapshotVisitor() = default;
};

struct SnapshotOptions {
  // Only the families one of whose exposed names is listed (nullptr or
  // empty: all), as select_families().
  const NameFilter* names = nullptr;
  // Run the collectors first, holding no lock (they may do backend I/O).
  bool collect = false;
};

// Walks r for v: runs the collectors (when asked), then takes the registry
// mutex and yields every selected family and series. Thread-safe; writers are
// never blocked (they take no lock). Throws what the visitor throws.
void snapshot(cm_registry& r, SnapshotVisitor& v, const SnapshotOptions& o = {});
// The same walk for a caller that holds r.mu already (the sink host), without
// collectors.
void snapshot_locked(cm_registry& r, SnapshotVisitor& v, const NameFilter* names = nullptr);

}  // namespace cm
