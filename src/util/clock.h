// Wall-clock time for OpenMetrics _created timestamps.
#pragma once

namespace cm {

// Seconds since the Unix epoch, with sub-second precision.
double unix_time_now();

}  // namespace cm
