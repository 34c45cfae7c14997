// SPDX-License-Identifier: Apache-2.0
// Exposition formats of Registry.render (enum cm_format).
package org.cachemeter;

public enum Format {
  PROMETHEUS(cm_format.CM_FORMAT_PROMETHEUS),
  OPENMETRICS(cm_format.CM_FORMAT_OPENMETRICS),
  JSON(cm_format.CM_FORMAT_JSON);

  final int code;

  Format(int code) { this.code = code; }
}
