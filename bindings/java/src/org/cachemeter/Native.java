// Loads the JNI library once, before the first native call (CMJNI's static
// initialiser calls load()).
package org.cachemeter;

import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.LongFunction;

final class Native {
  private static boolean loaded;
  /** Frees the registries, caches and servers that became unreachable unclosed
   * (one daemon thread). */
  static final Cleaner CLEANER = Cleaner.create();
  private static final AtomicLong OPEN = new AtomicLong();

  static void opened() { OPEN.incrementAndGet(); }

  static void freed() { OPEN.decrementAndGet(); }

  static long open() { return OPEN.get(); }

  /** f(ptr), keeping owner (the object ptr belongs to) reachable until f returns:
   * otherwise the JIT may treat the owner as dead during the native call and let the
   * Cleaner free the handle under it. */
  static <T> T call(Object owner, long ptr, LongFunction<T> f) {
    try {
      return f.apply(ptr);
    } finally {
      Reference.reachabilityFence(owner);
    }
  }

  static void run(Object owner, long ptr, LongConsumer f) {
    try {
      f.accept(ptr);
    } finally {
      Reference.reachabilityFence(owner);
    }
  }

  private Native() {}

  /** The system property {@code cachemeter.jni} names the JNI library file (the build
   * tree's, for tests); without it, {@code libcachemeter_java.so} is searched on
   * {@code java.library.path}. */
  static synchronized void load() {
    if (loaded) return;
    String path = System.getProperty("cachemeter.jni");
    if (path != null && !path.isEmpty()) {
      System.load(path);
    } else {
      System.loadLibrary("cachemeter_java");
    }
    loaded = true;
  }
}
