/* SPDX-License-Identifier: Apache-2.0 */
// Maps a cache front's clock (monotonic, restarted at boot, or a test's manual
// clock) to the wall clock, for backends whose stored expiry instants outlive
// the process: sqlite:// rows, redis:// keys. The offset is fixed at the first
// call, whose argument must be "now" on the front's clock, so one backend
// instance stays consistent with itself and instances in other processes
// agree to within their wall clocks' agreement. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/time.h"

namespace cm {

class WallClockMap {
 public:
  // t on the front's clock to Unix milliseconds; kNever stays kNever.
  int64_t to_wall(int64_t t) {
    int64_t off = offset_.load(std::memory_order_relaxed);
    if (off == kUnset) {
      using namespace std::chrono;
      int64_t wall = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
      int64_t expected = kUnset;
      off = wall - t;
      if (!offset_.compare_exchange_strong(expected, off)) off = expected;
    }
    if (t == kNever) return kNever;
    if (off > 0 && t > kNever - off) return kNever;
    return t + off;
  }
  // The inverse; kNever stays kNever.
  int64_t from_wall(int64_t t) const {
    if (t == kNever) return kNever;
    return t - offset_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr int64_t kUnset = INT64_MIN;
  std::atomic<int64_t> offset_{kUnset};
};

}  // namespace cm
