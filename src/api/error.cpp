// The per-thread error message behind cm_errmsg().
#include "api/error.h"

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

}  // namespace cm

extern "C" {

CM_EXTERN const char* cm_errmsg(void) { return cm::t_errmsg.c_str(); }

CM_EXTERN void cm_errclear(void) { cm::t_errmsg.clear(); }
}
