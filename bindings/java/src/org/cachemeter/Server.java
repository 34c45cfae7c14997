// The embedded HTTP endpoint (cm_server) serving a registry: /metrics,
// /metrics.json, /health.
package org.cachemeter;

public final class Server implements AutoCloseable {
  private volatile long ptr;
  private final Registry registry;
  private final int port;

  private Server(long ptr, Registry registry) {
    this.ptr = ptr;
    this.registry = registry;
    this.port = CM.cm_server_port(ptr);
    registry.attach(this);
  }

  /** listen: "host:port", "[v6]:port" or ":port" (port 0 picks a free one);
   * options: "token=...&threads=..." as cm_server_start documents, or null.
   * registry null means the default registry. */
  public static Server start(Registry registry, String listen, String options) {
    Registry reg = registry != null ? registry : Registry.defaultRegistry();
    synchronized (reg) {
      return new Server(CM.cm_server_start(reg.ptr(), listen, options), reg);
    }
  }

  public static Server start(Registry registry, String listen) { return start(registry, listen, null); }

  /** The port it listens on (the chosen one for port 0). */
  public int port() { return port; }

  /** Stops serving; a second call does nothing. */
  public void stop() {
    long p;
    synchronized (this) {
      p = ptr;
      ptr = 0;
    }
    if (p == 0) return;
    CM.server_stop(p);
    registry.detach(this);
  }

  @Override
  public void close() { stop(); }
}
