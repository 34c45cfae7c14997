// Prometheus text 0.0.4 and OpenMetrics 1.0.0 exposition, streamed straight
// into the output buffer (no intermediate copy of the registry).
#include <vector>

#include "metrics/registry.h"

namespace cm {
namespace {

// `name="value",...` of a series: const labels first, then the family's.
void write_labels(OutBuf& out, const cm_registry& r, const cm_family& f, const cm_series& s) {
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out.push(',');
    first = false;
    out.append(k);
    out.append("=\"", 2);
    append_label_escaped(out, v);
    out.push('"');
  };
  for (const auto& [k, v] : r.const_labels) one(k, v);
  for (size_t i = 0; i < f.label_names.size(); ++i) one(f.label_names[i], s.values[i]);
}

void sample_head(OutBuf& out, std::string_view name, std::string_view suffix, const OutBuf& labels) {
  out.append(name);
  out.append(suffix);
  if (labels.size()) {
    out.push('{');
    out.append(labels.view());
    out.push('}');
  }
  out.push(' ');
}

void sample(OutBuf& out, std::string_view name, std::string_view suffix, const OutBuf& labels, double v) {
  sample_head(out, name, suffix, labels);
  out.append_double(v);
  out.push('\n');
}

void sample(OutBuf& out, std::string_view name, std::string_view suffix, const OutBuf& labels, uint64_t v) {
  sample_head(out, name, suffix, labels);
  out.append_u64(v);
  out.push('\n');
}

void bucket(OutBuf& out, std::string_view name, const OutBuf& labels, std::string_view le, uint64_t v) {
  out.append(name);
  out.append("_bucket{");
  if (labels.size()) {
    out.append(labels.view());
    out.push(',');
  }
  out.append("le=\"");
  out.append(le);
  out.append("\"} ");
  out.append_u64(v);
  out.push('\n');
}

void histogram(OutBuf& out, const cm_family& f, const cm_series& s, const OutBuf& labels,
               const uint64_t* payload, bool om) {
  double sum = cells::from_bits(payload[0]);
  const uint64_t* counts = payload + 1;
  uint64_t cum = 0;
  for (size_t i = 0; i <= f.bounds.size(); ++i) {
    cum += counts[i];
    bucket(out, f.name, labels, i < f.le_text.size() ? std::string_view(f.le_text[i]) : "+Inf", cum);
  }
  if (om) {
    // OpenMetrics: a histogram with negative bucket bounds MUST NOT carry a
    // sum, and a sum must not be negative or NaN; _count goes with _sum.
    bool has_sum = (f.bounds.empty() || f.bounds.front() >= 0) && sum >= 0;
    if (has_sum) {
      sample(out, f.name, "_count", labels, cum);
      sample(out, f.name, "_sum", labels, sum);
    }
    sample(out, f.name, "_created", labels, s.created);
  } else {
    sample(out, f.name, "_sum", labels, sum);
    sample(out, f.name, "_count", labels, cum);
  }
}

}  // namespace

void render_text(cm_registry& r, OutBuf& out, bool om, const NameFilter* names, bool collect) {
  if (collect) run_collectors(r);
  std::lock_guard<std::mutex> g(r.mu);
  size_t& hint = r.last_render_bytes[om ? 1 : 0];
  out.reserve(out.size() + hint + hint / 8);
  cells::Space& space = cells::Space::get();
  OutBuf labels;
  std::vector<uint64_t> payload;
  auto keep = select_families(r, names);
  for (const auto& [key, fp] : r.families) {
    if (keep && !keep->count(fp.get())) continue;
    cm_family& f = *fp;
    std::string_view fname = om ? f.om_name() : std::string_view(f.name);
    if (!f.help.empty()) {
      out.append("# HELP ");
      out.append(fname);
      out.push(' ');
      append_help_escaped(out, f.help, om);
      out.push('\n');
    }
    out.append("# TYPE ");
    out.append(fname);
    out.push(' ');
    out.append(kind_name(f.kind));
    out.push('\n');
    payload.resize(f.bounds.size() + 2);
    auto lk = space.lock();
    for (const auto& sp : f.sorted_series()) {
      const cm_series& s = *sp;
      read_payload(s, payload.data(), lk);
      labels.clear();
      write_labels(labels, r, f, s);
      switch (f.kind) {
        case Kind::Counter:
          sample(out, f.name, "", labels, cells::scalar_value(payload.data()));
          if (om) sample(out, f.om_name(), "_created", labels, s.created);
          break;
        case Kind::Gauge:
          sample(out, f.name, "", labels, cells::scalar_value(payload.data()));
          break;
        case Kind::Histogram:
          histogram(out, f, s, labels, payload.data(), om);
          break;
      }
    }
  }
  if (om) out.append("# EOF\n");
  hint = out.size();
}

}  // namespace cm
