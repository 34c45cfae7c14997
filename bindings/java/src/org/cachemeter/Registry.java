// A metrics registry (cm_registry): families of counters, gauges and
// histograms, rendered as Prometheus text, OpenMetrics or JSON.
package org.cachemeter;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

public final class Registry implements AutoCloseable {
  private static Registry defaultRegistry;

  private volatile long ptr;
  private final boolean owned;
  // Caches and servers recording into this registry: close() closes them
  // first, since the registry must outlive them (cache.h, server.h).
  private final Set<AutoCloseable> users = new LinkedHashSet<>();

  /** A registry with the default options. */
  public Registry() { this(null); }

  /** options: "key=value&..." as cm_registry_new documents (prefix, const_labels,
   * max_series, persist_gauges); null or "" for the defaults. */
  public Registry(String options) {
    this.ptr = CM.cm_registry_new(options);
    this.owned = true;
  }

  private Registry(long ptr) {
    this.ptr = ptr;
    this.owned = false;
  }

  /** The process-wide default registry (never freed; close() does nothing). */
  public static synchronized Registry defaultRegistry() {
    if (defaultRegistry == null) defaultRegistry = new Registry(CM.cm_registry_default());
    return defaultRegistry;
  }

  long ptr() {
    long p = ptr;
    if (p == 0) throw new IllegalStateException("cachemeter: registry is closed");
    return p;
  }

  public Family counter(String name, String help, String... labelNames) {
    return new Family(this, CM.cm_counter_new(ptr(), name, help, labelNames), Family.Kind.COUNTER);
  }

  public Family gauge(String name, String help, String... labelNames) {
    return new Family(this, CM.cm_gauge_new(ptr(), name, help, labelNames), Family.Kind.GAUGE);
  }

  /** buckets: finite, strictly increasing upper bounds; null for the default latency buckets. */
  public Family histogram(String name, String help, double[] buckets, String... labelNames) {
    return new Family(this, CM.cm_histogram_new(ptr(), name, help, labelNames, buckets),
                      Family.Kind.HISTOGRAM);
  }

  public String render(Format format) { return Utf8.decode(CM.cm_registry_render(ptr(), format.code)); }

  public String render() { return render(Format.PROMETHEUS); }

  /** Zeroes every series; handles stay valid. */
  public void reset() { CM.cm_registry_reset(ptr()); }

  /** Persists the registry in a SQLite file (cm_registry_persist); intervalMs 0: no flusher thread. */
  public void persist(String path, long intervalMs) { CM.cm_registry_persist(ptr(), path, intervalMs); }

  public void flush() { CM.cm_registry_flush(ptr()); }

  synchronized void attach(AutoCloseable user) {
    ptr();
    users.add(user);
  }

  synchronized void detach(AutoCloseable user) { users.remove(user); }

  /** Closes the caches and servers still open on this registry, then frees it.
   * Its families and series are unusable afterwards. A second call does nothing.
   * Must not race other calls on the registry or its families and series. */
  @Override
  public void close() {
    List<AutoCloseable> open;
    synchronized (this) {
      if (ptr == 0 || !owned) return;
      open = new ArrayList<>(users);
    }
    for (AutoCloseable u : open) {
      try {
        u.close();
      } catch (Exception e) {
        // close() of a cache or server throws nothing; keep freeing.
      }
    }
    long p;
    synchronized (this) {
      p = ptr;
      ptr = 0;
      users.clear();
    }
    if (p != 0) CM.registry_free(p);
  }
}
