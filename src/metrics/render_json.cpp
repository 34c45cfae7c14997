// SPDX-License-Identifier: Apache-2.0
// JSON exposition (schema in docs/exposition.md): values, histograms with
// cumulative buckets and estimated percentiles.
#include <cmath>
#include <vector>

#include "metrics/snapshot.h"

namespace cm {
namespace {

// Numbers as JSON numbers; the non-finite values, which JSON cannot spell, as
// the strings "NaN", "+Inf", "-Inf".
void json_number(OutBuf& out, double v) {
  if (std::isfinite(v)) {
    out.append_double(v);
  } else {
    out.push('"');
    out.append_double(v);
    out.push('"');
  }
}

void json_key(OutBuf& out, std::string_view k) {
  append_json_string(out, k);
  out.push(':');
}

}  // namespace

// Estimates the q-quantile from cumulative bucket counts the way Prometheus'
// histogram_quantile() does: linear interpolation inside the bucket holding
// the rank; a rank in the +Inf bucket gives the largest finite bound; the
// first bucket's lower edge is 0 when its bound is positive.
double histogram_quantile(double q, const std::vector<double>& bounds, const uint64_t* cum) {
  uint64_t total = cum[bounds.size()];
  if (total == 0) return NAN;
  double rank = q * static_cast<double>(total);
  size_t i = 0;
  while (i < bounds.size() && static_cast<double>(cum[i]) < rank) ++i;
  if (i == bounds.size()) return bounds.empty() ? NAN : bounds.back();
  double upper = bounds[i];
  double lower = i == 0 ? (upper > 0 ? 0 : upper) : bounds[i - 1];
  uint64_t below = i == 0 ? 0 : cum[i - 1];
  uint64_t in = cum[i] - below;
  if (in == 0) return upper;
  return lower + (upper - lower) * ((rank - static_cast<double>(below)) / static_cast<double>(in));
}

namespace {

class JsonRender final : public SnapshotVisitor {
 public:
  JsonRender(cm_registry& r, OutBuf& out) : r_(r), out_(out) {}

  void begin(const cm_registry&) override {
    size_t hint = r_.last_render_bytes[2];
    out_.reserve(out_.size() + hint + hint / 8);
    out_.append("{\"families\":[");
  }

  bool family(const cm_family& f) override {
    if (!first_family_) out_.push(',');
    first_family_ = false;
    out_.push('{');
    json_key(out_, "name");
    append_json_string(out_, f.name);
    out_.append(",\"type\":\"");
    out_.append(kind_name(f.kind));
    out_.append("\",\"help\":");
    append_json_string(out_, f.help);
    out_.append(",\"labels\":[");
    for (size_t i = 0; i < f.label_names.size(); ++i) {
      if (i) out_.push(',');
      append_json_string(out_, f.label_names[i]);
    }
    out_.push(']');
    if (f.kind == Kind::Histogram) {
      out_.append(",\"bounds\":[");
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        if (i) out_.push(',');
        out_.append_double(f.bounds[i]);
      }
      out_.push(']');
    }
    out_.append(",\"series\":[");
    cum_.resize(f.bounds.size() + 1);
    first_series_ = true;
    return true;
  }

  void series(const cm_family& f, const cm_series& s, const SeriesValue& v) override {
    OutBuf& out = out_;
    if (!first_series_) out.push(',');
    first_series_ = false;
    out.append("{\"labels\":{");
    bool first_label = true;
    auto label = [&](std::string_view k, std::string_view val) {
      if (!first_label) out.push(',');
      first_label = false;
      json_key(out, k);
      append_json_string(out, val);
    };
    for (const auto& [k, val] : r_.const_labels) label(k, val);
    for (size_t i = 0; i < f.label_names.size(); ++i) label(f.label_names[i], s.values[i]);
    out.append("},\"created\":");
    json_number(out, s.created);  // a loaded file may say +Inf
    if (f.kind != Kind::Histogram) {
      out.append(",\"value\":");
      json_number(out, v.value());
      out.push('}');
      return;
    }
    uint64_t running = 0;
    for (size_t i = 0; i <= f.bounds.size(); ++i) cum_[i] = running += v.buckets[i];
    out.append(",\"count\":");
    out.append_u64(running);
    out.append(",\"sum\":");
    json_number(out, v.sum);
    out.append(",\"buckets\":[");
    for (size_t i = 0; i <= f.bounds.size(); ++i) {
      if (i) out.push(',');
      out.append("{\"le\":");
      json_number(out, i < f.bounds.size() ? f.bounds[i] : INFINITY);
      out.append(",\"count\":");
      out.append_u64(cum_[i]);
      out.push('}');
    }
    out.push(']');
    for (auto [q, k] : {std::pair{0.5, ",\"p50\":"}, {0.9, ",\"p90\":"}, {0.99, ",\"p99\":"}}) {
      out.append(k);
      double e = histogram_quantile(q, f.bounds, cum_.data());
      if (std::isnan(e))
        out.append("null");
      else
        json_number(out, e);
    }
    out.push('}');
  }

  void family_end(const cm_family&) override { out_.append("]}"); }

  void end(const cm_registry&) override { out_.push(']'); }

 private:
  cm_registry& r_;
  OutBuf& out_;
  std::vector<uint64_t> cum_;
  bool first_family_ = true;
  bool first_series_ = true;
};

}  // namespace

void render_json(cm_registry& r, OutBuf& out, const NameFilter* names, bool collect) {
  JsonRender v(r, out);
  snapshot(r, v, {names, collect});
  // The caches' hit ratios (docs/exposition.md), outside the registry lock:
  // the cache layer takes its own locks, which come before it.
  if (auto caches = r.json_caches.load(std::memory_order_acquire)) {
    out.append(",\"caches\":");
    caches(r, out);
  }
  out.append("}\n");
  std::lock_guard<std::mutex> g(r.mu);
  r.last_render_bytes[2] = out.size();
}

}  // namespace cm
