// The status codes of cachemeter/common.h, as compile-time constants (the
// generated cm_status is package-private).
package org.cachemeter;

public final class Status {
  private Status() {}

  public static final int OK = cm_status.CM_OK;
  public static final int MISS = cm_status.CM_MISS;
  public static final int EINVAL = cm_status.CM_EINVAL;
  public static final int ENOMEM = cm_status.CM_ENOMEM;
  public static final int EEXIST = cm_status.CM_EEXIST;
  public static final int ELIMIT = cm_status.CM_ELIMIT;
  public static final int EBACKEND = cm_status.CM_EBACKEND;
  public static final int ETIMEOUT = cm_status.CM_ETIMEOUT;
  public static final int EUNAVAILABLE = cm_status.CM_EUNAVAILABLE;
  public static final int ECORRUPT = cm_status.CM_ECORRUPT;
  public static final int ESTATE = cm_status.CM_ESTATE;

  /** "invalid argument", ... */
  public static String message(int status) { return CM.cm_strerror(status); }

  /** "CM_EINVAL", ... */
  public static String name(int status) { return CM.cm_status_name(status); }

  /** The loaded library's version, "MAJOR.MINOR.PATCH". */
  public static String version() { return CM.cm_version(); }
}
