/* SPDX-License-Identifier: Apache-2.0 */
// The circuit breaker: a Backend that wraps another (a redis or sqlite
// store) and stops calling it while it keeps failing.
//
//   closed     every call goes through; `failures` consecutive failures
//              open the circuit.
//   open       calls fail at once with CM_EUNAVAILABLE (kind circuit_open)
//              without touching the store, for `cooldown_ms`.
//   half-open  after the cooldown, the next call is let through as the one
//              probe (the others still fail fast); its success closes the
//              circuit, its failure opens it for another cooldown.
//
// What counts as a failure: an Error with CM_EUNAVAILABLE, CM_ETIMEOUT or
// CM_EBACKEND (the store did not answer, or answered with an error), or any
// non-Error exception. Anything else (a hit, a miss, CM_ELIMIT, CM_ECORRUPT:
// the store answered) is a success and resets the count. Every call is
// counted: get, set, delete, clear, health and the lock operations;
// entries() and bytes() are not (while the circuit is not closed they
// return the last values read instead of asking the store).
//
// Time: the front's clock (coarse_ms), so tests drive the cooldown with a
// ManualClock. Transitions are reported through BackendEvents::on_breaker,
// outside any lock. The hot path in the closed state is one relaxed atomic
// load (plus a store only when a failure streak ends).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "util/clock.h"
#include "wrappers/forwarding.h"
#include "util/fork.h"

namespace cm {

struct BreakerOptions {
  int failures = 5;           // consecutive failures that open the circuit (>= 1)
  int64_t cooldown_ms = 1000;  // how long it stays open before a probe
};

// Overrides every call that reaches the store; kind(), supports_lock(),
// share_key() and change_feed() (whose events do not pass through the
// breaker) are forwarded unchanged.
class BreakerBackend final : public ForwardingBackend, private fork::Hooks {
 public:
  // events may be null; clock must outlive this.
  BreakerBackend(std::unique_ptr<Backend> inner, BreakerOptions opt, const Clock* clock, BackendEvents* events);

  bool get(std::string_view key, int64_t now_ms, Fetched* out) override;
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override;
  bool del(std::string_view key, int64_t now_ms) override;
  void clear() override;
  uint64_t entries() const override;
  uint64_t bytes() const override;
  // Fails fast (CM_EUNAVAILABLE) while open; after the cooldown it is a
  // probe like any other call, so a health check alone can close a circuit.
  int health() override;
  bool try_lock(std::string_view key, std::string_view token, int64_t ttl_ms) override;
  void unlock(std::string_view key, std::string_view token) override;
  BreakerState breaker_state() const override { return state_.load(std::memory_order_acquire); }

  const BreakerOptions& options() const { return opt_; }

 private:
  // Runs fn under the breaker: throws fast when open, records the outcome.
  template <class Fn>
  auto call(Fn&& fn);
  bool admit();  // true: this call is the half-open probe; throws when refused
  void succeeded(bool probe);
  void failed(bool probe, int64_t now_ms, const std::string& why);
  void transition(BreakerState from, BreakerState to);

  BreakerOptions opt_;
  const Clock* clock_;
  BackendEvents* events_;
  std::atomic<BreakerState> state_{BreakerState::Closed};
  std::atomic<int> failures_{0};
  std::atomic<int64_t> opened_at_ms_{0};
  mutable std::atomic<uint64_t> last_entries_{0}, last_bytes_{0};
  std::mutex why_mu_;
  std::string last_failure_;  // the failure that opened the circuit
  fork::Enrolment fork_{this};  // last

  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(why_mu_)); }
  void fork_child() override;
};

}  // namespace cm
