// Wall-clock time for OpenMetrics _created timestamps.
#include "util/clock.h"

#include <chrono>

namespace cm {

double unix_time_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace cm
