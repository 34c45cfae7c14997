// SPDX-License-Identifier: Apache-2.0
// examples/raii.cpp: the C API from C++ with RAII: each handle in a
// std::unique_ptr with its free function as the deleter, failures turned
// into exceptions carrying cm_errmsg(), and buffers released by a guard.
// Nothing here is part of the library: copy what you need.
#include <cachemeter/cachemeter.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cmx {

struct Error : std::runtime_error {
  int status;
  Error(int s, const std::string& what) : std::runtime_error(what + ": " + cm_errmsg()), status(s) {}
};

inline void check(int rc, const char* what) {
  if (rc < 0) throw Error(rc, what);
}

struct RegistryFree { void operator()(cm_registry* r) const { cm_registry_free(r); } };
struct CacheClose { void operator()(cm_cache* c) const { cm_cache_close(c); } };
struct ServerStop { void operator()(cm_server* s) const { cm_server_stop(s); } };
struct Free { void operator()(void* p) const { cm_free(p); } };
using Registry = std::unique_ptr<cm_registry, RegistryFree>;
using Cache = std::unique_ptr<cm_cache, CacheClose>;
using Server = std::unique_ptr<cm_server, ServerStop>;
using Buffer = std::unique_ptr<void, Free>;

inline Registry make_registry(const char* options = nullptr) {
  cm_registry* r = nullptr;
  check(cm_registry_new(&r, options), "cm_registry_new");
  return Registry(r);
}

// The cache must not outlive its registry: declare the registry first.
inline Cache open_cache(const Registry& reg, const char* name, const char* uri) {
  cm_cache* c = nullptr;
  check(cm_cache_open(&c, reg.get(), name, uri), "cm_cache_open");
  return Cache(c);
}

inline std::optional<std::string> get(const Cache& c, std::string_view key) {
  void* val = nullptr;
  size_t n = 0;
  int rc = cm_cache_get(c.get(), key.data(), key.size(), &val, &n);
  Buffer guard(val);
  if (rc == CM_MISS) return std::nullopt;
  check(rc, "cm_cache_get");
  return std::string(static_cast<const char*>(val), n);
}

inline void set(const Cache& c, std::string_view key, std::string_view value) {
  check(cm_cache_set(c.get(), key.data(), key.size(), value.data(), value.size(), 0), "cm_cache_set");
}

inline std::string render(const Registry& reg, int format = CM_FORMAT_PROMETHEUS) {
  char* text = nullptr;
  size_t len = 0;
  check(cm_registry_render(reg.get(), format, &text, &len), "cm_registry_render");
  Buffer guard(text);
  return std::string(text, len);
}

}  // namespace cmx

int main() {
  try {
    cmx::Registry reg = cmx::make_registry("const_labels=app:raii_example");
    cmx::Cache users = cmx::open_cache(reg, "users", "memory://?max_entries=1000");
    cmx::set(users, "alice", "admin");
    std::printf("alice=%s\n", cmx::get(users, "alice").value_or("(miss)").c_str());
    std::printf("bob=%s\n", cmx::get(users, "bob").value_or("(miss)").c_str());
    std::string text = cmx::render(reg);
    const char* hits = "cachemeter_cache_hits_total{app=\"raii_example\",cache=\"users\",backend=\"memory\"} 1";
    std::printf("%s\n", text.find(hits) != std::string::npos ? hits : "no hit counted");
    // Failures are exceptions with the library's message.
    try {
      cmx::open_cache(reg, "bad", "carrier-pigeon://coop");
    } catch (const cmx::Error& e) {
      std::printf("refused: %s\n", cm_status_name(e.status));
    }
    // users closes, then reg frees: reverse declaration order.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raii: %s\n", e.what());
    return 1;
  }
  return 0;
}
