/* SPDX-License-Identifier: Apache-2.0 */
// Clocks. Wall-clock seconds for OpenMetrics _created timestamps, and the
// injectable monotonic millisecond clock caches use for TTLs and windows
// (tests pass a ManualClock: no sleeps, exact expiry).
#pragma once

#include <atomic>
#include <cstdint>

namespace cm {

// Seconds since the Unix epoch, with sub-second precision.
double unix_time_now();

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds on a monotonic timeline (not the wall clock).
  virtual int64_t now_ms() const = 0;
  // Nanoseconds on the same timeline, for operation latencies.
  virtual int64_t now_ns() const = 0;
  // now_ms() at the clock's cheapest resolution: what TTLs and windows use.
  // The system clock's is CLOCK_MONOTONIC_COARSE (one kernel tick, 1..4 ms,
  // behind; a quarter of the cost of a precise read).
  virtual int64_t coarse_ms() const { return now_ms(); }
};

// steady_clock. One process-wide instance: system_clock().
class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override;
  int64_t now_ns() const override;
  int64_t coarse_ms() const override;
};
const Clock& system_clock();

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1000000) : ns_(start_ms * 1000000) {}
  int64_t now_ms() const override { return ns_.load(std::memory_order_acquire) / 1000000; }
  int64_t now_ns() const override { return ns_.load(std::memory_order_acquire); }
  void advance_ms(int64_t ms) { ns_.fetch_add(ms * 1000000, std::memory_order_acq_rel); }
  void advance_ns(int64_t ns) { ns_.fetch_add(ns, std::memory_order_acq_rel); }

 private:
  std::atomic<int64_t> ns_;
};

}  // namespace cm
