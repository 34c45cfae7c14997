/* SPDX-License-Identifier: Apache-2.0 */
// Exporters (include/cachemeter/export.h, docs/exporters.md): sinks of the
// registry's sink host (metrics/sink.h) that push what changed to an outlet.
// This file is what every exporter shares: the options every URI accepts, the
// self-metrics, the refusal in a fork() child, the link the caller's handle
// keeps to the sink (which the registry owns and may destroy first), and the
// exporter table (schemes to factories).
//
// A new exporter is one file in src/export/ defining a subclass of Exporter
// and its spec getter, plus one line in exporter.cpp's table (under its
// build option) and its source in src/CMakeLists.txt.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cachemeter/export.h>

#include "metrics/sink.h"
#include "util/uri.h"

struct cm_registry;

namespace cm {

class Exporter;

// What the caller's cm_exporter reaches the sink through: cleared by the
// sink's destructor (the registry freed, or the exporter stopped).
struct ExporterLink {
  std::mutex mu;
  Exporter* sink = nullptr;
};

// The options every exporter takes (besides its own).
struct ExporterCommon {
  std::string name;          // the `exporter` label of its self-metrics
  unsigned interval_ms = 1000;
  int timeout_ms = 1000;     // bound of one send
};
inline constexpr std::string_view kCommonOptions[] = {"name", "interval_ms", "timeout_ms"};
// Checks that o holds only the common options and own ones (CM_EINVAL naming
// the first other), then reads the common ones (the name defaults to
// fallback_name).
ExporterCommon common_options(const Options& o, std::span<const std::string_view> own, std::string_view fallback_name);

class Exporter : public Sink {
 public:
  Exporter(cm_registry& r, ExporterCommon common);
  ~Exporter() override;

  const std::string& name() const { return common_.name; }
  const ExporterCommon& common() const { return common_; }
  std::shared_ptr<ExporterLink> link() const { return link_; }

  // Not the exporters' own self-metrics: each flush would change them again.
  bool wants(const cm_family& f) noexcept override;
  // Counts the flush's outcome, then hands the batch to send().
  void flush(std::vector<SinkSeries>& batch) final;
  // Nothing changed: a success (counted, and the last-success time set).
  void flush_empty() final;

 protected:
  // Sends the batch. On failure throws Error (CM_EUNAVAILABLE: unreachable;
  // CM_ETIMEOUT: too slow; CM_EBACKEND: refused), having marked `delivered`
  // the series that did go out (sink.h).
  virtual void send(std::vector<SinkSeries>& batch) = 0;

  cm_registry& reg_;

 private:
  ExporterCommon common_;
  pid_t pid_;
  std::shared_ptr<ExporterLink> link_;
  void check_process() const;
  void succeeded();
  cm_series* sends_ok_ = nullptr;
  cm_series* sends_error_ = nullptr;
  cm_series* last_success_ = nullptr;
  const cm_family* own_[2] = {};  // exporter_sends_total, exporter_last_success_timestamp_seconds
};

// Builds an exporter from its URI (the scheme is one of the spec's); throws
// Error (CM_EINVAL naming a bad option, CM_EUNAVAILABLE).
using ExporterFactory = std::unique_ptr<Exporter> (*)(cm_registry& r, const Uri& uri);

struct ExporterSpec {
  std::string_view name;
  std::span<const std::string_view> schemes;
  ExporterFactory make = nullptr;
};

// Adds e to r's sinks, flushed every e's interval_ms; returns its link.
// Throws Error: CM_EEXIST (an exporter of that name), CM_ESTATE (a
// shared_readonly view).
std::shared_ptr<ExporterLink> start_exporter(cm_registry& r, std::unique_ptr<Exporter> e);
// Makes the exporter the URI names and starts it.
std::shared_ptr<ExporterLink> start_exporter(cm_registry& r, const char* uri);
// Flushes now on this thread (throws what the exporter throws; CM_ESTATE when
// the registry was freed).
void flush_exporter(cm_registry& r, ExporterLink& link);
// Final flush, then removed from r; nothing when the registry was freed.
void stop_exporter(cm_registry& r, ExporterLink& link) noexcept;

// The exporter of cm_exporter_start_callback (export/callback.cpp); options
// as documented there. Throws Error (CM_EINVAL naming a bad option).
std::unique_ptr<Exporter> make_callback_exporter(cm_registry& r, cm_export_fn fn, void* ctx, const char* options);

// The labels of a series in a flush: the registry's const labels, then the
// family's. For the exporters' wire formats.
struct LabelPair {
  std::string_view name, value;
};
void labels_of(const cm_registry& r, const SinkSeries& s, std::vector<LabelPair>& out);

}  // namespace cm
