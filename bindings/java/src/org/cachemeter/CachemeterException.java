// A negative cachemeter status, raised by the one status typemap
// (typemaps_java.i #1, cmj_throw): the status, its name and cm_errmsg().
package org.cachemeter;

public class CachemeterException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int status;

  public CachemeterException(int status, String message) {
    super(CM.cm_status_name(status) + ": " + message);
    this.status = status;
  }

  /** The CM_E* status (negative), as in {@link Status}. */
  public int status() { return status; }

  /** "CM_EINVAL", ... */
  public String statusName() { return CM.cm_status_name(status); }

  /** The library's detail for the failure (cm_errmsg() of the failing thread). */
  public String detail() {
    String m = getMessage();
    int i = m.indexOf(": ");
    return i < 0 ? m : m.substring(i + 2);
  }

  /** The subclass for status; called from C (cmj_throw). */
  static CachemeterException create(int status, String message) {
    switch (status) {
      case Status.EINVAL: return new InvalidArgument(message);
      case Status.ENOMEM: return new OutOfMemory(message);
      case Status.EEXIST: return new AlreadyExists(message);
      case Status.ELIMIT: return new LimitExceeded(message);
      case Status.EBACKEND: return new BackendError(message);
      case Status.ETIMEOUT: return new Timeout(message);
      case Status.EUNAVAILABLE: return new Unavailable(message);
      case Status.ECORRUPT: return new Corrupt(message);
      case Status.ESTATE: return new StateError(message);
      default: return new CachemeterException(status, message);
    }
  }

  public static final class InvalidArgument extends CachemeterException {
    private static final long serialVersionUID = 1L;
    InvalidArgument(String m) { super(Status.EINVAL, m); }
  }
  public static final class OutOfMemory extends CachemeterException {
    private static final long serialVersionUID = 1L;
    OutOfMemory(String m) { super(Status.ENOMEM, m); }
  }
  public static final class AlreadyExists extends CachemeterException {
    private static final long serialVersionUID = 1L;
    AlreadyExists(String m) { super(Status.EEXIST, m); }
  }
  public static final class LimitExceeded extends CachemeterException {
    private static final long serialVersionUID = 1L;
    LimitExceeded(String m) { super(Status.ELIMIT, m); }
  }
  public static final class BackendError extends CachemeterException {
    private static final long serialVersionUID = 1L;
    BackendError(String m) { super(Status.EBACKEND, m); }
  }
  public static final class Timeout extends CachemeterException {
    private static final long serialVersionUID = 1L;
    Timeout(String m) { super(Status.ETIMEOUT, m); }
  }
  public static final class Unavailable extends CachemeterException {
    private static final long serialVersionUID = 1L;
    Unavailable(String m) { super(Status.EUNAVAILABLE, m); }
  }
  public static final class Corrupt extends CachemeterException {
    private static final long serialVersionUID = 1L;
    Corrupt(String m) { super(Status.ECORRUPT, m); }
  }
  public static final class StateError extends CachemeterException {
    private static final long serialVersionUID = 1L;
    StateError(String m) { super(Status.ESTATE, m); }
  }
}
