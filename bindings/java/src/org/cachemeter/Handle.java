// SPDX-License-Identifier: Apache-2.0
// The native handle of a Cache or a Server: freed exactly once, by close() or,
// for an object nobody closed, by the Cleaner once the object is unreachable;
// always before its registry is freed (Registry.Owner closes the handles still
// attached to it first, so the order in which the Cleaner finds a registry and
// its caches unreachable does not matter).
package org.cachemeter;

import java.util.function.LongConsumer;

final class Handle implements Runnable {
  private volatile long ptr;
  private final Registry.Owner registry;
  private final LongConsumer free;

  /** Takes ownership of ptr; made by registry.open(), which attaches it. */
  Handle(long ptr, Registry.Owner registry, LongConsumer free) {
    this.ptr = ptr;
    this.registry = registry;
    this.free = free;
    Native.opened();
  }

  long ptr(String what) {
    long p = ptr;
    if (p == 0) throw new IllegalStateException("cachemeter: " + what + " is closed");
    return p;
  }

  /** Frees the handle (once; later calls do nothing). Must not race a call using it,
   * which close() documents and the Cleaner guarantees (the owner is unreachable). */
  @Override
  public void run() {
    long p;
    synchronized (this) {
      p = ptr;
      ptr = 0;
    }
    if (p == 0) return;
    free.accept(p);
    Native.freed();
    registry.detach(this);
  }
}
