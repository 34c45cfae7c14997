/* SPDX-License-Identifier: Apache-2.0 */
// The steps the cache operations share (cache.cpp: get/set/delete/clear;
// load.cpp: get_or_load). Internal to src/cache/.
#pragma once

#include <string>
#include <string_view>

#include "cache/cache.h"
#include "core/error.h"

namespace cm {

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

// A malloc'd copy of v with a NUL after it (not counted): the buffers the C
// API hands out. Throws std::bad_alloc.
void* copy_out(std::string_view v);
// The expiry of an entry set now with ttl_ms (0: the cache's default; < 0:
// never), its stale window included.
Expiry expiry_for(const cm_cache& c, int64_t now_ms, int64_t ttl_ms);
// Throws Error(CM_EINVAL) for an empty key.
void check_key(std::string_view key);
// True, counting the rejection, when key + value exceed max_entry_bytes.
bool too_large(cm_cache& c, std::string_view key, std::string_view val);
// Writes the entry (a backend failure is counted and thrown) and counts the set.
void store(cm_cache& c, std::string_view key, std::string_view val, int64_t ttl_ms, int64_t now);
// Stores a loaded value (when it fits) and counts the set; a failure is
// counted, not thrown (the value still goes back to the callers).
void store_loaded(cm_cache& c, const std::string& key, std::string_view value, int64_t ttl_ms);

}  // namespace cm
