/* SPDX-License-Identifier: Apache-2.0 */
/* cachemeter/metrics.h: the metrics registry (counters, gauges, histograms with
 * labels) and its exposition as Prometheus text, OpenMetrics and JSON.
 *
 * Objects: a cm_registry owns cm_family objects (a named metric with its label
 * names); a family owns cm_series (one labelled child, the hot-path handle).
 * Families and series live until their registry is freed; the pointers the
 * library hands out stay valid (and stable) until then. The one exception is
 * the series a cache makes for itself, which leave the registry when the
 * cache's last handle closes (cm_cache_close in cache.h), unless the
 * application obtained them with cm_family_series(). Nothing here is freed
 * by the caller except registries and rendered output.
 *
 * Thread-safety: every function may be called from any thread at any time,
 * except that a registry must not be freed while another thread still uses it
 * or any of its families or series. The update functions (cm_counter_add,
 * cm_gauge_add, cm_histogram_observe) take no lock and allocate nothing after
 * a thread's first update of a series region; see docs/threading.md. */
#ifndef CACHEMETER_METRICS_H
#define CACHEMETER_METRICS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cm_registry cm_registry; /* a set of metric families */
typedef struct cm_family cm_family;     /* a named metric and its label names */
typedef struct cm_series cm_series;     /* one labelled child: the hot-path handle */

/* Creates a registry.
 * options: NULL or "" for the defaults, else "key=value&key=value" with
 * values percent-decoded (%26 for '&', %3D for '='). Keys:
 *   prefix=NAME        prefix of the metrics cachemeter itself emits (cache,
 *                      HTTP and self metrics). Default "cachemeter_". Must be
 *                      a valid metric name prefix. Application metrics are
 *                      exposed exactly as named.
 *   const_labels=L     labels added to every series of the registry:
 *                      "name:value,name:value". This option is split on ','
 *                      and ':' first and each piece is then percent-decoded
 *                      once, so write ',' and ':' inside a value as %2C / %3A
 *                      (and '&' as %26).
 *   max_series=N       registry-wide cap on labelled series (default 10000,
 *                      1..100000000); cachemeter's own self-metrics do not count.
 *                      A closed cache's series leave the registry (see
 *                      cm_cache_close in cache.h), so they do not use it up.
 *   max_label_value_bytes=N  longest label value, in bytes, of a new series
 *                      (default 2048, as Mimir and Loki; 1 B..1 MiB; a byte
 *                      size: "4KiB"). A cache's name is a label value too.
 *   persist_gauges=B   true/false (default false): cm_registry_persist() also
 *                      saves and restores gauges. Counters and histograms
 *                      are always persisted.
 *   shared=DIR         a registry shared by the worker processes of a pool
 *                      (docs/multiprocess.md): every update lands in this
 *                      process's slot file in DIR (made, one level, when
 *                      missing), cm_registry_render shows the aggregate of
 *                      every slot. cm_series_value reads this process's share.
 *   max_workers=N      shared only: slots in DIR (default 64, 1..4096), fixed
 *                      when DIR is made.
 *   gauge_mode=M       shared only: how gauges aggregate over workers: sum,
 *                      max, min, livesum (default), livemax, mostrecent, all
 *                      (cm_gauge_new_mode).
 *   shared_fallback=F  shared only: fail (default) or local: with no free
 *                      slot, count and render this process only.
 *   shared_refresh_ms=N  shared only: a thread of this process runs the
 *                      collectors (cache gauges) every N ms (default 1000;
 *                      0: none), so other workers render fresh figures.
 *   shared_readonly=B  shared only: true: a view of DIR (a sidecar's, as
 *                      `cachemeter serve --shared`): renders the pool,
 *                      claims no slot, changes nothing in DIR; registering a
 *                      family is CM_ESTATE. max_workers defaults to DIR's.
 * On success *out is a new registry the caller frees with cm_registry_free().
 * Returns CM_OK; CM_EINVAL (out NULL, unknown key, bad value: cm_errmsg()
 * names it; shared: DIR is not a directory, or was made for another
 * max_workers); CM_ELIMIT (shared: all max_workers slots are held by live
 * processes); CM_ECORRUPT (shared: DIR holds other files, or files of another
 * layout version or damaged ones; nothing in it is changed);
 * CM_EUNAVAILABLE (shared: DIR cannot be made, read or written); CM_ENOMEM.
 * Thread-safe. */
CM_EXTERN int cm_registry_new(cm_registry **out, const char *options);

/* Frees a registry with all its families and series. NULL is a no-op, and so
 * is the default registry (it lives until the process exits). No other thread
 * may use the registry or its families/series during or after this call.
 * A persisted registry (cm_registry_persist) stops its flusher, writes a last
 * flush (a failure there is silent: the file keeps the previous completed
 * flush) and gives up the file's ownership. */
CM_EXTERN void cm_registry_free(cm_registry *reg);

/* The process-wide default registry, created with default options on first
 * use. Every function taking a cm_registry* uses it when passed NULL. Never
 * returns NULL (aborts only if the process is out of memory at creation). */
CM_EXTERN cm_registry *cm_registry_default(void);

/* Registers a counter family (or finds the identical one already registered).
 *   reg          registry; NULL means the default registry.
 *   name         metric name, [a-zA-Z_:][a-zA-Z0-9_:]*, not starting "__".
 *                A counter's exposed name always ends in "_total": when name
 *                does not, "_total" is appended ("requests" is exposed as
 *                "requests_total"; registering "requests" and
 *                "requests_total" yields the same family).
 *   help         help text (UTF-8), NULL for none. Copied.
 *   label_names  nlabels label names, [a-zA-Z_][a-zA-Z0-9_]*, not starting
 *                "__", not "le", all distinct and distinct from the registry's
 *                const labels. Copied. May be NULL when nlabels is 0.
 *   out          receives the family handle, owned by the registry.
 * Registration is idempotent: the same name, type and label names (and
 * buckets, for histograms) return the existing family. Help text of a later
 * registration is ignored.
 * Returns CM_OK; CM_EEXIST when the name (or one of the sample names it
 * exposes, such as NAME_created, NAME_bucket) is taken by a family of another
 * type, labels or buckets; CM_EINVAL for a NULL out or name, an invalid name,
 * label name or help text; CM_ENOMEM. Thread-safe. */
CM_EXTERN int cm_counter_new(cm_registry *reg, const char *name, const char *help,
                             const char *const *label_names, size_t nlabels,
                             cm_family **out);

/* Registers a gauge family. Same rules and statuses as cm_counter_new(),
 * except that the name is used as given. */
CM_EXTERN int cm_gauge_new(cm_registry *reg, const char *name, const char *help,
                           const char *const *label_names, size_t nlabels,
                           cm_family **out);

/* Registers a gauge family with its own aggregation mode, for registries
 * shared by worker processes (docs/multiprocess.md, options shared= and
 * gauge_mode= of cm_registry_new): how the workers' values become one.
 *   mode  "sum", "max", "min" (over every worker that ever set it),
 *         "livesum", "livemax" (over live workers), "mostrecent" (the live
 *         worker that set it last: cm_gauge_set; cm_gauge_add does not
 *         count as a set), "all" (one series per live worker, with a
 *         `worker` label); NULL or "" takes the
 *         registry's gauge_mode. On an in-process registry the mode is
 *         checked and kept, and changes nothing.
 * Same rules and statuses as cm_gauge_new(), and: CM_EINVAL for an unknown
 * mode; CM_EEXIST when the family exists with another mode (registered so in
 * this registry, or in the shared directory by another worker). */
CM_EXTERN int cm_gauge_new_mode(cm_registry *reg, const char *name, const char *help,
                                const char *const *label_names, size_t nlabels, const char *mode,
                                cm_family **out);

/* Registers a histogram family. Same rules and statuses as cm_gauge_new(), and:
 *   bounds   nbounds upper bounds, finite and strictly increasing; the +Inf
 *            bucket is implicit. NULL/0 selects the default latency buckets
 *            in seconds: 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25
 *            0.5 1 2.5 5 10. At most CM_HISTOGRAM_MAX_BOUNDS bounds. Copied.
 * The label name "le" is reserved. CM_EINVAL for bad bounds; CM_EEXIST when
 * the same name is registered with other bounds. */
#define CM_HISTOGRAM_MAX_BOUNDS 1000
CM_EXTERN int cm_histogram_new(cm_registry *reg, const char *name, const char *help,
                               const char *const *label_names, size_t nlabels,
                               const double *bounds, size_t nbounds, cm_family **out);

/* Finds or creates the series of family f with the given label values.
 *   values   nvalues UTF-8 strings, one per label name, in the family's label
 *            order; nvalues must equal the family's label count. Empty strings
 *            are allowed. May be NULL when nvalues is 0. Copied.
 *   out      receives the series handle, owned by the registry. The same
 *            values always give the same handle.
 * Looking up an existing series takes no lock. Returns CM_OK; CM_EINVAL (NULL
 * f or out, wrong count, NULL or invalid UTF-8 value); CM_ELIMIT when creating
 * the series would pass the registry's max_series, or one of the values is
 * longer than its max_label_value_bytes (either refusal is counted in
 * PREFIXseries_rejected_total; cm_errmsg() says which); CM_ENOMEM. Thread-safe. */
CM_EXTERN int cm_family_series(cm_family *f, const char *const *values, size_t nvalues,
                               cm_series **out);

/* Adds v to a counter series. v < 0, NaN, +Inf (a counter at +Inf would stay
 * there for good), or a series that is not a counter: ignored, counted in
 * PREFIXinvalid_observations_total and reported through cm_errmsg(). -0.0 and
 * every finite v >= 0 count (a sum past DBL_MAX is +Inf, as double arithmetic
 * says). NULL s is a no-op.
 * Lock-free and allocation-free (after the calling thread's first update of
 * the series' cell block); never blocks. Thread-safe. */
CM_EXTERN void cm_counter_add(cm_series *s, double v);

/* Sets a gauge series to v (any double, NaN and infinities included: a gauge
 * shows what it was last set to, and the next set replaces it). Takes a
 * short process-wide lock (it must cancel other threads' pending deltas); use
 * cm_gauge_add() on hot paths. A non-gauge series: ignored and counted. */
CM_EXTERN void cm_gauge_set(cm_series *s, double v);

/* Adds v (may be negative) to a gauge series. Lock-free like cm_counter_add().
 * A NaN or infinite v (it would stick until the next cm_gauge_set), or a
 * non-gauge series: ignored, counted in PREFIXinvalid_observations_total and
 * reported through cm_errmsg(). */
CM_EXTERN void cm_gauge_add(cm_series *s, double v);

/* Records one observation in a histogram series: the first bucket whose upper
 * bound is >= v, the count and the sum. NaN (it has no bucket), +Inf or -Inf
 * (the sum would stay infinite for good), or a non-histogram series: ignored,
 * counted in PREFIXinvalid_observations_total and reported through
 * cm_errmsg(). Lock-free like cm_counter_add(). */
CM_EXTERN void cm_histogram_observe(cm_series *s, double v);

/* The current value of a counter or gauge, the observation count of a
 * histogram; NaN for NULL. Includes every update that happened before the
 * call on any thread. Takes the process-wide cell lock briefly. Thread-safe. */
CM_EXTERN double cm_series_value(const cm_series *s);

/* The sum of a histogram's observations; NaN for NULL or a non-histogram. */
CM_EXTERN double cm_histogram_sum(const cm_series *s);

/* Exposition formats for cm_registry_render(). */
enum cm_format {
  CM_FORMAT_PROMETHEUS = 0,  /* text format 0.0.4 */
  CM_FORMAT_OPENMETRICS = 1, /* OpenMetrics 1.0.0 text, ends with "# EOF" */
  CM_FORMAT_JSON = 2         /* schema in docs/exposition.md */
};

/* Renders every family of reg (NULL: the default registry), families sorted by
 * name and series by label values. *out receives a NUL-terminated buffer the
 * caller frees with cm_free(); *len (may be NULL) its length without the NUL.
 * Writers are never stopped while rendering; each series is read consistently
 * with respect to updates that happened before the call.
 * Returns CM_OK; CM_EINVAL (unknown format, NULL out); CM_ENOMEM. On error
 * *out is set to NULL. Thread-safe. */
CM_EXTERN int cm_registry_render(cm_registry *reg, int format, char **out, size_t *len);

/* Zeroes every series of reg (NULL: default registry): counters, gauges and
 * histograms restart from 0 and their OpenMetrics _created time becomes now.
 * Families and series handles stay valid. An update racing with the reset
 * lands either before it (and is dropped) or after it. Returns CM_OK. */
CM_EXTERN int cm_registry_reset(cm_registry *reg);

/* Persists reg in the SQLite file at path, so that counters and histograms
 * (and gauges with the registry option persist_gauges=true) survive restarts.
 * Schema and semantics: docs/persistence.md.
 *   reg          must not be NULL: unlike elsewhere, NULL is not the default
 *                registry (it is never freed, so it would miss its last flush).
 *   path         the metrics file, created when missing. Copied. Next to it,
 *                "<path>-lock" records the owner; SQLite adds "<path>-wal"
 *                and "<path>-shm" while the file is open.
 *   interval_ms  a background thread flushes every interval_ms; 0: no thread,
 *                only cm_registry_flush() and the last flush in
 *                cm_registry_free() write.
 * The file's saved values are restored into reg: into the series that exist
 * now (added to what they hold) and into every family and series created
 * later with the same name, type, label names and buckets. A saved family
 * that is never registered stays in the file untouched. A family registered
 * with another layout (say, new buckets) starts at zero while the old data
 * stays in the file: counted in PREFIXpersist_conflicts_total, and the
 * registering call (cm_*_new or this one) returns CM_OK with cm_errmsg()
 * describing the conflict. Restored series keep their OpenMetrics _created
 * time. A failing background flush is counted in
 * PREFIXpersist_flush_failures_total and retried at the next interval.
 * One process owns a file at a time; the owner's death (even SIGKILL) frees
 * it for the next one. Nothing is written to a file that is not ours.
 * Returns CM_OK; CM_EINVAL (NULL reg, NULL or empty path, path is a
 * directory); CM_ESTATE (reg already persists; another process, or another
 * registry of this one, owns the file: cm_errmsg() names its pid; reg is a
 * shared registry, whose directory already keeps its counts);
 * CM_ECORRUPT (the file is not a cachemeter metrics file, or is damaged, or
 * has a newer schema, or a schema other than exactly the one cachemeter
 * writes (a view, a trigger, an extra table or index), or a value or row
 * count past the bounds of docs/persistence.md "Hostile files", or its
 * reading passed the deadline: it is left byte for byte untouched);
 * CM_EUNAVAILABLE (the file or its lock file cannot be created, opened or
 * written: cm_errmsg() says why; or the library was built without SQLite);
 * CM_ETIMEOUT (another connection held the file's lock for 5 s);
 * CM_EBACKEND (a full disk, an I/O error); CM_ENOMEM. SQLite failures map
 * as for a sqlite:// cache: one table, docs/persistence.md "Statuses".
 * Thread-safe; updates never wait for a flush. */
CM_EXTERN int cm_registry_persist(cm_registry *reg, const char *path, unsigned interval_ms);

/* Writes every series of a persisted reg that changed since the last flush,
 * in one transaction: after a crash the file holds the last completed flush.
 * Returns CM_OK; CM_EINVAL (NULL reg); CM_ESTATE (reg does not persist);
 * when the write fails (the file keeps the previous flush and the next flush
 * retries): CM_EBACKEND (a full disk, an I/O error), CM_EUNAVAILABLE (the
 * file can no longer be written; also: built without SQLite), CM_ETIMEOUT
 * (its lock held for 5 s), CM_ECORRUPT (the file was damaged meanwhile),
 * CM_ENOMEM (docs/persistence.md "Statuses"). Thread-safe; serialised with
 * the background flusher. */
CM_EXTERN int cm_registry_flush(cm_registry *reg);

/* Reads a metrics file written by cm_registry_persist() into reg without
 * owning it: opens it read-only (it may be owned and written by a running
 * process meanwhile), registers every family it holds and sets each series
 * to its saved value and _created time. For inspection: `cachemeter dump
 * --db`. An older layout of a name registered with a newer one is skipped and
 * counted in PREFIXpersist_conflicts_total.
 * Returns CM_OK; CM_EINVAL (NULL reg or path, missing file); CM_ECORRUPT
 * (not a metrics file, damaged, or hostile: the same checks and bounds as
 * cm_registry_persist(); nothing is registered then); CM_EEXIST (reg already has one of the
 * file's names with another type, labels or buckets); CM_ELIMIT (more series
 * than reg's max_series); CM_EUNAVAILABLE (the file cannot be opened or
 * read: a missing directory, permissions; or built without SQLite);
 * CM_ETIMEOUT; CM_EBACKEND; CM_ENOMEM (docs/persistence.md "Statuses").
 * Thread-safe. */
CM_EXTERN int cm_registry_load(cm_registry *reg, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* CACHEMETER_METRICS_H */
