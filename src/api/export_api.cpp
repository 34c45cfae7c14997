// SPDX-License-Identifier: Apache-2.0
// extern "C" shims of export.h.
#include <cachemeter/export.h>

#include "api/guard.h"
#include "export/exporter.h"
#include "metrics/registry.h"

// The caller's handle: the registry and the link to the exporter's sink,
// which the registry owns (and destroys when freed first).
struct cm_exporter {
  cm_registry* reg;
  std::shared_ptr<cm::ExporterLink> link;
};

extern "C" {

CM_EXTERN int cm_exporter_start(cm_exporter** out, cm_registry* reg, const char* uri) {
  return cm::guard("cm_exporter_start", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    CM_REQUIRE(reg != nullptr, "reg is NULL");
    CM_REQUIRE(uri != nullptr, "uri is NULL");
    auto e = std::make_unique<cm_exporter>();
    e->reg = reg;
    e->link = cm::start_exporter(*reg, uri);
    *out = e.release();
    return CM_OK;
  });
}

CM_EXTERN int cm_exporter_start_callback(cm_exporter** out, cm_registry* reg, cm_export_fn fn, void* ctx,
                                         const char* options) {
  return cm::guard("cm_exporter_start_callback", [&] {
    CM_REQUIRE(out != nullptr, "out is NULL");
    *out = nullptr;
    CM_REQUIRE(reg != nullptr, "reg is NULL");
    CM_REQUIRE(fn != nullptr, "fn is NULL");
    auto e = std::make_unique<cm_exporter>();
    e->reg = reg;
    e->link = cm::start_exporter(*reg, cm::make_callback_exporter(*reg, fn, ctx, options));
    *out = e.release();
    return CM_OK;
  });
}

CM_EXTERN int cm_exporter_flush(cm_exporter* e) {
  return cm::guard("cm_exporter_flush", [&] {
    CM_REQUIRE(e != nullptr, "e is NULL");
    cm::flush_exporter(*e->reg, *e->link);
    return CM_OK;
  });
}

CM_EXTERN void cm_exporter_stop(cm_exporter* e) {
  if (!e) return;
  cm::stop_exporter(*e->reg, *e->link);
  delete e;
}

}  // extern "C"
