// SPDX-License-Identifier: Apache-2.0
// A metric family (cm_family): a name and its label names. Owned by its registry.
package org.cachemeter;

import java.lang.ref.Reference;

public final class Family {
  enum Kind { COUNTER, GAUGE, HISTOGRAM }

  private final Registry registry;
  private final long ptr;
  private final Kind kind;

  Family(Registry registry, long ptr, Kind kind) {
    this.registry = registry;
    this.ptr = ptr;
    this.kind = kind;
  }

  /** The series for these label values, in the family's label order (none for an
   * unlabelled family). The same values give the same series. */
  public Series labels(String... values) {
    try {
      registry.ptr();
      return new Series(registry, CM.cm_family_series(ptr, values), kind);
    } finally {
      Reference.reachabilityFence(this);
    }
  }
}
