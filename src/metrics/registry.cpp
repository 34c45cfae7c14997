// SPDX-License-Identifier: Apache-2.0
// Registry, families and series: registration rules, lookup, reset.
#include "metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "metrics/names.h"
#include "metrics/shared/directory.h"
#include "metrics/shared/pool.h"
#include "metrics/shared/refresher.h"
#include "metrics/sink.h"
#include "util/clock.h"
#include "util/options.h"

namespace cm {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Counter: return "counter";
    case Kind::Gauge: return "gauge";
    case Kind::Histogram: return "histogram";
  }
  return "untyped";
}

// ---- SeriesIndex ------------------------------------------------------------

// Label values hashed eight bytes at a time (multiply-xorshift mixing), each
// value closed by its length so ("ab","c") and ("a","bc") differ. Not
// DoS-resistant: label values are chosen by the program, not by its clients.
static inline uint64_t mix(uint64_t h, uint64_t w) {
  h = (h ^ w) * 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 32);
}

uint64_t hash_values(const char* const* values, size_t n, size_t* lens) {
  uint64_t h = 0x243F6A8885A308D3ull;
  for (size_t i = 0; i < n; ++i) {
    const char* p = values[i];
    size_t len = std::strlen(p);
    if (lens) lens[i] = len;
    size_t k = 0;
    for (; k + 8 <= len; k += 8) {
      uint64_t w;
      std::memcpy(&w, p + k, 8);
      h = mix(h, w);
    }
    // The last 0..7 bytes through fixed-size loads (a variable-length memcpy
    // would be a call and a store-forwarding stall).
    if (k < len) {
      const char* t = p + k;
      size_t r = len - k;
      uint64_t tail;
      if (len >= 8) {
        std::memcpy(&tail, p + len - 8, 8);  // overlaps bytes already mixed
      } else if (r >= 4) {
        uint32_t lo, hi;
        std::memcpy(&lo, t, 4);
        std::memcpy(&hi, t + r - 4, 4);
        tail = (uint64_t{hi} << 32) | lo;
      } else {
        tail = (uint64_t{static_cast<unsigned char>(t[0])} << 16) |
               (uint64_t{static_cast<unsigned char>(t[r / 2])} << 8) | static_cast<unsigned char>(t[r - 1]);
      }
      h = mix(h, tail);
    }
    h = mix(h, len);
  }
  return h ^ (h >> 29);
}

// Equal bytes, len known for both sides: word loads, the last word
// overlapping, so no call and no byte loop.
static inline bool same_bytes(const char* a, const char* b, size_t len) {
  if (len >= 8) {
    uint64_t x, y;
    size_t k = 0;
    for (; k + 8 < len; k += 8) {
      std::memcpy(&x, a + k, 8);
      std::memcpy(&y, b + k, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + len - 8, 8);
    std::memcpy(&y, b + len - 8, 8);
    return x == y;
  }
  for (size_t k = 0; k < len; ++k)
    if (a[k] != b[k]) return false;
  return true;
}

static bool same_values(const cm_series& s, const char* const* values, size_t n, const size_t* lens) {
  for (size_t i = 0; i < n; ++i) {
    const std::string& v = s.values[i];
    if (lens && i < kMaxFastLabels) {
      if (v.size() != lens[i] || !same_bytes(v.data(), values[i], v.size())) return false;
    } else if (std::strcmp(v.c_str(), values[i]) != 0) {
      return false;
    }
  }
  return true;
}

SeriesIndex::SeriesIndex() {
  tables_.push_back(std::make_unique<Table>(8));
  cur_.store(tables_.back().get(), std::memory_order_relaxed);
}

cm_series* SeriesIndex::find(uint64_t h, const char* const* values, size_t n, const size_t* lens) const {
  const Table* t = cur_.load(std::memory_order_acquire);
  for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
    cm_series* s = t->slots[i].load(std::memory_order_acquire);
    if (!s) return nullptr;
    if (s->hash == h && same_values(*s, values, n, lens)) return s;
  }
}

void SeriesIndex::place(Table& t, cm_series* s) {
  size_t i = s->hash & t.mask;
  while (t.slots[i].load(std::memory_order_relaxed)) i = (i + 1) & t.mask;
  t.slots[i].store(s, std::memory_order_release);
}

void SeriesIndex::insert(cm_series* s) {
  Table* t = cur_.load(std::memory_order_relaxed);
  if ((count_ + 1) * 2 > t->mask + 1) {  // keep the load factor under 1/2
    auto bigger = std::make_unique<Table>((t->mask + 1) * 2);
    for (size_t i = 0; i <= t->mask; ++i)
      if (cm_series* old = t->slots[i].load(std::memory_order_relaxed)) place(*bigger, old);
    t = bigger.get();
    tables_.push_back(std::move(bigger));
    cur_.store(t, std::memory_order_release);
  }
  place(*t, s);
  ++count_;
}

}  // namespace cm

std::string_view cm_family::om_name() const {
  std::string_view n = name;
  if (kind == cm::Kind::Counter) n.remove_suffix(6);  // "_total"
  return n;
}

cm_registry::~cm_registry() {
  refresher.reset();  // stops its thread: no collector runs from here on
  sinks.reset();  // stops the flusher and writes the last flush
  for (auto& [name, f] : families)
    for (auto& s : f->series) cm::cells::Space::get().detach(s->block);
  if (shared) cm::cells::Space::get().drop_pool(shared.get());
}

// With every lock held, in the only thread of a child of fork(). A run that
// the endpoint's checker or collector thread (the parent's) had in progress
// will never end here: closing its cache must not wait for it. Their guards
// start afresh (a parent thread may have held one).
void cm_registry::fork_child() {
  for (auto& [owner, h] : health) h->guard.forget_runs();
  for (auto& [owner, c] : collectors) c->guard.forget_runs();
}

namespace cm {

bool RunGuard::enter() {
  std::lock_guard<std::mutex> lk(mu_);
  if (retired_) return false;
  ++running_;
  return true;
}

void RunGuard::leave() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    --running_;
  }
  cv_.notify_all();
}

void RunGuard::retire() {
  std::unique_lock<std::mutex> lk(mu_);
  retired_ = true;
  cv_.wait(lk, [&] { return running_ == 0; });
}

void RunGuard::forget_runs() {
  fork::renew(mu_);
  fork::renew(cv_);
  running_ = 0;
}

}  // namespace cm

namespace cm {

// ---- registry ---------------------------------------------------------------

std::vector<std::string> sample_names_of(Kind kind, const std::string& name) {
  switch (kind) {
    case Kind::Counter: {
      std::string base = name.substr(0, name.size() - 6);
      return {name, base, base + "_created"};
    }
    case Kind::Gauge: return {name};
    case Kind::Histogram:
      return {name, name + "_bucket", name + "_count", name + "_sum", name + "_created"};
  }
  return {name};
}

std::unique_ptr<cm_registry> make_registry(const char* options) {
  Options o = Options::parse(options, "registry options");
  o.check_known({"prefix", "const_labels", "max_series", "max_label_value_bytes", "persist_gauges", "shared",
                 "max_workers", "gauge_mode", "shared_fallback", "shared_readonly", "shared_refresh_ms"});
  auto r = std::make_unique<cm_registry>();
  r->created = unix_time_now();
  r->prefix = o.get("prefix", "cachemeter_");
  CM_REQUIRE(!r->prefix.empty() && valid_metric_name(r->prefix),
          "option \"prefix\": \"" + r->prefix + "\" is not a valid metric name prefix");
  r->max_series = static_cast<size_t>(o.get_int("max_series", 10000, 1, 100000000));
  r->max_label_value_bytes = static_cast<size_t>(o.get_size("max_label_value_bytes", 2048, 1, 1 << 20));
  r->persist_gauges = o.get_bool("persist_gauges", false);
  // Split the raw text, so that percent-encoded ',' and ':' stay inside values.
  if (std::string raw = o.get_raw("const_labels"); !raw.empty()) {
    for (std::string_view pair : split(raw, ',')) {
      size_t colon = pair.find(':');
      CM_REQUIRE(colon != std::string_view::npos,
              "option \"const_labels\": expected name:value, got \"" + std::string(pair) + "\"");
      std::string k = percent_decode(pair.substr(0, colon), "const_labels");
      std::string v = percent_decode(pair.substr(colon + 1), "const_labels");
      CM_REQUIRE(valid_label_name(k) && k != "le", "option \"const_labels\": \"" + k + "\" is not a valid label name");
      CM_REQUIRE(valid_utf8(v), "option \"const_labels\": the value of \"" + k + "\" is not valid UTF-8");
      for (const auto& kv : r->const_labels)
        CM_REQUIRE(kv.first != k, "option \"const_labels\": label \"" + k + "\" given twice");
      r->const_labels.emplace_back(std::move(k), std::move(v));
    }
  }
  if (o.has("shared") && o.get_bool("shared_readonly", false)) {
    for (const char* k : {"gauge_mode", "shared_fallback", "shared_refresh_ms"})
      CM_REQUIRE(!o.has(k), std::string("option \"") + k + "\" does not apply to a shared_readonly registry");
    r->shared_view = shared::Directory::open(
        o.get("shared", ""), static_cast<uint32_t>(o.get_int("max_workers", 0, 0, shared::kMaxWorkersLimit)), true);
  } else if (o.has("shared")) {
    shared::SharedPool::Options so;
    so.dir = o.get("shared", "");
    so.max_workers = static_cast<uint32_t>(o.get_int("max_workers", 64, 1, shared::kMaxWorkersLimit));
    std::string fb = o.get("shared_fallback", "fail");
    CM_REQUIRE(fb == "fail" || fb == "local", "option \"shared_fallback\": expected fail or local, got \"" + fb + "\"");
    so.fallback_local = fb == "local";
    std::string gm = o.get("gauge_mode", "livesum");
    shared::GaugeMode mode;
    CM_REQUIRE(shared::parse_gauge_mode(gm, &mode),
               "option \"gauge_mode\": expected sum, max, min, livesum, livemax, mostrecent or all, got \"" + gm +
                   "\"");
    r->default_gauge_mode = static_cast<uint8_t>(mode);
    int64_t refresh_ms = o.get_int("shared_refresh_ms", 1000, 0, int64_t{1} << 31);
    r->shared = std::make_unique<shared::SharedPool>(so);
    if (refresh_ms > 0) {
      r->refresher = std::make_unique<shared::Refresher>(*r, refresh_ms);
      cm_registry* rp = r.get();
      r->shared->on_claim([rp] { rp->refresher->start(); });  // a fork child's own thread
    }
  } else {
    for (const char* k : {"max_workers", "gauge_mode", "shared_fallback", "shared_readonly", "shared_refresh_ms"})
      CM_REQUIRE(!o.has(k), std::string("option \"") + k + "\" applies to shared registries only (shared=DIR)");
  }
  cm_family* rej = register_family(*r, Kind::Counter, r->prefix + "series_rejected_total",
                                   "Series creations refused: the registry reached max_series, or a label "
                                   "value was longer than max_label_value_bytes.",
                                   nullptr, 0, nullptr, 0, true);
  r->series_rejected = family_series(*rej, nullptr, 0);
  cm_family* inv = register_family(*r, Kind::Counter, r->prefix + "invalid_observations_total",
                                   "Updates ignored: negative or NaN counter increments, NaN "
                                   "observations, updates of the wrong metric type.",
                                   nullptr, 0, nullptr, 0, true);
  r->invalid_observations = family_series(*inv, nullptr, 0);
  return r;
}

static const std::vector<double>& default_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return b;
}

cm_family* register_family(cm_registry& r, Kind kind, std::string_view name_in, const char* help,
                           const char* const* label_names, size_t nlabels, const double* bounds,
                           size_t nbounds, bool internal, int gauge_mode) {
  std::string name(name_in);
  CM_REQUIRE(valid_metric_name(name), "name \"" + name + "\" is not a valid metric name");
  if (kind == Kind::Counter && (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0)) {
    name += "_total";
    // "_" would become "__total": the rules hold for the exposed name too.
    CM_REQUIRE(valid_metric_name(name), "counter name \"" + std::string(name_in) + "\" exposed as \"" + name +
                                            "\" is not a valid metric name");
  }
  CM_REQUIRE(!(kind == Kind::Counter && name == "_total"), "name \"" + name + "\" is not a valid counter name");
  std::string help_s = help ? help : "";
  CM_REQUIRE(valid_utf8(help_s), "help of \"" + name + "\" is not valid UTF-8");
  CM_REQUIRE(nlabels == 0 || label_names, "label_names is NULL but nlabels is " + std::to_string(nlabels));
  std::vector<std::string> labels;
  for (size_t i = 0; i < nlabels; ++i) {
    CM_REQUIRE(label_names[i] != nullptr, "label_names[" + std::to_string(i) + "] is NULL");
    std::string l = label_names[i];
    CM_REQUIRE(valid_label_name(l), "label name \"" + l + "\" is not valid");
    CM_REQUIRE(l != "le", "label name \"le\" is reserved (histogram bucket bounds)");
    for (const auto& prev : labels) CM_REQUIRE(prev != l, "label name \"" + l + "\" given twice");
    for (const auto& kv : r.const_labels)
      CM_REQUIRE(kv.first != l, "label name \"" + l + "\" is already a constant label of the registry");
    labels.push_back(std::move(l));
  }
  std::vector<double> bnds;
  if (kind == Kind::Histogram) {
    CM_REQUIRE(nbounds == 0 || bounds, "bounds is NULL but nbounds is " + std::to_string(nbounds));
    CM_REQUIRE(nbounds <= CM_HISTOGRAM_MAX_BOUNDS,
            "at most " + std::to_string(CM_HISTOGRAM_MAX_BOUNDS) + " bucket bounds, got " + std::to_string(nbounds));
    if (nbounds == 0) bnds = default_buckets();
    for (size_t i = 0; i < nbounds; ++i) {
      CM_REQUIRE(std::isfinite(bounds[i]), "bucket bound " + std::to_string(i) + " is not finite");
      CM_REQUIRE(i == 0 || bounds[i] > bounds[i - 1], "bucket bounds must be strictly increasing (bound " +
                                                       std::to_string(i) + ")");
      bnds.push_back(bounds[i]);
    }
  }

  const uint8_t mode = kind != Kind::Gauge ? 0 : gauge_mode >= 0 ? static_cast<uint8_t>(gauge_mode) : r.default_gauge_mode;
  std::lock_guard<std::mutex> g(r.mu);
  if (auto it = r.families.find(name); it != r.families.end()) {
    cm_family* f = it->second.get();
    if (f->kind == kind && f->label_names == labels && f->bounds == bnds) {
      if (gauge_mode >= 0 && f->gauge_mode != mode)
        throw Error(CM_EEXIST, "\"" + name + "\" is already registered with gauge mode " +
                                   shared::gauge_mode_name(static_cast<shared::GaugeMode>(f->gauge_mode)));
      return f;
    }
    throw Error(CM_EEXIST, "\"" + name + "\" is already registered as a " + kind_name(f->kind) +
                               " with other labels or buckets");
  }
  std::vector<std::string> samples = sample_names_of(kind, name);
  for (const auto& s : samples)
    if (auto it = r.sample_names.find(s); it != r.sample_names.end())
      throw Error(CM_EEXIST, "\"" + name + "\" would expose \"" + s + "\", which the " +
                                 kind_name(it->second->kind) + " \"" + it->second->name + "\" already exposes");
  if (r.shared_view && !internal)
    throw Error(CM_ESTATE, "\"" + name + "\": a shared_readonly registry shows its directory; it registers nothing");
  auto f = std::make_unique<cm_family>();
  if (r.shared) {
    // Every worker's family of this name has this layout (CM_EEXIST when
    // another worker registered it otherwise).
    shared::FamilyDef def;
    def.kind = static_cast<uint8_t>(kind);
    def.gauge_mode = mode;
    def.name = name;
    def.help = help_s;
    def.label_names = labels;
    def.bounds = bnds;
    f->shared_id = r.shared->dir().family_id(def);
  }
  f->reg = &r;
  f->kind = kind;
  f->gauge_mode = mode;
  f->internal = internal;
  f->name = name;
  f->help = std::move(help_s);
  f->label_names = std::move(labels);
  f->bounds = std::move(bnds);
  for (double b : f->bounds) {
    OutBuf t;
    t.append_le(b);
    f->le_text.emplace_back(t.view());
  }
  cm_family* out = f.get();
  for (auto& s : samples) r.sample_names.emplace(std::move(s), out);
  r.families.emplace(name, std::move(f));
  if (r.sinks) r.sinks->family_registered(*out);
  return out;
}

// The key of a held series in cm_family::held: each value's length, then its bytes.
static std::string held_key(const char* const* values, size_t n) {
  std::string k;
  for (size_t i = 0; i < n; ++i) {
    size_t len = std::strlen(values[i]);
    k.append(reinterpret_cast<const char*>(&len), sizeof len);
    k.append(values[i], len);
  }
  return k;
}

static void check_values(const cm_family& f, const char* const* values, size_t n) {
  CM_REQUIRE(n == f.label_names.size(), "\"" + f.name + "\" has " + std::to_string(f.label_names.size()) +
                                         " labels, got " + std::to_string(n) + " values");
  CM_REQUIRE(n == 0 || values, "values is NULL");
  for (size_t i = 0; i < n; ++i) CM_REQUIRE(values[i] != nullptr, "values[" + std::to_string(i) + "] is NULL");
}

// Creates the series (not yet indexed): the checks, the limits, the cells and
// the restore. Registry mutex.
static cm_series* create_series(cm_family& f, const char* const* values, size_t n, uint64_t h,
                                int gauge_mode = -1);

cm_series* family_series(cm_family& f, const char* const* values, size_t n) {
  check_values(f, values, n);
  size_t lens[kMaxFastLabels];
  uint64_t h;
  if (n <= kMaxFastLabels) {
    h = hash_values(values, n, lens);
  } else {
    h = hash_values(values, n);
  }
  const size_t* lp = n <= kMaxFastLabels ? lens : nullptr;
  if (cm_series* s = f.index.find(h, values, n, lp)) return s;

  cm_registry& r = *f.reg;
  std::lock_guard<std::mutex> g(r.mu);
  if (cm_series* s = f.index.find(h, values, n, lp)) return s;
  if (!f.held.empty()) {
    if (auto it = f.held.find(held_key(values, n)); it != f.held.end()) {
      // Handed out now: it joins the index and stays for good.
      cm_series* s = it->second;
      f.held.erase(it);
      s->held = false;
      f.index.insert(s);
      return s;
    }
  }
  cm_series* out = create_series(f, values, n, h);
  f.index.insert(out);
  return out;
}

cm_series* hold_series(cm_family& f, const char* const* values, size_t n, int gauge_mode) {
  check_values(f, values, n);
  size_t lens[kMaxFastLabels];
  uint64_t h = n <= kMaxFastLabels ? hash_values(values, n, lens) : hash_values(values, n);
  const size_t* lp = n <= kMaxFastLabels ? lens : nullptr;
  cm_registry& r = *f.reg;
  std::lock_guard<std::mutex> g(r.mu);
  if (cm_series* s = f.index.find(h, values, n, lp)) return s;  // published: never removed
  std::string key = held_key(values, n);
  if (auto it = f.held.find(key); it != f.held.end()) {
    ++it->second->holds;
    return it->second;
  }
  f.held.reserve(f.held.size() + 1);  // the insert below cannot throw after create_series
  cm_series* out = create_series(f, values, n, h, gauge_mode);
  out->held = true;
  out->holds = 1;
  f.held.emplace(std::move(key), out);
  return out;
}

void release_series(cm_registry& r, cm_series* const* series, size_t n) noexcept {
  std::lock_guard<std::mutex> g(r.mu);
  cells::Space& space = cells::Space::get();
  for (size_t i = 0; i < n; ++i) {
    cm_series* s = series[i];
    if (!s || !s->held || --s->holds > 0) continue;
    cm_family& f = *s->family;
    std::vector<const char*> vp;
    try {
      vp.reserve(s->values.size());
    } catch (...) {
      continue;  // out of memory: the series stays (as it did before removal existed)
    }
    for (const auto& v : s->values) vp.push_back(v.c_str());
    try {
      f.held.erase(held_key(vp.data(), vp.size()));
    } catch (...) {
      continue;
    }
    if (r.sinks) r.sinks->series_removed(*s);
    space.detach(s->block);
    if (!f.internal) --r.nseries;
    auto it = std::find_if(f.series.begin(), f.series.end(), [s](const auto& p) { return p.get() == s; });
    if (it != f.series.end()) f.series.erase(it);  // frees s; order is kept
  }
}

static cm_series* create_series(cm_family& f, const char* const* values, size_t n, uint64_t h,
                                int gauge_mode) {
  cm_registry& r = *f.reg;
  for (size_t i = 0; i < n; ++i) {
    size_t len = std::strlen(values[i]);
    if (len > r.max_label_value_bytes) {
      cells::add_count(r.series_rejected->block, 1, 1);
      throw Error(CM_ELIMIT, "the value of label \"" + f.label_names[i] + "\" of \"" + f.name + "\" is " +
                                 std::to_string(len) + " bytes, longer than max_label_value_bytes=" +
                                 std::to_string(r.max_label_value_bytes) + "; no series created");
    }
  }
  std::vector<std::string> vals(values, values + n);
  for (size_t i = 0; i < n; ++i)
    CM_REQUIRE(valid_utf8(vals[i]), "value of label \"" + f.label_names[i] + "\" is not valid UTF-8");
  if (!f.internal) {
    if (r.nseries >= r.max_series) {
      cells::add_count(r.series_rejected->block, 1, 1);
      throw Error(CM_ELIMIT, "the registry holds max_series=" + std::to_string(r.max_series) +
                                 " series; \"" + f.name + "\" gets no new series");
    }
  }
  auto s = std::make_unique<cm_series>();
  s->family = &f;
  s->kind = f.kind;
  s->hash = h;
  s->values = std::move(vals);
  s->created = unix_time_now();
  cells::Space& space = cells::Space::get();
  if (f.kind == Kind::Histogram) {
    s->bounds = f.bounds.data();
    s->nbounds = static_cast<uint32_t>(f.bounds.size());
    space.attach(s->block, 1 + s->nbounds + 1, 1, r.shared.get());  // sum, buckets..., +Inf
  } else {
    space.attach(s->block, cells::kScalarWords, 1, r.shared.get());  // double sum, integer sum
  }
  if (r.shared) {
    // Its record in the worker's slot: the other workers' renders see it.
    try {
      uint32_t word = space.pool_word(s->block);
      auto lk = space.lock();
      r.shared->publish(f.shared_id, word, s->block.width, s->block.ndoubles, s->values,
                        f.kind == Kind::Gauge && gauge_mode >= 0 ? static_cast<uint8_t>(gauge_mode) : shared::kFamilyMode);
    } catch (...) {
      space.detach(s->block);
      throw;
    }
  }
  cm_series* out = s.get();
  if (!f.series.empty() && f.series_sorted && !(f.series.back()->values < out->values)) f.series_sorted = false;
  f.series.push_back(std::move(s));
  // Restore before publishing: no thread can update the series yet.
  if (r.sinks) r.sinks->series_created(*out);
  if (!f.internal) ++r.nseries;
  return out;
}

void count_invalid(cm_series* s, const char* api, const char* why) {
  set_error(CM_EINVAL, std::string(api) + ": " + why + " (\"" + s->family->name + "\"); ignored");
  cells::add_count(s->family->reg->invalid_observations->block, 1, 1);
}

void reset_registry(cm_registry& r) {
  std::lock_guard<std::mutex> g(r.mu);
  double now = unix_time_now();
  cells::Space& space = cells::Space::get();
  for (auto& [name, f] : r.families) {
    auto lk = space.lock();
    for (auto& s : f->series) {
      space.reset(s->block, nullptr, lk);
      s->created = now;
    }
  }
}

}  // namespace cm

const std::vector<std::unique_ptr<cm_series>>& cm_family::sorted_series() {
  if (!series_sorted) {
    std::sort(series.begin(), series.end(), [](const auto& a, const auto& b) { return a->values < b->values; });
    series_sorted = true;
  }
  return series;
}

namespace cm {

void reset_series(cm_registry& r, cm_series* const* series, size_t n) {
  std::lock_guard<std::mutex> g(r.mu);
  double now = unix_time_now();
  cells::Space& space = cells::Space::get();
  auto lk = space.lock();
  for (size_t i = 0; i < n; ++i) {
    if (!series[i]) continue;
    space.reset(series[i]->block, nullptr, lk);
    series[i]->created = now;
  }
}

void add_collector(cm_registry& r, const void* owner, std::function<void()> fn, bool may_block) {
  auto c = std::make_shared<cm_registry::Collector>();
  c->fn = std::move(fn);
  c->may_block = may_block;
  std::lock_guard<std::mutex> g(r.collectors_mu);
  std::shared_ptr<cm_registry::Collector>& slot = r.collectors[owner];
  if (slot && slot->may_block) --r.blocking_collectors;
  if (may_block) ++r.blocking_collectors;
  slot = std::move(c);
}

bool has_blocking_collectors(cm_registry& r) {
  std::lock_guard<std::mutex> g(r.collectors_mu);
  return r.blocking_collectors > 0;
}

void remove_collector(cm_registry& r, const void* owner) {
  std::shared_ptr<cm_registry::Collector> c;
  {
    std::lock_guard<std::mutex> g(r.collectors_mu);
    auto it = r.collectors.find(owner);
    if (it == r.collectors.end()) return;
    c = std::move(it->second);
    r.collectors.erase(it);
    if (c->may_block) --r.blocking_collectors;
  }
  c->guard.retire();
}

std::unique_ptr<std::unordered_set<const cm_family*>> select_families(const cm_registry& r, const NameFilter* names) {
  if (!names || names->empty()) return nullptr;
  auto keep = std::make_unique<std::unordered_set<const cm_family*>>();
  for (const std::string& n : *names)
    if (auto it = r.sample_names.find(n); it != r.sample_names.end()) keep->insert(it->second);
  return keep;
}

void add_health_check(cm_registry& r, const void* owner, std::string cache, std::string backend,
                      std::function<int()> check) {
  auto h = std::make_shared<cm_registry::HealthCheck>();
  h->cache = std::move(cache);
  h->backend = std::move(backend);
  h->check = std::move(check);
  std::lock_guard<std::mutex> g(r.health_mu);
  r.health[owner] = std::move(h);
  ++r.health_gen;
}

void remove_health_check(cm_registry& r, const void* owner) {
  std::shared_ptr<cm_registry::HealthCheck> h;
  {
    std::lock_guard<std::mutex> g(r.health_mu);
    auto it = r.health.find(owner);
    if (it == r.health.end()) return;
    h = std::move(it->second);
    r.health.erase(it);
    ++r.health_gen;
  }
  h->guard.retire();
}

bool run_health_check(cm_registry::HealthCheck& h, int* rc, std::string* err) {
  if (!h.guard.enter()) return false;
  cm_errclear();
  int status = CM_EBACKEND;
  try {
    status = h.check();
  } catch (...) {
    set_error(CM_EBACKEND, "health check failed");
  }
  *rc = status;
  *err = status == CM_OK ? std::string() : std::string(cm_errmsg());
  h.guard.leave();
  return true;
}

void run_collectors(cm_registry& r, Collectors which) {
  std::vector<std::shared_ptr<cm_registry::Collector>> todo;
  {
    std::lock_guard<std::mutex> g(r.collectors_mu);
    todo.reserve(r.collectors.size());
    for (auto& [owner, c] : r.collectors)
      if (which == Collectors::All || c->may_block == (which == Collectors::Blocking)) todo.push_back(c);
  }
  for (auto& c : todo) {
    if (!c->guard.enter()) continue;
    try {
      c->fn();
    } catch (...) {
      // A collector only refreshes gauges: the render goes on without it.
    }
    c->guard.leave();
  }
}

}  // namespace cm
