// SPDX-License-Identifier: Apache-2.0
// An exporter (cm_exporter): pushes what changed in a registry to StatsD,
// DogStatsD, a Pushgateway or a Java callback every interval (docs/exporters.md).
package org.cachemeter;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public final class Exporter implements AutoCloseable {
  /** What a callback exporter calls once per flush with the samples of that flush, on
   * the registry's flush thread (or the thread calling flush/close). Throwing keeps the
   * samples pending: the next call hands the same increases again, plus newer ones. */
  @FunctionalInterface
  public interface Callback {
    void accept(List<Sample> samples) throws Exception;
  }

  public enum Type { COUNTER, GAUGE, HISTOGRAM }

  /** One series in a flush (cm_sample). */
  public static final class Sample {
    /** The family's exposed name (a counter's ends in _total). */
    public final String name;
    public final Type type;
    /** The registry's const labels, then the series' labels, in order. */
    public final Map<String, String> labels;
    /** Counter: its increase since the last accepted flush (deltas=1, the default) or its
     * value; gauge: its value; histogram: the sum of observations (or its increase). */
    public final double value;
    /** Histogram: observations (or their increase); else 0. */
    public final long count;
    /** Histogram: the finite upper bounds; null otherwise. */
    public final double[] bounds;
    /** Histogram: bounds.length + 1 per-bucket counts (not cumulative), +Inf last; null otherwise. */
    public final long[] bucketCounts;
    /** The series left the registry (a closed cache's): its final value. */
    public final boolean removed;

    Sample(String name, Type type, Map<String, String> labels, double value, long count, double[] bounds,
           long[] bucketCounts, boolean removed) {
      this.name = name;
      this.type = type;
      this.labels = labels;
      this.value = value;
      this.count = count;
      this.bounds = bounds;
      this.bucketCounts = bucketCounts;
      this.removed = removed;
    }

    @Override
    public String toString() { return name + labels + " " + value; }
  }

  /** Collects one flush's samples for the callback (the native side calls add, then deliver). */
  static final class Batch {
    private final Callback fn;
    private List<Sample> samples = new ArrayList<>();
    volatile Throwable lastError;  // what the callback threw last, for flush() to rethrow

    Batch(Callback fn) { this.fn = fn; }

    void add(byte[] name, int type, byte[][] names, byte[][] values, double value, long count, double[] bounds,
             long[] buckets, boolean removed) {
      Map<String, String> labels = new LinkedHashMap<>();
      for (int i = 0; i < names.length; i++) labels.put(Utf8.decode(names[i]), Utf8.decode(values[i]));
      samples.add(new Sample(Utf8.decode(name), Type.values()[type], Collections.unmodifiableMap(labels), value,
                             count, bounds, buckets, removed));
    }

    boolean deliver() {
      List<Sample> batch = Collections.unmodifiableList(samples);
      samples = new ArrayList<>();
      try {
        fn.accept(batch);
        lastError = null;
        return true;
      } catch (Throwable t) {
        lastError = t;
        return false;
      }
    }
  }

  private final Handle handle;
  private final Registry registry;  // reachable while this exporter is: freed after it
  private final Cleaner.Cleanable cleanable;
  private final Batch batch;         // null for a URI exporter

  Exporter(Registry registry, String uri) {
    this.registry = registry;
    this.batch = null;
    this.handle = registry.owner.open(() -> CM.cm_exporter_start(registry.ptr(), uri), CM::exporter_stop);
    this.cleanable = Native.CLEANER.register(this, handle);
  }

  Exporter(Registry registry, Callback fn, String options) {
    if (fn == null) throw new NullPointerException("fn");
    this.registry = registry;
    this.batch = new Batch(fn);
    long ctx = CM.export_ctx_new(batch);
    Handle h;
    try {
      h = registry.owner.open(() -> CM.exporter_start_callback(registry.ptr(), ctx, options), p -> {
        CM.exporter_stop(p);  // the final flush may still call the callback
        CM.export_ctx_free(ctx);
      });
    } catch (RuntimeException e) {
      CM.export_ctx_free(ctx);
      throw e;
    }
    this.handle = h;
    this.cleanable = Native.CLEANER.register(this, handle);
  }

  /** Pushes now; throws the CachemeterException of a failed push (what was not sent stays
   * pending for the next flush). For a callback exporter whose callback threw, that
   * Throwable is attached as the exception's cause. */
  public void flush() {
    try {
      Native.run(this, handle.ptr("exporter"), p -> CM.cm_exporter_flush(p));
    } catch (CachemeterException e) {
      Throwable t = batch != null ? batch.lastError : null;
      if (t != null && e.getCause() == null) e.initCause(t);
      throw e;
    }
  }

  /** Stops it after a final flush; a second call does nothing. */
  public void stop() { cleanable.clean(); }

  @Override
  public void close() { stop(); }
}
