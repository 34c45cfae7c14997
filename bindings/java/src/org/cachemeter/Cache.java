// A cache handle (cm_cache) over a backend URI, recording its metrics in a
// registry. Keys and values are byte arrays; get returns null on a miss.
package org.cachemeter;

public final class Cache implements AutoCloseable {
  private volatile long ptr;
  private final Registry registry;

  private Cache(long ptr, Registry registry) {
    this.ptr = ptr;
    this.registry = registry;
    registry.attach(this);
  }

  /** Opens uri (memory://, sqlite://, redis://..., with options in the query) as the
   * cache named name; registry null means the default registry. */
  public static Cache open(String uri, String name, Registry registry) {
    Registry reg = registry != null ? registry : Registry.defaultRegistry();
    synchronized (reg) {
      return new Cache(CM.cm_cache_open(reg.ptr(), name, uri), reg);
    }
  }

  /** A memory L1 (l1Uri, memory://) in front of a shared L2 (redis or sqlite). */
  public static Cache tiered(String l1Uri, String l2Uri, String name, Registry registry) {
    Registry reg = registry != null ? registry : Registry.defaultRegistry();
    synchronized (reg) {
      return new Cache(CM.cm_cache_open_tiered(reg.ptr(), name, l1Uri, l2Uri), reg);
    }
  }

  private long ptr() {
    long p = ptr;
    if (p == 0) throw new IllegalStateException("cachemeter: cache is closed");
    return p;
  }

  /** The value, or null when absent or expired. */
  public byte[] get(byte[] key) { return CM.cm_cache_get(ptr(), key); }

  /** Stores value with the cache's default time to live. */
  public void set(byte[] key, byte[] value) { set(key, value, 0); }

  /** ttlMs: 0 = the cache's default, < 0 = never expires, > 0 = expires after that. */
  public void set(byte[] key, byte[] value, long ttlMs) { CM.cm_cache_set(ptr(), key, value, ttlMs); }

  /** true when key was there. */
  public boolean delete(byte[] key) { return CM.cm_cache_delete(ptr(), key) == Status.OK; }

  public void clear() { CM.cm_cache_clear(ptr()); }

  /** Computes a missing value for {@link #getOrLoad}. */
  @FunctionalInterface
  public interface Loader {
    /** The value of key, or null when there is none (nothing is cached). */
    byte[] load(byte[] key);
  }

  /**
   * The cached value of key, or loader's value (cached with ttlMs: 0 the cache's default,
   * negative never expires), or null when the loader returned null. Single flight: concurrent
   * callers of this and other processes (redis) wait for one load. An exception the loader
   * throws reaches this caller unchanged; other callers waiting on that load get a
   * {@link CachemeterException.BackendError}.
   */
  public byte[] getOrLoad(byte[] key, Loader loader, long ttlMs) { return CM.get_or_load(ptr(), key, loader, ttlMs); }

  /** {@link #getOrLoad(byte[], Loader, long)} with the cache's default TTL. */
  public byte[] getOrLoad(byte[] key, Loader loader) { return getOrLoad(key, loader, 0); }

  /** Statistics as JSON (schema in docs/metrics.md). */
  public String statsJson() { return Utf8.decode(CM.cm_cache_stats_json(ptr())); }

  public void resetStats() { CM.cm_cache_reset_stats(ptr()); }

  /** Closes the handle; a second call does nothing. Must not race other calls on it. */
  @Override
  public void close() {
    long p;
    synchronized (this) {
      p = ptr;
      ptr = 0;
    }
    if (p == 0) return;
    CM.cache_close(p);
    registry.detach(this);
  }
}
