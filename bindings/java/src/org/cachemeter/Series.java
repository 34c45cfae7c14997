// SPDX-License-Identifier: Apache-2.0
// One labelled series (cm_series), the hot-path handle. Owned by its registry,
// which it keeps reachable (so the Cleaner never frees the registry under it);
// safe to update from any number of threads.
package org.cachemeter;

import java.lang.ref.Reference;

public final class Series {
  private final Registry registry;
  private final long ptr;
  private final Family.Kind kind;

  Series(Registry registry, long ptr, Family.Kind kind) {
    this.registry = registry;
    this.ptr = ptr;
    this.kind = kind;
  }

  private long live() {
    registry.ptr();  // throws once the registry is closed
    return ptr;
  }

  /** Counter or gauge: adds 1. */
  public void inc() { inc(1.0); }

  /** Counter: adds v >= 0; gauge: adds v. A negative or NaN counter increment is
   * counted by the library and raised as InvalidArgument. */
  public void inc(double v) {
    try {
      long s = live();
      if (kind == Family.Kind.GAUGE) {
        CM.cm_gauge_add(s, v);
        return;
      }
      CM.cm_counter_add(s, v);
      if (!(v >= 0) || kind != Family.Kind.COUNTER) throw invalid("inc");
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** Same as inc(v). */
  public void add(double v) { inc(v); }

  /** Gauge: subtracts v. */
  public void dec(double v) {
    if (kind != Family.Kind.GAUGE) throw invalid("dec");
    try {
      CM.cm_gauge_add(live(), -v);
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  public void dec() { dec(1.0); }

  /** Gauge: sets the value. */
  public void set(double v) {
    try {
      CM.cm_gauge_set(live(), v);
    } finally {
      Reference.reachabilityFence(this);
    }
    if (kind != Family.Kind.GAUGE) throw invalid("set");
  }

  /** Histogram: records one observation (NaN is counted and raised). */
  public void observe(double v) {
    try {
      CM.cm_histogram_observe(live(), v);
    } finally {
      Reference.reachabilityFence(this);
    }
    if (kind != Family.Kind.HISTOGRAM || Double.isNaN(v)) throw invalid("observe");
  }

  /** A counter's or gauge's value; a histogram's observation count. */
  public double value() {
    try {
      return CM.cm_series_value(live());
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  /** A histogram's sum of observations. */
  public double sum() {
    try {
      return CM.cm_histogram_sum(live());
    } finally {
      Reference.reachabilityFence(this);
    }
  }

  private CachemeterException invalid(String op) {
    String m = CM.cm_errmsg();
    if (m == null || m.isEmpty()) m = op + " is not valid on a " + kind.name().toLowerCase() + " series";
    return CachemeterException.create(Status.EINVAL, m);
  }
}
