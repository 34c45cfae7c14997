/* SPDX-License-Identifier: Apache-2.0 */
// The backend table: everything the cache front knows of a backend, as one
// spec per backend (schemes, factory, options, traits, breaker defaults),
// so the front never names a scheme or a backend class.
//
// Registration (decided for issue 14): each backend defines its spec getter
// beside its factory, in its own file (`const BackendSpec&
// memory_backend_spec()` in src/backends/memory.cpp), and backend_table.cpp
// lists the getters, each under its CM_WITH_* guard. No self-registering
// static objects: the library is also a static archive, whose linker drops
// an object file nothing references (a backend would vanish from the tests
// and from static users), and the order in which statics of different files
// are constructed is unspecified. Specs are constant-initialized (constexpr),
// so reading the table is safe at any time, from any thread.
//
// A new backend is: its folder/file in src/backends/ (class, factory, spec)
// + one line in backend_table.cpp (+ its source in src/CMakeLists.txt under
// its option) + one line in the backend contract tests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/backend.h"

namespace cm {

struct Uri;

// What the front decides from a backend's kind, before or without making it.
struct BackendTraits {
  // The store is shared: other handles and processes see its entries (a
  // file, a server). The front names the cache's share of it (the backend's
  // namespace= option defaults to the cache's name), accepts the breaker
  // options for it, and reads its entries()/bytes() as backend I/O (off the
  // scrape's fast path).
  bool shared = false;
  // May be the L1 (in this process, in front) of a tiered cache.
  bool tier_l1 = false;
  // May be the L2 (the shared store behind) of a tiered cache.
  bool tier_l2 = false;
  // Its backends offer a change feed (Backend::change_feed()): an L1 in
  // front of it is kept coherent and needs no ttl by default. Without one,
  // an L1 copy may be stale for the L1's ttl_ms (default 1000 ms).
  bool change_feed = false;
};

// The circuit breaker a cache over this backend gets when its URI does not
// say (breaker_failures=, breaker_cooldown_ms=).
struct BreakerDefaults {
  int failures = 0;            // 0: no breaker
  int64_t cooldown_ms = 1000;  // how long an open circuit stays open
};

// Builds a backend from its URI (the scheme is one of the spec's). Throws
// Error(CM_EINVAL) for an unknown option or a bad value, as make_backend.
using BackendFactory = std::unique_ptr<Backend> (*)(const Uri& uri, BackendEvents* events);

struct BackendSpec {
  std::string_view name;                       // its kind(): the `backend` label
  std::span<const std::string_view> schemes;   // the URI schemes that make it
  BackendFactory make = nullptr;
  std::span<const std::string_view> options;   // its own URI options (the front's come on top)
  BackendTraits traits;
  BreakerDefaults breaker;
  uint64_t entry_overhead = 0;  // bytes() charged per entry beyond key + value (0: not accounted)
  // 1 in how many operations per thread are timed when the URI has no
  // sample= (FrontOptions::sample): two precise clock reads cost ~46 ns on
  // the reference VM, about a memory get's whole work, nothing beside a
  // network or disk round trip.
  uint32_t default_sample = 16;
};

// The backends built in, in the table's order. Constant; any thread.
std::span<const BackendSpec* const> backend_specs();

// The spec whose schemes include scheme, or nullptr.
const BackendSpec* find_backend_spec(std::string_view scheme);
// The spec named name (a kind(): "memory"), or nullptr (e.g. "tiered").
const BackendSpec* find_backend_kind(std::string_view name);
// The spec of uri's scheme; throws Error(CM_EINVAL) for an unknown scheme,
// naming the schemes built in and the build options of those that are not.
const BackendSpec& backend_spec(const Uri& uri);

// spec.options followed by the front's kFrontOptions: what a factory accepts
// (it passes them to Options::check_known).
std::vector<std::string_view> known_options(const BackendSpec& spec);

// The schemes of the specs whose traits satisfy pred, sorted, for messages:
// "redis://, redis+unix:// or sqlite://" ("(none in this build)" if none).
std::string schemes_where(bool (*pred)(const BackendTraits&));
// The names of those specs, sorted: "redis and sqlite".
std::string names_where(bool (*pred)(const BackendTraits&));

}  // namespace cm
