// SPDX-License-Identifier: Apache-2.0
// The collectors' interval thread of a shared registry (refresher.h).
#include "metrics/shared/refresher.h"

#include <chrono>

#include "metrics/registry.h"

namespace cm::shared {

Refresher::Refresher(cm_registry& r, int64_t interval_ms) : r_(r), interval_ms_(interval_ms) {
  fork_.enrol(this);
  start();
}

Refresher::~Refresher() {
  fork_.leave();
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (running_ && thread_.joinable()) thread_.join();
}

void Refresher::start() {
  std::lock_guard<std::mutex> g(mu_);
  if (running_ || stopping_) return;
  thread_ = std::thread([this] { run(); });
  running_ = true;
}

void Refresher::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stopping_) {
    if (cv_.wait_for(lk, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; })) break;
    lk.unlock();
    run_collectors(r_);  // catches what a collector throws
    lk.lock();
  }
}

void Refresher::fork_child() {
  // The parent's thread does not exist here: forget it without joining.
  fork::renew(thread_);
  fork::renew(cv_);
  running_ = false;
}

}  // namespace cm::shared
