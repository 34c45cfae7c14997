/* SPDX-License-Identifier: Apache-2.0 */
// Keeps a shared registry's collected gauges fresh in every worker
// (docs/multiprocess.md). The library's own gauges (a cache's entries and
// bytes, a breaker's state) are set by collectors, which a registry runs
// when it renders; in a pool, the worker that renders runs only its own.
// A refresher runs them every interval on a thread of each worker, so the
// aggregate another worker renders is at most one interval old.
//
// fork(): the thread stays with its process; a child starts its own when it
// claims its slot (start(), called by the pool then).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "util/fork.h"

struct cm_registry;

namespace cm::shared {

class Refresher final : private fork::Hooks {
 public:
  Refresher(cm_registry& r, int64_t interval_ms);
  // Stops and joins this process's thread (an inherited one is not ours).
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Starts the thread if this process has none. Thread-safe; may be called
  // with the cell space's lock held (the thread waits an interval first).
  void start();

 private:
  void run();
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  void fork_child() override;

  cm_registry& r_;
  const int64_t interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool running_ = false;  // this process has the thread
  std::thread thread_;
  fork::Enrolment fork_;
};

}  // namespace cm::shared
