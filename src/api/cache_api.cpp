// SPDX-License-Identifier: Apache-2.0
// extern "C" shims of cache.h: validate arguments, translate exceptions.
#include <cachemeter/cache.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "api/guard.h"
#include "cache/cache.h"

namespace {

std::string_view key_of(const void* key, size_t klen) {
  CM_REQUIRE(key != nullptr, "key is NULL");
  CM_REQUIRE(klen > 0, "key is empty (klen 0)");
  return {static_cast<const char*>(key), klen};
}

}  // namespace

CM_EXTERN int cm_cache_open(cm_cache** out, cm_registry* reg, const char* name, const char* uri) {
  return cm::guard("cm_cache_open", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    *out = cm::open_cache(reg, name, uri, nullptr).release();
    return CM_OK;
  });
}

CM_EXTERN int cm_cache_open_tiered(cm_cache** out, cm_registry* reg, const char* name, const char* l1_uri,
                                   const char* l2_uri) {
  return cm::guard("cm_cache_open_tiered", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    *out = cm::open_cache_tiered(reg, name, l1_uri, l2_uri, nullptr).release();
    return CM_OK;
  });
}

CM_EXTERN void cm_cache_close(cm_cache* c) { delete c; }

CM_EXTERN int cm_cache_get(cm_cache* c, const void* key, size_t klen, void** val, size_t* vlen) {
  return cm::guard("cm_cache_get", [&] {
    CM_REQUIRE(val != nullptr, "val is NULL");
    CM_REQUIRE(vlen != nullptr, "vlen is NULL");
    *val = nullptr;
    *vlen = 0;
    CM_REQUIRE(c != nullptr, "cache is NULL");
    return cm::cache_get(*c, key_of(key, klen), val, vlen);
  });
}

CM_EXTERN int cm_cache_get_into(cm_cache* c, const void* key, size_t klen, void* buf, size_t cap, size_t* vlen) {
  return cm::guard("cm_cache_get_into", [&] {
    CM_REQUIRE(vlen != nullptr, "vlen is NULL");
    *vlen = 0;
    CM_REQUIRE(c != nullptr, "cache is NULL");
    CM_REQUIRE(buf != nullptr || cap == 0, "buf is NULL with cap > 0");
    int rc = cm::cache_get_into(*c, key_of(key, klen), buf, cap, vlen);
    if (rc == CM_ELIMIT)  // a status, not a failure: no exception on this path
      return cm::set_error(CM_ELIMIT, "cm_cache_get_into: the value of " + std::to_string(*vlen) +
                                          " bytes does not fit cap=" + std::to_string(cap));
    return rc;
  });
}

CM_EXTERN int cm_cache_get_hit(cm_cache* c, const void* key, size_t klen, void** val, size_t* vlen) {
  return cm::guard("cm_cache_get_hit", [&] {
    CM_REQUIRE(val != nullptr, "val is NULL");
    CM_REQUIRE(vlen != nullptr, "vlen is NULL");
    *val = nullptr;
    *vlen = 0;
    CM_REQUIRE(c != nullptr, "cache is NULL");
    return cm::cache_get(*c, key_of(key, klen), val, vlen, false);
  });
}

CM_EXTERN int cm_cache_set(cm_cache* c, const void* key, size_t klen, const void* val, size_t vlen, int64_t ttl_ms) {
  return cm::guard("cm_cache_set", [&] {
    CM_REQUIRE(c != nullptr, "cache is NULL");
    CM_REQUIRE(val != nullptr || vlen == 0, "val is NULL with vlen > 0");
    std::string_view v = vlen ? std::string_view(static_cast<const char*>(val), vlen) : std::string_view();
    return cm::cache_set(*c, key_of(key, klen), v, ttl_ms);
  });
}

CM_EXTERN int cm_cache_delete(cm_cache* c, const void* key, size_t klen) {
  return cm::guard("cm_cache_delete", [&] {
    CM_REQUIRE(c != nullptr, "cache is NULL");
    return cm::cache_delete(*c, key_of(key, klen));
  });
}

CM_EXTERN int cm_cache_clear(cm_cache* c) {
  return cm::guard("cm_cache_clear", [&] {
    CM_REQUIRE(c != nullptr, "cache is NULL");
    return cm::cache_clear(*c);
  });
}

CM_EXTERN int cm_cache_get_or_load(cm_cache* c, const void* key, size_t klen, cm_loader_fn load, void* ctx,
                                   int64_t ttl_ms, void** val, size_t* vlen) {
  return cm::guard("cm_cache_get_or_load", [&] {
    CM_REQUIRE(val != nullptr, "val is NULL");
    CM_REQUIRE(vlen != nullptr, "vlen is NULL");
    *val = nullptr;
    *vlen = 0;
    CM_REQUIRE(c != nullptr, "cache is NULL");
    CM_REQUIRE(load != nullptr, "load is NULL");
    return cm::cache_get_or_load(*c, key_of(key, klen), load, ctx, ttl_ms, val, vlen);
  });
}

CM_EXTERN int cm_cache_stats_json(cm_cache* c, char** json) {
  return cm::guard("cm_cache_stats_json", [&] {
    CM_REQUIRE(json != nullptr, "json is NULL");
    *json = nullptr;
    CM_REQUIRE(c != nullptr, "cache is NULL");
    std::string s = cm::cache_stats_json(*c);
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (!p) throw std::bad_alloc();
    std::memcpy(p, s.c_str(), s.size() + 1);
    *json = p;
    return CM_OK;
  });
}

CM_EXTERN int cm_cache_reset_stats(cm_cache* c) {
  return cm::guard("cm_cache_reset_stats", [&] {
    CM_REQUIRE(c != nullptr, "cache is NULL");
    cm::cache_reset_stats(*c);
    return CM_OK;
  });
}
