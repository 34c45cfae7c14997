// SPDX-License-Identifier: Apache-2.0
// The circuit breaker. Contract: breaker.h.
#include "wrappers/breaker.h"

#include <new>

#include "core/error.h"

namespace cm {
namespace {

bool counts_as_failure(int status) {
  return status == CM_EUNAVAILABLE || status == CM_ETIMEOUT || status == CM_EBACKEND;
}

}  // namespace

BreakerBackend::BreakerBackend(std::unique_ptr<Backend> inner, BreakerOptions opt, const Clock* clock,
                               BackendEvents* events)
    : ForwardingBackend(std::move(inner)), opt_(opt), clock_(clock), events_(events) {
  if (opt_.failures < 1) opt_.failures = 1;
  if (opt_.cooldown_ms < 0) opt_.cooldown_ms = 0;
}

void BreakerBackend::transition(BreakerState from, BreakerState to) {
  if (events_) events_->on_breaker(from, to);
}

// A probe in flight at fork() runs on a thread of the parent: in the child
// nobody will report it, so the circuit is open again, due for a probe now.
void BreakerBackend::fork_child() {
  if (state_.load() == BreakerState::HalfOpen) {
    opened_at_ms_.store(clock_->coarse_ms() - opt_.cooldown_ms);
    state_.store(BreakerState::Open);
  }
}

bool BreakerBackend::admit() {
  BreakerState s = state_.load(std::memory_order_acquire);
  if (s == BreakerState::Closed) [[likely]]
    return false;  // no clock read on the common path
  const int64_t now_ms = clock_->coarse_ms();
  int64_t opened = opened_at_ms_.load(std::memory_order_acquire);
  if (s == BreakerState::Open && now_ms - opened >= opt_.cooldown_ms) {
    BreakerState expected = BreakerState::Open;
    if (state_.compare_exchange_strong(expected, BreakerState::HalfOpen, std::memory_order_acq_rel)) {
      transition(BreakerState::Open, BreakerState::HalfOpen);
      return true;  // the probe
    }
  }
  std::string why;
  {
    std::lock_guard lk(why_mu_);
    why = last_failure_;
  }
  int64_t wait = opened + opt_.cooldown_ms - now_ms;
  std::string when = s == BreakerState::Open && wait > 0 ? "; next probe in " + std::to_string(wait) + " ms"
                                                          : "; a probe is in flight";
  throw Error(CM_EUNAVAILABLE,
              std::string(inner_->kind()) + " backend: circuit open after " + std::to_string(opt_.failures) +
                  " consecutive failures" + when + " (last failure: " + why + ")",
              ErrorKind::CircuitOpen);
}

void BreakerBackend::succeeded(bool probe) {
  if (probe) {
    failures_.store(0, std::memory_order_relaxed);
    BreakerState expected = BreakerState::HalfOpen;
    if (state_.compare_exchange_strong(expected, BreakerState::Closed, std::memory_order_acq_rel))
      transition(BreakerState::HalfOpen, BreakerState::Closed);
    return;
  }
  // Read before writing: no shared cache-line write on the common path.
  if (failures_.load(std::memory_order_relaxed) != 0) failures_.store(0, std::memory_order_relaxed);
}

void BreakerBackend::failed(bool probe, int64_t now_ms, const std::string& why) {
  auto remember = [&] {
    std::lock_guard lk(why_mu_);
    last_failure_ = why;
  };
  if (probe) {
    remember();
    opened_at_ms_.store(now_ms, std::memory_order_release);
    BreakerState expected = BreakerState::HalfOpen;
    if (state_.compare_exchange_strong(expected, BreakerState::Open, std::memory_order_acq_rel))
      transition(BreakerState::HalfOpen, BreakerState::Open);
    return;
  }
  int n = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < opt_.failures) return;
  if (state_.load(std::memory_order_acquire) != BreakerState::Closed) return;
  remember();
  opened_at_ms_.store(now_ms, std::memory_order_release);
  BreakerState expected = BreakerState::Closed;
  if (state_.compare_exchange_strong(expected, BreakerState::Open, std::memory_order_acq_rel)) {
    failures_.store(0, std::memory_order_relaxed);
    transition(BreakerState::Closed, BreakerState::Open);
  }
}

template <class Fn>
auto BreakerBackend::call(Fn&& fn) {
  const bool probe = admit();
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      succeeded(probe);
    } else {
      auto r = fn();
      succeeded(probe);
      return r;
    }
  } catch (const Error& e) {
    if (counts_as_failure(e.status()))
      failed(probe, clock_->coarse_ms(), e.what());
    else
      succeeded(probe);
    throw;
  } catch (const std::bad_alloc&) {
    succeeded(probe);  // our memory, not the store's health
    throw;
  } catch (const std::exception& e) {
    failed(probe, clock_->coarse_ms(), e.what());
    throw;
  } catch (...) {
    failed(probe, clock_->coarse_ms(), "unknown exception");
    throw;
  }
}

bool BreakerBackend::get(std::string_view key, int64_t now_ms, Fetched* out) {
  return call([&] { return inner_->get(key, now_ms, out); });
}

void BreakerBackend::set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) {
  call([&] { inner_->set(key, value, e, now_ms); });
}

bool BreakerBackend::del(std::string_view key, int64_t now_ms) {
  return call([&] { return inner_->del(key, now_ms); });
}

void BreakerBackend::clear() {
  call([&] { inner_->clear(); });
}

uint64_t BreakerBackend::entries() const {
  if (state_.load(std::memory_order_acquire) != BreakerState::Closed) return last_entries_.load();
  uint64_t n = inner_->entries();
  last_entries_.store(n, std::memory_order_relaxed);
  return n;
}

uint64_t BreakerBackend::bytes() const {
  if (state_.load(std::memory_order_acquire) != BreakerState::Closed) return last_bytes_.load();
  uint64_t n = inner_->bytes();
  last_bytes_.store(n, std::memory_order_relaxed);
  return n;
}

int BreakerBackend::health() {
  return report("", [&] {
    return call([&] {
      int rc = inner_->health();
      // health() reports instead of throwing: turn a failure into an Error
      // so the breaker sees it, then back into a status (report).
      if (rc != CM_OK) throw Error(rc, cm_errmsg());
      return rc;
    });
  });
}

bool BreakerBackend::try_lock(std::string_view key, std::string_view token, int64_t ttl_ms) {
  return call([&] { return inner_->try_lock(key, token, ttl_ms); });
}

void BreakerBackend::unlock(std::string_view key, std::string_view token) {
  call([&] { inner_->unlock(key, token); });
}

}  // namespace cm
