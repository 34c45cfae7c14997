// SPDX-License-Identifier: Apache-2.0
// get_or_load: single flight within the process (one loader per key, the
// others wait for its value) and across processes (a lock in the store).
// See cache.h.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <unistd.h>

#include "cache/cache.h"
#include "cache/ops.h"
#include "core/error.h"

namespace cm {

// One load in progress: its waiters block on cv until done. value: one
// copy of the loaded value shared by every waiter (made only when there
// are waiters; the leader's caller gets the loader's own buffer).
struct Flight {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int status = CM_OK;
  std::string value;
  std::string errmsg;
};

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

// A value as the C API hands it out: malloc'd, len bytes and a NUL after
// them. Freed unless released to the caller.
class Buf {
 public:
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { std::free(p_); }
  void reset(void* p, size_t len) {
    std::free(p_);
    p_ = static_cast<char*>(p);
    len_ = len;
  }
  std::string_view view() const { return {p_, len_}; }
  size_t size() const { return len_; }
  void* release() { return std::exchange(p_, nullptr); }

 private:
  char* p_ = nullptr;
  size_t len_ = 0;
};

// Takes the loader's buffer (cm_alloc'd, i.e. malloc'd) as the value handed
// out: it needs a NUL after its ll bytes. Written in place when the
// allocation has room (a loader that allocates ll + 1 bytes, or malloc's
// rounding), else the buffer grows by realloc (in place when it can). lv
// is freed on failure.
void adopt_loaded(Buf* out, void* lv, size_t ll) {
  if (!lv) return out->reset(copy_out({}), 0);  // CM_OK with (NULL, 0): the empty value
  char* p = static_cast<char*>(lv);
#if defined(__GLIBC__)
  if (malloc_usable_size(lv) > ll) {
    p[ll] = '\0';
    return out->reset(p, ll);
  }
#endif
  p = ll < SIZE_MAX ? static_cast<char*>(std::realloc(lv, ll + 1)) : nullptr;
  if (!p) {
    std::free(lv);
    throw std::bad_alloc();
  }
  p[ll] = '\0';
  out->reset(p, ll);
}

// Looks key up again (no hit or miss counted): true and *value filled (with
// the backend's buffer) when the store holds it fresh now.
bool fetch_fresh(cm_cache& c, std::string_view key, Buf* value) {
  Fetched f;
  int64_t now = c.clock->coarse_ms();
  bool found = backend_call(c, Op::Get, [&] { return c.backend->get(key, now, &f); });
  if (!found || now >= f.fresh_until_ms) {
    std::free(f.data);
    return false;
  }
  value->reset(f.data, f.len);
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
  bool acquire(Buf* value, bool once = false, bool* busy = nullptr) {
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
  bool lookup(Buf* value) { return fetch_fresh(c_, key_, value); }

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
    const std::shared_ptr<Flight>& f;
    bool published = false;
    void publish(int status, const std::string& errmsg, const Buf* value) {
      {
        std::lock_guard<std::mutex> lk(c.flights_mu);
        c.flights.erase(k);
      }
      // Out of the map, the flight is held by us and by its waiters only
      // (they took it under flights_mu): no waiter, no copy.
      std::string shared;
      if (value && f.use_count() > 1) shared.assign(value->view());
      {
        std::lock_guard<std::mutex> lk(f->mu);
        f->status = status;
        f->errmsg = errmsg;
        f->value = std::move(shared);
        f->done = true;
      }
      f->cv.notify_all();
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
  } guard{c, k, flight};

  int status = CM_OK;
  std::string errmsg;
  Buf value;  // handed to our caller as it is: the loader's or the backend's buffer
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
    if (status == CM_OK)
      adopt_loaded(&value, lv, ll);
    else
      std::free(lv);
  }
  if (!loaded_meanwhile) {
    c.metrics.load(status == CM_OK);
    if (status == CM_OK) store_loaded(c, k, value.view(), ttl_ms);
  }
  dlock.release();  // after the store: a waiter that sees the lock gone finds the value
  guard.publish(status, errmsg, status == CM_OK ? &value : nullptr);

  if (status != CM_OK) {
    if (stale) return give_stale();  // a failed refresh keeps the stale value
    if (status < 0) throw Error(status, errmsg);
    return status;
  }
  *vlen = value.size();
  *val = value.release();
  return CM_OK;
}

}  // namespace cm
