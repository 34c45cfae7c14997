/* SPDX-License-Identifier: Apache-2.0 */
// Helpers shared by the backend tests (memory://, sqlite://): an events
// recorder, and get/set wrappers that check the Backend contract.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "cache/backend.h"

namespace cmbt {

constexpr int64_t kT0 = 1000000;

// Counts what a backend reports, by reason.
struct Events final : cm::BackendEvents {
  struct Count {
    uint64_t calls = 0, entries = 0, bytes = 0;
  };
  void on_evict(cm::EvictReason why, uint64_t entries, uint64_t bytes) override {
    Count& c = why == cm::EvictReason::Size ? size : expired;
    ++c.calls;
    c.entries += entries;
    c.bytes += bytes;
  }
  Count size, expired;
};

// The value under key, checking the Fetched contract (NUL-terminated malloc'd
// copy, never null); fresh_until receives fresh_until_ms.
inline std::optional<std::string> get(cm::Backend& b, std::string_view key, int64_t now = kT0,
                                      int64_t* fresh_until = nullptr) {
  cm::Fetched f;
  if (!b.get(key, now, &f)) {
    EXPECT_EQ(f.data, nullptr);
    return std::nullopt;
  }
  EXPECT_NE(f.data, nullptr);
  if (!f.data) return std::nullopt;
  const char* p = static_cast<const char*>(f.data);
  EXPECT_EQ(p[f.len], '\0');
  std::string v(p, f.len);
  if (fresh_until) *fresh_until = f.fresh_until_ms;
  std::free(f.data);
  return v;
}

inline void set(cm::Backend& b, std::string_view k, std::string_view v, int64_t now = kT0, cm::Expiry e = {}) {
  b.set(k, v, e, now);
}

// The status an operation throws (CM_OK when it does not); its message in *what.
int status_of(auto&& fn, std::string* what = nullptr) {
  try {
    fn();
  } catch (const cm::Error& e) {
    if (what) *what = e.what();
    return e.status();
  }
  return CM_OK;
}

}  // namespace cmbt
