/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/server.h: the optional embedded HTTP endpoint (libmicrohttpd)
 * that serves a registry to Prometheus and to people.
 *
 * Endpoints (GET and HEAD; other methods get 405 with an Allow header;
 * unknown paths 404):
 *   /metrics       Prometheus text 0.0.4, or OpenMetrics 1.0.0 when the Accept
 *                  header prefers application/openmetrics-text (q-values
 *                  respected); gzip when Accept-Encoding allows it; repeated
 *                  name[]=NAME query parameters keep only the families one of
 *                  whose exposed names is listed.
 *   /metrics.json  the JSON rendering (schema: docs/exposition.md).
 *   /health        {"status","uptime_seconds","version","age_ms","refreshing",
 *                  "caches":[...]} with each open cache's backend health:
 *                  200 "ok" when all are healthy, 503 "unhealthy" when one is
 *                  not, 503 "pending" (with Retry-After: 1, no age_ms) before
 *                  the first check has completed. See "Health" below.
 *   /              the dashboard (dashboard=on, the default): one page with
 *                  /dashboard.js and /dashboard.css, no external asset,
 *                  showing each cache's hit ratios, ops/s, latency quantiles,
 *                  evictions and entries live from /metrics.json, served with
 *                  a Content-Security-Policy allowing only those same-origin
 *                  files; with dashboard=off, a small HTML index.
 * Every request is counted in PREFIXhttp_requests_total{path,code} and timed
 * in PREFIXhttp_request_duration_seconds{path} (PREFIX: the registry's prefix)
 * once it is answered, so a scrape shows the requests before it. path is one
 * of the paths above or "other" (the label set stays bounded).
 *
 * Health. No request handler does backend I/O on the server's polling
 * thread. The checks (a redis PING, a sqlite file check) run on a checker
 * thread the server starts on the first /health, one after another, each
 * bounded by its backend's own timeout (redis timeout_ms), holding no lock:
 * a dead backend delays neither scrapes nor cm_cache_open/close of other
 * caches. A /health request answers from the last results when they are
 * younger than health_interval_ms and no cache was opened or closed since;
 * otherwise it starts a refresh (unless one is running) and waits for it,
 * off the polling thread, at most 1 s; then it answers from the last
 * completed results (age_ms: their age; "refreshing": a refresh is still in
 * flight) or, if there are none yet, 503 "pending". So checks run at most
 * every health_interval_ms (plus once per change in the set of caches) and
 * only while /health is asked. cm_cache_close of a cache whose check is
 * running waits for that check (at most the backend's timeout).
 *
 * Scrapes. The gauges that mirror state held elsewhere (a cache's entries
 * and bytes) are refreshed before a scrape renders: a memory cache's on the
 * polling thread, a redis or sqlite cache's (a key count on the server) on
 * the server's collector thread. A scrape uses the values of a refresh
 * completed within the last second, or starts one and waits for it at most
 * 1 s; when a refresh has been stuck (on a dead backend) for more than
 * 100 ms the scrape renders at once with the gauges' last values.
 *
 * Slow clients. A connection must deliver a whole request (head and any
 * body) within request_timeout_ms of being accepted, and each further
 * request on a kept-alive connection within request_timeout_ms of the
 * previous response; otherwise the server shuts the connection down
 * (trickling a header line every few seconds does not extend it, unlike
 * timeout_s, an idle timeout that every byte resets). A /health or /metrics
 * request waiting for its refresh is not subject to it. One client address
 * holds at most max_conns_per_ip connections; the ones past it are closed
 * on accept. Behind a reverse proxy every client has the proxy's address:
 * raise max_conns_per_ip or set it to 0 there.
 *
 * Built when CMake's CM_WITH_HTTP is ON (the default). Without it these
 * functions exist but cm_server_start returns CM_EUNAVAILABLE. */
#ifndef CACHEMETER_SERVER_H
#define CACHEMETER_SERVER_H

#include "common.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cm_server cm_server;

/* Starts serving reg (NULL: the process-wide default registry) on `listen`:
 * "host:port", "[v6addr]:port" or ":port" (host 127.0.0.1: never all
 * interfaces unless asked, e.g. "0.0.0.0:9464"); port 0 picks a free port
 * (see cm_server_port). The server runs in its own thread(s) until
 * cm_server_stop(); the registry must outlive it.
 * options: NULL or "" or "key=value&..." (percent-decoded):
 *   token=T          require "Authorization: Bearer T" (else 401 with
 *                    WWW-Authenticate); compared in constant time.
 *   basic_auth=U:P   require HTTP Basic authentication as U with password P.
 *                    (With both, either credential is accepted.)
 *   tls_cert=FILE    PEM certificate chain: serve HTTPS (needs tls_key).
 *   tls_key=FILE     PEM private key (needs tls_cert). Both must be
 *                    non-empty regular files of at most 1 MiB (a FIFO,
 *                    device or directory is refused without reading it).
 *   max_conns=N      concurrent connections (default 256; 1..100000).
 *   max_conns_per_ip=N  concurrent connections from one client address
 *                    (default 32; 0..100000, 0: no per-address cap).
 *   timeout_s=N      idle connection timeout in seconds (default 10; 1..3600).
 *   request_timeout_ms=N  deadline for a whole request to arrive, from the
 *                    connection's start or the previous response (default
 *                    5000; 10..3600000). See "Slow clients" above.
 *   health_interval_ms=N  /health reuses check results younger than this
 *                    (default 5000; 0..86400000, 0: every /health refreshes,
 *                    still one refresh at a time). See "Health" above.
 *   threads=N        server threads (default 1; 1..64).
 *   dashboard=B      true/false (default true): GET / serves the dashboard
 *                    page (the same auth as every path); false: the index.
 * On success *out is a running server the caller stops with cm_server_stop().
 * Returns CM_OK; CM_EINVAL (out NULL, bad listen address, unknown option,
 * bad value, a certificate or key that is unreadable, not a regular file,
 * empty, larger than 1 MiB or rejected by TLS: cm_errmsg() names the
 * option and the path);
 * CM_EUNAVAILABLE (the address is in use or cannot be bound, or the library
 * was built without HTTP support); CM_ENOMEM. */
CM_EXTERN int cm_server_start(cm_server **out, cm_registry *reg, const char *listen, const char *options);

/* The TCP port the server listens on (the chosen one when started with port
 * 0); -1 when s is NULL. Thread-safe. */
CM_EXTERN int cm_server_port(const cm_server *s);

/* Stops the server: closes the listening socket and every open connection,
 * joins its threads, frees it. Returns promptly even with clients connected;
 * a health check or collection in flight is waited for (each is bounded by
 * its backend's timeout). NULL: no-op. Must not race other calls on the
 * same server. */
CM_EXTERN void cm_server_stop(cm_server *s);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_SERVER_H */
