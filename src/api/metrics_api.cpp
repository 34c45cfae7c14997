// SPDX-License-Identifier: Apache-2.0
// extern "C" shims of metrics.h: validate, call the core, turn exceptions
// into statuses. The update functions are the hot path: no try, no lock.
#include <cachemeter/metrics.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>

#include "api/guard.h"
#include "metrics/registry.h"
#include "metrics/shared/layout.h"
#include "metrics/snapshot.h"
#if CM_WITH_SQLITE
#include "persist/persist.h"
#endif

namespace {

cm_registry* registry_or_default(cm_registry* reg) { return reg ? reg : cm_registry_default(); }

int new_family(const char* api, cm::Kind kind, cm_registry* reg, const char* name, const char* help,
               const char* const* label_names, size_t nlabels, const double* bounds, size_t nbounds,
               cm_family** out) {
  return cm::guard(api, [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    CM_REQUIRE(name != nullptr, "name is NULL");
    *out = cm::register_family(*registry_or_default(reg), kind, name, help, label_names, nlabels, bounds,
                               nbounds, false);
    return CM_OK;
  });
}

}  // namespace

extern "C" {

CM_EXTERN int cm_registry_new(cm_registry** out, const char* options) {
  return cm::guard("cm_registry_new", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    *out = cm::make_registry(options).release();
    return CM_OK;
  });
}

CM_EXTERN void cm_registry_free(cm_registry* reg) {
  if (reg && !reg->is_default) delete reg;
}

CM_EXTERN cm_registry* cm_registry_default(void) {
  // Created on first use and never destroyed: other threads may still record
  // into it while the process exits.
  static cm_registry* def = [] {
    cm_registry* r = cm::make_registry(nullptr).release();
    r->is_default = true;
    return r;
  }();
  return def;
}

CM_EXTERN int cm_counter_new(cm_registry* reg, const char* name, const char* help,
                             const char* const* label_names, size_t nlabels, cm_family** out) {
  return new_family("cm_counter_new", cm::Kind::Counter, reg, name, help, label_names, nlabels, nullptr, 0,
                    out);
}

CM_EXTERN int cm_gauge_new(cm_registry* reg, const char* name, const char* help,
                           const char* const* label_names, size_t nlabels, cm_family** out) {
  return new_family("cm_gauge_new", cm::Kind::Gauge, reg, name, help, label_names, nlabels, nullptr, 0, out);
}

CM_EXTERN int cm_gauge_new_mode(cm_registry* reg, const char* name, const char* help,
                                const char* const* label_names, size_t nlabels, const char* mode,
                                cm_family** out) {
  return cm::guard("cm_gauge_new_mode", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    CM_REQUIRE(name != nullptr, "name is NULL");
    int m = -1;
    if (mode && *mode) {
      cm::shared::GaugeMode gm;
      CM_REQUIRE(cm::shared::parse_gauge_mode(mode, &gm),
                 std::string("gauge mode \"") + mode + "\": expected sum, max, min, livesum, livemax, mostrecent or all");
      m = static_cast<int>(gm);
    }
    *out = cm::register_family(*registry_or_default(reg), cm::Kind::Gauge, name, help, label_names, nlabels,
                               nullptr, 0, false, m);
    return CM_OK;
  });
}

CM_EXTERN int cm_histogram_new(cm_registry* reg, const char* name, const char* help,
                               const char* const* label_names, size_t nlabels, const double* bounds,
                               size_t nbounds, cm_family** out) {
  return new_family("cm_histogram_new", cm::Kind::Histogram, reg, name, help, label_names, nlabels, bounds,
                    nbounds, out);
}

CM_EXTERN int cm_family_series(cm_family* f, const char* const* values, size_t nvalues, cm_series** out) {
  return cm::guard("cm_family_series", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    CM_REQUIRE(f != nullptr, "family is NULL");
    *out = cm::family_series(*f, values, nvalues);
    return CM_OK;
  });
}

// The update functions keep their rare paths out of line (tail calls), so
// the common path needs no stack frame.
namespace {
[[gnu::noinline, gnu::cold]] void counter_add_rejected(cm_series* s, double v) {
  if (s->kind != cm::Kind::Counter) return cm::count_invalid(s, "cm_counter_add", "not a counter");
  if (v == 0) return cm::cells::add_scalar(s->block, v);  // -0.0: a valid increment of nothing
  if (!(v >= 0)) return cm::count_invalid(s, "cm_counter_add", "negative or NaN increment");
  if (!(v <= DBL_MAX)) return cm::count_invalid(s, "cm_counter_add", "infinite increment");
}
[[gnu::noinline, gnu::cold]] void wrong_kind(cm_series* s, const char* api, const char* what) {
  cm::count_invalid(s, api, what);
}
}  // namespace

CM_EXTERN void cm_counter_add(cm_series* s, double v) {
  if (!s) [[unlikely]] return;
  // One rule: the increment is finite and not negative. +Inf would leave the
  // counter at +Inf for good, NaN poisons it. One unsigned compare of the
  // bits: +0.0 .. DBL_MAX are exactly the patterns below +Inf's; the rest
  // (negative, -0.0 which is fine, infinities, NaNs) take the cold path.
  if (s->kind != cm::Kind::Counter || std::bit_cast<uint64_t>(v) >= 0x7FF0000000000000ull) [[unlikely]]
    return counter_add_rejected(s, v);
  cm::cells::add_scalar(s->block, v);
}

CM_EXTERN void cm_gauge_add(cm_series* s, double v) {
  if (!s) [[unlikely]] return;
  if (s->kind != cm::Kind::Gauge) [[unlikely]] return wrong_kind(s, "cm_gauge_add", "not a gauge");
  // A NaN or infinite delta would stick until the next cm_gauge_set().
  if (!(v >= -DBL_MAX && v <= DBL_MAX)) [[unlikely]]
    return wrong_kind(s, "cm_gauge_add", "NaN or infinite increment");
  cm::cells::add_scalar(s->block, v);
}

CM_EXTERN void cm_gauge_set(cm_series* s, double v) {
  if (!s) return;
  if (s->kind != cm::Kind::Gauge) [[unlikely]]
    return cm::count_invalid(s, "cm_gauge_set", "not a gauge");
  cm::SeriesValue set;
  set.kind = cm::Kind::Gauge;
  set.double_part = v;
  cm::write_series(*s, set, false);
}

CM_EXTERN void cm_histogram_observe(cm_series* s, double v) {
  if (!s) [[unlikely]] return;
  if (s->kind != cm::Kind::Histogram) [[unlikely]]
    return wrong_kind(s, "cm_histogram_observe", "not a histogram");
  // NaN has no bucket; an infinite value would stay in _sum for good.
  if (!(v >= -DBL_MAX && v <= DBL_MAX)) [[unlikely]]
    return wrong_kind(s, "cm_histogram_observe", "NaN or infinite observation");
  // First bucket whose bound is >= v; nbounds is the +Inf bucket.
  uint32_t i;
  if (s->nbounds <= 16) {
    i = 0;
    while (i < s->nbounds && s->bounds[i] < v) ++i;
  } else {
    i = static_cast<uint32_t>(std::lower_bound(s->bounds, s->bounds + s->nbounds, v) - s->bounds);
  }
  cm::cells::observe(s->block, 1 + i, v);
}

CM_EXTERN double cm_series_value(const cm_series* s) {
  if (!s) return NAN;
  cm::SeriesValue v;
  cm::read_series(*s, v);
  return v.value();
}

CM_EXTERN double cm_histogram_sum(const cm_series* s) {
  if (!s || s->kind != cm::Kind::Histogram) return NAN;
  cm::SeriesValue v;
  cm::read_series(*s, v);
  return v.sum;
}

CM_EXTERN int cm_registry_render(cm_registry* reg, int format, char** out, size_t* len) {
  return cm::guard("cm_registry_render", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    if (len) *len = 0;
    CM_REQUIRE(format == CM_FORMAT_PROMETHEUS || format == CM_FORMAT_OPENMETRICS || format == CM_FORMAT_JSON,
                "unknown format " + std::to_string(format));
    cm::OutBuf buf;
    cm_registry& r = *registry_or_default(reg);
    if (format == CM_FORMAT_JSON)
      cm::render_json(r, buf);
    else
      cm::render_text(r, buf, format == CM_FORMAT_OPENMETRICS);
    if (len) *len = buf.size();
    *out = buf.release();
    return CM_OK;
  });
}

CM_EXTERN int cm_registry_reset(cm_registry* reg) {
  return cm::guard("cm_registry_reset", [&] {
    cm::reset_registry(*registry_or_default(reg));
    return CM_OK;
  });
}

CM_EXTERN int cm_registry_persist(cm_registry* reg, const char* path, unsigned interval_ms) {
  return cm::guard("cm_registry_persist", [&]() -> int {
    CM_REQUIRE(reg != nullptr, "reg is NULL (persist a registry you free: the last flush happens then)");
    CM_REQUIRE(path != nullptr && *path, "path is NULL or empty");
    if (reg->shared)
      throw cm::Error(CM_ESTATE, "a shared registry is not persisted: its directory already keeps the pool's "
                                 "counts across restarts (docs/multiprocess.md)");
#if CM_WITH_SQLITE
    cm::persist::start(*reg, path, interval_ms);
    return CM_OK;
#else
    (void)interval_ms;
    throw cm::Error(CM_EUNAVAILABLE, "built without SQLite (CM_WITH_SQLITE=OFF)");
#endif
  });
}

CM_EXTERN int cm_registry_flush(cm_registry* reg) {
  return cm::guard("cm_registry_flush", [&]() -> int {
    CM_REQUIRE(reg != nullptr, "reg is NULL");
#if CM_WITH_SQLITE
    cm::persist::flush(*reg);
    return CM_OK;
#else
    throw cm::Error(CM_EUNAVAILABLE, "built without SQLite (CM_WITH_SQLITE=OFF)");
#endif
  });
}

CM_EXTERN int cm_registry_load(cm_registry* reg, const char* path) {
  return cm::guard("cm_registry_load", [&]() -> int {
    CM_REQUIRE(reg != nullptr, "reg is NULL");
    CM_REQUIRE(path != nullptr && *path, "path is NULL or empty");
#if CM_WITH_SQLITE
    cm::persist::load(*reg, path);
    return CM_OK;
#else
    throw cm::Error(CM_EUNAVAILABLE, "built without SQLite (CM_WITH_SQLITE=OFF)");
#endif
  });
}
}
