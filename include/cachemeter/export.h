/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/export.h: exporters, the outlets that push a registry's values
 * out of the process (StatsD/DogStatsD, Pushgateway, your own callback) every interval,
 * beside the HTTP endpoint. docs/exporters.md has the URI reference, the
 * wire formats and the failure rules.
 *
 * An exporter runs on its registry's flush thread: the hot path (counter
 * adds, cache operations) never knows it exists. Several exporters may run
 * on one registry at once. Each flush reads the registry's values and hands
 * what changed since the last successful flush to the outlet; what could not
 * be sent stays pending and goes out with the next flush, so nothing is lost
 * or counted twice while a receiver is down. Pending state is the difference
 * between the registry's value and the last value sent, one per series: it
 * is bounded by the registry's series (max_series), never by time.
 *
 * Every exporter counts its flushes in the registry's own metrics:
 *   <prefix>exporter_sends_total{exporter,result="ok"|"error"}
 *   <prefix>exporter_last_success_timestamp_seconds{exporter}
 * (prefix: the registry's, default "cachemeter_"). Exporters do not export
 * these two families themselves (each flush would change them again); they
 * are on the endpoint, in renders and in persistence.
 *
 * Lifetime: an exporter belongs to its registry. cm_registry_free() stops
 * the registry's exporters, each with a final flush; the cm_exporter handle
 * stays the caller's, and cm_exporter_stop() must still be called on it to
 * release it (it does nothing else then).
 *
 * Thread-safety: every function may be called from any thread. An exporter
 * must not be flushed or stopped while another thread frees its registry,
 * and must not be used after cm_exporter_stop(). Flushes of one registry's
 * exporters run one at a time (so a slow receiver delays the registry's
 * other outlets by at most its timeout, never the application). */
#ifndef CACHEMETER_EXPORT_H
#define CACHEMETER_EXPORT_H

#include "common.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cm_exporter cm_exporter; /* a running exporter of one registry */

/* Starts an exporter of reg described by uri, and returns it in *out.
 * URIs (every option is listed in docs/exporters.md):
 *   statsd://HOST:PORT?prefix=P&interval_ms=1000&tags=dogstatsd|none&max_packet=1432
 *                      StatsD over UDP. Counters go out as deltas (|c),
 *                      gauges as values (|g), histograms as one timer sample
 *                      per non-empty bucket with a sample rate (|ms|@r).
 *                      HOST is an IPv4/IPv6 address or a name, resolved once
 *                      here.
 *   statsd+unix:///PATH?...  the same over a Unix datagram socket (the
 *                      Datadog agent's dsd.socket).
 *   pushgateway://HOST:PORT/metrics/job/JOB[/LABEL/VALUE...]?method=put|post
 *       &delete_on_stop=false   (and pushgateway+https:// with token=,
 *                      basic_auth=user:password, ca_file=): the whole text
 *                      exposition every interval, with libcurl (builds with
 *                      CM_WITH_PUSH=ON; otherwise CM_EINVAL saying so).
 * Options common to every exporter: interval_ms=N (default 1000; 0 flushes
 * only on cm_exporter_flush and at the end), name=NAME (the `exporter`
 * label of its self-metrics; default the scheme, and unique per registry),
 * timeout_ms=N (bound of one send, default 1000).
 * The first flush runs after interval_ms (or on cm_exporter_flush), on the
 * registry's flush thread.
 * Returns CM_OK; CM_EINVAL (NULL argument, malformed URI, unknown scheme or
 * option, bad value: cm_errmsg() names it); CM_EEXIST (reg already has an
 * exporter of that name); CM_EUNAVAILABLE (HOST does not resolve, or the
 * socket cannot be made); CM_ESTATE (reg is a shared_readonly view);
 * CM_ENOMEM. On failure *out is NULL (when out is not NULL). */
CM_EXTERN int cm_exporter_start(cm_exporter **out, cm_registry *reg, const char *uri);

/* Pushes now, on the calling thread, and returns the outcome. Waits for a
 * flush of the same registry in progress (at most its timeout).
 * Returns CM_OK (sent, or nothing had changed); CM_EUNAVAILABLE (the
 * receiver could not be reached, or a gateway answered 5xx: what was not sent
 * stays pending); CM_ETIMEOUT
 * (a send took longer than timeout_ms: likewise pending); CM_EBACKEND (a
 * gateway refused the push with another status, or the callback of
 * cm_exporter_start_callback returned non-zero: pending likewise);
 * CM_ESTATE (the registry was freed, or this process is a fork() child of
 * the one that started the exporter); CM_EINVAL (e is NULL);
 * CM_ENOMEM. */
CM_EXTERN int cm_exporter_flush(cm_exporter *e);

/* Stops e: a final flush (bounded by timeout_ms per send; a failure is
 * counted, not returned), then frees e. NULL is accepted and does nothing.
 * After cm_registry_free(), it only frees the handle. */
CM_EXTERN void cm_exporter_stop(cm_exporter *e);

/* The sample types of cm_sample. */
typedef enum cm_sample_type {
  CM_SAMPLE_COUNTER = 0,
  CM_SAMPLE_GAUGE = 1,
  CM_SAMPLE_HISTOGRAM = 2
} cm_sample_type;

/* One series in a flush of a callback exporter. Every pointer is valid during
 * the callback only; copy what you keep. */
typedef struct cm_sample {
  const char *name;                /* the family's exposed name ("app_hits_total") */
  const char *help;                /* its help text ("" when none) */
  cm_sample_type type;
  size_t nlabels;                  /* the registry's const labels first */
  const char *const *label_names;  /* nlabels entries */
  const char *const *label_values; /* nlabels entries */
  /* Counter: its value, or with deltas=1 the increase since the last flush
   * the callback accepted (the whole value after a reset). Gauge: its value.
   * Histogram: the sum of the observations (or its increase). */
  double value;
  uint64_t count;                  /* histogram: observations (or their increase); else 0 */
  size_t nbounds;                  /* histogram: finite upper bounds; else 0 */
  const double *bounds;            /* nbounds entries, ascending (NULL when 0) */
  /* histogram: nbounds + 1 counts, per bucket (NOT cumulative), the +Inf
   * bucket last; increases with deltas=1. NULL for counters and gauges. */
  const uint64_t *bucket_counts;
  int removed;                     /* 1: the series left the registry (a closed
                                      cache's); this is its final value */
} cm_sample;

/* The callback of a callback exporter: called once per flush with the
 * samples of that flush (n > 0; a flush with nothing to hand over makes no
 * call), on the registry's flush thread or the thread calling
 * cm_exporter_flush / cm_exporter_stop / cm_registry_free. Never two calls of
 * one registry's exporters at once. Return 0 when the samples were taken;
 * non-zero keeps them pending (the next call hands the same increases again,
 * plus newer ones). It must not call into reg's exporters (flush, stop) nor
 * free reg; it may read and update metrics. */
typedef int (*cm_export_fn)(void *ctx, const cm_sample *samples, size_t n);

/* Starts an exporter that calls fn(ctx, ...) once per flush: the way to feed
 * anything else (a log, OTLP through your own SDK, a test). ctx is the
 * caller's and must stay valid until cm_exporter_stop() or cm_registry_free().
 * options: NULL/"" or "key=value&...": interval_ms=N (default 1000; 0: only
 * explicit flushes), deltas=0|1 (default 1: counters and histograms as
 * increases since the last accepted flush), all=0|1 (default 0: only the
 * series that changed since the last accepted flush; 1: every series every
 * flush), name=NAME (default "callback").
 * Returns CM_OK; CM_EINVAL (NULL out, reg or fn; unknown option; bad value);
 * CM_EEXIST (an exporter of that name); CM_ESTATE (reg is a
 * shared_readonly view); CM_ENOMEM. */
CM_EXTERN int cm_exporter_start_callback(cm_exporter **out, cm_registry *reg, cm_export_fn fn, void *ctx,
                                         const char *options);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_EXPORT_H */
