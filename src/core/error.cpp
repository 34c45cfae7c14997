// SPDX-License-Identifier: Apache-2.0
// The per-thread error message behind cm_errmsg(), and the kind names of
// cache_errors_total.
#include "core/error.h"

#include <cerrno>

namespace cm {
namespace {
thread_local std::string t_errmsg;
}

int set_error(int status, const std::string& msg) noexcept {
  try {
    t_errmsg = msg;
  } catch (...) {
    t_errmsg.clear();  // out of memory: keep the status, lose the detail
  }
  return status;
}

int status_of_errno(int err) noexcept {
  switch (err) {
    case ENOMEM: return CM_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EIO: return CM_EBACKEND;
    default: return CM_EUNAVAILABLE;
  }
}

const char* last_error() noexcept { return t_errmsg.c_str(); }

void clear_error() noexcept { t_errmsg.clear(); }

const char* error_kind_name(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::Connection: return "connection";
    case ErrorKind::Timeout: return "timeout";
    case ErrorKind::Protocol: return "protocol";
    case ErrorKind::Server: return "server";
    case ErrorKind::CircuitOpen: return "circuit_open";
    case ErrorKind::Corrupt: return "corrupt";
    case ErrorKind::None:
    case ErrorKind::Other: break;
  }
  return "other";
}

}  // namespace cm
