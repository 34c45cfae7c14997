// SPDX-License-Identifier: Apache-2.0
// Prometheus text 0.0.4 and OpenMetrics 1.0.0 exposition, streamed straight
// into the output buffer (no intermediate copy of the registry).
#include "metrics/snapshot.h"

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

void histogram(OutBuf& out, const cm_family& f, const cm_series& s, const OutBuf& labels, const SeriesValue& v,
               bool om) {
  double sum = v.sum;
  const uint64_t* counts = v.buckets.data();
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

class TextRender final : public SnapshotVisitor {
 public:
  TextRender(cm_registry& r, OutBuf& out, bool om) : r_(r), out_(out), om_(om) {}

  void begin(const cm_registry&) override {
    size_t hint = r_.last_render_bytes[om_ ? 1 : 0];
    out_.reserve(out_.size() + hint + hint / 8);
  }

  bool family(const cm_family& f) override {
    std::string_view fname = om_ ? f.om_name() : std::string_view(f.name);
    if (!f.help.empty()) {
      out_.append("# HELP ");
      out_.append(fname);
      out_.push(' ');
      append_help_escaped(out_, f.help, om_);
      out_.push('\n');
    }
    out_.append("# TYPE ");
    out_.append(fname);
    out_.push(' ');
    out_.append(kind_name(f.kind));
    out_.push('\n');
    return true;
  }

  void series(const cm_family& f, const cm_series& s, const SeriesValue& v) override {
    labels_.clear();
    write_labels(labels_, r_, f, s);
    switch (f.kind) {
      case Kind::Counter:
        sample(out_, f.name, "", labels_, v.value());
        if (om_) sample(out_, f.om_name(), "_created", labels_, s.created);
        break;
      case Kind::Gauge:
        sample(out_, f.name, "", labels_, v.value());
        break;
      case Kind::Histogram:
        histogram(out_, f, s, labels_, v, om_);
        break;
    }
  }

  void end(const cm_registry&) override {
    if (om_) out_.append("# EOF\n");
    r_.last_render_bytes[om_ ? 1 : 0] = out_.size();
  }

 private:
  cm_registry& r_;
  OutBuf& out_;
  bool om_;
  OutBuf labels_;
};

}  // namespace

void render_text(cm_registry& r, OutBuf& out, bool om, const NameFilter* names, bool collect) {
  TextRender v(r, out, om);
  snapshot(r, v, {names, collect});
}

}  // namespace cm
