/* SPDX-License-Identifier: Apache-2.0 */
// Coherence for a memory L1 in front of Redis: a listener that watches a key
// prefix through Redis's server-assisted client-side caching and calls back
// for every key modified under it, so the L1 can drop its copy. Mechanics and
// the Redis behaviour it relies on: redis_invalidation.cpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "backends/redis.h"
#include "cache/change_feed.h"
#include "util/fork.h"

struct redisReply;  // hiredis

namespace cm {

// Guarantees (while connected() is true):
// - Every modification Redis makes to a key under the prefix, by any client
//   (this process's own pool included), reaches invalidate() with the key
//   stripped of the prefix, and FLUSHALL/FLUSHDB reach flush(). Tested: SET,
//   MSET, DEL, UNLINK, PEXPIRE, expiry by TTL; Redis feeds tracking from
//   signalModifiedKey, which every writing command and eviction call.
// - Coherence bound: invalidation is asynchronous. Redis queues the message
//   in the same event-loop turn in which it executes the write, so it leaves
//   the server no later than the writer's acknowledgement; this process may
//   still serve the old value from its L1 for the time the message takes to
//   reach this thread (sub-millisecond on loopback: see the latency test).
// - Nothing is missed silently: a lost connection (closed, reset, or no PING
//   reply within timeout_ms while idle for kIdlePingMs) makes connected()
//   false and then calls flush(); after reconnecting it calls flush() again
//   (messages were missed while down) and only then makes connected() true.
//   The L1 must not serve while !connected(): a silently dead link is
//   noticed within kIdlePingMs + timeout_ms, which bounds staleness then.
//
// It does not:
// - filter this process's own writes: a write through the L2 also invalidates
//   the L1 entry just written (one extra L2 read later). By design: the
//   simplest scheme that stays coherent under concurrent writers.
// - tell databases apart: Redis tracks key names, so a write to the same key
//   name in another database (or a FLUSHDB of another database) invalidates
//   too. Extra invalidations only.
//
// Epoch: epoch() increases BEFORE each message's callbacks run (and before
// every flush), so an L1 avoids filling a value that was overwritten while it
// was reading L2: e = epoch(); v = L2.get(k); then, under the lock that its
// invalidate/flush callbacks take: fill only if connected() && epoch() == e.
//
// Threads: one listener thread per object, started by the constructor;
// callbacks run on it, one at a time, and must be cheap; they must not throw
// (a throw is handled as a lost connection: flush, reconnect) nor destroy
// this object. Every method may be called from any thread. Destroy this
// object before what its callbacks touch.
//
// redis+sentinel://: each session asks the sentinels for the master, checks
// its ROLE, and while connected re-asks every kSentinelCheckMs; a new master
// ends the session (flush, re-subscribe). A failover is therefore noticed
// within kSentinelCheckMs (plus the query's timeouts), or at once when the
// old master's death closes the connection. Destroying the object waits for
// a sentinel query under way (connect_timeout_ms + timeout_ms per sentinel).
//
// Redis: 6.0+ (CLIENT TRACKING). An ACL user needs +client|id
// +client|tracking +subscribe +ping and the channel &__redis__:invalidate.
//
// The redis backend's change feed (cache/change_feed.h): RedisBackend's
// subscribe() makes one for its own prefix.
class RedisInvalidation final : public ChangeFeed::Subscription, private fork::Hooks {
 public:
  // invalidate: the key without the prefix, valid during the call; flush:
  // drop everything (lost connection, reconnect, FLUSHALL/FLUSHDB).
  using Callbacks = ChangeFeed::Callbacks;

  // A PING is sent after this long without traffic; its reply is due within
  // timeout_ms.
  static constexpr int kIdlePingMs = 1000;
  // redis+sentinel://: while connected, the sentinels are asked this often
  // whether the master changed (then: flush and re-subscribe to the new one).
  static constexpr int kSentinelCheckMs = 1000;

  // Uses opt's address, credentials, db, timeout_ms and connect_timeout_ms
  // (not opt.prefix: the prefix watched is `prefix`; empty watches every
  // key). Starts the thread and returns at once: connecting happens there,
  // and again after every loss, with backoff (50 ms doubling to 2 s).
  // Throws Error(CM_EBACKEND) when the thread cannot be started.
  // on_state (optional) runs on the listener thread after every change of
  // connected(), under no lock of this object (redis+cluster:// folds its
  // listeners' states with it).
  RedisInvalidation(RedisOptions opt, std::string prefix, Callbacks cb, std::function<void()> on_state = {});
  // Returns promptly whatever the thread is doing (connecting, waiting for
  // a reply from a server that never answers, backing off), except while it
  // resolves a host name, which the resolver's own timeout bounds.
  ~RedisInvalidation() override;
  RedisInvalidation(const RedisInvalidation&) = delete;
  RedisInvalidation& operator=(const RedisInvalidation&) = delete;

  // True only while subscribed and tracking: the L1 may serve only then.
  bool connected() const override { return connected_.load(); }
  // See "Epoch" above.
  uint64_t epoch() const { return epoch_.load(); }
  // Times an established connection was lost (each one followed by flush()).
  uint64_t losses() const { return losses_.load(); }
  // Waits up to timeout_ms for connected(); returns connected().
  bool wait_connected(int timeout_ms) const override;
  // Why it is not connected: the last failure since it last connected (""
  // while connected and before a first failure). Names host:port (or the
  // socket) and Redis's text, never the password.
  std::string last_error() const;

  // fork(): in a child the listener thread is the parent's, so the child's
  // copy is inherited(): not connected, until revive() starts a thread of
  // its own (thread-safe, idempotent; the owner calls it lazily, on its
  // next use, so a child that only calls exec() never starts one). The new
  // session flushes the L1 before it serves, like any reconnect.
  bool inherited() const override { return inherited_.load(std::memory_order_relaxed); }
  void revive() override;

 private:
  class Conn;
  struct Stopping {};

  void run() noexcept;
  void session(bool* was_connected);
  void handle(const redisReply& r, bool* pong);
  void set_connected(bool on);
  void set_error(std::string_view what) noexcept;
  bool backoff(int ms) const;  // false when stopping
  void flush_now();

  const RedisOptions opt_;
  const std::string prefix_;
  const Callbacks cb_;
  const std::function<void()> on_state_;
  int wake_fd_ = -1;  // an eventfd: readable once the destructor asks to stop
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<uint64_t> losses_{0};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // connected_ changes
  std::string last_error_;              // under mu_
  std::atomic<int> sock_fd_{-1};        // the session's socket, for a child to close
  std::atomic<bool> inherited_{false};  // in a child of fork(), until revive()
  std::mutex revive_mu_;
  std::thread thread_;                  // starts once the rest exists
  fork::Enrolment fork_;                // enrolled after the thread started

  void fork_locks(std::vector<fork::Lock>& out) override {
    out.push_back(fork::lock_of(mu_));
    out.push_back(fork::lock_of(revive_mu_));
  }
  void fork_child() override;
};

}  // namespace cm
