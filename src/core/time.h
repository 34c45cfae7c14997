/* SPDX-License-Identifier: Apache-2.0 */
// Instants of the core: milliseconds on the front's monotonic clock (or a
// test's manual clock, util/clock.h), int64_t everywhere.
#pragma once

#include <cstdint>
#include <limits>

namespace cm {

// An instant that never comes: an entry that never expires, a deadline that
// is never reached. Arithmetic on instants saturates at kNever.
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

}  // namespace cm
