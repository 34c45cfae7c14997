/* SPDX-License-Identifier: Apache-2.0 */
// Backend URIs: scheme://location?options ("memory://?max_entries=1000",
// "sqlite:///var/lib/app/cache.db?ttl_ms=5000", "redis://127.0.0.1:6379/0").
// The location is left to the backend (a path for sqlite, host:port/db for
// redis); the query is parsed with the shared option parser.
#pragma once

#include <string>

#include "util/options.h"

namespace cm {

struct Uri {
  std::string text;      // as given, for messages
  std::string scheme;    // lower-case letters, digits, '+', '-', '.'
  std::string location;  // between "://" and '?', percent-decoded
  Options query;

  // Throws Error(CM_EINVAL) for a missing scheme or "://", or a bad query.
  static Uri parse(const char* text);
};

}  // namespace cm
