// SPDX-License-Identifier: Apache-2.0
// The callback exporter (cm_exporter_start_callback): each flush hands the
// caller's function every sample as plain C types (cm_sample).
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "export/exporter.h"
#include "metrics/registry.h"

namespace cm {

namespace {

class CallbackExporter final : public Exporter {
 public:
  CallbackExporter(cm_registry& r, ExporterCommon c, cm_export_fn fn, void* ctx, bool deltas, bool all)
      : Exporter(r, std::move(c)), fn_(fn), ctx_(ctx), deltas_(deltas), all_(all) {}

  Want want() const noexcept override { return all_ ? Want::All : Want::Changed; }
  bool collect() const noexcept override { return true; }

 protected:
  void send(std::vector<SinkSeries>& batch) override {
    // Every pointer a cm_sample holds lives in these vectors (sized first:
    // no reallocation moves them).
    const size_t n = batch.size();
    std::vector<SeriesValue> values(n);
    std::vector<std::vector<const char*>> names(n), label_values(n);
    std::vector<std::vector<std::string>> label_copies(n);
    std::vector<cm_sample> samples(n);
    std::vector<LabelPair> labels;
    for (size_t i = 0; i < n; ++i) {
      const SinkSeries& s = batch[i];
      const cm_family& f = *s.family;
      values[i] = deltas_ ? s.delta() : s.value;
      labels_of(reg_, s, labels);
      // The label strings as NUL-terminated copies (the views are not).
      label_copies[i].reserve(2 * labels.size());
      for (const LabelPair& l : labels) {
        label_copies[i].emplace_back(l.name);
        label_copies[i].emplace_back(l.value);
      }
      for (size_t k = 0; k < labels.size(); ++k) {
        names[i].push_back(label_copies[i][2 * k].c_str());
        label_values[i].push_back(label_copies[i][2 * k + 1].c_str());
      }
      cm_sample& out = samples[i];
      const SeriesValue& v = values[i];
      out.name = f.name.c_str();
      out.help = f.help.c_str();
      out.nlabels = labels.size();
      out.label_names = names[i].data();
      out.label_values = label_values[i].data();
      out.removed = s.removed ? 1 : 0;
      switch (f.kind) {
        case Kind::Counter:
          out.type = CM_SAMPLE_COUNTER;
          out.value = v.value();
          break;
        case Kind::Gauge:
          out.type = CM_SAMPLE_GAUGE;
          out.value = v.value();
          break;
        case Kind::Histogram:
          out.type = CM_SAMPLE_HISTOGRAM;
          out.value = v.sum;
          out.count = v.count;
          out.nbounds = f.bounds.size();
          out.bounds = f.bounds.empty() ? nullptr : f.bounds.data();
          out.bucket_counts = v.buckets.data();
          break;
      }
    }
    int rc = fn_(ctx_, samples.data(), n);
    if (rc != 0)
      throw Error(CM_EBACKEND, "exporter \"" + name() + "\": the callback returned " + std::to_string(rc) +
                                   " (its samples stay pending)");
  }

 private:
  cm_export_fn fn_;
  void* ctx_;
  bool deltas_;
  bool all_;
};

}  // namespace

std::unique_ptr<Exporter> make_callback_exporter(cm_registry& r, cm_export_fn fn, void* ctx, const char* options) {
  if (!fn) throw Error(CM_EINVAL, "fn is NULL");
  Options o = Options::parse(options, "callback exporter options");
  static constexpr std::string_view kOwnOptions[] = {"deltas", "all"};
  ExporterCommon c = common_options(o, kOwnOptions, "callback");
  return std::make_unique<CallbackExporter>(r, std::move(c), fn, ctx, o.get_bool("deltas", true),
                                            o.get_bool("all", false));
}

}  // namespace cm
