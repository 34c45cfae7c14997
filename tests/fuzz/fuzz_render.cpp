// SPDX-License-Identifier: Apache-2.0
// Metric and label names, help, label values, sample values: registration
// and all three renderings. The input is NUL-separated fields (label values
// cannot hold a NUL, so every other byte, newlines and quotes included, is
// fair game):
//   0  kind ('c', 'g', 'h'; else by its first byte) then registry options
//   1  metric name      2  help     3  label names, comma-separated
//   4  histogram bounds, comma-separated (strtod)
//   5… label values, taken nlabels at a time: one series per group
// Each series gets an update; a label value that reads as a number gives the
// update's value (so NaN, ±Inf, -0, denormals and huge values reach the
// formatter). The registry is rendered in the three formats and each
// output is checked by fuzz_util.h's own parsers.
#include <cachemeter/cachemeter.h>

#include <algorithm>
#include <cfloat>

#include "fuzz_util.h"

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) return out;
    start = p + 1;
  }
}

double value_of(const std::string& s, size_t i) {
  static const double special[] = {0.0, -0.0, 1.0, 0.1, 1e-320, DBL_MAX, -DBL_MAX, INFINITY, -INFINITY, NAN, 1e21, 123456789.0};
  char* e = nullptr;
  double d = std::strtod(s.c_str(), &e);
  if (!s.empty() && e == s.c_str() + s.size()) return d;
  return special[i % (sizeof special / sizeof special[0])];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return -1;  // no more series than a scrape is worth
  std::vector<std::string> f = fuzz::fields(data, size, '\0', 1024);
  f.resize(std::max<size_t>(f.size(), 5));
  char k = f[0].empty() ? 'c' : f[0][0];
  if (k != 'c' && k != 'g' && k != 'h') k = "cgh"[static_cast<unsigned char>(k) % 3];
  std::string options = f[0].empty() ? "" : f[0].substr(1);

  cm_registry* reg = nullptr;
  int rc = cm_registry_new(&reg, options.c_str());
  fuzz::check_status(rc, "cm_registry_new");
  if (rc != CM_OK) return 0;

  std::vector<std::string> labels = split(f[3], ',');
  std::vector<const char*> lp;
  for (const auto& l : labels) lp.push_back(l.c_str());
  std::vector<double> bounds;
  for (const auto& b : split(f[4], ',')) bounds.push_back(std::strtod(b.c_str(), nullptr));
  const char* help = f[2].c_str();
  cm_family* fam = nullptr;
  if (k == 'c') rc = cm_counter_new(reg, f[1].c_str(), help, lp.data(), lp.size(), &fam);
  else if (k == 'g') rc = cm_gauge_new(reg, f[1].c_str(), help, lp.data(), lp.size(), &fam);
  else rc = cm_histogram_new(reg, f[1].c_str(), help, lp.data(), lp.size(), bounds.data(), bounds.size(), &fam);
  fuzz::check_status(rc, "cm_*_new");
  if (rc == CM_OK) {
    size_t n = lp.size();
    size_t nvalues = f.size() - 5;
    // No labels: the one series. Otherwise one series per full group.
    size_t groups = n == 0 ? 1 : nvalues / n;
    for (size_t g = 0; g < groups; ++g) {
      std::vector<const char*> vp;
      for (size_t i = 0; i < n; ++i) vp.push_back(f[5 + g * n + i].c_str());
      cm_series* s = nullptr;
      rc = cm_family_series(fam, vp.data(), n, &s);
      fuzz::check_status(rc, "cm_family_series");
      if (rc != CM_OK) continue;
      double v = value_of(n ? f[5 + g * n] : f[1], g);
      if (k == 'c') cm_counter_add(s, v);
      else if (k == 'g') cm_gauge_set(s, v);
      else cm_histogram_observe(s, v);
      // The same values again must find the same series.
      cm_series* again = nullptr;
      rc = cm_family_series(fam, vp.data(), n, &again);
      if (rc != CM_OK || again != s) fuzz::fail("cm_family_series: the same values gave another series", f[1]);
    }
  }
  fuzz::render_all(reg);
  cm_registry_free(reg);
  return 0;
}
