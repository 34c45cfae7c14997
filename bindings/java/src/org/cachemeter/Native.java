// SPDX-License-Identifier: Apache-2.0
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

  /** Loads the JNI library: the file the system property {@code cachemeter.jni} names
   * (the build tree's, for tests); else the copies this jar carries for the platform
   * ({@code native/linux-x86_64/}: the JNI library and libcachemeter.so.N), extracted to
   * a private temporary directory (deleted at exit); else {@code libcachemeter_java.so}
   * on {@code java.library.path}. */
  static synchronized void load() {
    if (loaded) return;
    String path = System.getProperty("cachemeter.jni");
    try {
      if (path != null && !path.isEmpty()) {
        System.load(path);
      } else if (!loadFromJar()) {
        System.loadLibrary("cachemeter_java");
      }
    } catch (UnsatisfiedLinkError e) {
      UnsatisfiedLinkError hint = new UnsatisfiedLinkError(
          "cachemeter: cannot load its native library (" + e.getMessage() + "). This jar carries it for "
          + platform() + " only" + (hasNative() ? "" : " and has none for this platform")
          + "; otherwise run with -Dcachemeter.jni=/path/to/libcachemeter_java.so, or put the directory "
          + "holding libcachemeter_java.so and libcachemeter.so.0 on -Djava.library.path "
          + "(bindings/README.md, \"Java\").");
      hint.initCause(e);
      throw hint;
    }
    loaded = true;
  }

  /** os.name and os.arch as the jar's native directory names them. */
  static String platform() {
    String os = System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).replace(" ", "");
    String arch = System.getProperty("os.arch", "").toLowerCase(java.util.Locale.ROOT);
    if (arch.equals("amd64") || arch.equals("x86-64")) arch = "x86_64";
    return os + "-" + arch;
  }

  private static boolean hasNative() {
    return Native.class.getResource("/native/" + platform() + "/libs.txt") != null;
  }

  /** The jar's native libraries for this platform, in load order (libs.txt). */
  private static java.util.List<String> nativeLibs() throws java.io.IOException {
    try (java.io.InputStream in = Native.class.getResourceAsStream("/native/" + platform() + "/libs.txt")) {
      java.util.List<String> out = new java.util.ArrayList<>();
      for (String line : new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).split("\n")) {
        if (!line.isBlank()) out.add(line.strip());
      }
      return out;
    }
  }

  /** Extracts and loads the jar's native libraries: false when it has none for this
   * platform. libcachemeter.so.N first (libs.txt's order): the JNI library's
   * dependency on it is then met by the copy already loaded. */
  private static boolean loadFromJar() {
    if (!hasNative()) return false;
    try {
      java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("cachemeter-native-",
          java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
              java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
      dir.toFile().deleteOnExit();
      java.util.List<java.nio.file.Path> files = new java.util.ArrayList<>();
      for (String name : nativeLibs()) {
        java.nio.file.Path f = dir.resolve(name);
        try (java.io.InputStream in = Native.class.getResourceAsStream("/native/" + platform() + "/" + name)) {
          if (in == null) throw new UnsatisfiedLinkError("cachemeter: " + name + " is missing from the jar");
          java.nio.file.Files.copy(in, f);
        }
        f.toFile().deleteOnExit();
        files.add(f);
      }
      for (java.nio.file.Path f : files) System.load(f.toString());
      return true;
    } catch (java.io.IOException e) {
      UnsatisfiedLinkError err = new UnsatisfiedLinkError("cachemeter: cannot extract its native library: " + e);
      err.initCause(e);
      throw err;
    }
  }
}
