/* SPDX-License-Identifier: Apache-2.0 */
// The extern "C" shims' one catch: every cm_* function of src/api/ runs its
// body through guard(), which turns any exception into a status and the
// calling thread's cm_errmsg(). Only src/api/ includes this header; the core
// throws cm::Error (core/error.h).
#pragma once

#include <new>
#include <stdexcept>
#include <string>

#include "core/error.h"

namespace cm {

// Runs fn (returning int) and turns any exception into a status, prefixing
// the message with the API function's name.
template <class Fn>
int guard(const char* api, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const Error& e) {
    return set_error(e.status(), std::string(api) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return set_error(CM_ENOMEM, std::string(api) + ": out of memory");
  } catch (const std::exception& e) {
    return set_error(CM_EBACKEND, std::string(api) + ": internal error: " + e.what());
  } catch (...) {
    return set_error(CM_EBACKEND, std::string(api) + ": unknown internal error");
  }
}

}  // namespace cm
