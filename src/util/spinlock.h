/* SPDX-License-Identifier: Apache-2.0 */
// A test-and-test-and-set lock that spins briefly, then yields. For critical
// sections of a few hundred nanoseconds (a memory-cache shard): std::mutex
// puts a waiter to sleep at once, and the futex round trip (a context switch
// each way) costs microseconds, far more than the section it waited for.
// After kSpins failed rounds the waiter yields its CPU on every round, so an
// oversubscribed machine does not burn a core on a descheduled holder.
#pragma once

#include <atomic>
#include <thread>

namespace cm {

class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins < kSpins) {
          ++spins;
          pause();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr int kSpins = 2000;
  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  std::atomic<bool> locked_{false};
};

}  // namespace cm
