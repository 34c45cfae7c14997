// SPDX-License-Identifier: Apache-2.0
// Recorder: drives the library through its C API and keeps an independent
// model of every value, then writes the renders and the model side by side.
#include "recorder.h"

#include <chrono>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace conformance {

namespace {

// The default buckets exactly as metrics.h documents them.
const std::vector<double> kDefaultBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// Unix seconds as a double, read from the clock the library stamps _created
// with: the two are then ordered, and the created window needs no slack.
double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

[[noreturn]] void fail(const std::string& msg) {
  std::fprintf(stderr, "conformance_corpus: %s\n", msg.c_str());
  std::exit(1);
}

// A JSON string literal. Control characters as \u00XX; UTF-8 passes through.
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Doubles travel as strings: JSON has no NaN/Inf/-0, and "%.17g" round-trips
// every finite double exactly (glibc printf is correctly rounded).
std::string json_double(double v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"+Inf\"" : "\"-Inf\"";
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%.17g\"", v);
  return buf;
}

std::string json_labels(const Labels& const_labels, const Family& f, const Series& s) {
  std::string out = "{";
  auto one = [&](const std::string& k, const std::string& v) {
    if (out.size() > 1) out += ", ";
    out += json_string(k) + ": " + json_string(v);
  };
  for (const auto& [k, v] : const_labels) one(k, v);
  for (size_t i = 0; i < f.label_names.size(); ++i) one(f.label_names[i], s.values[i]);
  return out + "}";
}

// OpenMetrics 1.0: "Sum, and buckets values are counters so MUST NOT be NaN
// or negative. Negative threshold buckets MAY be used, but then the Histogram
// MetricPoint MUST NOT contain a sum value", and in the text format "If and
// only if a Sum Value is present in a MetricPoint, then the MetricPoint's +Inf
// Bucket value MUST also appear in a Sample with [...] the suffix _count".
// So _count and _sum come and go together. After a negative observation an
// exporter may also drop them for good, so that case is optional.
const char* openmetrics_count_sum_rule(const Family& f, const Series& s) {
  bool negative_bound = !f.bounds.empty() && f.bounds.front() < 0;
  if (negative_bound || std::isnan(s.sum) || s.sum < 0) return "forbidden";
  return s.negative_observed ? "optional" : "required";
}

std::string json_family(const Labels& const_labels, const Family& f) {
  std::string out = "    {\"name\": " + json_string(f.name) + ", \"type\": " + json_string(f.type) +
                    ", \"help\": " + (f.help_known ? json_string(f.help) : "null") + ", \"label_names\": [";
  for (size_t i = 0; i < f.label_names.size(); ++i) out += (i ? ", " : "") + json_string(f.label_names[i]);
  out += "]";
  if (f.type == "histogram") {
    out += ", \"bounds\": [";
    for (size_t i = 0; i < f.bounds.size(); ++i) out += (i ? ", " : "") + json_double(f.bounds[i]);
    out += "]";
  }
  out += ",\n     \"series\": [";
  bool first = true;
  for (const auto& [values, s] : f.series) {
    out += first ? "\n      {" : ",\n      {";
    first = false;
    out += "\"labels\": " + json_labels(const_labels, f, s);
    if (f.type != "histogram") {
      out += ", \"value\": " + json_double(s.value) + "}";
      continue;
    }
    out += ", \"count\": " + std::to_string(s.count) + ", \"sum\": " + json_double(s.sum) +
           ", \"openmetrics_count_sum\": \"" + openmetrics_count_sum_rule(f, s) + "\", \"buckets\": [";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < s.buckets.size(); ++i) {
      cumulative += s.buckets[i];
      double le = i < f.bounds.size() ? f.bounds[i] : INFINITY;
      out += (i ? ", [" : "[") + json_double(le) + ", " + std::to_string(cumulative) + "]";
    }
    out += "]}";
  }
  return out + "]}";
}

void write_file(const std::filesystem::path& path, const char* data, size_t len) {
  std::ofstream f(path, std::ios::binary);
  f.write(data, static_cast<std::streamsize>(len));
  if (!f.good()) fail("cannot write " + path.string());
}

}  // namespace

void check(int status, const char* what) {
  if (status != CM_OK)
    fail(std::string(what) + ": " + cm_status_name(status) + ": " + cm_errmsg());
}

Recorder::Recorder(std::string name, std::string options, Labels const_labels, std::string prefix)
    : name_(std::move(name)), options_(std::move(options)), prefix_(std::move(prefix)),
      const_labels_(std::move(const_labels)) {
  created_after_ = unix_now();
  check(cm_registry_new(&reg_, options_.c_str()), ("cm_registry_new(\"" + options_ + "\")").c_str());
}

Recorder::~Recorder() { cm_registry_free(reg_); }

Family& Recorder::define(const std::string& type, std::string name, const char* help,
                         std::vector<std::string> labels, std::vector<double> bounds) {
  std::vector<const char*> lp;
  for (const auto& l : labels) lp.push_back(l.c_str());
  cm_family* h = nullptr;
  std::string what = "register " + type + " " + name;
  if (type == "counter")
    check(cm_counter_new(reg_, name.c_str(), help, lp.data(), lp.size(), &h), what.c_str());
  else if (type == "gauge")
    check(cm_gauge_new(reg_, name.c_str(), help, lp.data(), lp.size(), &h), what.c_str());
  else
    check(cm_histogram_new(reg_, name.c_str(), help, lp.data(), lp.size(), bounds.data(), bounds.size(), &h),
          what.c_str());
  // metrics.h: a counter's exposed name always ends in "_total".
  if (type == "counter" && !name.ends_with("_total")) name += "_total";
  Family& f = families_[name];
  f.type = type;
  f.name = name;
  f.help_known = true;
  f.help = help ? help : "";
  f.label_names = std::move(labels);
  f.bounds = type == "histogram" && bounds.empty() ? kDefaultBounds : std::move(bounds);
  f.handle = h;
  return f;
}

Family& Recorder::counter(const std::string& name, const char* help, std::vector<std::string> labels) {
  return define("counter", name, help, std::move(labels), {});
}

Family& Recorder::gauge(const std::string& name, const char* help, std::vector<std::string> labels) {
  return define("gauge", name, help, std::move(labels), {});
}

Family& Recorder::histogram(const std::string& name, const char* help, std::vector<std::string> labels,
                            std::vector<double> bounds) {
  return define("histogram", name, help, std::move(labels), std::move(bounds));
}

int Recorder::try_series(Family& f, std::vector<std::string> values) {
  std::vector<const char*> vp;
  for (const auto& v : values) vp.push_back(v.c_str());
  cm_series* h = nullptr;
  int st = cm_family_series(f.handle, vp.data(), vp.size(), &h);
  if (st == CM_ELIMIT) ++rejected_;  // metrics.h: each refusal is counted
  if (st != CM_OK) return st;
  Series& s = f.series[values];
  if (s.handle && s.handle != h) fail("cm_family_series gave two handles for one series of " + f.name);
  s.family = &f;
  s.handle = h;
  s.values = std::move(values);
  if (f.type == "histogram") s.buckets.resize(f.bounds.size() + 1);
  return CM_OK;
}

Series& Recorder::series(Family& f, std::vector<std::string> values) {
  std::vector<std::string> key = values;
  check(try_series(f, std::move(values)), ("cm_family_series of " + f.name).c_str());
  return f.series.at(key);
}

void Recorder::add(Series& s, double v) {
  cm_counter_add(s.handle, v);
  if (s.family->type != "counter" || !(v >= 0 && v <= DBL_MAX))
    ++invalid_;
  else
    s.value += v;
}

void Recorder::set(Series& s, double v) {
  cm_gauge_set(s.handle, v);
  if (s.family->type != "gauge")
    ++invalid_;
  else
    s.value = v;
}

void Recorder::gauge_add(Series& s, double v) {
  cm_gauge_add(s.handle, v);
  if (s.family->type != "gauge" || !std::isfinite(v))
    ++invalid_;
  else
    s.value += v;
}

void Recorder::observe(Series& s, double v) {
  cm_histogram_observe(s.handle, v);
  if (s.family->type != "histogram" || !std::isfinite(v)) {
    ++invalid_;
    return;
  }
  // The first bucket whose upper bound is >= v; past the last bound, +Inf.
  const auto& b = s.family->bounds;
  size_t i = 0;
  while (i < b.size() && b[i] < v) ++i;
  ++s.buckets[i];
  ++s.count;
  s.sum += v;
  s.negative_observed = s.negative_observed || v < 0;
}

void Recorder::reset() {
  created_after_ = unix_now();
  check(cm_registry_reset(reg_), "cm_registry_reset");
  // "Zeroes every series": the self metrics included.
  invalid_ = rejected_ = 0;
  for (auto& [name, f] : families_)
    for (auto& [values, s] : f.series) {
      s.value = s.sum = 0;
      s.count = 0;
      s.negative_observed = false;
      std::fill(s.buckets.begin(), s.buckets.end(), 0);
    }
}

std::string Recorder::write(const std::string& root) {
  std::filesystem::path dir = std::filesystem::path(root) / name_;
  std::filesystem::create_directories(dir);
  struct Out {
    int format;
    const char* file;
  };
  for (Out o : {Out{CM_FORMAT_PROMETHEUS, "metrics.prom"}, Out{CM_FORMAT_OPENMETRICS, "metrics.om"},
                Out{CM_FORMAT_JSON, "metrics.json"}}) {
    char* text = nullptr;
    size_t len = 0;
    check(cm_registry_render(reg_, o.format, &text, &len), "cm_registry_render");
    // metrics.h: *len is the length without the terminating NUL.
    if (!text || std::strlen(text) != len)
      fail(name_ + "/" + o.file + ": *len " + std::to_string(len) + " disagrees with the NUL-terminated text");
    write_file(dir / o.file, text, len);
    cm_free(text);
  }
  double rendered_by = unix_now();

  // The self metrics every registry carries (metrics.h names them). Their
  // help text is the library's wording, so it is not checked.
  Family self_rejected, self_invalid;
  for (auto [f, suffix, value] : {std::tuple{&self_rejected, "series_rejected_total", rejected_},
                                  std::tuple{&self_invalid, "invalid_observations_total", invalid_}}) {
    f->type = "counter";
    f->name = prefix_ + suffix;
    f->help_known = false;
    Series& s = f->series[{}];
    s.family = f;
    s.value = static_cast<double>(value);
  }

  std::string out = "{\"registry\": " + json_string(name_) + ", \"options\": " + json_string(options_) +
                    ",\n \"created_window\": [" + json_double(created_after_) + ", " +
                    json_double(rendered_by) + "],\n \"families\": [\n";
  std::map<std::string, const Family*> all;
  for (const auto& [name, f] : families_) all[name] = &f;
  all[self_rejected.name] = &self_rejected;
  all[self_invalid.name] = &self_invalid;
  bool first = true;
  for (const auto& [name, f] : all) {
    out += (first ? "" : ",\n") + json_family(const_labels_, *f);
    first = false;
  }
  out += "\n]}\n";
  write_file(dir / "expected.json", out.data(), out.size());
  return name_;
}

void write_manifest(const std::string& root, const std::vector<std::string>& names) {
  std::string out = "{\"registries\": [";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + json_string(names[i]);
  out += "]}\n";
  write_file(std::filesystem::path(root) / "index.json", out.data(), out.size());
}

}  // namespace conformance
