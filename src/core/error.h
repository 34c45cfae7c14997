/* SPDX-License-Identifier: Apache-2.0 */
// The core's errors: code below src/api/ throws cm::Error (status +
// message, and for backends the kind of failure); the extern "C" shims in
// src/api/ catch once (api/guard.h) and record the message in the calling
// thread's cm_errmsg() slot (set_error).
#pragma once

#include <cachemeter/common.h>

#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

namespace cm {

// What failed, for the `kind` label of cache_errors_total. Backends that
// talk to a server say which of connection, timeout, protocol or server
// error it was; None lets the cache front derive it from the status.
enum class ErrorKind { None, Connection, Timeout, Protocol, Server, CircuitOpen, Corrupt, Other };
inline constexpr int kErrorKinds = 8;
const char* error_kind_name(ErrorKind k) noexcept;

class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& msg, ErrorKind kind = ErrorKind::None)
      : std::runtime_error(msg), status_(status), kind_(kind) {}
  int status() const noexcept { return status_; }
  ErrorKind kind() const noexcept { return kind_; }

 private:
  int status_;
  ErrorKind kind_;
};

// The status of a failed system call's errno: CM_ENOMEM, CM_EBACKEND for a
// full disk or an I/O error, else CM_EUNAVAILABLE (permissions, a missing
// directory, too many open files).
int status_of_errno(int err) noexcept;

// Records msg as the calling thread's last error and returns status.
int set_error(int status, const std::string& msg) noexcept;
// The calling thread's last error message (cm_errmsg()); valid until the
// thread's next set_error or clear_error.
const char* last_error() noexcept;
void clear_error() noexcept;

// Runs fn (returning int) for a function that reports instead of throwing
// (Backend::health): an Error becomes its status and message as they are,
// anything else a status with its message prefixed by who (when not empty).
template <class Fn>
int report(std::string_view who, Fn&& fn) noexcept {
  auto prefixed = [&](const char* what) {
    return who.empty() ? std::string(what) : std::string(who) + ": " + what;
  };
  try {
    return fn();
  } catch (const Error& e) {
    return set_error(e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(CM_ENOMEM, prefixed("out of memory"));
  } catch (const std::exception& e) {
    return set_error(CM_EBACKEND, prefixed(e.what()));
  }
}

// Throws Error(CM_EINVAL, msg) when cond is false. A macro so that the message
// is only built on failure (lookups run it on every call).
#define CM_REQUIRE(cond, msg)                                \
  do {                                                       \
    if (!(cond)) [[unlikely]]                                \
      throw ::cm::Error(CM_EINVAL, (msg));                   \
  } while (0)

}  // namespace cm
