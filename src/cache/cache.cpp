// SPDX-License-Identifier: Apache-2.0
// The cache front's plain operations: get, set, delete, clear, with their
// metrics, TTL policy and size refusal. Opening: open.cpp; get_or_load:
// load.cpp; stats: stats.cpp. See cache.h and docs/metrics.md.
#include "cache/cache.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cache/ops.h"
#include "core/error.h"

namespace cm {

void* copy_out(std::string_view v) {
  char* p = static_cast<char*>(std::malloc(v.size() + 1));
  if (!p) throw std::bad_alloc();
  if (!v.empty()) std::memcpy(p, v.data(), v.size());
  p[v.size()] = '\0';
  return p;
}

Expiry expiry_for(const cm_cache& c, int64_t now_ms, int64_t ttl_ms) {
  if (ttl_ms == 0) ttl_ms = c.opt.default_ttl_ms;
  Expiry e;
  if (ttl_ms <= 0) return e;  // never
  e.fresh_until_ms = ttl_ms > kNever - now_ms ? kNever : now_ms + ttl_ms;
  e.keep_until_ms = c.opt.stale_ms > kNever - e.fresh_until_ms ? kNever : e.fresh_until_ms + c.opt.stale_ms;
  return e;
}

void check_key(std::string_view key) {
  if (key.empty()) throw Error(CM_EINVAL, "key is empty");
}

bool too_large(cm_cache& c, std::string_view key, std::string_view val) {
  const auto max = static_cast<uint64_t>(c.opt.max_entry_bytes);
  if (key.size() <= max && val.size() <= max - key.size()) return false;
  c.metrics.rejected_too_large();
  return true;
}

void store(cm_cache& c, std::string_view key, std::string_view val, int64_t ttl_ms, int64_t now) {
  backend_call(c, Op::Set, [&] {
    c.backend->set(key, val, expiry_for(c, now, ttl_ms), now);
    return 0;
  });
  c.metrics.set();
}

void store_loaded(cm_cache& c, const std::string& key, std::string_view value, int64_t ttl_ms) {
  if (too_large(c, key, value)) return;
  try {
    store(c, key, value, ttl_ms, c.clock->coarse_ms());
  } catch (const Error&) {
    // The value still goes back to the callers; the failure is counted.
  }
}

namespace {

// The lookup of get and get_into, timed and counted: fetch(now) is the
// backend's read into *f. True for a fresh hit; otherwise a miss, counted
// unless count_miss is false (then not timed either: the
// cm_cache_get_or_load that follows times and counts it).
template <class Fetch>
inline bool lookup(cm_cache& c, std::string_view key, bool count_miss, const Fetched& f, Fetch&& fetch) {
  check_key(key);
  OpTimer t = c.metrics.time(Op::Get);
  int64_t now = c.clock->coarse_ms();
  c.metrics.tick(now);
  bool found = backend_call(c, Op::Get, [&] { return fetch(now); });
  if (found && now < f.fresh_until_ms) {
    c.metrics.hit();
    if (f.from_l1) c.metrics.l1_hit(t);
    return true;
  }
  if (count_miss)
    c.metrics.miss();
  else
    t.cancel();
  return false;
}

}  // namespace

int cache_get(cm_cache& c, std::string_view key, void** val, size_t* vlen, bool count_miss) {
  Fetched f;
  if (lookup(c, key, count_miss, f, [&](int64_t now) { return c.backend->get(key, now, &f); })) {
    *val = f.data;
    *vlen = f.len;
    return CM_OK;
  }
  std::free(f.data);  // expired, inside another handle's stale window
  return CM_MISS;
}

int cache_get_into(cm_cache& c, std::string_view key, void* buf, size_t cap, size_t* vlen) {
  Fetched f;
  if (!lookup(c, key, true, f, [&](int64_t now) { return c.backend->get_into(key, now, buf, cap, &f); }))
    return CM_MISS;
  *vlen = f.len;
  return f.len <= cap ? CM_OK : CM_ELIMIT;
}

int cache_set(cm_cache& c, std::string_view key, std::string_view val, int64_t ttl_ms) {
  check_key(key);
  OpTimer t = c.metrics.time(Op::Set);
  if (too_large(c, key, val)) {
    // The sizes as given: their sum may not fit a size_t (a bogus vlen).
    const size_t k = key.size(), v = val.size();
    const std::string total = v > SIZE_MAX - k ? "more than " + std::to_string(SIZE_MAX) : std::to_string(k + v);
    throw Error(CM_ELIMIT, "entry of " + total + " bytes (key " + std::to_string(k) + " + value " + std::to_string(v) +
                               ") exceeds max_entry_bytes=" + std::to_string(c.opt.max_entry_bytes));
  }
  int64_t now = c.clock->coarse_ms();
  c.metrics.tick(now);
  store(c, key, val, ttl_ms, now);
  return CM_OK;
}

int cache_delete(cm_cache& c, std::string_view key) {
  check_key(key);
  OpTimer t = c.metrics.time(Op::Delete);
  int64_t now = c.clock->coarse_ms();
  bool found = backend_call(c, Op::Delete, [&] { return c.backend->del(key, now); });
  c.metrics.del();
  return found ? CM_OK : CM_MISS;
}

int cache_clear(cm_cache& c) {
  backend_call(c, Op::Clear, [&] {
    c.backend->clear();
    return 0;
  });
  return CM_OK;
}

}  // namespace cm
