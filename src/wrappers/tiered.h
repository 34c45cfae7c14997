/* SPDX-License-Identifier: Apache-2.0 */
// The tiered backend (cm_cache_open_tiered): a memory L1 in this process in
// front of a shared L2 (redis or sqlite). Read-through, write-through.
//
// Reads: L1 first; on an L1 miss, L2, and a fresh L2 hit is copied into L1
// (for at most the L1 URI's ttl_ms, if given). Each tier's lookup is
// reported (BackendEvents::on_tier_get) so the front labels hits by tier.
//
// Writes: L2 first, then L1. A write that L2 fails with CM_EUNAVAILABLE,
// CM_ETIMEOUT or CM_EBACKEND (including a circuit that is open) still
// reaches L1 and succeeds; the failure is counted (on_absorbed_error). While
// L2 is down, L1 keeps answering with what it holds. Other failures (a
// value too large for L2, a corrupt entry) are thrown as usual.
//
// Coherence with an L2 that offers a change feed (cache/change_feed.h;
// redis: its invalidation listener), for other processes writing the same
// keys: start_coherence() subscribes to it. An invalidated key is dropped
// from L1; a flush (the feed's connection lost or re-established, the store
// flushed) empties L1 (counted, on_l1_flush), since changes may have been
// missed. L1 answers only while the feed is connected, or while L2 itself is
// unreachable (its circuit is not closed: nobody can change L2 then). A
// write to L2 drops the key from L1 instead of storing it there (this
// process's own write comes back as an invalidation anyway); the next read
// fills L1. A fill is skipped when an invalidation for a key of the same
// slot arrived during the L2 read, so a value read before another process's
// write is never kept after it. This code knows the feed only through that
// interface: nothing here is specific to one store.
//
// With an L2 without a change feed (sqlite), L1 copies may be stale for at
// most the L1 URI's ttl_ms (the front's default is then 1000 ms), and writes
// from this handle update its own L1 directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "cache/change_feed.h"
#include "util/clock.h"
#include "wrappers/forwarding.h"

namespace cm {

struct TieredOptions {
  int64_t l1_ttl_ms = 0;  // the longest an entry stays in L1 (0: as long as in L2)
};

// Wraps L2 (the inner backend): everything but the entry operations goes
// to L2 unchanged (entries and bytes are L2's: L1 holds copies; health,
// locks, breaker state, share key and change feed too).
class TieredBackend final : public ForwardingBackend {
 public:
  // l1 is the memory backend; l2 the shared store (maybe behind a breaker).
  // clock and events must outlive this.
  TieredBackend(std::unique_ptr<Backend> l1, std::unique_ptr<Backend> l2, TieredOptions opt, const Clock* clock,
                BackendEvents* events);
  ~TieredBackend() override;

  // Subscribes to L2's change feed, if it offers one (nothing otherwise).
  // Until the feed is connected, L1 is bypassed. Call it once, after the
  // events object is ready to receive its reports (from the feed's thread).
  void start_coherence();
  // True when no feed is needed or it is connected: L1 may answer.
  bool coherent() const;
  const TieredOptions& options() const { return opt_; }
  // Waits until coherent() (tests, and callers who want L1 from the start).
  bool wait_coherent(int timeout_ms) const;

  std::string_view kind() const override { return "tiered"; }
  bool get(std::string_view key, int64_t now_ms, Fetched* out) override;
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override;
  bool del(std::string_view key, int64_t now_ms) override;
  void clear() override;
  Backend& l1() { return *l1_; }
  Backend& l2() { return inner(); }

 private:
  static constexpr size_t kSlots = 64;
  bool l1_serves() const;
  size_t slot_of(std::string_view key) const;
  uint64_t stamp(size_t slot) const;
  Expiry l1_expiry(int64_t fresh_until_ms, int64_t now_ms) const;
  void on_invalidate(std::string_view key);
  void on_flush();

  std::unique_ptr<Backend> l1_;
  TieredOptions opt_;
  const Clock* clock_;
  BackendEvents* events_;
  // Bumped by invalidations (per slot of the key's hash) and flushes (gen_):
  // a fill reads the stamp before the L2 read and fills only if unchanged.
  std::atomic<uint64_t> gen_{0};
  std::atomic<uint64_t> slot_epoch_[kSlots] = {};
  std::unique_ptr<ChangeFeed::Subscription> feed_;
};

}  // namespace cm
