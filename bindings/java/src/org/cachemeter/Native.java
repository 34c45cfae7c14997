// Loads the JNI library once, before the first native call (CMJNI's static
// initialiser calls load()).
package org.cachemeter;

final class Native {
  private static boolean loaded;

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
