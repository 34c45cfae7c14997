// SPDX-License-Identifier: Apache-2.0
// cm_errmsg() and cm_errclear(): the calling thread's last error message
// (core/error.cpp keeps it).
#include "api/guard.h"

extern "C" {

CM_EXTERN const char* cm_errmsg(void) { return cm::last_error(); }

CM_EXTERN void cm_errclear(void) { cm::clear_error(); }
}
