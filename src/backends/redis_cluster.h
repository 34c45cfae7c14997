/* SPDX-License-Identifier: Apache-2.0 */
// Redis Cluster's wire facts for redis+cluster:// (redis.cpp routes with
// them): the key -> slot function, the CLUSTER SLOTS reply, and the MOVED /
// ASK redirections. Pure functions over untrusted server replies: they never
// crash on a malformed reply (tests/fuzz/fuzz_redis_cluster.cpp) and throw
// Error(CM_EBACKEND, kind Protocol) for one they cannot use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis_sentinel.h"  // HostPort

struct redisReply;  // hiredis

namespace cm {

inline constexpr int kClusterSlots = 16384;

// CRC16-XMODEM of the key's hash tag (the bytes between the first '{' and the
// first '}' after it, when that is not empty) or of the whole key, mod 16384.
uint16_t cluster_slot(std::string_view key);

// One range of CLUSTER SLOTS: slots [first, last], its primary, its replicas.
struct SlotRange {
  int first = 0;
  int last = 0;
  HostPort primary;
  std::vector<HostPort> replicas;
};

// Parses a CLUSTER SLOTS reply. A node reported with an empty address
// (Redis: "the node we asked") is given asked_host. Throws Error(CM_EBACKEND)
// for anything but an array of well-formed ranges (slots in 0..16383,
// first <= last, ports in 1..65535); an empty array is valid (no slot served).
std::vector<SlotRange> parse_cluster_slots(const redisReply& r, const std::string& asked_host);

// "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an error
// reply's text). The host may be empty (Redis 7: "the node we asked"; the
// caller fills it) or an IPv6 address (the port follows the last ':').
struct Redirect {
  bool ask = false;
  int slot = 0;
  HostPort to;
};
// True and *out set for a well-formed MOVED or ASK; false for any other text.
bool parse_redirect(std::string_view error_text, Redirect* out);

}  // namespace cm
