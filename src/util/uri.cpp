// SPDX-License-Identifier: Apache-2.0
#include "util/uri.h"

#include "core/error.h"

namespace cm {

Uri Uri::parse(const char* text) {
  if (!text || !*text) throw Error(CM_EINVAL, "uri is empty");
  Uri u;
  u.text = text;
  size_t sep = u.text.find("://");
  if (sep == std::string::npos || sep == 0)
    throw Error(CM_EINVAL, "uri \"" + u.text + "\" has no scheme (expected scheme://..., e.g. memory://)");
  u.scheme = u.text.substr(0, sep);
  for (char& c : u.scheme) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!ok) throw Error(CM_EINVAL, "uri \"" + u.text + "\": bad character in the scheme");
  }
  std::string rest = u.text.substr(sep + 3);
  size_t q = rest.find('?');
  std::string what = "uri \"" + u.text + "\"";
  u.location = percent_decode(rest.substr(0, q), what);
  if (q != std::string::npos) u.query = Options::parse(rest.c_str() + q + 1, what);
  return u;
}

}  // namespace cm
