// SPDX-License-Identifier: Apache-2.0
// Clocks: wall-clock seconds and the monotonic clock caches use.
#include "util/clock.h"

#include <time.h>

#include <chrono>

namespace cm {

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::now_ns() const {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::coarse_ms() const {
#ifdef CLOCK_MONOTONIC_COARSE
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
#endif
  return now_ms();
}

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

}  // namespace cm
