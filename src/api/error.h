// Error plumbing between the C++ core and the C ABI: the core throws
// cm::Error (status + message); the api/ shims catch once and record the
// message in the calling thread's cm_errmsg() slot.
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

// Records msg as the calling thread's last error and returns status.
int set_error(int status, const std::string& msg) noexcept;

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
