// SPDX-License-Identifier: Apache-2.0
// tests/java: the Java binding through its public API only, with a tiny
// assert harness (no JUnit: nothing is downloaded). Run with the names of
// the tests to run (CTest registers one entry per test); exits 1 on failure.
package org.cachemeter.test;

import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.cachemeter.Cache;
import org.cachemeter.CachemeterException;
import org.cachemeter.Family;
import org.cachemeter.Format;
import org.cachemeter.Registry;
import org.cachemeter.Series;
import org.cachemeter.Server;
import org.cachemeter.Status;

public final class BindingTest {
  // ---- the harness
  static void check(boolean ok, String what) {
    if (!ok) throw new AssertionError(what);
  }

  static void checkEq(Object expected, Object actual, String what) {
    if (expected == null ? actual != null : !expected.equals(actual))
      throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
  }

  static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

  static List<String> lines(String text) { return Arrays.asList(text.split("\n")); }

  public static void main(String[] args) throws Exception {
    List<Method> tests = new ArrayList<>();
    for (Method m : BindingTest.class.getDeclaredMethods()) {
      if (m.getName().startsWith("test") && Modifier.isStatic(m.getModifiers())) tests.add(m);
    }
    List<String> wanted = Arrays.asList(args);
    int run = 0;
    int failed = 0;
    for (Method m : tests) {
      if (!wanted.isEmpty() && !wanted.contains(m.getName())) continue;
      run++;
      try {
        m.invoke(null);
        System.out.println("PASS " + m.getName());
      } catch (InvocationTargetException e) {
        failed++;
        System.out.println("FAIL " + m.getName());
        e.getCause().printStackTrace(System.out);
      }
    }
    if (run == 0 || run < new java.util.HashSet<>(wanted).size()) {
      System.out.println("no such test among " + wanted);
      System.exit(2);
    }
    System.out.println(run + " run, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }

  // ---- the tests
  /** Polls (System.gc() between checks, 60 s at most) until only `want` handles are open. */
  static void awaitOpenHandles(long want) throws InterruptedException {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (Registry.openHandles() > want && System.nanoTime() < deadline) {
      System.gc();
      Thread.sleep(5);
    }
    checkEq(want, Registry.openHandles(), "open handles");
  }

  static void openAndDrop(int i) {
    Registry r = new Registry();
    Cache c = Cache.open("memory://", "drop" + i, r);
    c.set(b("k"), b("v"));
    r.counter("dropped", null).labels().inc();
  }

  /** Handles nobody closed are freed by the Cleaner once unreachable, caches before their
   * registry whatever order the collector finds them in; a reachable cache keeps its
   * registry alive. */
  static void testCleanerFreesUnclosedHandles() throws Exception {
    long base = Registry.openHandles();
    for (int i = 0; i < 300; i++) openAndDrop(i);
    Registry shared = new Registry();
    for (int i = 0; i < 50; i++) Cache.open("memory://", "many" + i, shared);
    shared = null;
    awaitOpenHandles(base);

    // Only the cache is referenced: its registry must survive collections.
    Cache kept = Cache.open("memory://", "kept", new Registry());
    for (int i = 0; i < 20; i++) {
      System.gc();
      Thread.sleep(5);
    }
    checkEq(base + 2, Registry.openHandles(), "a reachable cache's registry stays open");
    kept.set(b("k"), b("still works"));
    checkEq("still works", new String(kept.get(b("k")), StandardCharsets.UTF_8), "get");
    kept.close();
    checkEq(base + 1, Registry.openHandles(), "close() frees at once");
    kept = null;
    awaitOpenHandles(base);

    // Closing a registry closes what is open on it; a later open on it throws.
    Registry r = new Registry();
    Cache c = Cache.open("memory://", "c", r);
    r.close();
    checkEq(base, Registry.openHandles(), "registry.close() closed its cache");
    try {
      c.get(b("k"));
      throw new AssertionError("get on a closed cache");
    } catch (IllegalStateException expected) {
      // the cache was closed with its registry
    }
    try {
      Cache.open("memory://", "late", r);
      throw new AssertionError("open on a closed registry");
    } catch (IllegalStateException expected) {
      // refused
    }
  }

  static void testCounterRender() {
    try (Registry reg = new Registry()) {
      Family f = reg.counter("jobs", "Jobs done.", "queue", "result");
      f.labels("io", "ok").inc();
      f.labels("io", "ok").inc(2);
      f.labels("cpu", "fail").add(0.5);
      checkEq(3.0, f.labels("io", "ok").value(), "value");
      List<String> text = lines(reg.render(Format.PROMETHEUS));
      check(text.contains("# HELP jobs_total Jobs done."), "HELP line in " + text);
      check(text.contains("# TYPE jobs_total counter"), "TYPE line in " + text);
      check(text.contains("jobs_total{queue=\"io\",result=\"ok\"} 3"), "io sample in " + text);
      check(text.contains("jobs_total{queue=\"cpu\",result=\"fail\"} 0.5"), "cpu sample in " + text);
      String om = reg.render(Format.OPENMETRICS);
      check(om.endsWith("# EOF\n"), "OpenMetrics ends with # EOF: " + om);
      check(reg.render(Format.JSON).startsWith("{"), "JSON");
      // UTF-8 beyond the BMP goes through intact (not modified UTF-8).
      reg.gauge("temp", null, "city").labels("\u6771\u4eac \uD83C\uDF38").set(21.5);
      check(reg.render().contains("temp{city=\"\u6771\u4eac \uD83C\uDF38\"} 21.5"), "UTF-8 label: " + reg.render());
      Series h = reg.histogram("latency_seconds", "Latency.", new double[] {0.1, 1}).labels();
      h.observe(0.05);
      h.observe(2);
      checkEq(2.0, h.value(), "histogram count");
      checkEq(2.05, h.sum(), "histogram sum");
      check(reg.render().contains("latency_seconds_bucket{le=\"0.1\"} 1"), "bucket line");
    }
  }

  /** Registry.export: a StatsD exporter to a real UDP socket; flush, then a final flush at close. */
  static void testStatsdExport() throws Exception {
    try (Registry reg = new Registry();
         java.net.DatagramSocket rx = new java.net.DatagramSocket(0, java.net.InetAddress.getLoopbackAddress())) {
      rx.setSoTimeout(10000);
      Series jobs = reg.counter("jobs", "Jobs.", "queue").labels("mail");
      jobs.inc(4);
      byte[] buf = new byte[65536];
      try (org.cachemeter.Exporter e = reg.export("statsd://127.0.0.1:" + rx.getLocalPort() + "?interval_ms=0")) {
        e.flush();
        java.net.DatagramPacket p = new java.net.DatagramPacket(buf, buf.length);
        rx.receive(p);
        checkEq("jobs_total:4|c|#queue:mail", new String(buf, 0, p.getLength(), StandardCharsets.UTF_8), "datagram");
        jobs.inc(2);
      }
      java.net.DatagramPacket p = new java.net.DatagramPacket(buf, buf.length);
      rx.receive(p);  // the final flush of close()
      checkEq("jobs_total:2|c|#queue:mail", new String(buf, 0, p.getLength(), StandardCharsets.UTF_8), "final");
      try {
        reg.export("statsd://127.0.0.1:1?colour=red");
        throw new AssertionError("no exception for an unknown option");
      } catch (CachemeterException ex) {
        checkEq(Status.EINVAL, ex.status(), "status");
      }
    }
  }

  /** A callback exporter: deltas summed over flushes (explicit ones and the registry's
   * own thread, attached to the JVM) equal the value; a throwing callback keeps them pending. */
  static void testCallbackExport() throws Exception {
    try (Registry reg = new Registry("const_labels=env:ci")) {
      Series jobs = reg.counter("jobs", "Jobs.", "queue").labels("mail");
      double[] sum = {0};
      boolean[] fail = {false};
      java.util.List<String> threads = java.util.Collections.synchronizedList(new ArrayList<>());
      org.cachemeter.Exporter e = reg.export(samples -> {
        if (fail[0]) throw new IllegalStateException("refused");
        threads.add(Thread.currentThread().getName());
        for (org.cachemeter.Exporter.Sample smp : samples) {
          if (smp.name.equals("jobs_total")) {
            checkEq("ci", smp.labels.get("env"), "const label");
            checkEq("mail", smp.labels.get("queue"), "label");
            synchronized (sum) { sum[0] += smp.value; }
          }
        }
      }, "interval_ms=5");
      for (int i = 0; i < 2000; i++) jobs.inc();
      e.flush();
      fail[0] = true;
      jobs.inc(5);
      try {
        e.flush();
        throw new AssertionError("no exception from a refused flush");
      } catch (CachemeterException ex) {
        checkEq(Status.EBACKEND, ex.status(), "status");
        check(ex.getCause() instanceof IllegalStateException, "cause: " + ex.getCause());
      }
      fail[0] = false;
      // The registry's own thread flushes every 5 ms: wait until it took the rest.
      long deadline = System.nanoTime() + 30_000_000_000L;
      while (true) {
        synchronized (sum) { if (sum[0] == 2005) break; }
        if (System.nanoTime() > deadline) throw new AssertionError("sum " + sum[0]);
        Thread.sleep(5);
      }
      jobs.inc(1);
      e.close();  // the final flush
      synchronized (sum) { checkEq(2006.0, sum[0], "deltas summed"); }
      check(threads.size() >= 2, "calls: " + threads);
    }
  }

  static void testNegativeIncrementThrows() {
    try (Registry reg = new Registry()) {
      Series s = reg.counter("c", null).labels();
      try {
        s.inc(-1);
        throw new AssertionError("no exception");
      } catch (CachemeterException.InvalidArgument e) {
        checkEq(Status.EINVAL, e.status(), "status");
      }
      checkEq(0.0, s.value(), "unchanged");
    }
  }

  static void testMemoryCache() {
    try (Registry reg = new Registry(); Cache c = Cache.open("memory://?max_entries=100", "jc", reg)) {
      check(c.get(b("k")) == null, "miss is null");
      c.set(b("k"), b("v1"));
      checkEq("v1", new String(c.get(b("k")), StandardCharsets.UTF_8), "hit");
      c.set(b("empty"), new byte[0], -1);
      checkEq(0, c.get(b("empty")).length, "empty value is a hit");
      check(c.delete(b("k")), "delete hit");
      check(!c.delete(b("k")), "delete miss");
      check(c.get(b("k")) == null, "deleted");
      c.set(b("a"), b("1"));
      c.clear();
      check(c.get(b("a")) == null, "cleared");
      String stats = c.statsJson();
      check(stats.contains("\"hits\""), "stats: " + stats);
      check(reg.render().contains("cache=\"jc\""), "cache metrics in the registry");
    }
  }

  static void testGetOrLoad() {
    try (Registry reg = new Registry(); Cache c = Cache.open("memory://", "jl", reg)) {
      final int[] calls = {0};
      Cache.Loader loader = key -> {
        calls[0]++;
        return ("loaded:" + new String(key, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
      };
      checkEq("loaded:k", new String(c.getOrLoad(b("k"), loader), StandardCharsets.UTF_8), "loaded");
      checkEq("loaded:k", new String(c.getOrLoad(b("k"), loader), StandardCharsets.UTF_8), "cached");
      checkEq(1, calls[0], "one load");
      checkEq("loaded:k", new String(c.get(b("k")), StandardCharsets.UTF_8), "stored");
      check(c.getOrLoad(b("none"), key -> null) == null, "a null value is a miss");
      check(c.get(b("none")) == null, "nothing cached for a miss");
      try {
        c.getOrLoad(b("bad"), key -> { throw new IllegalStateException("loader broke"); });
        check(false, "the loader's exception must propagate");
      } catch (IllegalStateException e) {
        checkEq("loader broke", e.getMessage(), "the loader's own exception");
      }
      check(c.get(b("bad")) == null, "nothing cached after a failed load");
      check(reg.render().contains("cachemeter_cache_loads_total{cache=\"jl\",backend=\"memory\",result=\"error\"} 2"),
            "failed loads counted: " + reg.render());
    }
  }

  static void testBadOptionThrowsEinval() {
    try (Registry reg = new Registry()) {
      try (Cache c = Cache.open("memory://?no_such_option=1", "bad", reg)) {
        throw new AssertionError("opened " + c);
      } catch (CachemeterException e) {
        checkEq(Status.EINVAL, e.status(), "status");
        checkEq("CM_EINVAL", e.statusName(), "name");
        check(e instanceof CachemeterException.InvalidArgument, "subclass " + e.getClass());
        check(e.getMessage().contains("no_such_option"), "cm_errmsg in message: " + e.getMessage());
      }
      try {
        new Registry("max_series=0");
        throw new AssertionError("no exception");
      } catch (CachemeterException e) {
        checkEq(Status.EINVAL, e.status(), "registry option");
      }
      try {
        reg.counter("1bad", null);
        throw new AssertionError("no exception");
      } catch (CachemeterException e) {
        checkEq(Status.EINVAL, e.status(), "metric name");
      }
      try {
        c(reg).set(new byte[0], b("v"));
        throw new AssertionError("no exception");
      } catch (CachemeterException e) {
        checkEq(Status.EINVAL, e.status(), "empty key");
      }
    }
  }

  private static Cache c(Registry reg) { return Cache.open("memory://", "tmp", reg); }

  /**
   * Every status of the C library (cm_status_name walks CM_STATUS_MAP) has its Status constant
   * and, when negative, its own CachemeterException subclass, both generated from CM_STATUS_MAP:
   * a status added to common.h without reaching Java fails here. The map pins the class names the
   * binding has always had.
   */
  static void testEveryStatusHasItsClass() throws Exception {
    Map<String, String> pinned = new HashMap<>();
    pinned.put("CM_EINVAL", "InvalidArgument");
    pinned.put("CM_ENOMEM", "OutOfMemory");
    pinned.put("CM_EEXIST", "AlreadyExists");
    pinned.put("CM_ELIMIT", "LimitExceeded");
    pinned.put("CM_EBACKEND", "BackendError");
    pinned.put("CM_ETIMEOUT", "Timeout");
    pinned.put("CM_EUNAVAILABLE", "Unavailable");
    pinned.put("CM_ECORRUPT", "Corrupt");
    pinned.put("CM_ESTATE", "StateError");
    checkEq(0, Status.OK, "OK");
    checkEq(1, Status.MISS, "MISS");
    Method create = CachemeterException.class.getDeclaredMethod("create", int.class, String.class);
    create.setAccessible(true);  // the factory cmj_throw calls
    Set<Class<?>> classes = new HashSet<>();
    Set<String> negative = new HashSet<>();
    for (int s = 63; s >= -64; s--) {
      String name = Status.name(s);
      if (name.equals("CM_UNKNOWN")) continue;
      checkEq(s, Status.class.getField(name.substring("CM_".length())).getInt(null), "Status constant of " + name);
      if (s >= 0) continue;
      negative.add(name);
      CachemeterException e = (CachemeterException) create.invoke(null, s, "detail");
      Class<?> cls = e.getClass();
      check(cls != CachemeterException.class, name + " has no CachemeterException subclass");
      check(cls.getEnclosingClass() == CachemeterException.class && Modifier.isPublic(cls.getModifiers())
            && Modifier.isFinal(cls.getModifiers()), name + ": " + cls);
      check(classes.add(cls), "one class per status: " + cls);
      checkEq(s, e.status(), name + " status");
      checkEq(name, e.statusName(), name + " name");
      checkEq("detail", e.detail(), name + " detail");
      if (pinned.containsKey(name)) checkEq(pinned.get(name), cls.getSimpleName(), name + " class");
    }
    check(negative.containsAll(pinned.keySet()), "statuses gone from the C library: " + pinned.keySet());
    checkEq(new HashSet<>(Arrays.asList(CachemeterException.class.getDeclaredClasses())), classes,
            "nested classes of CachemeterException");
    checkEq(CachemeterException.class, create.invoke(null, -1000, "x").getClass(), "an unknown status");
  }

  static void testThreads() throws Exception {
    try (Registry reg = new Registry(); Cache cache = Cache.open("memory://", "mt", reg)) {
      Family f = reg.counter("ops", null, "t");
      Series shared = reg.counter("shared", null).labels();
      Thread[] ts = new Thread[4];
      Throwable[] errors = new Throwable[4];
      for (int i = 0; i < ts.length; i++) {
        final int id = i;
        ts[i] = new Thread(() -> {
          try {
            Series mine = f.labels("t" + id);
            for (int n = 0; n < 10000; n++) {
              shared.inc();
              mine.inc();
              if (n % 100 == 0) {
                byte[] k = b(id + ":" + n);
                cache.set(k, k);
                check(Arrays.equals(k, cache.get(k)), "cache in thread");
              }
            }
          } catch (Throwable t) {
            errors[id] = t;
          }
        });
      }
      for (Thread t : ts) t.start();
      for (Thread t : ts) t.join();
      for (Throwable t : errors) if (t != null) throw new AssertionError("thread failed", t);
      checkEq(40000.0, shared.value(), "shared total");
      for (int i = 0; i < 4; i++) checkEq(10000.0, f.labels("t" + i).value(), "per thread");
      check(lines(reg.render()).contains("shared_total 40000"), "rendered total");
    }
  }

  static void testServerScrape() throws Exception {
    try (Registry reg = new Registry()) {
      reg.counter("scraped", "Scrape test.", "k").labels("v").inc(7);
      Server srv = Server.start(reg, "127.0.0.1:0");
      check(srv.port() > 0, "port " + srv.port());
      URL url = new URL("http://127.0.0.1:" + srv.port() + "/metrics");
      HttpURLConnection conn = (HttpURLConnection) url.openConnection();
      conn.setConnectTimeout(5000);
      conn.setReadTimeout(5000);
      checkEq(200, conn.getResponseCode(), "HTTP status");
      String body;
      try (InputStream in = conn.getInputStream()) {
        body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      check(lines(body).contains("scraped_total{k=\"v\"} 7"), "scraped sample in " + body);
      HttpURLConnection missing =
          (HttpURLConnection) new URL("http://127.0.0.1:" + srv.port() + "/nope").openConnection();
      checkEq(404, missing.getResponseCode(), "unknown path");
      srv.stop();
      srv.stop();  // twice: a no-op
      try {
        Server.start(reg, "not an address");
        throw new AssertionError("no exception");
      } catch (CachemeterException e) {
        checkEq(Status.EINVAL, e.status(), "bad listen address");
      }
    }
  }

  static void testCloseTwiceIsSafe() {
    Registry reg = new Registry();
    Cache cache = Cache.open("memory://", "twice", reg);
    Server srv = Server.start(reg, "127.0.0.1:0");
    Cache left = Cache.open("memory://", "left-open", reg);
    cache.close();
    cache.close();
    srv.close();
    srv.close();
    Series s = reg.counter("x", null).labels();
    reg.close();  // closes left-open first
    reg.close();
    left.close();
    try {
      cache.get(b("k"));
      throw new AssertionError("no exception");
    } catch (IllegalStateException expected) {
      // closed handles refuse calls instead of touching freed memory
    }
    try {
      s.inc();
      throw new AssertionError("no exception");
    } catch (IllegalStateException expected) {
      // so do series of a closed registry
    }
    Registry.defaultRegistry().close();  // never freed: a no-op
    Registry.defaultRegistry().counter("java_default_ok", null).labels().inc();
  }
}
