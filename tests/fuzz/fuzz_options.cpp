// SPDX-License-Identifier: Apache-2.0
// Option strings and URIs. The input is lines:
//   1  registry options          cm_registry_new(&reg, line)
//   2  a memory:// URI's rest    cm_cache_open(.., "memory://" + line): location and query
//   3  the cache's name
//   4  (optional) an L1's rest   cm_cache_open_tiered(.., "memory://" + line, <line 2's URI>)
// Line 2 also goes to Uri::parse as a whole URI of any scheme (no backend is
// opened for it), and every option it carries is read through each typed
// accessor. Only memory:// caches are opened: a fuzzed sqlite:// or redis://
// URI would write files or dial hosts. Whatever opens is used (set, get,
// render in all three formats); every failure must be a status of ours.
#include <cachemeter/cachemeter.h>

#include "core/error.h"
#include "fuzz_util.h"
#include "util/uri.h"

namespace {

void parse_uri(const std::string& input) {
  std::string text = input.c_str();  // what a C caller can pass
  try {
    cm::Uri u = cm::Uri::parse(text.c_str());
    if (u.scheme.empty() || u.text != text) fuzz::fail("Uri::parse: lost the scheme or the text", text);
    for (const auto& [k, v] : u.query.items()) {
      if (k.empty()) fuzz::fail("Options::parse: an empty key", text);
      if (v.find('\0') != std::string::npos) fuzz::fail("percent_decode let a NUL through", text);
      try { (void)u.query.get_int(k, 0, INT64_MIN, INT64_MAX); } catch (const cm::Error&) {}
      try { (void)u.query.get_size(k, 0, 0, INT64_MAX); } catch (const cm::Error&) {}
      try { (void)u.query.get_bool(k, false); } catch (const cm::Error&) {}
      (void)u.query.get_raw(k);
    }
  } catch (const cm::Error& e) {
    if (e.status() != CM_EINVAL) fuzz::fail("Uri::parse: a status other than CM_EINVAL", e.what());
  }
}

void use(cm_cache* c, cm_registry* reg) {
  void* v = nullptr;
  size_t vlen = 0;
  int rc = cm_cache_set(c, "k", 1, "value", 5, 0);
  fuzz::check_status(rc, "cm_cache_set");
  rc = cm_cache_get(c, "k", 1, &v, &vlen);
  fuzz::check_status(rc, "cm_cache_get");
  cm_free(v);
  char* json = nullptr;
  fuzz::check_status(cm_cache_stats_json(c, &json), "cm_cache_stats_json");
  if (json) fuzz::check_json(json);
  cm_free(json);
  fuzz::render_all(reg);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> f = fuzz::fields(data, size, '\n', 4);
  f.resize(4);
  parse_uri(f[1]);

  cm_registry* reg = nullptr;
  int rc = cm_registry_new(&reg, f[0].c_str());
  fuzz::check_status(rc, "cm_registry_new");
  if (rc != CM_OK) {
    if (reg) fuzz::fail("cm_registry_new failed but set *out", f[0]);
    return 0;
  }
  std::string uri = "memory://" + f[1];
  const char* name = f[2].empty() ? "fuzz" : f[2].c_str();
  cm_cache* c = nullptr;
  rc = cm_cache_open(&c, reg, name, uri.c_str());
  fuzz::check_status(rc, "cm_cache_open");
  if (rc == CM_OK) use(c, reg);
  cm_cache_close(c);
  if (!f[3].empty()) {
    std::string l1 = "memory://" + f[3];
    cm_cache* t = nullptr;
    rc = cm_cache_open_tiered(&t, reg, name, l1.c_str(), uri.c_str());
    fuzz::check_status(rc, "cm_cache_open_tiered");
    if (rc == CM_OK) use(t, reg);
    cm_cache_close(t);
  }
  fuzz::render_all(reg);
  cm_registry_free(reg);
  return 0;
}
