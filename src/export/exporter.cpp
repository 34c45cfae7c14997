// SPDX-License-Identifier: Apache-2.0
// What every exporter shares (exporter.h), and the exporter table.
#include "export/exporter.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "metrics/registry.h"

namespace cm {

const ExporterSpec& statsd_exporter_spec();
#if CM_WITH_PUSH
const ExporterSpec& pushgateway_exporter_spec();
#endif

namespace {

// One line per exporter; a list, not self-registration, for the reasons
// backend_table.h gives.
std::span<const ExporterSpec* const> table() {
  static const ExporterSpec* const kTable[] = {
      &statsd_exporter_spec(),
#if CM_WITH_PUSH
      &pushgateway_exporter_spec(),
#endif
  };
  return kTable;
}

std::string sends_name(const cm_registry& r) { return r.prefix + "exporter_sends_total"; }
std::string last_success_name(const cm_registry& r) { return r.prefix + "exporter_last_success_timestamp_seconds"; }

// Registry mutex.
Exporter* find_locked(cm_registry& r, std::string_view name) {
  if (!r.sinks) return nullptr;
  for (Sink* s : r.sinks->sinks())
    if (auto* e = dynamic_cast<Exporter*>(s); e && e->name() == name) return e;
  return nullptr;
}

void check_startable_locked(cm_registry& r, std::string_view name) {
  if (r.shared_view) throw Error(CM_ESTATE, "a shared_readonly view exports nothing (it has no values of its own)");
  if (find_locked(r, name))
    throw Error(CM_EEXIST, "this registry already has an exporter named \"" + std::string(name) +
                               "\" (give each a name= option)");
}

}  // namespace

ExporterCommon common_options(const Options& o, std::span<const std::string_view> own,
                              std::string_view fallback_name) {
  std::vector<std::string_view> known(std::begin(kCommonOptions), std::end(kCommonOptions));
  known.insert(known.end(), own.begin(), own.end());
  o.check_known(known);
  ExporterCommon c;
  c.name = o.get("name", fallback_name);
  if (c.name.empty()) throw Error(CM_EINVAL, "option name= must not be empty");
  c.interval_ms = static_cast<unsigned>(o.get_int("interval_ms", 1000, 0, 86400000));
  c.timeout_ms = static_cast<int>(o.get_int("timeout_ms", 1000, 1, 600000));
  return c;
}

Exporter::Exporter(cm_registry& r, ExporterCommon common)
    : reg_(r), common_(std::move(common)), pid_(getpid()), link_(std::make_shared<ExporterLink>()) {
  {
    std::lock_guard<std::mutex> g(r.mu);
    check_startable_locked(r, common_.name);
  }
  const char* sends_labels[] = {"exporter", "result"};
  cm_family* sends = register_family(r, Kind::Counter, sends_name(r),
                                     "Flushes of each exporter, by outcome (ok: sent or nothing to send).",
                                     sends_labels, 2, nullptr, 0, true);
  const char* ok[] = {common_.name.c_str(), "ok"};
  const char* error[] = {common_.name.c_str(), "error"};
  own_[0] = sends;
  sends_ok_ = family_series(*sends, ok, 2);
  sends_error_ = family_series(*sends, error, 2);
  const char* last_labels[] = {"exporter"};
  cm_family* last = register_family(r, Kind::Gauge, last_success_name(r),
                                    "When each exporter last flushed successfully (Unix time, seconds).",
                                    last_labels, 1, nullptr, 0, true);
  const char* name[] = {common_.name.c_str()};
  own_[1] = last;
  last_success_ = family_series(*last, name, 1);
}

Exporter::~Exporter() {
  std::lock_guard<std::mutex> g(link_->mu);
  link_->sink = nullptr;
}

// Families are never removed from a registry, so the two registered at
// construction are the only ones of those names: a pointer comparison, no
// name built per family and flush.
bool Exporter::wants(const cm_family& f) noexcept { return &f != own_[0] && &f != own_[1]; }

void Exporter::check_process() const {
  if (getpid() != pid_)
    throw Error(CM_ESTATE, "exporter \"" + common_.name + "\" belongs to the process that started it, not this fork() child");
}

void Exporter::succeeded() {
  cm_counter_add(sends_ok_, 1);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  cm_gauge_set(last_success_, std::chrono::duration<double>(now).count());
}

void Exporter::flush(std::vector<SinkSeries>& batch) {
  check_process();
  try {
    send(batch);
  } catch (...) {
    cm_counter_add(sends_error_, 1);
    throw;
  }
  succeeded();
}

void Exporter::flush_empty() {
  check_process();
  succeeded();
}

std::shared_ptr<ExporterLink> start_exporter(cm_registry& r, std::unique_ptr<Exporter> e) {
  std::shared_ptr<ExporterLink> link = e->link();
  unsigned interval = e->common().interval_ms;
  std::lock_guard<std::mutex> g(r.mu);
  check_startable_locked(r, e->name());
  Exporter* raw = e.get();
  add_sink_locked(r, std::move(e), interval);
  std::lock_guard<std::mutex> lg(link->mu);
  link->sink = raw;
  return link;
}

std::shared_ptr<ExporterLink> start_exporter(cm_registry& r, const char* uri_text) {
  Uri uri = Uri::parse(uri_text);
  std::string known;
  for (const ExporterSpec* s : table()) {
    for (std::string_view scheme : s->schemes) {
      if (scheme == uri.scheme) return start_exporter(r, s->make(r, uri));
      known += (known.empty() ? "" : ", ") + std::string(scheme) + "://";
    }
  }
#if !CM_WITH_PUSH
  if (uri.scheme == "pushgateway" || uri.scheme == "pushgateway+https")
    throw Error(CM_EINVAL, "\"" + uri.scheme + "://\" needs a build with CM_WITH_PUSH=ON (libcurl)");
#endif
  throw Error(CM_EINVAL, "unknown exporter scheme \"" + uri.scheme + "\" in \"" + uri.text + "\" (known: " + known + ")");
}

void flush_exporter(cm_registry& r, ExporterLink& link) {
  Exporter* s;
  {
    std::lock_guard<std::mutex> g(link.mu);
    s = link.sink;
  }
  if (!s) throw Error(CM_ESTATE, "the exporter's registry was freed");
  flush_sink(r, *s);
}

void stop_exporter(cm_registry& r, ExporterLink& link) noexcept {
  Exporter* s;
  {
    std::lock_guard<std::mutex> g(link.mu);
    s = link.sink;
  }
  if (s) remove_sink(r, s);
}

void labels_of(const cm_registry& r, const SinkSeries& s, std::vector<LabelPair>& out) {
  out.clear();
  for (const auto& [n, v] : r.const_labels) out.push_back({n, v});
  const auto& names = s.family->label_names;
  const auto& values = s.values();
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) out.push_back({names[i], values[i]});
}

}  // namespace cm
