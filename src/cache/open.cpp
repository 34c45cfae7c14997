// SPDX-License-Identifier: Apache-2.0
// Opening a cache: the handle's checks, the front's URI options, the store
// (behind a circuit breaker when configured), a tiered composition, the
// health check and the metrics group; and closing it. See cache.h.
#include <cstdlib>
#include <string>

#include "cache/cache.h"
#include "core/error.h"
#include "cache/backend_table.h"
#include "metrics/registry.h"
#include "util/text.h"
#include "util/uri.h"
#include "wrappers/breaker.h"
#include "wrappers/tiered.h"

namespace cm {

namespace {

bool env_metrics_enabled() {
  const char* v = std::getenv("CACHEMETER_METRICS_ENABLED");
  if (!v) return true;
  std::string s(v);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return !(s == "false" || s == "0" || s == "off" || s == "no");
}

}  // namespace

namespace {

// The checks and settings every open shares: name, registry, clock.
std::unique_ptr<cm_cache> new_handle(cm_registry* reg, const char* name, const Clock* clock) {
  CM_REQUIRE(name != nullptr, "name is NULL");
  std::string n(name);
  CM_REQUIRE(!n.empty() && n.size() <= 200, "name must be 1..200 bytes");
  CM_REQUIRE(valid_utf8(n), "name is not valid UTF-8");
  if (!reg) reg = cm_registry_default();
  CM_REQUIRE(reg != nullptr, "no default registry");
  auto c = std::make_unique<cm_cache>();
  c->reg = reg;
  c->name = n;
  c->clock = clock ? clock : &system_clock();
  return c;
}

// Decided by the backend table's traits (cache/backend_table.h); an unknown
// scheme is not remote (make_backend reports it).
bool is_remote(const Uri& u) {
  const BackendSpec* s = find_backend_spec(u.scheme);
  return s && s->traits.shared;
}

// The front's options from the query of the URI that carries them.
void parse_front_options(cm_cache& c, Uri& u) {
  // Caches sharing one SQLite file or Redis server keep apart by name (the
  // backend's namespace= option, unless the URI names one itself).
  if (is_remote(u)) u.query.add_default("namespace", c.name);
  const Options& q = u.query;
  c.opt.default_ttl_ms = q.get_int("ttl_ms", 0, 0, int64_t{1} << 50);
  c.opt.max_entry_bytes = q.get_size("max_entry_bytes", c.opt.max_entry_bytes, 1, int64_t{1} << 40);
  const BackendSpec* spec = find_backend_spec(u.scheme);
  c.opt.sample = static_cast<uint32_t>(q.get_int("sample", spec ? spec->default_sample : c.opt.sample, 1, 1000000));
  c.opt.metrics = q.get_bool("metrics", true) && env_metrics_enabled();
  c.opt.load_timeout_ms = q.get_int("load_timeout_ms", c.opt.load_timeout_ms, 1, int64_t{1} << 40);
  c.opt.stale_ms = q.get_int("stale_ms", 0, 0, int64_t{1} << 50);
  if (!is_remote(u)) {
    for (const char* k : {"breaker_failures", "breaker_cooldown_ms"})
      if (q.has(k))
        throw Error(CM_EINVAL, "uri \"" + u.text + "\": option " + k + " applies to " +
                                   names_where([](const BackendTraits& t) { return t.shared; }) + " caches only");
  }
  const BreakerDefaults br = spec ? spec->breaker : BreakerDefaults{};
  c.opt.breaker_failures = static_cast<int>(q.get_int("breaker_failures", br.failures, 0, 1000000));
  c.opt.breaker_cooldown_ms = q.get_int("breaker_cooldown_ms", br.cooldown_ms, 1, int64_t{1} << 40);
}

// The store of a URI, behind a circuit breaker when breaker_failures > 0.
std::unique_ptr<Backend> make_store(cm_cache& c, const Uri& u) {
  std::unique_ptr<Backend> b = make_backend(u, &c.metrics);
  if (c.opt.breaker_failures > 0)
    b = std::make_unique<BreakerBackend>(std::move(b), BreakerOptions{c.opt.breaker_failures, c.opt.breaker_cooldown_ms},
                                         c.clock, &c.metrics);
  return b;
}

// Registers the health check and joins (or makes) the group of series.
void finish_open(cm_cache& c, Backend* l1, Backend* l2) {
  {
    Backend* b = c.backend.get();
    add_health_check(*c.reg, &c, c.name, std::string(b->kind()), [b] { return b->health(); });
  }
  if (!c.opt.metrics) return;
  c.metrics.join({c.reg, c.name, c.clock, c.opt.sample, c.opt.breaker_failures > 0, c.backend.get(), l1, l2});
}

}  // namespace

std::unique_ptr<cm_cache> open_cache(cm_registry* reg, const char* name, const char* uri, const Clock* clock) {
  CM_REQUIRE(uri != nullptr, "uri is NULL");
  auto c = new_handle(reg, name, clock);
  Uri u = Uri::parse(uri);
  parse_front_options(*c, u);
  c->backend = make_store(*c, u);
  finish_open(*c, nullptr, nullptr);
  return c;
}

std::unique_ptr<cm_cache> open_cache_tiered(cm_registry* reg, const char* name, const char* l1_uri, const char* l2_uri,
                                            const Clock* clock) {
  CM_REQUIRE(l1_uri != nullptr, "l1_uri is NULL");
  CM_REQUIRE(l2_uri != nullptr, "l2_uri is NULL");
  auto c = new_handle(reg, name, clock);
  Uri u1 = Uri::parse(l1_uri);
  Uri u2 = Uri::parse(l2_uri);
  const BackendSpec* s1 = find_backend_spec(u1.scheme);
  const BackendSpec* s2 = find_backend_spec(u2.scheme);
  if (!s1 || !s1->traits.tier_l1)
    throw Error(CM_EINVAL, "l1 uri \"" + u1.text + "\": the L1 of a tiered cache is a " +
                               schemes_where([](const BackendTraits& t) { return t.tier_l1; }) + " cache");
  if (!s2 || !s2->traits.tier_l2)
    throw Error(CM_EINVAL, "l2 uri \"" + u2.text + "\": the L2 of a tiered cache is a " +
                               schemes_where([](const BackendTraits& t) { return t.tier_l2; }) + " cache");
  for (std::string_view k : kFrontOptions)
    if (k != "ttl_ms" && u1.query.has(k))
      throw Error(CM_EINVAL, "l1 uri \"" + u1.text + "\": option " + std::string(k) +
                                 " belongs on the L2 uri (the L1 takes max_entries, max_bytes and ttl_ms)");
  parse_front_options(*c, u2);
  TieredOptions topt;
  const int64_t l1_ttl_ms = u1.query.get_int("ttl_ms", 0, 0, int64_t{1} << 50);
  std::unique_ptr<Backend> l1 = make_backend(u1, &c->metrics);
  std::unique_ptr<Backend> l2 = make_store(*c, u2);
  // Without a change feed (a store without one, or a Redis Cluster read from
  // its replicas), an L1 copy may be stale for its ttl_ms: 1 s by default.
  topt.l1_ttl_ms = u1.query.has("ttl_ms") ? l1_ttl_ms : l2->change_feed() ? 0 : 1000;
  Backend* l1_raw = l1.get();
  Backend* l2_raw = l2.get();
  auto tiered = std::make_unique<TieredBackend>(std::move(l1), std::move(l2), topt, c->clock, &c->metrics);
  TieredBackend* t = tiered.get();
  c->backend = std::move(tiered);
  finish_open(*c, l1_raw, l2_raw);
  // Last: the change feed's thread reports into the series finish_open made.
  t->start_coherence();
  return c;
}

}  // namespace cm

cm_cache::~cm_cache() {
  // Waits for a /health check of this cache in flight (bounded by the
  // backend's timeout): the check uses the backend freed below.
  if (reg && backend) cm::remove_health_check(*reg, this);
  metrics.leave();  // the group's collector no longer reads the backend
  // The backend's threads (a tiered cache's invalidation listener) report
  // into this handle's series: stop them before the series can go.
  backend.reset();
  metrics.close();
}
