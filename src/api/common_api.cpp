// SPDX-License-Identifier: Apache-2.0
// Version, status names and messages, and the allocator of the C ABI.
#include <cachemeter/common.h>

#include <cstdlib>

extern "C" {

CM_EXTERN const char* cm_version(void) { return CM_VERSION_STRING; }

CM_EXTERN int cm_version_number(void) { return CM_VERSION_NUMBER; }

CM_EXTERN const char* cm_strerror(int status) {
  switch (status) {
#define CM__MSG(name, value, msg) \
  case value:                     \
    return msg;
    CM_STATUS_MAP(CM__MSG)
#undef CM__MSG
  }
  return "unknown status";
}

CM_EXTERN const char* cm_status_name(int status) {
  switch (status) {
#define CM__NAME(name, value, msg) \
  case value:                      \
    return #name;
    CM_STATUS_MAP(CM__NAME)
#undef CM__NAME
  }
  return "CM_UNKNOWN";
}

CM_EXTERN void* cm_alloc(size_t n) { return std::malloc(n ? n : 1); }

CM_EXTERN void cm_free(void* p) { std::free(p); }
}
