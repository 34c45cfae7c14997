// SPDX-License-Identifier: Apache-2.0
// The backend table: one line per backend (its spec getter, defined beside
// its factory in src/backends/), under its build option. Why a list and not
// self-registration: backend_table.h.
#include "cache/backend_table.h"

#include <algorithm>

#include "core/error.h"
#include "util/uri.h"

namespace cm {

const BackendSpec& memory_backend_spec();
#if CM_WITH_SQLITE
const BackendSpec& sqlite_backend_spec();
#endif
#if CM_WITH_REDIS
const BackendSpec& redis_backend_spec();
#endif

namespace {

// A backend this build leaves out: named in the unknown-scheme message.
struct Missing {
  std::string_view name;
  std::string_view option;
};

// A function-local static: filled on first use, whatever the order in which
// other files' statics are constructed (thread-safe since C++11).
std::span<const BackendSpec* const> table() {
  static const BackendSpec* const kTable[] = {
      &memory_backend_spec(),
#if CM_WITH_SQLITE
      &sqlite_backend_spec(),
#endif
#if CM_WITH_REDIS
      &redis_backend_spec(),
#endif
  };
  return kTable;
}

const Missing kMissing[] = {
#if !CM_WITH_SQLITE
    {"sqlite", "CM_WITH_SQLITE"},
#endif
#if !CM_WITH_REDIS
    {"redis", "CM_WITH_REDIS"},
#endif
    {{}, {}},  // keeps the array non-empty
};

// "a, b or c" (or "a and b" with last = " and "); a build without any says so.
std::string join(std::vector<std::string> items, std::string_view last) {
  if (items.empty()) return "(none in this build)";
  std::sort(items.begin(), items.end());
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? std::string(last) : std::string(", ");
    out += items[i];
  }
  return out;
}

}  // namespace

std::span<const BackendSpec* const> backend_specs() { return table(); }

const BackendSpec* find_backend_spec(std::string_view scheme) {
  for (const BackendSpec* s : table())
    if (std::find(s->schemes.begin(), s->schemes.end(), scheme) != s->schemes.end()) return s;
  return nullptr;
}

const BackendSpec* find_backend_kind(std::string_view name) {
  for (const BackendSpec* s : table())
    if (s->name == name) return s;
  return nullptr;
}

const BackendSpec& backend_spec(const Uri& uri) {
  if (const BackendSpec* s = find_backend_spec(uri.scheme)) return *s;
  std::string supported;
  for (const BackendSpec* s : table())
    for (std::string_view scheme : s->schemes) supported += (supported.empty() ? "" : ", ") + std::string(scheme);
  for (const Missing& m : kMissing)
    if (!m.name.empty())
      supported += "; " + std::string(m.name) + " needs a build with " + std::string(m.option) + "=ON";
  throw Error(CM_EINVAL, "uri \"" + uri.text + "\": unknown scheme \"" + uri.scheme + "\" (supported: " + supported +
                             ")");
}

std::vector<std::string_view> known_options(const BackendSpec& spec) {
  std::vector<std::string_view> known(spec.options.begin(), spec.options.end());
  known.insert(known.end(), std::begin(kFrontOptions), std::end(kFrontOptions));
  return known;
}

std::string schemes_where(bool (*pred)(const BackendTraits&)) {
  std::vector<std::string> out;
  for (const BackendSpec* s : table())
    if (pred(s->traits))
      for (std::string_view scheme : s->schemes) out.push_back(std::string(scheme) + "://");
  return join(std::move(out), " or ");
}

std::string names_where(bool (*pred)(const BackendTraits&)) {
  std::vector<std::string> out;
  for (const BackendSpec* s : table())
    if (pred(s->traits)) out.emplace_back(s->name);
  return join(std::move(out), " and ");
}

}  // namespace cm
