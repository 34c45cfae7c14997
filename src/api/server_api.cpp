// SPDX-License-Identifier: Apache-2.0
// extern "C" shims of server.h. Without CM_WITH_HTTP the functions exist (the
// ABI does not depend on build options) and starting reports the omission.
#include <cachemeter/server.h>

#include "api/guard.h"

#if CM_WITH_HTTP
#include "server/server.h"
#else
struct cm_server {
  int port;
};
#endif

CM_EXTERN int cm_server_start(cm_server** out, cm_registry* reg, const char* listen, const char* options) {
  return cm::guard("cm_server_start", [&]() -> int {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
#if CM_WITH_HTTP
    *out = cm::start_server(reg, listen, options).release();
    return CM_OK;
#else
    (void)reg, (void)listen, (void)options;
    throw cm::Error(CM_EUNAVAILABLE, "this libcachemeter was built without HTTP support (CM_WITH_HTTP=OFF)");
#endif
  });
}

CM_EXTERN int cm_server_port(const cm_server* s) { return s ? s->port : -1; }

CM_EXTERN void cm_server_stop(cm_server* s) { delete s; }
