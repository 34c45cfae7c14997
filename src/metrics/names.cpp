// SPDX-License-Identifier: Apache-2.0
// Name rules of the Prometheus data model.
#include "metrics/names.h"

namespace cm {

static bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool digit(char c) { return c >= '0' && c <= '9'; }

static bool valid_name(std::string_view s, bool colon) {
  if (s.empty() || s.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = alpha(c) || (colon && c == ':') || (i > 0 && digit(c));
    if (!ok) return false;
  }
  return true;
}

bool valid_metric_name(std::string_view s) { return valid_name(s, true); }
bool valid_label_name(std::string_view s) { return valid_name(s, false); }

}  // namespace cm
