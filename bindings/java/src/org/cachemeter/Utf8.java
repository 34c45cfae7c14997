// SPDX-License-Identifier: Apache-2.0
// Strings for the C API as NUL-terminated UTF-8 (JNI's own string functions
// speak modified UTF-8): used by the generated code (typemaps_java.i #5, #6).
package org.cachemeter;

import java.nio.charset.StandardCharsets;

final class Utf8 {
  private Utf8() {}

  static byte[] z(String s) {
    if (s == null) return null;
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[b.length + 1];
    System.arraycopy(b, 0, out, 0, b.length);
    return out;
  }

  static byte[][] zs(String[] v) {
    if (v == null) return null;
    byte[][] out = new byte[v.length][];
    for (int i = 0; i < v.length; i++) {
      if (v[i] == null) throw new NullPointerException("label " + i + " is null");
      out[i] = z(v[i]);
    }
    return out;
  }

  static String decode(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }
}
