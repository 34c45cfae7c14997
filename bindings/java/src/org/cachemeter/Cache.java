// SPDX-License-Identifier: Apache-2.0
// A cache handle (cm_cache) over a backend URI, recording its metrics in a
// registry. Keys and values are byte arrays; get returns null on a miss.
package org.cachemeter;

import java.lang.ref.Cleaner;
import java.util.function.LongUnaryOperator;

public final class Cache implements AutoCloseable {
  private final Handle handle;
  private final Registry registry;  // reachable while this cache is: freed after it
  private final Cleaner.Cleanable cleanable;

  /** open: the native open call on the registry's pointer; registry null: the default. */
  private Cache(Registry registry, LongUnaryOperator open) {
    Registry reg = registry != null ? registry : Registry.defaultRegistry();
    this.registry = reg;
    this.handle = reg.owner.open(() -> open.applyAsLong(reg.ptr()), CM::cache_close);
    this.cleanable = Native.CLEANER.register(this, handle);
  }

  /** Opens uri (memory://, sqlite://, redis://..., with options in the query) as the
   * cache named name; registry null means the default registry. */
  public static Cache open(String uri, String name, Registry registry) {
    return new Cache(registry, reg -> CM.cm_cache_open(reg, name, uri));
  }

  /** A memory L1 (l1Uri, memory://) in front of a shared L2 (redis or sqlite). */
  public static Cache tiered(String l1Uri, String l2Uri, String name, Registry registry) {
    return new Cache(registry, reg -> CM.cm_cache_open_tiered(reg, name, l1Uri, l2Uri));
  }

  private long ptr() { return handle.ptr("cache"); }

  /** The value, or null when absent or expired. */
  public byte[] get(byte[] key) { return Native.call(this, ptr(), p -> CM.cm_cache_get(p, key)); }

  /** Stores value with the cache's default time to live. */
  public void set(byte[] key, byte[] value) { set(key, value, 0); }

  /** ttlMs: 0 = the cache's default, < 0 = never expires, > 0 = expires after that. */
  public void set(byte[] key, byte[] value, long ttlMs) {
    Native.run(this, ptr(), p -> CM.cm_cache_set(p, key, value, ttlMs));
  }

  /** true when key was there. */
  public boolean delete(byte[] key) {
    return Native.call(this, ptr(), p -> CM.cm_cache_delete(p, key) == Status.OK);
  }

  public void clear() { Native.run(this, ptr(), p -> CM.cm_cache_clear(p)); }

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
  public byte[] getOrLoad(byte[] key, Loader loader, long ttlMs) {
    return Native.call(this, ptr(), p -> CM.get_or_load(p, key, loader, ttlMs));
  }

  /** {@link #getOrLoad(byte[], Loader, long)} with the cache's default TTL. */
  public byte[] getOrLoad(byte[] key, Loader loader) { return getOrLoad(key, loader, 0); }

  /** Statistics as JSON (schema in docs/metrics.md). */
  public String statsJson() {
    return Native.call(this, ptr(), p -> Utf8.decode(CM.cm_cache_stats_json(p)));
  }

  public void resetStats() { Native.run(this, ptr(), p -> CM.cm_cache_reset_stats(p)); }

  /** Closes the handle; a second call does nothing. Must not race other calls on it.
   * A cache nobody closes is closed by the Cleaner once it is unreachable. */
  @Override
  public void close() { cleanable.clean(); }
}
