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
 *   /health        {"status","uptime_seconds","caches":[...]} with each open
 *                  cache's backend health; 200 when all are healthy, else 503.
 *   /              a small HTML index.
 * Every request is counted in PREFIXhttp_requests_total{path,code} and timed
 * in PREFIXhttp_request_duration_seconds{path} (PREFIX: the registry's prefix)
 * once it is answered, so a scrape shows the requests before it. path is one
 * of the paths above or "other" (the label set stays bounded).
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
 *   tls_key=FILE     PEM private key (needs tls_cert).
 *   max_conns=N      concurrent connections (default 256; 1..100000).
 *   timeout_s=N      idle connection timeout in seconds (default 10; 1..3600).
 *   threads=N        server threads (default 1; 1..64).
 * On success *out is a running server the caller stops with cm_server_stop().
 * Returns CM_OK; CM_EINVAL (out NULL, bad listen address, unknown option,
 * bad value, unreadable certificate or key: cm_errmsg() names it);
 * CM_EUNAVAILABLE (the address is in use or cannot be bound, or the library
 * was built without HTTP support); CM_ENOMEM. */
CM_EXTERN int cm_server_start(cm_server **out, cm_registry *reg, const char *listen, const char *options);

/* The TCP port the server listens on (the chosen one when started with port
 * 0); -1 when s is NULL. Thread-safe. */
CM_EXTERN int cm_server_port(const cm_server *s);

/* Stops the server: closes the listening socket and every open connection,
 * joins its threads, frees it. Returns promptly even with clients connected.
 * NULL: no-op. Must not race other calls on the same server. */
CM_EXTERN void cm_server_stop(cm_server *s);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_SERVER_H */
