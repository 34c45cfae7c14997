// An exporter (cm_exporter): pushes what changed in a registry to StatsD or
// DogStatsD every interval (docs/exporters.md).
package org.cachemeter;

import java.lang.ref.Cleaner;

public final class Exporter implements AutoCloseable {
  private final Handle handle;
  private final Registry registry;  // reachable while this exporter is: freed after it
  private final Cleaner.Cleanable cleanable;

  Exporter(Registry registry, String uri) {
    this.registry = registry;
    this.handle = registry.owner.open(() -> CM.cm_exporter_start(registry.ptr(), uri), CM::exporter_stop);
    this.cleanable = Native.CLEANER.register(this, handle);
  }

  /** Pushes now; throws the CachemeterException of a failed push (what was not
   * sent stays pending for the next flush). */
  public void flush() { Native.run(this, handle.ptr("exporter"), p -> CM.cm_exporter_flush(p)); }

  /** Stops it after a final flush; a second call does nothing. */
  public void stop() { cleanable.clean(); }

  @Override
  public void close() { stop(); }
}
