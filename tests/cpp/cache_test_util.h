/* SPDX-License-Identifier: Apache-2.0 */
// Helpers shared by the cache front tests: a registry, a cache on a manual
// clock, and a loader that counts its calls and can be held.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "cache/cache.h"
#include "metrics/registry.h"

namespace cmtest {

struct Reg {
  Reg() { EXPECT_EQ(cm_registry_new(&reg, nullptr), CM_OK); }
  ~Reg() { cm_registry_free(reg); }
  cm_registry* reg = nullptr;
};

struct Cache {
  Cache(cm_registry* reg, const char* uri, const cm::Clock* clock, const char* name = "t")
      : c(cm::open_cache(reg, name, uri, clock)) {}
  explicit Cache(std::unique_ptr<cm_cache> opened) : c(std::move(opened)) {}
  std::unique_ptr<cm_cache> c;

  int get(const std::string& k, std::string* out = nullptr) {
    void* v = nullptr;
    size_t n = 0;
    int rc = cm::cache_get(*c, k, &v, &n);
    if (rc == CM_OK && out) out->assign(static_cast<char*>(v), n);
    std::free(v);
    return rc;
  }
  int set(const std::string& k, const std::string& v, int64_t ttl = 0) { return cm::cache_set(*c, k, v, ttl); }
  double value(cm_series* s) { return cm_series_value(s); }
};

// A loader that returns "v:<key>:<n>" where n counts its calls; can be told to
// block until released.
struct Loader {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  bool block = false;
  bool entered = false;
  int status = CM_OK;

  static int fn(void* ctx, const void* key, size_t klen, void** val, size_t* vlen) {
    auto* l = static_cast<Loader*>(ctx);
    std::unique_lock<std::mutex> lk(l->mu);
    int n = ++l->calls;
    l->entered = true;
    l->cv.notify_all();
    l->cv.wait_for(lk, std::chrono::seconds(30), [&] { return !l->block; });
    if (l->status != CM_OK) return l->status;
    std::string v = "v:" + std::string(static_cast<const char*>(key), klen) + ":" + std::to_string(n);
    *val = std::malloc(v.size());
    std::memcpy(*val, v.data(), v.size());
    *vlen = v.size();
    return CM_OK;
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, std::chrono::seconds(30), [&] { return entered; }));
  }
  void release() {
    std::lock_guard<std::mutex> lk(mu);
    block = false;
    cv.notify_all();
  }
};

// get_or_load as the C API sees it: a thrown cm::Error becomes its status
// (and its message goes to *err).
inline int load(cm_cache& c, const std::string& k, Loader& l, std::string* out, int64_t ttl = 0, std::string* err = nullptr) {
  void* v = nullptr;
  size_t n = 0;
  int rc;
  try {
    rc = cm::cache_get_or_load(c, k, Loader::fn, &l, ttl, &v, &n);
  } catch (const cm::Error& e) {
    if (err) *err = e.what();
    return e.status();
  }
  if (rc == CM_OK && out) out->assign(static_cast<char*>(v), n);
  std::free(v);
  return rc;
}

}  // namespace cmtest
