// SPDX-License-Identifier: Apache-2.0
// Redis Cluster's key slots, CLUSTER SLOTS replies and redirections.
// Interface: redis_cluster.h. Reference: the Redis Cluster specification
// (key distribution model, hash tags, MOVED and ASK redirection).
#include "backends/redis_cluster.h"

#include <hiredis/hiredis.h>

#include <array>

#include "core/error.h"

namespace cm {
namespace {

// CRC16 with polynomial 0x1021, initial value 0, no reflection (XMODEM),
// one table lookup per byte; the table is computed at compile time.
constexpr auto kCrcTable = [] {
  std::array<uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    auto crc = static_cast<uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b)
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    t[i] = crc;
  }
  return t;
}();

uint16_t crc16(std::string_view s) {
  uint16_t crc = 0;
  for (unsigned char ch : s) crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ ch) & 0xff]);
  return crc;
}

[[noreturn]] void malformed(const std::string& what) {
  throw Error(CM_EBACKEND, "redis cluster: CLUSTER SLOTS: " + what, ErrorKind::Protocol);
}

bool is_int(const redisReply* r) { return r && r->type == REDIS_REPLY_INTEGER; }

// [host, port, id, ...] -> HostPort.
HostPort node_of(const redisReply* r, const std::string& asked_host) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !r->element[0] || !is_int(r->element[1]))
    malformed("a node entry is not [host, port, ...]");
  const redisReply* h = r->element[0];
  if (h->type != REDIS_REPLY_STRING && h->type != REDIS_REPLY_STATUS) malformed("a node's host is not a string");
  if (h->len > kMaxHostBytes) malformed("a node's host is longer than 255 bytes");
  HostPort hp{std::string(h->str, h->len), 0};
  if (!host_bytes_ok(hp.host)) malformed("a node's host has a bad byte");
  if (hp.host.empty() || hp.host == "?") hp.host = asked_host;
  long long port = r->element[1]->integer;
  if (port < 1 || port > 65535) malformed("a node's port is not in 1..65535");
  hp.port = static_cast<int>(port);
  return hp;
}

}  // namespace

uint16_t cluster_slot(std::string_view key) {
  if (auto open = key.find('{'); open != std::string_view::npos) {
    if (auto close = key.find('}', open + 1); close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (kClusterSlots - 1);
}

std::vector<SlotRange> parse_cluster_slots(const redisReply& r, const std::string& asked_host) {
  if (r.type != REDIS_REPLY_ARRAY) malformed("the reply is not an array");
  std::vector<SlotRange> out;
  out.reserve(r.elements);
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply* e = r.element[i];
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !is_int(e->element[0]) || !is_int(e->element[1]))
      malformed("a range is not [first, last, primary, replicas...]");
    long long first = e->element[0]->integer, last = e->element[1]->integer;
    if (first < 0 || last >= kClusterSlots || first > last) malformed("a range is not within 0..16383");
    SlotRange range;
    range.first = static_cast<int>(first);
    range.last = static_cast<int>(last);
    range.primary = node_of(e->element[2], asked_host);
    for (size_t k = 3; k < e->elements; ++k) range.replicas.push_back(node_of(e->element[k], asked_host));
    out.push_back(std::move(range));
  }
  return out;
}

bool parse_redirect(std::string_view text, Redirect* out) {
  Redirect r;
  if (text.starts_with("MOVED ")) {
    text.remove_prefix(6);
  } else if (text.starts_with("ASK ")) {
    r.ask = true;
    text.remove_prefix(4);
  } else {
    return false;
  }
  auto space = text.find(' ');
  if (space == std::string_view::npos || space == 0 || space > 5) return false;
  int slot = 0;
  for (char c : text.substr(0, space)) {
    if (c < '0' || c > '9') return false;
    slot = slot * 10 + (c - '0');
  }
  if (slot >= kClusterSlots) return false;
  std::string_view addr = text.substr(space + 1);
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  const int port = decimal_port(addr.substr(colon + 1));
  if (port == 0) return false;
  std::string_view host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (!host_bytes_ok(host)) return false;
  r.slot = slot;
  r.to = HostPort{std::string(host), port};
  *out = std::move(r);
  return true;
}

}  // namespace cm
