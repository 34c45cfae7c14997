// SPDX-License-Identifier: Apache-2.0
// The embedded HTTP endpoint (cm_server) serving a registry: /metrics,
// /metrics.json, /health.
package org.cachemeter;

import java.lang.ref.Cleaner;

public final class Server implements AutoCloseable {
  private final Handle handle;
  private final Registry registry;  // reachable while this server is: freed after it
  private final Cleaner.Cleanable cleanable;
  private final int port;

  private Server(Registry registry, String listen, String options) {
    Registry reg = registry != null ? registry : Registry.defaultRegistry();
    this.registry = reg;
    this.handle = reg.owner.open(() -> CM.cm_server_start(reg.ptr(), listen, options), CM::server_stop);
    this.cleanable = Native.CLEANER.register(this, handle);
    this.port = CM.cm_server_port(handle.ptr("server"));
  }

  /** listen: "host:port", "[v6]:port" or ":port" (port 0 picks a free one);
   * options: "token=...&threads=..." as cm_server_start documents, or null.
   * registry null means the default registry. */
  public static Server start(Registry registry, String listen, String options) {
    return new Server(registry, listen, options);
  }

  public static Server start(Registry registry, String listen) { return start(registry, listen, null); }

  /** The port it listens on (the chosen one for port 0). */
  public int port() { return port; }

  /** Stops serving; a second call does nothing. A server nobody stops is stopped
   * by the Cleaner once it is unreachable (keep a reference while it should serve). */
  public void stop() { cleanable.clean(); }

  @Override
  public void close() { stop(); }
}
