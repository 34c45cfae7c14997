// The cache front: metrics around every backend call, TTL and stale policy,
// size refusal, single-flight loading, stats. See cache.h and docs/metrics.md.
#include "cache/cache.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include <unistd.h>

#include "core/error.h"
#include "metrics/registry.h"
#include "util/text.h"

namespace cm {

namespace {

// Runs a backend call; a backend failure is counted under op and rethrown.
template <class Fn>
auto backend_call(cm_cache& c, Op op, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    c.metrics.failed(op, e);
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    c.metrics.error(op, ErrorKind::Other);
    throw Error(CM_EBACKEND, std::string(c.backend->kind()) + " backend: " + e.what());
  }
}

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

// True, counting the rejection, when key + value exceed max_entry_bytes.
bool too_large(cm_cache& c, std::string_view key, std::string_view val) {
  const auto max = static_cast<uint64_t>(c.opt.max_entry_bytes);
  if (key.size() <= max && val.size() <= max - key.size()) return false;
  c.metrics.rejected_too_large();
  return true;
}

// Writes the entry (a backend failure is counted and thrown) and counts the set.
void store(cm_cache& c, std::string_view key, std::string_view val, int64_t ttl_ms, int64_t now) {
  backend_call(c, Op::Set, [&] {
    c.backend->set(key, val, expiry_for(c, now, ttl_ms), now);
    return 0;
  });
  c.metrics.set();
}

// Stores a loaded value (when it fits) and counts the set.
void store_loaded(cm_cache& c, const std::string& key, std::string_view value, int64_t ttl_ms) {
  if (too_large(c, key, value)) return;
  try {
    store(c, key, value, ttl_ms, c.clock->coarse_ms());
  } catch (const Error&) {
    // The value still goes back to the callers; the failure is counted.
  }
}

}  // namespace

int cache_get(cm_cache& c, std::string_view key, void** val, size_t* vlen, bool count_miss) {
  check_key(key);
  OpTimer t = c.metrics.time(Op::Get);
  int64_t now = c.clock->coarse_ms();
  c.metrics.tick(now);
  Fetched f;
  bool found = backend_call(c, Op::Get, [&] { return c.backend->get(key, now, &f); });
  if (found && now < f.fresh_until_ms) {
    c.metrics.hit();
    if (f.from_l1) c.metrics.l1_hit(t);
    *val = f.data;
    *vlen = f.len;
    return CM_OK;
  }
  std::free(f.data);  // expired, inside another handle's stale window
  if (!count_miss) {
    t.cancel();  // the cm_cache_get_or_load that follows times and counts it
    return CM_MISS;
  }
  c.metrics.miss();
  return CM_MISS;
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

// A lock token: 128 bits from a process-wide splitmix64 sequence seeded from
// random_device and the pid. Not thread_local: the library's TLS block must
// stay small, or dlopen (Python, ctypes) refuses an initial-exec library.
// Reseeded in a child of fork(): a child continuing its parent's sequence
// would draw the very tokens the parent draws next, and could release a
// lock the parent holds.
std::string lock_token() {
  static std::atomic<uint64_t> state{0};
  static std::atomic<uint64_t> seeded_in{~uint64_t{0}};  // fork::generation() at the last seeding
  if (const uint64_t gen = fork::generation(); seeded_in.load(std::memory_order_acquire) != gen) {
    std::random_device rd;
    state.store((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()),
                std::memory_order_relaxed);
    seeded_in.store(gen, std::memory_order_release);
  }
  auto next = [] {
    uint64_t z = state.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(next()),
                static_cast<unsigned long long>(next()));
  return buf;
}

namespace {

// Looks key up again (no hit or miss counted): true and *value filled when
// the store holds it fresh now.
bool fetch_fresh(cm_cache& c, std::string_view key, std::string* value) {
  Fetched f;
  int64_t now = c.clock->coarse_ms();
  bool found = backend_call(c, Op::Get, [&] { return c.backend->get(key, now, &f); });
  struct Free {
    void* p;
    ~Free() { std::free(p); }
  } free_f{f.data};
  if (!found || now >= f.fresh_until_ms) return false;
  value->assign(static_cast<const char*>(f.data), f.len);
  return true;
}

// get_or_load's cross-process single flight (the leader of this process
// only): take the key's lock in the store, or wait for the value the lock's
// holder stores, for at most load_timeout_ms. A store that cannot lock (it
// fails) does not stop the load: it runs here, unlocked, and the failure is
// counted.
class DistLock {
 public:
  DistLock(cm_cache& c, std::string_view key) : c_(c), key_(key) {}
  ~DistLock() { release(); }
  DistLock(const DistLock&) = delete;
  DistLock& operator=(const DistLock&) = delete;

  // true: *value holds what another process loaded (no load needed here).
  // false: load here (the lock is held, or could not be taken). With
  // once, a lock held elsewhere is not waited for: *busy is set instead
  // (a stale refresh then serves the stale value).
  bool acquire(std::string* value, bool once = false, bool* busy = nullptr) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(c_.opt.load_timeout_ms);
    auto observe = [&] { c_.metrics.lock_wait(std::chrono::duration<double>(clock::now() - t0).count()); };
    token_ = lock_token();
    auto backoff = std::chrono::milliseconds(1);
    for (;;) {
      bool got = false;
      try {
        got = backend_call(c_, Op::Load, [&] { return c_.backend->try_lock(key_, token_, c_.opt.load_timeout_ms); });
      } catch (const Error&) {
        observe();
        return false;  // counted; load without the lock
      }
      if (got) {
        held_ = true;
        c_.metrics.lock_acquired();
        observe();
        // Stored while we were waiting for the lock? Then no load.
        return lookup(value);
      }
      if (once) {
        *busy = true;
        return false;
      }
      try {
        if (lookup(value)) {
          observe();
          return true;
        }
      } catch (const Error&) {
        observe();
        return false;
      }
      auto now = clock::now();
      if (now >= deadline) {
        observe();
        c_.metrics.lock_timeout();
        throw Error(CM_ETIMEOUT, "waited load_timeout_ms=" + std::to_string(c_.opt.load_timeout_ms) +
                                     " for another process's load of this key (its lock is held)");
      }
      std::this_thread::sleep_for(std::min<clock::duration>(backoff, deadline - now));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
    }
  }

  void release() noexcept {
    if (!held_) return;
    held_ = false;
    try {
      backend_call(c_, Op::Load, [&] {
        c_.backend->unlock(key_, token_);
        return 0;
      });
    } catch (...) {
      // Counted; the lock expires by itself after load_timeout_ms.
    }
  }

 private:
  bool lookup(std::string* value) { return fetch_fresh(c_, key_, value); }

  cm_cache& c_;
  std::string_view key_;
  std::string token_;
  bool held_ = false;
};

}  // namespace

int cache_get_or_load(cm_cache& c, std::string_view key, cm_loader_fn load, void* ctx, int64_t ttl_ms, void** val,
                      size_t* vlen) {
  check_key(key);
  int64_t now = c.clock->coarse_ms();
  c.metrics.tick(now);
  Fetched f;
  {
    OpTimer t = c.metrics.time(Op::Get);
    bool found = backend_call(c, Op::Get, [&] { return c.backend->get(key, now, &f); });
    if (found && now < f.fresh_until_ms) {
      c.metrics.hit();
      if (f.from_l1) c.metrics.l1_hit(t);
      *val = f.data;
      *vlen = f.len;
      return CM_OK;
    }
    if (!found) f = Fetched{};
  }
  // f.data non-null: an expired entry the backend still keeps (stale window).
  struct Holder {  // frees the stale copy unless handed out
    Fetched& f;
    ~Holder() { std::free(f.data); }
  } holder{f};
  bool stale = f.data != nullptr && c.opt.stale_ms > 0;
  auto give_stale = [&] {
    c.metrics.stale_hit();
    *val = f.data;
    *vlen = f.len;
    f.data = nullptr;
    return CM_OK;
  };

  std::string k(key);
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lk(c.flights_mu);
    auto it = c.flights.find(k);
    if (it != c.flights.end()) {
      flight = it->second;
    } else {
      flight = std::make_shared<Flight>();
      c.flights.emplace(k, flight);
      leader = true;
    }
  }
  if (stale && !leader) return give_stale();  // someone is refreshing it
  c.metrics.miss();  // a stale refresher missed too

  if (!leader) {
    std::unique_lock<std::mutex> lk(flight->mu);
    if (!flight->cv.wait_for(lk, std::chrono::milliseconds(c.opt.load_timeout_ms), [&] { return flight->done; })) {
      c.metrics.load_wait_timeout();
      throw Error(CM_ETIMEOUT, "waited load_timeout_ms=" + std::to_string(c.opt.load_timeout_ms) +
                                   " for another caller's load of this key");
    }
    if (flight->status != CM_OK) {
      if (flight->status < 0) throw Error(flight->status, flight->errmsg);
      return flight->status;  // CM_MISS from the loader
    }
    *val = copy_out(flight->value);
    *vlen = flight->value.size();
    return CM_OK;
  }

  // The leader: run the loader, publish its result, wake the waiters. If
  // anything below throws (out of memory, a failing backend), the guard still
  // completes the flight, so waiters never wait for a load nobody runs.
  struct LeaderGuard {
    cm_cache& c;
    const std::string& k;
    Flight& f;
    bool published = false;
    void publish(int status, const std::string& errmsg, const std::string* value) {
      {
        std::lock_guard<std::mutex> lk(c.flights_mu);
        c.flights.erase(k);
      }
      {
        std::lock_guard<std::mutex> lk(f.mu);
        f.status = status;
        f.errmsg = errmsg;
        if (value) f.value = *value;
        f.done = true;
      }
      f.cv.notify_all();
      published = true;
    }
    ~LeaderGuard() {
      if (!published) {
        try {
          publish(CM_EBACKEND, "the caller loading this key failed before finishing", nullptr);
        } catch (...) {
        }
      }
    }
  } guard{c, k, *flight};

  int status = CM_OK;
  std::string value, errmsg;
  // A load may have finished between our lookup and our becoming the leader
  // (its flight already gone): look again before loading twice.
  bool loaded_meanwhile = !stale && fetch_fresh(c, key, &value);
  // Across processes (a redis store): one loader per key through a lock in
  // the store; the others poll for the value it stores.
  DistLock dlock(c, key);
  if (!loaded_meanwhile && c.backend->supports_lock()) {
    bool busy = false;
    loaded_meanwhile = dlock.acquire(&value, stale, &busy);
    if (busy) {  // another process refreshes it: serve the stale value
      guard.publish(CM_MISS, "the key is being refreshed by another process", nullptr);
      return give_stale();
    }
  }
  if (!loaded_meanwhile) {
    OpTimer t = c.metrics.time(Op::Load);
    void* lv = nullptr;
    size_t ll = 0;
    status = load(ctx, key.data(), key.size(), &lv, &ll);
    if (status == CM_OK && !lv && ll > 0) {
      status = CM_EINVAL;
      errmsg = "the loader returned CM_OK with a NULL value of " + std::to_string(ll) + " bytes";
    } else if (status > CM_MISS) {
      errmsg = "the loader returned an unknown status " + std::to_string(status);
      status = CM_EINVAL;
    } else if (status < 0) {
      errmsg = std::string("the loader failed with ") + cm_status_name(status) + " (" + cm_strerror(status) + ")";
    } else if (status == CM_MISS) {
      errmsg = "the loader found no value";
    }
    try {
      if (status == CM_OK && ll) value.assign(static_cast<const char*>(lv), ll);
    } catch (...) {
      std::free(lv);
      throw;
    }
    std::free(lv);
  }
  if (!loaded_meanwhile) {
    c.metrics.load(status == CM_OK);
    if (status == CM_OK) store_loaded(c, k, value, ttl_ms);
  }
  dlock.release();  // after the store: a waiter that sees the lock gone finds the value
  guard.publish(status, errmsg, status == CM_OK ? &value : nullptr);

  if (status != CM_OK) {
    if (stale) return give_stale();  // a failed refresh keeps the stale value
    if (status < 0) throw Error(status, errmsg);
    return status;
  }
  *val = copy_out(value);
  *vlen = value.size();
  return CM_OK;
}

namespace {

void json_num(OutBuf& out, double v) {
  if (std::isfinite(v))
    out.append_double(v);
  else
    out.append("null");
}

double series_quantile(cm_series* s, double q, uint64_t* count) {
  uint64_t payload[2 + std::size(kDurationBounds)];
  {
    auto lk = cells::Space::get().lock();
    read_payload(*s, payload, lk);
  }
  std::vector<double> bounds(std::begin(kDurationBounds), std::end(kDurationBounds));
  uint64_t cum[std::size(kDurationBounds) + 1];
  uint64_t run = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) cum[i] = run += payload[1 + i];
  *count = run;
  return histogram_quantile(q, bounds, cum);
}

}  // namespace

std::string cache_stats_json(cm_cache& c) {
  int64_t now = c.clock->coarse_ms();
  OutBuf out;
  out.append("{\"cache\":");
  append_json_string(out, c.name);
  out.append(",\"backend\":");
  append_json_string(out, c.backend->kind());
  out.append(",\"metrics\":");
  CacheGroup* g = c.metrics.group();
  out.append(g ? "true" : "false");
  auto v = [&](cm_series* s) { return g ? cm_series_value(s) : 0.0; };
  double hits = v(g ? g->hits : nullptr), misses = v(g ? g->misses : nullptr);
  out.append(",\"hits\":");
  json_num(out, hits);
  out.append(",\"misses\":");
  json_num(out, misses);
  out.append(",\"stale_hits\":");
  json_num(out, v(g ? g->stale_hits : nullptr));
  out.append(",\"hit_ratio\":");
  json_num(out, hits + misses > 0 ? hits / (hits + misses) : NAN);
  out.append(",\"entries\":");
  out.append_u64(c.backend->entries());
  out.append(",\"bytes\":");
  out.append_u64(c.backend->bytes());
  out.append(",\"evictions\":{\"size\":");
  json_num(out, v(g ? g->evict_size : nullptr));
  out.append(",\"expired\":");
  json_num(out, v(g ? g->evict_expired : nullptr));
  out.append("},\"latency_seconds\":{");
  bool first = true;
  for (Op op : {Op::Get, Op::Set, Op::Delete, Op::Load}) {
    if (!first) out.push(',');
    first = false;
    append_json_string(out, op_name(op));
    out.append(":{\"count\":");
    uint64_t n = 0;
    double p50 = NAN, p99 = NAN;
    if (g) {
      p50 = series_quantile(g->duration[static_cast<int>(op)], 0.5, &n);
      p99 = series_quantile(g->duration[static_cast<int>(op)], 0.99, &n);
    }
    out.append_u64(n);
    out.append(",\"p50\":");
    json_num(out, p50);
    out.append(",\"p99\":");
    json_num(out, p99);
    out.push('}');
  }
  out.append("},\"hit_ratio_window\":{");
  const std::pair<const char*, int64_t> windows[] = {{"1m", 60000}, {"5m", 300000}, {"1h", 3600000}};
  first = true;
  for (const auto& [label, span] : windows) {
    if (!first) out.push(',');
    first = false;
    append_json_string(out, label);
    out.push(':');
    double ratio = NAN;
    if (g) {
      std::lock_guard<std::mutex> lk(g->window.mu);
      const auto& snaps = g->window.snaps;
      // The newest snapshot at or before the window's start, else the oldest
      // (the cache is younger than the window).
      const WindowRing::Snap* base = nullptr;
      for (const auto& s : snaps)
        if (s.t_ms <= now - span) base = &s;
      if (!base && !snaps.empty()) base = &snaps.front();
      if (base) {
        double dh = hits - base->hits, dm = misses - base->misses;
        if (dh >= 0 && dm >= 0 && dh + dm > 0) ratio = dh / (dh + dm);
      }
    }
    json_num(out, ratio);
  }
  out.append("}}");
  return std::string(out.view());
}

void cache_reset_stats(cm_cache& c) { c.metrics.reset(c.clock->coarse_ms()); }

}  // namespace cm
