/* SPDX-License-Identifier: Apache-2.0 */
// redis+sentinel://: finding a Redis master through Redis Sentinel. The redis
// backend (redis.cpp) asks a SentinelResolver for the master's address each
// time it opens a connection, and checks that the server it reached is a
// master (ROLE); its invalidation listener does the same when it (re)connects
// and re-asks every second while connected. Behaviour across a failover and
// what it guarantees: docs/redis-scale-out.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "util/fork.h"

struct redisReply;  // hiredis

namespace cm {

struct HostPort {
  std::string host;
  int port = 0;
  bool operator==(const HostPort&) const = default;
  // "host:port", "[v6]:port" for an IPv6 address.
  std::string text() const;
};

// A port written in decimal: 1..65535, at most 5 digits, no sign or blank;
// 0 for anything else. For URIs and for what servers send.
int decimal_port(std::string_view s);

// Whether host may name a server in what a server sent (CLUSTER SLOTS, a
// MOVED or ASK, a sentinel's answer): at most kMaxHostBytes bytes, none a
// space, control byte, DEL, ',' or '/' (it is dialled and named in
// messages and lists). Whether it may be empty is the caller's to decide.
constexpr size_t kMaxHostBytes = 255;
bool host_bytes_ok(std::string_view host);

struct SentinelOptions {
  std::vector<HostPort> sentinels;  // at least one
  std::string master_name;
  std::string user;      // the sentinels' ACL user (AUTH user password)
  std::string password;  // the sentinels' password; empty: no AUTH
  int connect_timeout_ms = 1000;
  int timeout_ms = 1000;
};

// The address in a reply to SENTINEL GET-MASTER-ADDR-BY-NAME (two strings:
// host, port) into *out; false and *why (never quoting a byte that is not
// printable) for any other reply (a nil, "no such master", included: tell it
// apart first). The host is non-empty and passes host_bytes_ok(); the port
// passes decimal_port(). The input
// is what a sentinel sent: untrusted (tests/fuzz/fuzz_redis_cluster.cpp).
bool parse_master_address(const redisReply& r, HostPort* out, std::string* why);

// The replicas usable for reads in a reply to SENTINEL REPLICAS (an array of
// flat field/value arrays) into *usable, each once, in the reply's order:
// those whose flags are exactly "slave" (not s_down, o_down, disconnected...)
// and whose master-link-status is "ok". False and *why (as above), *usable
// empty, for a reply of any other shape, an entry without ip, port or
// flags, or an entry whose address fails the checks of
// parse_master_address. Untrusted input, fuzzed like it.
bool parse_replica_list(const redisReply& r, std::vector<HostPort>* usable, std::string* why);

// Thread-safe; no I/O under its lock. Each query opens a connection of its
// own to a sentinel and closes it (no sentinel connection is kept, so fork()
// leaves none behind to share).
class SentinelResolver final : private fork::Hooks {
 public:
  explicit SentinelResolver(SentinelOptions opt);
  SentinelResolver(const SentinelResolver&) = delete;
  SentinelResolver& operator=(const SentinelResolver&) = delete;

  // Asks the sentinels in turn (the one that answered last first) for the
  // master's address: SENTINEL GET-MASTER-ADDR-BY-NAME. Each costs at most
  // connect_timeout_ms + timeout_ms. Throws Error(CM_EUNAVAILABLE) when no
  // sentinel answers with an address: the message names each sentinel and
  // what it said; unknown_master() then tells whether every sentinel that
  // answered said it knows no master of that name.
  HostPort master();
  bool unknown_master() const { return unknown_.load(); }

  // Asks the sentinels in turn, like master(), for the master's replicas
  // usable for reads (parse_replica_list; maybe none). Throws
  // Error(CM_EUNAVAILABLE) naming each sentinel and what it said when none
  // answers with a list.
  std::vector<HostPort> replicas();

  // The address master() returned last (empty host before the first).
  HostPort last() const;
  // Times master() returned an address other than the one before it (the
  // sentinels switched masters: a failover seen by this process).
  uint64_t switches() const { return switches_.load(); }

  // "master \"name\" via sentinels h1:p1,h2:p2": what messages name (never a
  // password).
  std::string where() const;
  const SentinelOptions& options() const { return opt_; }

 private:
  void fork_locks(std::vector<fork::Lock>& out) override { out.push_back(fork::lock_of(mu_)); }
  // Sends args to each sentinel in turn (first_ first, AUTH as configured)
  // until take accepts one's reply (else take's *why is recorded); that
  // sentinel is asked first next time. False, with every sentinel's failure
  // appended to *failures ("; host:port: why"), when none was accepted.
  bool ask(std::initializer_list<std::string_view> args,
           const std::function<bool(const redisReply&, std::string*)>& take, std::string* failures);

  const SentinelOptions opt_;
  mutable std::mutex mu_;
  HostPort last_;     // under mu_
  size_t first_ = 0;  // under mu_: the sentinel asked first
  std::atomic<uint64_t> switches_{0};
  std::atomic<bool> unknown_{false};
  fork::Enrolment fork_;
};

}  // namespace cm
