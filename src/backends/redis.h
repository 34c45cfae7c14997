/* SPDX-License-Identifier: Apache-2.0 */
// The Redis backend (redis://host:port/db, redis+unix:///path.sock,
// redis+sentinel://sentinels/master-name, redis+cluster://nodes): entries
// as Redis strings under a per-cache key prefix, shared by every process that
// uses the same server and prefix; Redis expires them itself. Value format,
// pool and error mapping: redis.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <cachemeter/common.h>

#include "backends/hiredis_util.h"
#include "backends/redis_sentinel.h"  // HostPort
#include "cache/backend.h"
#include "cache/change_feed.h"
#include "util/wall_clock.h"

namespace cm {

struct Uri;
class SentinelResolver;
struct SlotRange;

// Bytes of the header stored in front of every value: a 4-byte magic and
// version ("cm" 0x01 0x00), then fresh_until and keep_until as wall-clock
// Unix milliseconds (signed 64-bit, little-endian).
inline constexpr size_t kRedisHeaderBytes = 20;

struct RedisOptions {
  std::string host;        // TCP: host name or address; empty for a unix socket
  int port = 6379;
  std::string socket;      // unix socket path (redis+unix://)
  std::string user;        // ACL user (AUTH user password); empty: AUTH password
  std::string password;    // empty: no AUTH
  int db = 0;              // SELECT db when not 0
  std::string prefix;      // prepended to every key
  int timeout_ms = 1000;          // per command (send + reply)
  int connect_timeout_ms = 1000;  // per connection attempt
  int pool = 4;                   // connections at most
  int64_t count_interval_ms = 5000;  // entries(): how old a count may be (0: count every call)
  // redis+sentinel://: host and port are not used; each new connection goes
  // to the master these sentinels name, checked with ROLE (shared with the
  // invalidation listener).
  std::shared_ptr<SentinelResolver> sentinel;
  // redis+cluster://: host and port are not used; the slot map comes from
  // these seed nodes (CLUSTER SLOTS), one pool of `pool` connections per node.
  bool cluster = false;
  std::vector<HostPort> seeds;
  // read_from=replica. redis+cluster://: get() reads a replica of the key's
  // slot (every cluster connection sends READONLY), and the primary when the
  // slot has no replica or the replica does not answer. redis+sentinel://:
  // get() reads one replica the sentinels list as usable, and the master when
  // there is none or it fails. Replicas lag: see change_feed() and
  // docs/redis-scale-out.md.
  bool read_replicas = false;

  // "host:port", the socket path, or the sentinel master's name and
  // sentinels: what messages name (never the password).
  std::string where() const;
};

class RedisBackend final : public Backend, private ChangeFeed {
 public:
  // Does not connect: the cache opens while Redis is down (a cache must
  // outlive its store's restarts); each operation connects as needed and
  // health() reports whether Redis answers.
  // events: told of cluster redirections and topology refreshes (may be null).
  explicit RedisBackend(RedisOptions opt, BackendEvents* events = nullptr);
  ~RedisBackend() override;
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;

  std::string_view kind() const override { return "redis"; }
  // An entry past its keep_until on the front's clock is a miss; it is not
  // deleted nor reported as an Expired eviction: Redis drops it at
  // keep_until itself (PXAT), and no eviction is ever reported (Redis does
  // not tell us when it expires or evicts a key). Throws Error(CM_ECORRUPT)
  // for a value under the prefix that lacks the header.
  bool get(std::string_view key, int64_t now_ms, Fetched* out) override;
  // Throws Error(CM_ELIMIT) for a key or value over Redis's 512 MB limit.
  void set(std::string_view key, std::string_view value, Expiry e, int64_t now_ms) override;
  bool del(std::string_view key, int64_t now_ms) override;
  // SCAN MATCH <prefix>* + UNLINK in batches: only this prefix, never FLUSHDB.
  // Keys written concurrently may survive.
  void clear() override;
  // The number of keys under the prefix, counted with SCAN at most every
  // count_interval_ms (a scrape in between sees the last count); the last
  // count when Redis cannot be reached. Includes other processes' entries.
  uint64_t entries() const override;
  // 0: unknown. Redis does not account memory per prefix cheaply (MEMORY
  // USAGE is per key); use Redis's own used_memory metrics.
  uint64_t bytes() const override { return 0; }
  // PING within timeout_ms.
  int health() override;
  // PING within timeout_ms; throws Error as an operation does. Opening a
  // redis+sentinel:// cache calls it (the sentinels must name a master that
  // answers).
  void verify();
  // The load lock of key: "cachemeter-lock:" + prefix + key (outside the
  // prefix, so clear(), entries() and invalidations never see locks), taken
  // with SET NX PX ttl_ms holding the token, released by a Lua
  // compare-and-delete so only its holder removes it.
  bool supports_lock() const override { return true; }
  bool try_lock(std::string_view key, std::string_view token, int64_t ttl_ms) override;
  void unlock(std::string_view key, std::string_view token) override;

  // Its change feed: a RedisInvalidation listener (redis_invalidation.h) on
  // this backend's prefix, over a connection of its own. None with replica
  // reads: an invalidation leaves the primary before the replica has the
  // write, so an L1 refilled from the replica could keep the old value with
  // no later message to drop it; an L1 in front of such a cache is bounded
  // by its ttl_ms instead, as in front of a store without a feed.
  ChangeFeed* change_feed() override { return opt_.read_replicas ? nullptr : this; }
  std::unique_ptr<Subscription> subscribe(Callbacks cb) override;

  const RedisOptions& options() const { return opt_; }
  std::string share_key() const override {
    return "redis:" + opt_.where() + "/" + std::to_string(opt_.db) + "\n" + opt_.prefix;
  }

  // redis+cluster://: how often the slot map was read (CLUSTER SLOTS), MOVED
  // and ASK replies followed, and changes of the set of primaries seen (a
  // failover, a node added or removed); all 0 otherwise.
  bool follows_topology() const override { return opt_.cluster || opt_.sentinel; }
  uint64_t topology_refreshes() const;
  uint64_t redirects(bool ask) const;
  uint64_t primary_changes() const;

 private:
  class Pool;
  class Lease;
  struct Node;
  struct Cluster;
  class ClusterFeed;
  using Reply = hiredis::Reply;
  RedisOptions opt_;
  BackendEvents* events_ = nullptr;
  std::shared_ptr<Node> single_;      // redis://, redis+unix://, redis+sentinel://
  std::unique_ptr<Cluster> cluster_;  // redis+cluster://
  struct Replicas;
  std::unique_ptr<Replicas> replicas_;  // redis+sentinel:// read_from=replica
  mutable std::atomic<uint64_t> last_entries_{0};
  mutable std::atomic<uint64_t> switches_seen_{0};  // sentinel: the resolver's switches() reported
  // redis+sentinel://: reports the resolver's new switches as failovers.
  void note_switches() const;
  mutable std::atomic<int64_t> counted_at_{INT64_MIN};  // steady-clock ms of last count
  // The front's clock mapped to the wall clock, as in the sqlite backend:
  // expiry instants are stored (and given to PXAT) as Unix milliseconds.
  WallClockMap wall_;

  uint64_t count() const;
  std::string key_of(std::string_view key) const;
  // Runs a command on the node that serves route_key's slot (the one server
  // outside a cluster), following MOVED and ASK. read: a read-only command
  // that may go to a replica (read_replicas), falling back to the primary.
  struct Argv;
  Reply call(std::string_view route_key, const Argv& argv, const char* what, bool read = false) const;
  // Cluster, read_replicas: the read on rep, the replica slot's map entry
  // named; false (and *out untouched) when it failed to answer or
  // redirected, which also clears that entry and marks the map stale.
  bool read_replica(int slot, Node* rep, const Argv& argv, const char* what, Reply* out) const;
  // Sentinel, read_replicas: the replica reads go to now (null: the master),
  // listing the sentinels' replicas first when due; the read on it, false
  // (and *out untouched) when it failed, which is counted as a node error
  // and makes the next read list the replicas again.
  Node* sentinel_replica() const;
  bool read_sentinel_replica(Node& rep, const Argv& argv, const char* what, Reply* out) const;
  Reply call(std::string_view route_key, std::vector<const char*>& argv, std::vector<size_t>& lens,
             const char* what) const;
  Reply call(std::string_view route_key, std::initializer_list<std::string_view> args, const char* what) const;
  template <class F>
  void scan(Node& node, F&& each) const;
  // The node at addr in nodes (by "host:port"), created on first sight and
  // kept as long as the backend, so a Node* read without mu stays valid;
  // mu guards nodes. node_at(addr): in the cluster's. primaries(): the
  // cluster's primaries now (the one server otherwise).
  using NodeMap = std::map<std::string, std::shared_ptr<Node>>;
  std::shared_ptr<Node> node_in(std::mutex& mu, NodeMap& nodes, const HostPort& addr) const;
  std::shared_ptr<Node> node_at(const HostPort& addr) const;
  std::vector<std::shared_ptr<Node>> primaries() const;
  // Cluster: reads the slot map (skipped when another thread is at it, or
  // unless force, within 100 ms of the last); throws when no node gives one.
  // deadline_ms (steady clock): no further node is asked after it, and a
  // forced refresh waits for another thread's until then (CM_ETIMEOUT).
  void refresh(bool force, int64_t deadline_ms = INT64_MAX) const;
  void install(const std::vector<SlotRange>& ranges) const;
};

// redis://[user:password@]host[:port][/db]?options and
// redis+unix:///path/redis.sock?options (plus the front's kFrontOptions):
//   host:port    default 127.0.0.1:6379 when empty; [v6addr]:port for IPv6
//   db           0..1000000, default 0 (the path after host:port; the db=
//                option for redis+unix)
//   user, password  AUTH credentials (also in the URI's user info); never in
//                messages
//   namespace    the cache's name (the front sets it for redis URIs): the
//                default prefix is "cachemeter:<namespace>:", with '%' and
//                ':' in the namespace written %25 and %3A (so "a:b" cannot
//                collide with "a")
//   prefix       the key prefix, overriding the default; must not be empty
//   timeout_ms   1..3600000, default 1000: per command, then CM_ETIMEOUT
//   connect_timeout_ms  1..3600000, default 1000
//   pool         1..1024, default 4: connections at most; a caller waits up
//                to timeout_ms for one (then CM_ETIMEOUT)
//   count_interval_ms  0..86400000, default 5000: see entries()
// redis+sentinel://[user:password@]s1[:26379][,s2[:port]...]/master-name?options:
// the master the sentinels name (RedisOptions::sentinel), with db=,
// sentinel_user=, sentinel_password= and read_from=primary|replica
// (RedisOptions::read_replicas) on top of the options above; opening asks
// the sentinels and PINGs the master (verify()): a master name no sentinel
// knows is CM_EINVAL, no answer CM_EUNAVAILABLE (docs/uri.md).
// redis+cluster://[user:password@]node[:6379][,node[:port]...][/]?options:
// seeds of a Redis Cluster (RedisOptions::cluster): no database (db 0 only);
// opening reads the slot map and PINGs every primary: no node answering is
// CM_EUNAVAILABLE, a node not in cluster mode CM_EINVAL. read_from=primary
// (default) or replica (RedisOptions::read_replicas). Routing, redirections
// and failover: docs/redis-scale-out.md.
std::unique_ptr<Backend> make_redis_backend(const Uri& uri, BackendEvents* events);

}  // namespace cm
