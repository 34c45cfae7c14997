// SPDX-License-Identifier: Apache-2.0
// The tiered backend. Contract: tiered.h.
#include "wrappers/tiered.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "core/error.h"

namespace cm {
namespace {

// A failure of L2 that a write absorbs into L1 (the store is unreachable or
// failing), as opposed to one about the request itself.
bool is_outage(int status) { return status == CM_EUNAVAILABLE || status == CM_ETIMEOUT || status == CM_EBACKEND; }

}  // namespace

TieredBackend::TieredBackend(std::unique_ptr<Backend> l1, std::unique_ptr<Backend> l2, TieredOptions opt,
                             const Clock* clock, BackendEvents* events)
    : ForwardingBackend(std::move(l2)), l1_(std::move(l1)), opt_(opt), clock_(clock), events_(events) {}

// The feed's thread calls back into L1: stop it before L1 goes.
TieredBackend::~TieredBackend() { feed_.reset(); }

void TieredBackend::start_coherence() {
  ChangeFeed* feed = inner_->change_feed();
  if (!feed) return;
  ChangeFeed::Callbacks cb;
  cb.invalidate = [this](std::string_view key) { on_invalidate(key); };
  cb.flush = [this] { on_flush(); };
  feed_ = feed->subscribe(std::move(cb));
}

bool TieredBackend::coherent() const {
  if (!feed_) return true;
  // In a child of fork() the subscription is the parent's: start this
  // process's own on first use (it flushes L1 before L1 serves again).
  if (feed_->inherited()) [[unlikely]]
    feed_->revive();
  return feed_->connected();
}

bool TieredBackend::wait_coherent(int timeout_ms) const {
  return coherent() || feed_->wait_connected(timeout_ms);
}

bool TieredBackend::l1_serves() const {
  return coherent() || inner_->breaker_state() != BreakerState::Closed;
}

size_t TieredBackend::slot_of(std::string_view key) const { return std::hash<std::string_view>{}(key) % kSlots; }

uint64_t TieredBackend::stamp(size_t slot) const {
  // Both only grow, so the sum changes whenever either does.
  return gen_.load(std::memory_order_acquire) + slot_epoch_[slot].load(std::memory_order_acquire);
}

Expiry TieredBackend::l1_expiry(int64_t fresh_until_ms, int64_t now_ms) const {
  int64_t until = fresh_until_ms;
  if (opt_.l1_ttl_ms > 0 && opt_.l1_ttl_ms < kNever - now_ms) until = std::min(until, now_ms + opt_.l1_ttl_ms);
  return Expiry{until, until};  // no stale window in L1: L2 keeps stale entries
}

void TieredBackend::on_invalidate(std::string_view key) {
  slot_epoch_[slot_of(key)].fetch_add(1, std::memory_order_acq_rel);
  l1_->del(key, clock_->coarse_ms());
  if (events_) events_->on_invalidation();
}

void TieredBackend::on_flush() {
  gen_.fetch_add(1, std::memory_order_acq_rel);
  l1_->clear();
  if (events_) events_->on_l1_flush();
}

bool TieredBackend::get(std::string_view key, int64_t now_ms, Fetched* out) {
  if (l1_serves()) {
    // The hit path adds nothing but this lookup: the front counts an L1 hit
    // (and times it with its own sampling) from out->from_l1.
    if (l1_->get(key, now_ms, out)) {
      out->from_l1 = true;
      return true;
    }
    if (events_) events_->on_tier_get(Tier::L1, false, -1);
  }
  const size_t slot = slot_of(key);
  const uint64_t before = stamp(slot);
  int64_t t0 = clock_->now_ns();
  bool found = inner_->get(key, now_ms, out);
  if (events_) events_->on_tier_get(Tier::L2, found, clock_->now_ns() - t0);
  if (found && now_ms < out->fresh_until_ms && coherent() && stamp(slot) == before) {
    try {
      l1_->set(key, std::string_view(static_cast<const char*>(out->data), out->len),
               l1_expiry(out->fresh_until_ms, now_ms), now_ms);
      // An invalidation that raced with the fill: undo it.
      if (stamp(slot) != before || !coherent()) l1_->del(key, now_ms);
    } catch (const Error&) {
      // Larger than L1 can hold: served from L2 only.
    }
  }
  return found;
}

void TieredBackend::set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) {
  try {
    inner_->set(key, value, e, now_ms);
  } catch (const Error& err) {
    if (!is_outage(err.status())) throw;
    if (events_) events_->on_absorbed_error(Op::Set, err);
    // L2 is unreachable: this process's L1 holds the write meanwhile.
    l1_->set(key, value, l1_expiry(e.fresh_until_ms, now_ms), now_ms);
    return;
  }
  if (feed_)
    l1_->del(key, now_ms);  // the invalidation of this write would drop it anyway
  else
    l1_->set(key, value, l1_expiry(e.fresh_until_ms, now_ms), now_ms);
}

bool TieredBackend::del(std::string_view key, int64_t now_ms) {
  bool in_l1 = l1_->del(key, now_ms);
  try {
    return inner_->del(key, now_ms) || in_l1;
  } catch (const Error& err) {
    if (!is_outage(err.status())) throw;
    if (events_) events_->on_absorbed_error(Op::Delete, err);
    return in_l1;
  }
}

void TieredBackend::clear() {
  l1_->clear();
  try {
    inner_->clear();
  } catch (const Error& err) {
    if (!is_outage(err.status())) throw;
    if (events_) events_->on_absorbed_error(Op::Clear, err);
  }
}

}  // namespace cm
