/* SPDX-License-Identifier: Apache-2.0 */
// The snapshot walk of a shared registry (metrics/snapshot.h): the aggregate
// of every worker slot in the directory, read with pread, yielded as
// families and series like an in-process registry's.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "metrics/shared/directory.h"
#include "metrics/snapshot.h"

namespace cm::shared {

// Reads the directory (no lock held), then takes r.mu and visits the
// aggregate: families by name, series by label values (a gauge of mode
// `all` gets a trailing `worker` label). Damaged slot files are left out
// (and named in cm_errmsg() of the calling thread). Throws what the visitor
// or the directory throws (an unreadable directory: CM_EUNAVAILABLE).
void snapshot_shared(cm_registry& r, SnapshotVisitor& v, const NameFilter* names);

// The pool's aggregate values of a shared registry's series, read once from
// the directory (for cm_cache_stats_json: the pool's totals).
class PoolValues {
 public:
  // Null for a registry that renders no directory (in-process, or counting
  // locally only). Throws what Directory::read throws.
  static std::unique_ptr<PoolValues> of(cm_registry& r);
  // The pool's value of s (its family and label values); false when the
  // pool has no such series.
  bool get(const cm_series& s, SeriesValue& out) const;

 private:
  std::unique_ptr<Directory::View> view_;
  std::unordered_map<std::string, uint32_t> family_ids_;
};

// The directory a registry renders: its worker pool's, or the one it views
// (shared_readonly); nullptr for an in-process registry or one counting
// locally only (shared_fallback=local without a slot).
Directory* rendered_directory(const cm_registry& r);

}  // namespace cm::shared
