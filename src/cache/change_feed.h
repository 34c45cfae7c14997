/* SPDX-License-Identifier: Apache-2.0 */
// A change feed: the events a shared store may offer about its entries
// ("this key changed", "anything may have changed"), so a copy kept
// elsewhere (a tiered cache's L1) can stay coherent without knowing the
// store. A backend offers one through Backend::change_feed() (nullptr when
// it has none); redis offers its invalidation listener (redis_invalidation.h).
#pragma once

#include <functional>
#include <memory>
#include <string_view>

namespace cm {

class ChangeFeed {
 public:
  // Run on the feed's own thread, one at a time; must be cheap, must not
  // throw, and must not destroy the subscription.
  struct Callbacks {
    // A key changed (written, deleted, expired or evicted, by anyone), named
    // as the backend's get() names it; valid during the call.
    std::function<void(std::string_view key)> invalidate;
    // Anything may have changed (the store was flushed, or events may have
    // been missed: a lost or re-established connection).
    std::function<void()> flush;
  };

  // One subscriber's live feed. Events are trustworthy only while
  // connected(): a copy must not be served otherwise. Destroying it stops
  // the events (the callbacks are not called once the destructor returns).
  // Every method may be called from any thread.
  class Subscription {
   public:
    virtual ~Subscription() = default;
    // Events flow and none were missed since the last flush.
    virtual bool connected() const = 0;
    // Waits up to timeout_ms for connected(); returns connected().
    virtual bool wait_connected(int timeout_ms) const = 0;
    // fork(): in a child the subscription is the parent's and delivers
    // nothing (inherited() is true) until revive() makes the child's own
    // (thread-safe, idempotent; call it lazily, on the next use, so a child
    // that only calls exec() starts nothing). Its first event is a flush.
    virtual bool inherited() const = 0;
    virtual void revive() = 0;
  };

  // Starts a subscription to every change of the backend's entries (its
  // namespace only). Returns at once: connected() turns true later. Throws
  // Error(CM_EBACKEND) when it cannot be started at all.
  virtual std::unique_ptr<Subscription> subscribe(Callbacks cb) = 0;

 protected:
  ~ChangeFeed() = default;
};

}  // namespace cm
