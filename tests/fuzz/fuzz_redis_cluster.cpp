// SPDX-License-Identifier: Apache-2.0
// What a Redis Cluster node or a sentinel (or anything posing as one) sends
// back for redis+cluster:// and redis+sentinel://: the input is raw RESP
// bytes, parsed by hiredis's reader as the backend's connections parse them;
// every reply goes to parse_cluster_slots (CLUSTER SLOTS), to
// parse_master_address (SENTINEL GET-MASTER-ADDR-BY-NAME) and to
// parse_replica_list (SENTINEL REPLICAS), and every error
// or string reply's text to parse_redirect (MOVED / ASK). They must accept
// or refuse (Error with CM_EBACKEND; false with a printable reason) without
// a crash, and what they accept must be well-formed: slots in range, ports
// in 1..65535, hosts without control bytes. The input's text also goes to
// cluster_slot.
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "backends/redis_cluster.h"
#include "backends/redis_sentinel.h"
#include "core/error.h"
#include "fuzz_util.h"

namespace {

void check_reply(const redisReply& r) {
  try {
    for (const cm::SlotRange& s : cm::parse_cluster_slots(r, "127.0.0.1")) {
      if (s.first < 0 || s.last >= cm::kClusterSlots || s.first > s.last) fuzz::fail("a range out of 0..16383", "");
      if (s.primary.port < 1 || s.primary.port > 65535 || s.primary.host.empty()) fuzz::fail("a bad primary", "");
      for (const cm::HostPort& h : s.replicas)
        if (h.port < 1 || h.port > 65535 || h.host.empty()) fuzz::fail("a bad replica", "");
    }
  } catch (const cm::Error& e) {
    if (e.status() != CM_EBACKEND) fuzz::fail("parse_cluster_slots: a status other than CM_EBACKEND", e.what());
  }
  cm::HostPort master;
  std::string why;
  if (cm::parse_master_address(r, &master, &why)) {
    if (master.port < 1 || master.port > 65535) fuzz::fail("parse_master_address: a port out of range", "");
    if (master.host.empty() || master.host.size() > cm::kMaxHostBytes) fuzz::fail("parse_master_address: a bad host", "");
    for (char ch : master.host)
      if (static_cast<unsigned char>(ch) <= ' ' || ch == '\x7f') fuzz::fail("parse_master_address: a control byte", "");
  } else {
    if (why.empty()) fuzz::fail("parse_master_address: refused without a reason", "");
    for (char ch : why)
      if (static_cast<unsigned char>(ch) < ' ' || ch == '\x7f') fuzz::fail("parse_master_address: a reason quoting a control byte", why);
  }
  std::vector<cm::HostPort> usable;
  why.clear();
  if (cm::parse_replica_list(r, &usable, &why)) {
    for (const cm::HostPort& h : usable) {
      if (h.port < 1 || h.port > 65535) fuzz::fail("parse_replica_list: a port out of range", "");
      if (h.host.empty() || h.host.size() > cm::kMaxHostBytes) fuzz::fail("parse_replica_list: a bad host", "");
      for (char ch : h.host)
        if (static_cast<unsigned char>(ch) <= ' ' || ch == '\x7f') fuzz::fail("parse_replica_list: a control byte", "");
    }
  } else {
    if (why.empty() || !usable.empty()) fuzz::fail("parse_replica_list: refused without a reason, or kept some", "");
    for (char ch : why)
      if (static_cast<unsigned char>(ch) < ' ' || ch == '\x7f')
        fuzz::fail("parse_replica_list: a reason quoting a control byte", why);
  }
  if (r.type == REDIS_REPLY_ERROR || r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) {
    cm::Redirect to;
    if (cm::parse_redirect(std::string_view(r.str, r.len), &to)) {
      if (to.slot < 0 || to.slot >= cm::kClusterSlots) fuzz::fail("parse_redirect: a slot out of range", "");
      if (to.to.port < 1 || to.to.port > 65535) fuzz::fail("parse_redirect: a port out of range", "");
    }
  }
}

// hiredis 0.14's reader allocates an array of the announced element count
// before reading any element ("*2000000000" is 16 GB), and has no limit to
// set (maxelements came in hiredis 1.0): a hiredis trait that every reply
// of every connection shares, not our parsers'. Inputs announcing more than
// 4096 elements are skipped so the fuzzer explores the parsers.
bool announces_huge_array(std::string_view in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '*') continue;
    size_t n = 0, j = i + 1;
    while (j < in.size() && in[j] >= '0' && in[j] <= '9' && n <= 4096) n = n * 10 + static_cast<size_t>(in[j++] - '0');
    if (n > 4096) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (cm::cluster_slot(text) >= cm::kClusterSlots) fuzz::fail("cluster_slot out of range", "");
  cm::Redirect to;
  (void)cm::parse_redirect(text, &to);
  if (announces_huge_array(text)) return 0;
  redisReader* reader = redisReaderCreate();
  if (!reader) return 0;
  if (redisReaderFeed(reader, reinterpret_cast<const char*>(data), size) == REDIS_OK) {
    for (int i = 0; i < 64; ++i) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader, &reply) != REDIS_OK || !reply) break;
      check_reply(*static_cast<redisReply*>(reply));
      freeReplyObject(reply);
    }
  }
  redisReaderFree(reader);
  return 0;
}
