/* SPDX-License-Identifier: Apache-2.0 */
// Helpers of the tests of Redis caches through the C API (test_redis_cache.cpp,
// test_redis_sentinel.cpp): a registry whose exposition can be read back by
// series, a handle closed with the object, a redis:// URI.
#pragma once

#include <gtest/gtest.h>
#include <spawn.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cachemeter/cachemeter.h>

#include "cache/cache.h"
#include "wrappers/tiered.h"

extern "C" char** environ;

namespace cmrc {

// Runs this test binary again (posix_spawn of /proc/self/exe: safe in a
// threaded test) with --gtest_filter=filter and env_name=env_value replacing
// any env_name of ours; the child's pid, or -1.
inline pid_t spawn_self(const std::string& filter, const std::string& env_name, const std::string& env_value) {
  const std::string prefix = env_name + "=";
  std::vector<std::string> env_s{prefix + env_value};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env_s.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe", flag = "--gtest_filter=" + filter;
  std::vector<char*> argv{self.data(), flag.data(), nullptr};
  pid_t pid = -1;
  if (::posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0) return -1;
  return pid;
}

inline std::string url(int port, const std::string& query = "") {
  return "redis://127.0.0.1:" + std::to_string(port) + "/0" + (query.empty() ? "" : "?" + query);
}

inline int64_t mono_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Reg {
  Reg() { EXPECT_EQ(cm_registry_new(&reg, nullptr), CM_OK); }
  ~Reg() { cm_registry_free(reg); }
  // The value of the sample line that starts with `series` ("name{labels}"),
  // or -1 when there is none.
  double metric(const std::string& series) {
    char* out = nullptr;
    size_t len = 0;
    EXPECT_EQ(cm_registry_render(reg, CM_FORMAT_PROMETHEUS, &out, &len), CM_OK);
    std::string text(out, len);
    cm_free(out);
    size_t at = 0;
    while ((at = text.find(series + " ", at)) != std::string::npos) {
      if (at == 0 || text[at - 1] == '\n') return std::strtod(text.c_str() + at + series.size() + 1, nullptr);
      at += series.size();
    }
    return -1;
  }
  cm_registry* reg = nullptr;
};

// A C-API handle, closed with the object.
struct Handle {
  cm_cache* c = nullptr;
  ~Handle() { cm_cache_close(c); }
  int get(const std::string& k, std::string* out = nullptr) {
    void* v = nullptr;
    size_t n = 0;
    int rc = cm_cache_get(c, k.data(), k.size(), &v, &n);
    if (rc == CM_OK && out) out->assign(static_cast<char*>(v), n);
    cm_free(v);
    return rc;
  }
  int set(const std::string& k, const std::string& v, int64_t ttl = 0) {
    return cm_cache_set(c, k.data(), k.size(), v.data(), v.size(), ttl);
  }
  cm::TieredBackend* tiered() { return dynamic_cast<cm::TieredBackend*>(c->backend.get()); }
};

// cm_cache_open's status for uri (a handle that opens is closed at once).
inline int open_status(cm_registry* reg, const std::string& uri) {
  cm_cache* c = nullptr;
  int rc = cm_cache_open(&c, reg, "t", uri.c_str());
  if (rc == CM_OK) cm_cache_close(c);
  return rc;
}

// cm_errmsg() holds what.
inline bool errmsg_has(const std::string& what) { return std::string(cm_errmsg()).find(what) != std::string::npos; }

}  // namespace cmrc
