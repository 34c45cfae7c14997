/* SPDX-License-Identifier: Apache-2.0 */
// The backend interface: what the cache front (src/cache/cache.cpp) needs from
// a store. One class per backend (src/backends/); the URI scheme picks it
// (make_backend). Backends know nothing of metrics: they report evictions
// through BackendEvents and the front counts them.
//
// Time: the front reads its clock once per operation and passes `now_ms`
// (milliseconds on a monotonic clock, or a test's manual clock) down, so a
// backend never reads a clock itself and tests control expiry exactly.
//
// Expiry has two instants per entry:
//   fresh_until_ms  after it the entry is expired for ordinary gets;
//   keep_until_ms   the backend may drop it from then on (>= fresh_until_ms).
// The gap is the stale-while-revalidate grace: get() still returns the entry
// (with its fresh_until_ms) until keep_until_ms, and the front decides
// whether that is a hit, a stale hit or a miss. kNever means no expiry.
//
// Errors: a backend throws cm::Error (status + message: CM_EBACKEND,
// CM_EUNAVAILABLE, CM_ETIMEOUT, CM_ECORRUPT, ...); the API layer turns it into
// a status and cm_errmsg(). Every method is called concurrently from any
// thread; a backend does its own locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/time.h"

namespace cm {

class Options;
struct Uri;

class Error;
class ChangeFeed;

enum class EvictReason { Size, Expired };

// The operations the front counts and times (the `op` label).
enum class Op { Get = 0, Set, Delete, Clear, Load };
constexpr int kOps = 5;
const char* op_name(Op op);

// A circuit breaker's state (wrappers/breaker.h); the values are the
// circuit_breaker_state gauge's.
enum class BreakerState { Closed = 0, Open = 1, HalfOpen = 2 };

// The tiers of a tiered cache (wrappers/tiered.h).
enum class Tier { L1 = 0, L2 = 1 };
constexpr int kTiers = 2;

// Implemented by the front. Called from inside backend operations, possibly
// with a backend lock held: must be cheap and must not call the backend.
// Only on_evict is needed by every backend; the others have empty defaults.
class BackendEvents {
 public:
  virtual void on_evict(EvictReason why, uint64_t entries, uint64_t bytes) = 0;
  // A circuit breaker changed state (no lock held).
  virtual void on_breaker(BreakerState /*from*/, BreakerState /*to*/) {}
  // A failure a backend absorbed instead of throwing (a tiered cache's write
  // that reached L1 while L2 failed): counted like a thrown one.
  virtual void on_absorbed_error(Op /*op*/, const Error& /*e*/) {}
  // A tiered cache's lookup in one tier: hit or miss, and its latency in ns
  // (-1 when the lookup was not timed).
  virtual void on_tier_get(Tier /*t*/, bool /*hit*/, int64_t /*ns*/) {}
  // A tiered cache's L1 was emptied because invalidations may have been
  // missed (the invalidation connection was lost or re-established).
  virtual void on_l1_flush() {}
  // A tiered cache applied an invalidation message for one key.
  virtual void on_invalidation() {}
  // redis+cluster://: a MOVED (ask false) or ASK (true) redirection was
  // followed; the slot map was read again.
  virtual void on_redirect(bool /*ask*/) {}
  virtual void on_topology_refresh() {}
  // redis+cluster:// saw another set of primaries; redis+sentinel:// was
  // given another master: a failover (or a node added or removed).
  virtual void on_failover() {}
  // redis+cluster://, redis+sentinel://: a call to one node (for sentinel:
  // the master it reached) failed (node: "host:port"), whether the operation
  // then failed or a replica read fell back to the primary.
  virtual void on_node_error(const std::string& /*node*/, ErrorKind /*kind*/) {}

 protected:
  ~BackendEvents() = default;
};

// A value handed out by get(): data is malloc'd (the C API gives it to the
// caller, who frees it with cm_free), len may be 0 (data still non-null).
struct Fetched {
  void* data = nullptr;
  size_t len = 0;
  int64_t fresh_until_ms = kNever;
  bool from_l1 = false;  // a tiered cache's L1 answered (the front counts that hit)
};

struct Expiry {
  int64_t fresh_until_ms = kNever;
  int64_t keep_until_ms = kNever;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "memory", "sqlite", "redis": the `backend` label of the cache's metrics.
  virtual std::string_view kind() const = 0;

  // true and *out filled when key is present and now_ms < keep_until_ms;
  // false otherwise (an entry found past keep_until is dropped and reported
  // as an Expired eviction).
  virtual bool get(std::string_view key, int64_t now_ms, Fetched* out) = 0;

  // get() into the caller's buffer (cm_cache_get_into): as get(), but the
  // value is copied into buf when out->len <= cap (else nothing is copied),
  // and out->data stays null. The default goes through get() (an allocation
  // and a copy more); a backend that can copy straight from its entry
  // overrides it.
  virtual bool get_into(std::string_view key, int64_t now_ms, void* buf, size_t cap, Fetched* out) {
    Fetched f;
    if (!get(key, now_ms, &f)) return false;
    if (f.len <= cap && f.len) std::memcpy(buf, f.data, f.len);
    std::free(f.data);
    f.data = nullptr;
    *out = f;
    return true;
  }

  // Inserts or replaces. May evict other entries (reported through events).
  // A backend may refuse an entry it can never hold (larger than its whole
  // capacity) with Error(CM_ELIMIT).
  virtual void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) = 0;

  // true when the key was present (and fresh or within keep_until).
  virtual bool del(std::string_view key, int64_t now_ms) = 0;

  // Drops every entry. Not reported as evictions.
  virtual void clear() = 0;

  // Entries and bytes held now (bytes as the backend accounts them; see its
  // header). Cheap: the front publishes them as gauges.
  virtual uint64_t entries() const = 0;
  virtual uint64_t bytes() const = 0;

  // CM_OK when the backend can serve requests, else a negative status (and
  // the reason in cm_errmsg()). Must not throw.
  virtual int health() = 0;

  // Non-empty for a store that handles share (a file, a server + prefix):
  // handles of one name whose backends give the same key hold the same
  // entries, so the entries/bytes gauges count them once.
  virtual std::string share_key() const { return {}; }

  // Cross-process locks for get_or_load's distributed single flight: a
  // backend shared between processes (redis) implements them; the others
  // return false from supports_lock() and are never asked.
  virtual bool supports_lock() const { return false; }
  // Takes the lock of key for ttl_ms unless someone holds it: true when this
  // caller now holds it (identified by token).
  virtual bool try_lock(std::string_view /*key*/, std::string_view /*token*/, int64_t /*ttl_ms*/) { return false; }
  // Releases the lock of key if token still holds it (compare-and-delete).
  virtual void unlock(std::string_view /*key*/, std::string_view /*token*/) {}

  // The backend (or its L2) follows a changing topology (redis+cluster://,
  // redis+sentinel://) and reports it through on_redirect,
  // on_topology_refresh and on_failover: the front registers their series.
  virtual bool follows_topology() const { return false; }

  // The circuit state of the backend (or of its L2); Closed when it has no
  // breaker.
  virtual BreakerState breaker_state() const { return BreakerState::Closed; }

  // The store's change feed (cache/change_feed.h), owned by the backend and
  // valid while it lives; nullptr when it has none (the default).
  virtual ChangeFeed* change_feed() { return nullptr; }
};

// The front's URI options that backends must not reject as unknown (the
// front parses and checks these itself).
inline constexpr std::string_view kFrontOptions[] = {"ttl_ms",          "max_entry_bytes",  "sample",
                                                    "metrics",         "load_timeout_ms",  "stale_ms",
                                                    "breaker_failures", "breaker_cooldown_ms"};

// Builds the backend the URI's scheme names. Throws Error(CM_EINVAL) for an
// unknown scheme, an unknown option (its name in the message) or a bad value.
std::unique_ptr<Backend> make_backend(const Uri& uri, BackendEvents* events);

}  // namespace cm
