// SPDX-License-Identifier: Apache-2.0
// Every backend against the one contract (backend_contract.h): a factory per
// backend and one INSTANTIATE line each. A new backend adds its factory and
// its line here; its own file keeps only what is specific to it.
// CM_WITH_SQLITE / CM_WITH_REDIS come from tests/cpp/CMakeLists.txt.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "backend_contract.h"
#include "backends/memory.h"
#include "wrappers/breaker.h"
#include "util/clock.h"
#include "util/uri.h"
#if CM_WITH_SQLITE
#include "backends/sqlite.h"
#include "wrappers/tiered.h"
#endif
#if CM_WITH_REDIS
#include "redis_server.h"
#endif

// The instantiations live in the suite's namespace (the macros name it unqualified).
namespace cmbt {
namespace {

std::string bounds_query(Bounds b) {
  return "max_entries=" + std::to_string(b.max_entries) + "&max_bytes=" + std::to_string(b.max_bytes);
}

// A temporary directory, removed with everything in it.
struct TempDir {
  std::string start(const char* tmpl_prefix) {
    std::string tmpl = std::string("/tmp/") + tmpl_prefix + "-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return "mkdtemp failed";
    path = tmpl;
    return {};
  }
  ~TempDir() {
    if (path.empty()) return;
    std::string cmd = "rm -rf '" + path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string path;
};

// memory:// through make_backend, sharded as a user gets it.
struct Memory {
  static constexpr ContractTraits kTraits{"memory", cm::kEntryOverhead, true, false, true};
  std::string start() { return {}; }
  std::unique_ptr<cm::Backend> make(Bounds b, cm::BackendEvents* ev) {
    return cm::make_backend(cm::Uri::parse(("memory://?" + bounds_query(b)).c_str()), ev);
  }
};

// One shard: the caps hold exactly.
struct MemoryOneShard {
  static constexpr ContractTraits kTraits{"memory", cm::kEntryOverhead, true, true, true};
  std::string start() { return {}; }
  std::unique_ptr<cm::Backend> make(Bounds b, cm::BackendEvents* ev) {
    return std::make_unique<cm::MemoryBackend>(b.max_entries, b.max_bytes, ev, 1);
  }
};

// The circuit breaker wrapper, closed, around memory: it forwards everything.
struct BreakerOverMemory {
  static constexpr ContractTraits kTraits{"memory", cm::kEntryOverhead, true, true, true};
  std::string start() { return {}; }
  std::unique_ptr<cm::Backend> make(Bounds b, cm::BackendEvents* ev) {
    return std::make_unique<cm::BreakerBackend>(std::make_unique<cm::MemoryBackend>(b.max_entries, b.max_bytes, ev, 1),
                                                cm::BreakerOptions{}, &clock, ev);
  }
  cm::ManualClock clock;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, BackendContract, Memory);
INSTANTIATE_TYPED_TEST_SUITE_P(MemoryOneShard, BackendContract, MemoryOneShard);
INSTANTIATE_TYPED_TEST_SUITE_P(Breaker, BackendContract, BreakerOverMemory);

#if CM_WITH_SQLITE
// sqlite:// on a file in a temporary directory.
struct Sqlite {
  static constexpr ContractTraits kTraits{"sqlite", cm::kSqliteEntryOverhead, true, true, true};
  std::string start() { return dir.start("cm-contract-sqlite"); }
  std::unique_ptr<cm::Backend> make(Bounds b, cm::BackendEvents* ev) {
    return cm::make_backend(cm::Uri::parse(("sqlite://" + dir.path + "/c.db?" + bounds_query(b)).c_str()), ev);
  }
  TempDir dir;
};

// A memory L1 over a sqlite L2: the content (entries, bytes) is L2's; L1's
// copies expire and are evicted on their own, so evictions are not exact.
struct TieredMemoryOverSqlite {
  static constexpr ContractTraits kTraits{"tiered", cm::kSqliteEntryOverhead, false, false, false};
  std::string start() { return dir.start("cm-contract-tiered"); }
  std::unique_ptr<cm::Backend> make(Bounds, cm::BackendEvents* ev) {
    auto l1 = std::make_unique<cm::MemoryBackend>(1000, 0, ev);
    auto l2 = cm::make_backend(cm::Uri::parse(("sqlite://" + dir.path + "/l2.db").c_str()), ev);
    return std::make_unique<cm::TieredBackend>(std::move(l1), std::move(l2), cm::TieredOptions{}, &clock, ev);
  }
  TempDir dir;
  cm::ManualClock clock;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, BackendContract, Sqlite);
INSTANTIATE_TYPED_TEST_SUITE_P(Tiered, BackendContract, TieredMemoryOverSqlite);
#endif

#if CM_WITH_REDIS
// redis:// against a real redis-server on a free port (skipped when it is not
// installed); exact counts (count_interval_ms=0), a pool shared by threads.
struct Redis {
  static constexpr ContractTraits kTraits{"redis", std::nullopt, false, false, false, false};
  std::string start() {
    if (::access(cmrs::kRedisServer, X_OK) != 0) return std::string(cmrs::kRedisServer) + " is not installed";
    if (std::string why = dir.start("cm-contract-redis"); !why.empty()) return why;
    server = std::make_unique<cmrs::RedisServer>(dir.path, cmrs::free_port(), std::vector<std::string>{});
    if (!server->start()) ADD_FAILURE() << "redis-server did not start; see " << dir.path << "/redis.log";
    return {};
  }
  std::unique_ptr<cm::Backend> make(Bounds, cm::BackendEvents* ev) {
    std::string uri = "redis://127.0.0.1:" + std::to_string(server->port()) + "/0?prefix=contract:&count_interval_ms=0&pool=2";
    return cm::make_backend(cm::Uri::parse(uri.c_str()), ev);
  }
  TempDir dir;  // declared first: destroyed after the server stops
  std::unique_ptr<cmrs::RedisServer> server;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, BackendContract, Redis);
#endif

}  // namespace
}  // namespace cmbt
