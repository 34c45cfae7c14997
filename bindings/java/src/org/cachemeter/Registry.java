// SPDX-License-Identifier: Apache-2.0
// A metrics registry (cm_registry): families of counters, gauges and
// histograms, rendered as Prometheus text, OpenMetrics or JSON.
package org.cachemeter;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.LongConsumer;
import java.util.function.LongSupplier;

public final class Registry implements AutoCloseable {
  private static Registry defaultRegistry;

  /** The native registry and the handles that depend on it: what close() and the
   * Cleaner act on (it must not reference the Registry object). */
  static final class Owner implements Runnable {
    private volatile long ptr;
    private final boolean owned;
    private boolean closing;  // guarded by this: no handle attaches any more
    // Caches and servers recording into this registry: freed before it, since
    // the registry must outlive them (cache.h, server.h).
    private final Set<Handle> users = new LinkedHashSet<>();

    Owner(long ptr, boolean owned) {
      this.ptr = ptr;
      this.owned = owned;
      if (owned) Native.opened();
    }

    long ptr() {
      long p = ptr;
      if (p == 0) throw new IllegalStateException("cachemeter: registry is closed");
      return p;
    }

    /** Opens a cache or server on this registry (open returns its pointer) and
     * attaches its handle, under this lock: a close that has begun refuses it,
     * and one that begins later frees it first. */
    synchronized Handle open(LongSupplier open, LongConsumer free) {
      if (closing) throw new IllegalStateException("cachemeter: registry is closed");
      ptr();
      Handle h = new Handle(open.getAsLong(), this, free);
      users.add(h);
      return h;
    }

    synchronized void detach(Handle h) { users.remove(h); }

    /** Frees the handles still attached, then the registry; once. */
    @Override
    public void run() {
      List<Handle> open;
      synchronized (this) {
        if (ptr == 0 || !owned || closing) return;
        closing = true;
        open = new ArrayList<>(users);
      }
      for (Handle h : open) h.run();
      long p;
      synchronized (this) {
        p = ptr;
        ptr = 0;
        users.clear();
      }
      CM.registry_free(p);
      Native.freed();
    }
  }

  final Owner owner;
  private final Cleaner.Cleanable cleanable;  // null: the default registry, never freed

  /** A registry with the default options. */
  public Registry() { this(null); }

  /** options: "key=value&..." as cm_registry_new documents (prefix, const_labels,
   * max_series, persist_gauges); null or "" for the defaults. */
  public Registry(String options) {
    this.owner = new Owner(CM.cm_registry_new(options), true);
    this.cleanable = Native.CLEANER.register(this, owner);
  }

  private Registry(long ptr) {
    this.owner = new Owner(ptr, false);
    this.cleanable = null;
  }

  /** The process-wide default registry (never freed; close() does nothing). */
  public static synchronized Registry defaultRegistry() {
    if (defaultRegistry == null) defaultRegistry = new Registry(CM.cm_registry_default());
    return defaultRegistry;
  }

  /**
   * How many registries, caches and servers this process opened through the
   * binding and has not freed yet: explicitly closed ones are freed at once, and
   * the Cleaner frees the ones that became unreachable unclosed. For leak checks.
   */
  public static long openHandles() { return Native.open(); }

  long ptr() { return owner.ptr(); }

  public Family counter(String name, String help, String... labelNames) {
    return Native.call(this, ptr(), p -> new Family(this, CM.cm_counter_new(p, name, help, labelNames),
                                                    Family.Kind.COUNTER));
  }

  public Family gauge(String name, String help, String... labelNames) {
    return Native.call(this, ptr(), p -> new Family(this, CM.cm_gauge_new(p, name, help, labelNames),
                                                    Family.Kind.GAUGE));
  }

  /** buckets: finite, strictly increasing upper bounds; null for the default latency buckets. */
  public Family histogram(String name, String help, double[] buckets, String... labelNames) {
    return Native.call(this, ptr(), p -> new Family(this, CM.cm_histogram_new(p, name, help, labelNames,
                                                                              buckets), Family.Kind.HISTOGRAM));
  }

  public String render(Format format) {
    return Native.call(this, ptr(), p -> Utf8.decode(CM.cm_registry_render(p, format.code)));
  }

  public String render() { return render(Format.PROMETHEUS); }

  /** Zeroes every series; handles stay valid. */
  public void reset() { Native.run(this, ptr(), p -> CM.cm_registry_reset(p)); }

  /** Persists the registry in a SQLite file (cm_registry_persist); intervalMs 0: no flusher thread. */
  public void persist(String path, long intervalMs) {
    Native.run(this, ptr(), p -> CM.cm_registry_persist(p, path, intervalMs));
  }

  public void flush() { Native.run(this, ptr(), p -> CM.cm_registry_flush(p)); }

  /** Starts an exporter of this registry (cm_exporter_start): "statsd://host:port?...",
   * "statsd+unix:///path?..." (docs/exporters.md). Close it to stop it with a final
   * flush; closing the registry stops it too. */
  public Exporter export(String uri) { return new Exporter(this, uri); }

  /** Starts a callback exporter (cm_exporter_start_callback): fn gets the samples of each
   * flush. options: "interval_ms=1000&deltas=1&all=0&name=callback", or null. */
  public Exporter export(Exporter.Callback fn, String options) { return new Exporter(this, fn, options); }

  /** Closes the caches and servers still open on this registry, then frees it.
   * Its families and series are unusable afterwards. A second call does nothing.
   * Must not race other calls on the registry or its families and series.
   * A registry nobody closes is freed the same way once it, and every cache,
   * server, family and series using it, is unreachable. */
  @Override
  public void close() {
    if (cleanable != null) cleanable.clean();
  }
}
