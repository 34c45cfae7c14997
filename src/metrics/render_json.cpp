// JSON exposition (schema in docs/exposition.md): values, histograms with
// cumulative buckets and estimated percentiles.
#include <cmath>
#include <vector>

#include "metrics/registry.h"

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

void render_json(cm_registry& r, OutBuf& out, const NameFilter* names, bool collect) {
  if (collect) run_collectors(r);
  std::lock_guard<std::mutex> g(r.mu);
  size_t& hint = r.last_render_bytes[2];
  out.reserve(out.size() + hint + hint / 8);
  cells::Space& space = cells::Space::get();
  std::vector<uint64_t> payload, cum;
  out.append("{\"families\":[");
  bool first_family = true;
  auto keep = select_families(r, names);
  for (const auto& [key, fp] : r.families) {
    if (keep && !keep->count(fp.get())) continue;
    cm_family& f = *fp;
    if (!first_family) out.push(',');
    first_family = false;
    out.push('{');
    json_key(out, "name");
    append_json_string(out, f.name);
    out.append(",\"type\":\"");
    out.append(kind_name(f.kind));
    out.append("\",\"help\":");
    append_json_string(out, f.help);
    out.append(",\"labels\":[");
    for (size_t i = 0; i < f.label_names.size(); ++i) {
      if (i) out.push(',');
      append_json_string(out, f.label_names[i]);
    }
    out.push(']');
    if (f.kind == Kind::Histogram) {
      out.append(",\"bounds\":[");
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        if (i) out.push(',');
        out.append_double(f.bounds[i]);
      }
      out.push(']');
    }
    out.append(",\"series\":[");
    payload.resize(f.bounds.size() + 2);
    cum.resize(f.bounds.size() + 1);
    auto lk = space.lock();
    bool first_series = true;
    for (const auto& sp : f.sorted_series()) {
      const cm_series& s = *sp;
      read_payload(s, payload.data(), lk);
      if (!first_series) out.push(',');
      first_series = false;
      out.append("{\"labels\":{");
      bool first_label = true;
      auto label = [&](std::string_view k, std::string_view v) {
        if (!first_label) out.push(',');
        first_label = false;
        json_key(out, k);
        append_json_string(out, v);
      };
      for (const auto& [k, v] : r.const_labels) label(k, v);
      for (size_t i = 0; i < f.label_names.size(); ++i) label(f.label_names[i], s.values[i]);
      out.append("},\"created\":");
      json_number(out, s.created);  // a loaded file may say +Inf
      if (f.kind != Kind::Histogram) {
        out.append(",\"value\":");
        json_number(out, cells::scalar_value(payload.data()));
        out.push('}');
        continue;
      }
      uint64_t running = 0;
      for (size_t i = 0; i <= f.bounds.size(); ++i) cum[i] = running += payload[1 + i];
      out.append(",\"count\":");
      out.append_u64(running);
      out.append(",\"sum\":");
      json_number(out, cells::from_bits(payload[0]));
      out.append(",\"buckets\":[");
      for (size_t i = 0; i <= f.bounds.size(); ++i) {
        if (i) out.push(',');
        out.append("{\"le\":");
        json_number(out, i < f.bounds.size() ? f.bounds[i] : INFINITY);
        out.append(",\"count\":");
        out.append_u64(cum[i]);
        out.push('}');
      }
      out.push(']');
      for (auto [q, k] : {std::pair{0.5, ",\"p50\":"}, {0.9, ",\"p90\":"}, {0.99, ",\"p99\":"}}) {
        out.append(k);
        double v = histogram_quantile(q, f.bounds, cum.data());
        if (std::isnan(v))
          out.append("null");
        else
          json_number(out, v);
      }
      out.push('}');
    }
    out.append("]}");
  }
  out.append("]}\n");
  hint = out.size();
}

}  // namespace cm
