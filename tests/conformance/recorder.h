/* SPDX-License-Identifier: Apache-2.0 */
// A registry seen through the public C API, with a bookkeeping of its own:
// every update goes to the library AND to a model, and expected.json is
// written from the model, never read back from the library.
#pragma once

#include <cachemeter/metrics.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace conformance {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Family;

struct Series {
  Family* family = nullptr;
  cm_series* handle = nullptr;
  std::vector<std::string> values;
  double value = 0;               // counter, gauge
  std::vector<uint64_t> buckets;  // histogram: per bucket (not cumulative), +Inf last
  uint64_t count = 0;
  double sum = 0;
  bool negative_observed = false;  // lets OpenMetrics drop _count/_sum (see write())
};

struct Family {
  std::string type;  // "counter", "gauge", "histogram"
  std::string name;  // exposed name: a counter's always ends in _total
  bool help_known = true;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;
  cm_family* handle = nullptr;
  // Keyed by label values; std::map keeps Series addresses stable.
  std::map<std::vector<std::string>, Series> series;
};

class Recorder {
 public:
  // options go to cm_registry_new unchanged; const_labels and prefix are what
  // they must mean once decoded (written by hand by the caller, so the test
  // does not reuse the library's option parser).
  Recorder(std::string name, std::string options, Labels const_labels, std::string prefix = "cachemeter_");
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // help == nullptr registers without help text.
  Family& counter(const std::string& name, const char* help, std::vector<std::string> labels = {});
  Family& gauge(const std::string& name, const char* help, std::vector<std::string> labels = {});
  // Empty bounds: the default latency buckets metrics.h documents.
  Family& histogram(const std::string& name, const char* help, std::vector<std::string> labels,
                    std::vector<double> bounds);

  Series& series(Family& f, std::vector<std::string> values = {});
  // For the max_series cap: returns the status instead of requiring CM_OK.
  int try_series(Family& f, std::vector<std::string> values);

  // Each applies the documented semantics to the model, including rejection
  // (wrong type, NaN, negative counter increment: counted as invalid).
  void add(Series& s, double v);
  void set(Series& s, double v);
  void gauge_add(Series& s, double v);
  void observe(Series& s, double v);
  void reset();

  // Renders the three formats into root/<name>/ with expected.json beside
  // them; returns the registry's name.
  std::string write(const std::string& root);

 private:
  Family& define(const std::string& type, std::string name, const char* help,
                 std::vector<std::string> labels, std::vector<double> bounds);

  std::string name_, options_, prefix_;
  Labels const_labels_;
  cm_registry* reg_ = nullptr;
  std::map<std::string, Family> families_;
  uint64_t invalid_ = 0;   // PREFIXinvalid_observations_total
  uint64_t rejected_ = 0;  // PREFIXseries_rejected_total
  double created_after_ = 0;  // every _created is >= this (unix seconds): creation or last reset
};

// Writes root/index.json: {"registries": [names...]}.
void write_manifest(const std::string& root, const std::vector<std::string>& names);

// Fails the program (exit 1) with the call, status and cm_errmsg().
void check(int status, const char* what);

}  // namespace conformance
