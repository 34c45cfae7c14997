/* SPDX-License-Identifier: Apache-2.0 */
// Registry persistence in SQLite: owning a metrics file, restoring saved
// series into a registry, and flushing changed series back (docs/persistence.md).
#pragma once

#include <string>

#include "metrics/registry.h"

namespace cm::persist {

// The schema this code writes and reads (PRAGMA user_version), and the
// PRAGMA application_id that marks a file as ours ("CMet").
constexpr int kSchemaVersion = 1;
constexpr int kApplicationId = 0x434D6574;

// Takes ownership of the file at path (created when missing), restores what it
// holds into r (now and for families registered later) and flushes every
// interval_ms from a background thread (0: none). Throws Error: CM_ESTATE when
// r already persists or another process owns the file, CM_ECORRUPT for a
// foreign, damaged or hostile file (a schema other than exactly ours, a value
// or row count past the bounds, a read past the deadline: see
// docs/persistence.md "Hostile files"; left untouched), CM_EUNAVAILABLE when
// it or its lock file cannot be created, opened or written; SQLite failures
// by sqlite::status_of's table (sqlite/db.h), errno by status_of_errno (core/error.h).
void start(cm_registry& r, const std::string& path, unsigned interval_ms);

// Writes every series changed since the last flush, in one transaction.
// Throws Error (CM_ESTATE when r does not persist).
void flush(cm_registry& r);

// Reads a metrics file read-only into r, taking no ownership: every family it
// holds is registered and its series set to their saved values. The file is
// checked and read in full, within the same bounds, before anything is
// registered. Throws Error.
void load(cm_registry& r, const std::string& path);

}  // namespace cm::persist
